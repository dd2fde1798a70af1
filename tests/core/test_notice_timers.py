"""The notice-change clock: a consent a later material notice version supersedes is due at that
version's effective date, and firing it tells the destinations to suppress at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, EventType, Reason
from streams.core.engine import Engine
from streams.core.notices import next_material, superseded_by
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, SubjectState
from streams.core.statements import to_micros
from streams.core.timers import Due, Kind, TimerPlan, due_event
from tests.support.examples import examples

POLICY = """
[controllers.acme]
name = "Acme AB"

[[controllers.acme.notices]]
version = "v1"
effective = 2026-01-01

[[controllers.acme.notices]]
version = "v2"
effective = 2026-11-10
material = ["offers"]

[[controllers.acme.notices]]
version = "v3"
effective = 2026-12-10
material = ["offers", "tips"]

[controllers.acme.purposes.offers]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email", "sms"]
destinations = ["email", "crm"]

[controllers.acme.purposes.tips]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
"""
ENGINE = Engine(parse_policy(POLICY))
PLAN = TimerPlan(ENGINE.policy, ENGINE.plans)
CHANGE = datetime(2026, 11, 10, tzinfo=UTC)
LAST = datetime(2026, 12, 10, tzinfo=UTC)
BEFORE = CHANGE - timedelta(days=5)
NOW = LAST + timedelta(days=30)


def event(type: str, at: datetime, **fields: Any) -> ConsentEvent:
    data = {
        "event_id": fields.pop("event_id", f"{type}-{at.isoformat()}-{fields.get('purpose')}"),
        "type": type,
        "occurred_at": at,
        "controller": "acme",
        "subject_id": "s-1",
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": NOW})


def grant(at: datetime, purpose: str = "offers", **fields: Any) -> ConsentEvent:
    return event("consent.granted", at, purpose=purpose, **fields)


def fold(*events: ConsentEvent) -> SubjectState:
    state = EMPTY
    for one in events:
        state = ENGINE.apply(state, one, NOW).state
    return state


def work(state: SubjectState) -> list[Due]:
    return PLAN.due_work("acme", "s-1", state)


def fire(item: Due) -> ConsentEvent:
    """The event the ticker publishes for ``item``, as the worker reads it back."""
    raw = orjson.dumps(due_event(item), option=orjson.OPT_UTC_Z)
    return ConsentEvent.model_validate_json(raw, context={"now": NOW})


def test_a_consent_under_an_older_notice_is_due_at_the_change() -> None:
    old = grant(BEFORE, notice_version="v1", event_id="g-1")
    (item,) = work(fold(old))
    assert item == Due(
        to_micros(CHANGE), Kind.NOTICE, "acme", "s-1", "offers", None, "g-1", to_micros(CHANGE),
        "notice_version v2",
    )  # fmt: skip
    fired = fire(item)
    assert fired.type is EventType.CONSENT_SUPERSEDED
    assert (fired.occurred_at, fired.event_id) == (CHANGE, item.id)
    assert fired.evidence == {"cause_event_id": "g-1", "rule": "notice_version v2"}
    assert work(fold(old)) == [item]  # the same state, the same id


def test_firing_it_suppresses_with_reconsent_required_at_the_effective_date() -> None:
    state = fold(grant(BEFORE, channel="sms", event_id="g-sms"), grant(BEFORE, "tips"))
    item, tips = work(state)  # tips is changed materially only by v3
    assert (tips.purpose, tips.at) == ("tips", to_micros(LAST))
    assert (item.channel, item.cause) == ("sms", "g-sms")
    outcome = ENGINE.apply(state, fire(item), NOW)
    told = [(m.destination.value, orjson.loads(m.value)) for m in outcome.messages]
    assert {(d, v["purpose"], v["channel"]) for d, v in told} == {
        ("email", "offers", "sms"),
        ("crm", "offers", "sms"),
    }
    for _, value in told:
        assert (value["action"], value["reason"]) == ("suppress", "reconsent_required")
        assert value["effective_at"] == "2026-11-10T00:00:00Z"
        assert value["caused_by_event_id"] == "g-sms"
    assert work(outcome.state) == [tips]  # fired, it is no longer due
    assert ENGINE.apply(outcome.state, fire(item), NOW).messages == ()  # a re-fire: duplicate


def test_a_grant_for_every_channel_is_one_consent_and_one_clock() -> None:
    (item,) = work(fold(grant(BEFORE)))
    assert item.channel is None
    outcome = ENGINE.apply(fold(grant(BEFORE)), fire(item), NOW)
    channels = {orjson.loads(m.value)["channel"] for m in outcome.messages}
    assert channels == {"email", "sms"}


def test_a_re_grant_under_the_new_version_before_the_date_makes_the_clock_stale() -> None:
    old = grant(BEFORE, event_id="g-old")
    (stale,) = work(fold(old))
    renewed = fold(old, grant(BEFORE + timedelta(days=1), notice_version="v2", event_id="g-new"))
    (next_one,) = work(renewed)  # v3 changes offers again: that clock remains
    assert (next_one.cause, next_one.at) == ("g-new", to_micros(LAST))
    assert stale not in work(renewed)  # the ticker drops it unfired
    # Fired anyway (a race), it decides nothing: the consent under v2 still counts.
    assert ENGINE.apply(renewed, fire(stale), NOW).messages == ()
    assert ENGINE.decide(renewed, "acme", "offers", Channel.EMAIL, CHANGE).reason is Reason.CONSENT


def test_no_clock_without_a_consent_in_force_or_once_the_subjects_clock_passed_it() -> None:
    withdrawn = fold(grant(BEFORE), event("consent.withdrawn", BEFORE + timedelta(hours=1),
                                          purpose="offers"))  # fmt: skip
    assert work(withdrawn) == []
    later = event("unsubscribed", CHANGE + timedelta(hours=1), purpose="tips", event_id="u-1")
    passed = fold(grant(BEFORE, event_id="g-1"), later)  # the event moved the clock: emitted
    assert [i.cause for i in work(passed)] == []
    assert work(fold(grant(LAST + timedelta(days=1)))) == []  # no later version changes it


POOL = [
    grant(BEFORE, event_id="g-offers-before"),
    grant(CHANGE + timedelta(days=5), event_id="g-offers-later"),
    grant(BEFORE, "tips", event_id="g-tips-before"),
    grant(BEFORE, channel="sms", event_id="g-sms-before"),
    event("consent.withdrawn", BEFORE + timedelta(days=1), purpose="offers", event_id="w-before"),
    event("unsubscribed", CHANGE + timedelta(hours=1), purpose="tips", event_id="u-after"),
    grant(BEFORE, notice_version="v2", event_id="g-offers-v2"),
    event("restriction.requested", BEFORE, event_id="r-before"),
    event("restriction.lifted", BEFORE + timedelta(days=2), event_id="l-before"),
]
subsets = st.permutations(POOL).flatmap(
    lambda order: st.integers(1, len(order)).map(lambda n: order[:n])
)


@settings(max_examples=examples(100), deadline=None)
@given(data=st.data(), events=subsets)
def test_same_set_of_events_same_due_work_and_same_outcome(
    data: st.DataObject, events: list[ConsentEvent]
) -> None:
    """Fire the notice clocks (repeatedly, as the ticker does after each fold) with the events
    in any order and with redeliveries: the state, the due work and the last instruction per
    pair depend on the set of events only, and the last instruction is what the decision at the
    end says."""
    canonical = fold(*sorted(events, key=lambda e: e.event_id))
    arrival = data.draw(st.permutations(events)) + data.draw(
        st.lists(st.sampled_from(events), max_size=3)
    )
    assert work(fold(*arrival)) == work(canonical)

    def run(order: list[ConsentEvent]) -> tuple[SubjectState, dict[tuple[str, ...], str]]:
        state, last, queue = EMPTY, dict[tuple[str, ...], str](), list(order)
        while queue:
            outcome = ENGINE.apply(state, queue.pop(0), NOW)
            state = outcome.state
            for message in outcome.messages:
                value = orjson.loads(message.value)
                pair = (message.destination.value, value["purpose"], value["channel"])
                last[pair] = value["action"]
            if not queue:  # the ticker: everything due by NOW
                queue = [fire(item) for item in work(state) if item.at <= to_micros(NOW)]
        return state, last

    first, told = run(arrival)
    second, _ = run(sorted(events, key=lambda e: e.event_id))
    assert (first.slots, first.notices) == (second.slots, second.notices)
    assert work(first) == work(second) == []  # nothing left due
    for ruling in ENGINE.decide_all(first, "acme"):
        assert ruling.reason is not Reason.CONSENT  # every consent here predates v3: fired
        for destination in ruling.purpose.destinations:
            said = told.get((destination.value, ruling.purpose.name, ruling.channel.value))
            assert (said == "allow") == ruling.allowed, (ruling, said)
        read = ENGINE.decide(first, "acme", ruling.purpose.name, ruling.channel, NOW)
        assert read.reason is ruling.reason  # what a read says now is what was emitted


@given(
    version=st.sampled_from([None, "v1", "v2", "v3", "unknown"]),
    given_at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 6, 1)),
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 6, 1)),
    purpose=st.sampled_from(["offers", "tips"]),
)
def test_the_clock_is_where_the_read_starts_saying_reconsent(
    version: str | None, given_at: datetime, now: datetime, purpose: str
) -> None:
    notices = ENGINE.policy.controllers["acme"].notices
    when, at = given_at.replace(tzinfo=UTC), now.replace(tzinfo=UTC)
    due = next_material(notices, purpose, version=version, given_at=when)
    superseded = superseded_by(notices, purpose, at, version=version, given_at=when)
    assert (superseded is not None) == (due is not None and due.effective <= at)
