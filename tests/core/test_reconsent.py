"""A materially changed notice: consents given under the older version stop counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, Reason
from streams.core.engine import Engine
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, NOTICES_VERSION, STATE_VERSION, SubjectState
from tests.support.notices import reconsent_policy

CHANGE = datetime(2026, 11, 10, tzinfo=UTC)
ENGINE = Engine(parse_policy(reconsent_policy(CHANGE.date())))
BEFORE = CHANGE - timedelta(days=5)
LATER = CHANGE + timedelta(days=5)


def event(type: str, at: datetime, **fields: Any) -> ConsentEvent:
    data = {
        "event_id": fields.pop("event_id", f"{type}-{at.isoformat()}-{fields.get('purpose')}"),
        "type": type,
        "occurred_at": at,
        "controller": "acme",
        "subject_id": "s-1",
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": LATER + timedelta(days=30)})


def grant(at: datetime, purpose: str = "offers", **fields: Any) -> ConsentEvent:
    return event("consent.granted", at, purpose=purpose, **fields)


def fold(*events: ConsentEvent) -> SubjectState:
    state = EMPTY
    for one in events:
        state = ENGINE.apply(state, one, LATER).state
    return state


def reason(state: SubjectState, now: datetime | None, purpose: str = "offers") -> Reason:
    return ENGINE.decide(state, "acme", purpose, Channel.EMAIL, now).reason


@pytest.mark.parametrize("version", [None, "v1", "unknown-version"])
def test_an_earlier_consent_stops_counting_at_the_effective_date(version: str | None) -> None:
    state = fold(grant(BEFORE, notice_version=version), grant(BEFORE, "tips"))
    assert reason(state, CHANGE - timedelta(microseconds=1)) is Reason.CONSENT
    ruling = ENGINE.decide(state, "acme", "offers", Channel.EMAIL, CHANGE)
    assert ruling.reason is Reason.RECONSENT_REQUIRED and not ruling.allowed
    assert ruling.cause is not None
    assert (ruling.cause.occurred_at, ruling.cause.event_id) == (
        CHANGE,
        state.slots["c|offers|*#g"].event_id,
    )
    assert reason(state, LATER, "tips") is Reason.CONSENT  # not materially changed


def test_a_consent_under_the_new_version_counts_even_if_given_before_it_took_effect() -> None:
    state = fold(grant(BEFORE, notice_version="v2"))
    assert reason(state, LATER) is Reason.CONSENT


def test_consent_given_again_after_the_change_counts() -> None:
    state = fold(grant(BEFORE), grant(LATER))
    assert reason(state, LATER + timedelta(days=1)) is Reason.CONSENT


def test_without_now_the_decision_is_at_the_subjects_clock() -> None:
    state = fold(grant(BEFORE))
    assert reason(state, None) is Reason.CONSENT  # nothing happened to it since the change
    later = fold(grant(BEFORE), grant(LATER, purpose="tips"))
    assert reason(later, None) is Reason.RECONSENT_REQUIRED


def test_the_next_event_after_the_change_suppresses_what_was_allowed() -> None:
    state = ENGINE.apply(EMPTY, grant(BEFORE), BEFORE).state
    outcome = ENGINE.apply(state, grant(LATER, purpose="tips"), LATER)
    sent = [orjson.loads(m.value) for m in outcome.messages]
    offers = [m for m in sent if m["purpose"] == "offers"]
    assert {(m["action"], m["reason"]) for m in offers} == {("suppress", "reconsent_required")}
    assert offers[0]["effective_at"] == "2026-11-10T00:00:00Z"
    assert {(m["purpose"], m["action"]) for m in sent} >= {("tips", "allow")}
    # An event dated before the change, folded later, changes nothing for offers.
    early = ENGINE.apply(state, grant(BEFORE + timedelta(hours=1), purpose="tips"), LATER)
    assert {orjson.loads(m.value)["purpose"] for m in early.messages} == {"tips"}


def test_emission_does_not_depend_on_arrival_order() -> None:
    events = [grant(BEFORE), grant(LATER, purpose="tips"), grant(BEFORE, "tips", event_id="x")]
    for order in (events, events[::-1], [events[1], events[0], events[2]]):
        state, seen = EMPTY, dict[tuple[str, str], str]()
        for one in order:
            outcome = ENGINE.apply(state, one, LATER)
            state = outcome.state
            for message in outcome.messages:
                value = orjson.loads(message.value)
                seen[(value["purpose"], value["channel"])] = value["action"]
        assert seen.get(("offers", "email"), "suppress") == "suppress"
        assert reason(state, None) is Reason.RECONSENT_REQUIRED


def test_a_redelivered_old_grant_does_not_allow_again() -> None:
    old = grant(BEFORE)
    state = fold(old, grant(LATER, purpose="tips"))
    outcome = ENGINE.apply(state, old, LATER)
    assert outcome.duplicate and outcome.messages == ()


def test_the_state_keeps_the_version_compactly_and_reads_older_states() -> None:
    plain = fold(grant(BEFORE))
    assert plain.to_bytes()[0] == STATE_VERSION  # no notice named: bytes as before
    named = fold(grant(BEFORE, notice_version="v2"))
    assert named.notices == {"c|offers|*#g": "v2"}
    assert named.to_bytes()[0] == NOTICES_VERSION
    assert SubjectState.from_bytes(named.to_bytes()) == named
    assert SubjectState.from_bytes(plain.to_bytes()) == plain
    # A later grant without a version replaces the version with its own time.
    assert fold(grant(BEFORE, notice_version="v2"), grant(LATER)).notices == {}


def test_a_withdrawal_still_wins() -> None:
    state = fold(grant(BEFORE), event("consent.withdrawn", LATER, purpose="offers"))
    assert reason(state, LATER) is Reason.CONSENT_WITHDRAWN


POOL = [
    grant(BEFORE, event_id="g-offers-before"),
    grant(LATER, event_id="g-offers-later"),
    grant(BEFORE, "tips", event_id="g-tips-before"),
    grant(LATER, "tips", event_id="g-tips-later"),
    event("consent.withdrawn", BEFORE + timedelta(days=1), purpose="offers", event_id="w-before"),
    event("unsubscribed", CHANGE + timedelta(hours=1), purpose="tips", event_id="u-after"),
    grant(BEFORE, notice_version="v2", event_id="g-offers-v2"),
]


@given(
    st.permutations(POOL).flatmap(lambda order: st.integers(1, len(order)).map(lambda n: order[:n]))
)
def test_the_last_instruction_per_pair_is_allow_exactly_when_the_emitted_decision_allows(
    events: list[ConsentEvent],
) -> None:
    state, last = EMPTY, dict[tuple[str, str, str], str]()
    for one in events:
        outcome = ENGINE.apply(state, one, LATER)
        state = outcome.state
        for message in outcome.messages:
            value = orjson.loads(message.value)
            last[(message.destination.value, value["purpose"], value["channel"])] = value["action"]
    canonical = fold(*sorted(events, key=lambda e: e.event_id))  # the set decides, not order
    assert (state.slots, state.notices) == (canonical.slots, canonical.notices)
    for ruling in ENGINE.decide_all(state, "acme"):
        for destination in ruling.purpose.destinations:
            told = last.get((destination.value, ruling.purpose.name, ruling.channel.value))
            assert (told == "allow") == ruling.allowed, (ruling, told)
