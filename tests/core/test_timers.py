"""Due work computed from state and policy, and what folding the timers' events decides.

The test policy (tests/support/core.py) gives acme's ``offers`` a 3-minute lifetime with a
reminder a minute before, ``newsletter`` a 2-minute confirmation window and a 4-minute lifetime,
and ``orders`` a 5-minute retention from the last contact that ends in erasure.
"""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.notifications import ConsentNotification
from schemas.vocabulary import EventType, Reason
from streams.core.calendars import zone
from streams.core.engine import Engine
from streams.core.periods import Period
from streams.core.policy import PolicyError, load_policy, parse_policy
from streams.core.retention import Anchor, retention_due
from streams.core.state import EMPTY, SubjectState
from streams.core.statements import RETENTION_END, retention_scope, slot_key, to_micros
from streams.core.timers import (
    EVENT_TYPE,
    KNOWN_ANCHORS,
    Due,
    Kind,
    TimerPlan,
    due_event,
    is_due,
    notification,
)
from tests.support.core import NOW, POLICY_TOML, T0, MakeEvent, make_event
from tests.support.examples import examples

from .strategies import event_sets, events, unique_ids


@pytest.fixture(scope="module")
def plan(engine: Engine) -> TimerPlan:
    return TimerPlan(engine.policy, engine.plans)


def fold(engine: Engine, *events: ConsentEvent) -> SubjectState:
    state = EMPTY
    for e in events:
        state = engine.apply(state, e, NOW).state
    return state


def work(plan: TimerPlan, state: SubjectState) -> dict[tuple[str, str, str | None], Due]:
    return {(d.kind, d.purpose, d.channel): d for d in plan.due_work("acme", "subject-1", state)}


def fire(item: Due) -> ConsentEvent:
    """The event the worker publishes for ``item``, as the worker would read it back."""
    raw = orjson.dumps(due_event(item), option=orjson.OPT_UTC_Z)
    return ConsentEvent.model_validate_json(raw, context={"now": NOW})


def minutes(n: float) -> int:
    return to_micros(T0 + timedelta(minutes=n))


def test_a_consent_in_force_has_an_expiry_and_a_reminder(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    grant = event("consent.granted", 1, purpose="offers", channel="email")
    due = work(plan, fold(engine, grant))
    expiry, reminder = due["expiry", "offers", "email"], due["reminder", "offers", "email"]
    assert (expiry.at, expiry.cause, expiry.rule) == (
        minutes(4),
        grant.event_id,
        "consent_lifetime PT3M",
    )
    assert (reminder.at, reminder.until) == (minutes(3), minutes(4))
    # The same state gives the same items, ids included; each kind has its own id.
    assert work(plan, fold(engine, grant)) == due
    assert len({d.id for d in due.values()}) == len(due)
    assert not is_due(expiry, T0 + timedelta(minutes=3, seconds=59))
    assert is_due(expiry, T0 + timedelta(minutes=4))


def test_a_grant_for_every_channel_runs_one_clock_per_pair(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    due = work(plan, fold(engine, event("consent.granted", 0, purpose="offers")))
    assert {(k, c) for k, p, c in due if p == "offers"} == {
        (kind, channel) for kind in ("expiry", "reminder") for channel in ("email", "sms")
    }


def test_an_expiry_makes_the_pair_expired_and_tells_destinations_to_suppress(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    grant = event("consent.granted", 1, purpose="offers", channel="email")
    state = fold(engine, grant)
    expired = fire(work(plan, state)["expiry", "offers", "email"])
    outcome = engine.apply(state, expired, NOW)
    values = [orjson.loads(m.value) for m in outcome.messages]
    assert {(v["action"], v["reason"], v["caused_by_event_id"]) for v in values} == {
        ("suppress", "expired", expired.event_id)
    }
    assert [m.destination.value for m in outcome.messages] == ["email", "crm"]
    assert engine.decide(outcome.state, "acme", "offers", "email").reason is Reason.EXPIRED
    assert "expiry" not in {k for k, _, c in work(plan, outcome.state) if c == "email"}
    # Fired again (a crash before the index removal): a duplicate, nothing new.
    again = engine.apply(outcome.state, expired, NOW)
    assert again.duplicate and again.state == outcome.state and not again.messages


def test_a_renewal_before_the_expiry_wins_in_any_order(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    grant = event("consent.granted", 1, purpose="offers", channel="email")
    stale = fire(work(plan, fold(engine, grant))["expiry", "offers", "email"])
    renewal = event("consent.granted", 3, purpose="offers", channel="email")
    for order in ((grant, renewal, stale), (grant, stale, renewal), (stale, renewal, grant)):
        state = fold(engine, *order)
        ruling = engine.decide(state, "acme", "offers", "email")
        assert (ruling.reason, ruling.cause and ruling.cause.event_id) == (
            Reason.CONSENT,
            renewal.event_id,
        )
        assert work(plan, state)["expiry", "offers", "email"].at == minutes(6)


def test_a_renewal_after_the_expiry_gives_consent_again(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    grant = event("consent.granted", 1, purpose="offers", channel="email")
    expired = fire(work(plan, fold(engine, grant))["expiry", "offers", "email"])
    renewal = event("consent.granted", 6, purpose="offers", channel="email")
    state = fold(engine, grant, expired)
    outcome = engine.apply(state, renewal, NOW)
    assert [orjson.loads(m.value)["action"] for m in outcome.messages] == ["allow", "allow"]


def test_an_unconfirmed_double_opt_in_lapses_and_its_data_is_erased(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    signup = event("consent.granted", 1, purpose="newsletter", channel="email")
    state = fold(engine, signup)
    lapse = work(plan, state)["lapse", "newsletter", "email"]
    assert (lapse.at, lapse.cause) == (minutes(3), signup.event_id)
    lapsed = fire(lapse)
    outcome = engine.apply(state, lapsed, NOW)
    values = [orjson.loads(m.value) for m in outcome.messages]
    # Erase, then the decision (as for erasure requests), for each destination.
    assert [
        (m.destination.value, v["action"], v["reason"])
        for m, v in zip(outcome.messages, values, strict=True)
    ] == [
        ("email", "erase", "expired"),
        ("crm", "erase", "expired"),
        ("email", "suppress", "expired"),
        ("crm", "suppress", "expired"),
    ]
    assert {(v["purpose"], v["channel"], v["caused_by_event_id"]) for v in values} == {
        ("newsletter", "email", lapsed.event_id)
    }
    assert engine.decide(outcome.state, "acme", "newsletter", "email").reason is Reason.EXPIRED
    assert not [d for d in work(plan, outcome.state).values() if d.channel == "email"]
    # Redelivered, the erase is restated under the same id.
    again = engine.apply(outcome.state, lapsed, NOW)
    assert again.duplicate and again.messages == outcome.messages


def test_a_confirmation_in_the_window_replaces_the_lapse_by_an_expiry(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    signup = event("consent.granted", 1, purpose="newsletter", channel="email")
    stale = fire(work(plan, fold(engine, signup))["lapse", "newsletter", "email"])
    confirmed = event("consent.confirmed", 2, purpose="newsletter", channel="email")
    state = fold(engine, signup, stale, confirmed)
    assert engine.decide(state, "acme", "newsletter", "email").reason is Reason.CONSENT
    due = work(plan, state)
    assert ("lapse", "newsletter", "email") not in due
    assert due["expiry", "newsletter", "email"].at == minutes(6)


def test_retention_runs_from_the_last_contact_and_ends_in_erasure(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    first = event("consent.granted", 0, purpose="offers", channel="sms")
    later = event("unsubscribed", 2, channel="email")
    state = fold(engine, first, later)
    retention = work(plan, state)["retention", "orders", None]
    assert (retention.at, retention.cause) == (minutes(7), later.event_id)
    due = fire(retention)
    assert due.channel is None and due.evidence == {
        "cause_event_id": later.event_id,
        "rule": "retention PT5M from last_contact, then erase",
    }
    outcome = engine.apply(state, due, NOW)
    values = [orjson.loads(m.value) for m in outcome.messages]
    assert [
        (m.destination.value, v["action"], v["channel"])
        for m, v in zip(outcome.messages, values, strict=True)
    ] == [
        ("crm", "erase", "email"),
        ("crm", "allow", "email"),  # the decision follows: a contract purpose stays allowed
        ("crm", "erase", "post"),
        ("crm", "allow", "post"),
    ]
    assert [v["reason"] for v in values] == ["expired", "contract"] * 2
    # Recorded: no longer due; the timers' own events are no contact, so nothing restarts.
    assert ("retention", "orders", None) not in work(plan, outcome.state)
    # A new contact starts the clock again from it.
    contact = event("consent.withdrawn", 8, purpose="offers")
    again = work(plan, engine.apply(outcome.state, contact, NOW).state)
    assert again["retention", "orders", None].at == minutes(13)


def test_a_reminder_becomes_a_contract_notification(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    grant = event(
        "consent.granted", 1, purpose="offers", channel="sms", identifiers={"phone": "+46 70 1"}
    )
    state = fold(engine, grant)
    item = work(plan, state)["reminder", "offers", "sms"]
    body = notification(item, state, NOW)
    parsed = ConsentNotification.model_validate_json(orjson.dumps(body, option=orjson.OPT_UTC_Z))
    assert parsed.notification_id == item.id and parsed.consent_event_id == grant.event_id
    assert parsed.expires_at == T0 + timedelta(minutes=4)
    assert parsed.identifiers.phone == "+46 70 1"
    with pytest.raises(KeyError):
        due_event(item)  # a reminder is no input event


def test_controllers_without_clocks_have_no_due_work(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    beta = event("consent.granted", 1, controller="beta", purpose="newsletter")
    assert plan.due_work("beta", "subject-1", fold(engine, beta)) == []
    assert plan.any()


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), events=event_sets)
def test_due_work_depends_only_on_the_set_of_events(
    engine: Engine, plan: TimerPlan, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=5))
    expected = plan.due_work("acme", "subject-1", fold(engine, *events))
    assert plan.due_work("acme", "subject-1", fold(engine, *duplicated)) == expected


@settings(max_examples=examples(200), deadline=None)
@given(data=st.data(), events=event_sets)
def test_firing_everything_due_gives_one_outcome_in_any_order(
    engine: Engine, plan: TimerPlan, data: st.DataObject, events: list[ConsentEvent]
) -> None:
    """Fire every due clock (the ticker publishes, the worker folds), in any order and with
    re-fired duplicates: the final decisions are those of the set of events."""
    state = fold(engine, *events)
    fired = [fire(d) for d in plan.due_work("acme", "subject-1", state) if d.kind != Kind.REMINDER]
    everything = events + fired
    arrival = data.draw(st.permutations(everything)) + data.draw(
        st.lists(st.sampled_from(everything), max_size=5)
    )
    once, mixed = fold(engine, *everything), fold(engine, *arrival)
    assert engine.decide_all(mixed, "acme") == engine.decide_all(once, "acme")
    assert plan.due_work("acme", "subject-1", mixed) == plan.due_work("acme", "subject-1", once)


def test_period_before_undoes_after_on_the_calendar() -> None:
    month = Period.parse("P1M")
    assert month.before(T0.replace(month=3, day=31)) == T0.replace(month=2, day=28)
    assert Period.parse("PT30S").before(T0) == T0 - timedelta(seconds=30)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('renewal_reminder = "P1M"', "a renewal reminder needs a consent_lifetime"),
        ('consent_lifetime = "P1M"\nrenewal_reminder = "P1M"', "must be shorter than the lifetime"),
        ('consent_lifetime = "P1M"\nrenewal_reminder = "PT0S"', "more than zero"),
    ],
)
def test_a_reminder_must_fit_in_the_lifetime(fields: str, message: str) -> None:
    text = POLICY_TOML.replace(
        "[controllers.beta.purposes.analytics]\n",
        f"[controllers.beta.purposes.analytics]\n{fields}\n",
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.toml")
    [problem] = caught.value.problems
    assert "controllers.beta.purposes.analytics.renewal_reminder" in problem
    assert message in problem


def test_a_confirmation_after_the_lapse_counts_from_the_confirmation(
    engine: Engine, plan: TimerPlan, event: MakeEvent
) -> None:
    signup = event("consent.granted", 1, purpose="newsletter", channel="email")
    lapsed = fire(work(plan, fold(engine, signup))["lapse", "newsletter", "email"])
    late = event("consent.confirmed", 5, purpose="newsletter", channel="email")
    state = fold(engine, signup, lapsed, late)
    ruling = engine.decide(state, "acme", "newsletter", "email")
    assert (ruling.reason, ruling.cause and ruling.cause.event_id) == (
        Reason.CONSENT,
        late.event_id,
    )
    assert work(plan, state)["expiry", "newsletter", "email"].at == minutes(9)


def test_collected_data_runs_from_its_own_purpose_and_the_rest_from_the_last_contact() -> None:
    policy = load_policy()
    engine = Engine(policy)
    plan = TimerPlan(policy, engine.plans)
    hms = policy.controllers["hms-se"]
    chat = make_event("consent.granted", 0, controller="hms-se", purpose="live-chat", channel="web")
    letter = make_event(
        "consent.granted", 10, controller="hms-se", purpose="newsletter", channel="email"
    )
    state = fold(engine, chat, letter)

    due = {
        d.purpose: d
        for d in plan.due_work("hms-se", "subject-1", state)
        if d.kind == Kind.RETENTION.value
    }

    def end(purpose: str, anchor: ConsentEvent) -> int:
        rule = hms.purposes[purpose].retention[0]
        return to_micros(retention_due(rule, anchor.occurred_at, zone(hms.jurisdiction)))

    # Collected: from the purpose's own last statement; nothing collected, no clock.
    assert (due["live-chat"].at, due["live-chat"].cause) == (end("live-chat", chat), chat.event_id)
    assert not {"web-analytics", "server-logs", "bookkeeping"} & set(due)
    # The last contact: the later statement, whatever its purpose.
    for purpose in ("order-handling", "technical-support"):
        assert (due[purpose].at, due[purpose].cause) == (end(purpose, letter), letter.event_id)


SHIPPED = load_policy()
HMS = ("hms-se", SHIPPED.controllers["hms-se"])  # eight retention rules over five anchors


def retention_reference(plan: TimerPlan, state: SubjectState) -> list[Due]:
    """The retention items of hms-se, rule by rule, each anchor found by a scan of its own."""
    controller = HMS[1]
    published = {kind.value for kind in EventType} - {t.value for t in EVENT_TYPE.values()}
    out = []
    for purpose in controller.purposes.values():
        for rule in purpose.retention:
            if rule.data or rule.anchor not in KNOWN_ANCHORS:
                continue
            own = (f"c|{purpose.name}|", f"u|{purpose.name}|")
            candidates = [
                s
                for key, s in state.slots.items()
                if s.type in published
                and (rule.anchor is not Anchor.COLLECTED or key.startswith(own))
            ]
            if not candidates:
                continue
            anchor = max(candidates)
            end = to_micros(retention_due(rule, anchor.occurred_at, plan.clocks["hms-se"].zone))
            done = state.slots.get(slot_key(retention_scope(purpose.name), RETENTION_END))
            if done is not None and done.at >= end:
                continue
            text = f"retention {rule.period} from {rule.anchor.value}, then {rule.action.value}"
            out.append(
                Due(
                    end,
                    "retention",
                    "hms-se",
                    "subject-1",
                    purpose.name,
                    None,
                    anchor.event_id,
                    end,
                    text,
                )
            )
    return out


@settings(max_examples=examples(200), deadline=None)
@given(batch=st.lists(events(controller=HMS), min_size=1, max_size=20).map(unique_ids))
def test_retention_items_match_a_rule_by_rule_reading_of_the_shipped_policy(
    batch: list[ConsentEvent],
) -> None:
    engine = Engine(SHIPPED)
    plan = TimerPlan(SHIPPED, engine.plans)
    state = fold(engine, *batch)
    found = [d for d in plan.due_work("hms-se", "subject-1", state) if d.kind == "retention"]
    assert found == retention_reference(plan, state)
