"""Decision semantics, one rule at a time."""

from __future__ import annotations

import pytest

from schemas.vocabulary import Channel, Reason
from streams.core.engine import Engine
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, SubjectState
from tests.support.core import NOW, POLICY_TOML, MakeEvent, make_event


def fold(*events: object) -> SubjectState:
    state = EMPTY
    for e in events:
        state = state.fold(e)  # type: ignore[arg-type]
    return state


def reason(
    engine: Engine, state: SubjectState, purpose: str, channel: str, controller: str = "acme"
) -> Reason:
    return engine.decide(state, controller, purpose, Channel(channel)).reason


def test_defaults_follow_the_legal_basis(engine: Engine) -> None:
    assert reason(engine, EMPTY, "offers", "email") is Reason.NO_CONSENT
    assert reason(engine, EMPTY, "customer-marketing", "email") is Reason.LEGITIMATE_INTEREST
    assert reason(engine, EMPTY, "orders", "post") is Reason.CONTRACT
    assert reason(engine, EMPTY, "bookkeeping", "post") is Reason.LEGAL_OBLIGATION


def test_grant_then_withdraw_by_event_time(engine: Engine, event: MakeEvent) -> None:
    granted = event("consent.granted", 1, purpose="offers")
    withdrawn = event("consent.withdrawn", 2, purpose="offers")
    state = fold(granted, withdrawn)
    decision = engine.decide(state, "acme", "offers", Channel.EMAIL)
    assert decision.reason is Reason.CONSENT_WITHDRAWN
    assert decision.cause is not None and decision.cause.event_id == withdrawn.event_id
    # A re-grant later than the withdrawal allows again.
    regrant = event("consent.granted", 3, purpose="offers")
    assert reason(engine, state.fold(regrant), "offers", "email") is Reason.CONSENT


def test_denial_wins_a_tie_then_event_id_orders(engine: Engine, event: MakeEvent) -> None:
    granted = event("consent.granted", 5, purpose="offers", event_id="z")
    withdrawn = event("consent.withdrawn", 5, purpose="offers", event_id="a")
    assert reason(engine, fold(granted, withdrawn), "offers", "email") is Reason.CONSENT_WITHDRAWN
    g1 = event("consent.granted", 5, purpose="offers", event_id="g1")
    g2 = event("consent.granted", 5, purpose="offers", event_id="g2")
    decision = engine.decide(fold(g2, g1), "acme", "offers", Channel.EMAIL)
    assert decision.cause is not None and decision.cause.event_id == "g2"


def test_channel_scoping(engine: Engine, event: MakeEvent) -> None:
    state = fold(
        event("consent.granted", 1, purpose="offers"),  # every channel
        event("consent.withdrawn", 2, purpose="offers", channel="sms"),
    )
    assert reason(engine, state, "offers", "email") is Reason.CONSENT
    assert reason(engine, state, "offers", "sms") is Reason.CONSENT_WITHDRAWN


def test_list_unsubscribe_touches_one_purpose(engine: Engine, event: MakeEvent) -> None:
    state = fold(
        event("consent.granted", 1, purpose="offers"),
        event("unsubscribed", 2, purpose="customer-marketing"),
    )
    assert reason(engine, state, "customer-marketing", "email") is Reason.UNSUBSCRIBED
    assert reason(engine, state, "customer-marketing", "post") is Reason.LEGITIMATE_INTEREST
    assert reason(engine, state, "offers", "email") is Reason.CONSENT


def test_global_unsubscribe_hits_every_marketing_purpose_on_email(
    engine: Engine, event: MakeEvent
) -> None:
    state = fold(event("consent.granted", 1, purpose="offers"), event("unsubscribed", 2))
    assert reason(engine, state, "offers", "email") is Reason.UNSUBSCRIBED
    assert reason(engine, state, "customer-marketing", "email") is Reason.UNSUBSCRIBED
    assert reason(engine, state, "offers", "sms") is Reason.CONSENT  # absent channel = email
    assert reason(engine, state, "orders", "email") is Reason.CONTRACT  # not marketing


def test_double_opt_in(engine: Engine, event: MakeEvent) -> None:
    granted = event("consent.granted", 1, purpose="newsletter")
    assert reason(engine, fold(granted), "newsletter", "email") is Reason.PENDING_CONFIRMATION
    confirmed = event("consent.confirmed", 2, purpose="newsletter")
    assert reason(engine, fold(granted, confirmed), "newsletter", "email") is Reason.CONSENT
    # An unconfirmed re-grant never revokes an earlier confirmation ...
    regrant = event("consent.granted", 3, purpose="newsletter")
    assert (
        reason(engine, fold(granted, confirmed, regrant), "newsletter", "email") is Reason.CONSENT
    )
    # ... but after a withdrawal a new grant needs a new confirmation.
    withdrawn = event("consent.withdrawn", 4, purpose="newsletter")
    regrant2 = event("consent.granted", 5, purpose="newsletter")
    state = fold(granted, confirmed, withdrawn, regrant2)
    assert reason(engine, state, "newsletter", "email") is Reason.PENDING_CONFIRMATION
    reconfirmed = event("consent.confirmed", 6, purpose="newsletter")
    assert reason(engine, state.fold(reconfirmed), "newsletter", "email") is Reason.CONSENT


def test_objection_kinds(engine: Engine, event: MakeEvent) -> None:
    dm = fold(event("objection.raised", 1, objection="direct_marketing"))
    assert reason(engine, dm, "customer-marketing", "post") is Reason.OBJECTION
    assert reason(engine, dm, "personalisation", "web") is Reason.LEGITIMATE_INTEREST
    li = fold(event("objection.raised", 1, objection="legitimate_interest"))
    assert reason(engine, li, "customer-marketing", "email") is Reason.OBJECTION
    assert reason(engine, li, "personalisation", "web") is Reason.OBJECTION
    assert reason(engine, li, "orders", "email") is Reason.CONTRACT  # contract is untouched
    profiling = fold(event("objection.raised", 1, objection="profiling"))
    assert reason(engine, profiling, "personalisation", "web") is Reason.OBJECTION
    assert reason(engine, profiling, "customer-marketing", "email") is Reason.LEGITIMATE_INTEREST


def test_privacy_signals_follow_the_policy(engine: Engine, event: MakeEvent) -> None:
    grant = event("consent.granted", 1, purpose="analytics")
    gpc = fold(grant, event("privacy.signal", 2, signal="gpc"))
    assert reason(engine, gpc, "analytics", "web") is Reason.PRIVACY_SIGNAL
    assert reason(engine, gpc, "customer-marketing", "email") is Reason.LEGITIMATE_INTEREST
    # beta does not honour DNT; acme does.
    for controller, expected in (("acme", Reason.PRIVACY_SIGNAL), ("beta", Reason.CONSENT)):
        state = fold(
            make_event("consent.granted", 1, purpose="analytics", controller=controller),
            make_event("privacy.signal", 2, signal="dnt", controller=controller),
        )
        assert reason(engine, state, "analytics", "web", controller) is expected


def test_erasure_spares_exempt_purposes(engine: Engine, event: MakeEvent) -> None:
    state = fold(event("consent.granted", 1, purpose="offers"), event("erasure.requested", 2))
    assert reason(engine, state, "offers", "email") is Reason.ERASURE
    assert reason(engine, state, "customer-marketing", "post") is Reason.ERASURE
    # orders: a contract purpose the policy exempts; bookkeeping: legal obligations by default.
    assert reason(engine, state, "orders", "post") is Reason.CONTRACT
    assert reason(engine, state, "bookkeeping", "post") is Reason.LEGAL_OBLIGATION


def test_erasure_reaches_a_contract_purpose_unless_exempt() -> None:
    text = POLICY_TOML.replace('erasure = "exempt"\n', "")
    engine = Engine(parse_policy(text, "test-policy.toml"))
    state = fold(make_event("erasure.requested", 2))
    assert reason(engine, state, "orders", "post") is Reason.ERASURE
    assert reason(engine, state, "bookkeeping", "post") is Reason.LEGAL_OBLIGATION


def test_restriction_and_lift(engine: Engine, event: MakeEvent) -> None:
    grant = event("consent.granted", 1, purpose="offers")
    request = event("restriction.requested", 2)
    lift = event("restriction.lifted", 3)
    restricted = fold(grant, request)
    assert reason(engine, restricted, "offers", "email") is Reason.RESTRICTED
    assert reason(engine, restricted, "orders", "email") is Reason.RESTRICTED
    assert reason(engine, restricted, "bookkeeping", "post") is Reason.LEGAL_OBLIGATION
    lifted = engine.decide(restricted.fold(lift), "acme", "offers", Channel.EMAIL)
    assert lifted.reason is Reason.CONSENT
    assert lifted.cause is not None and lifted.cause.event_id == lift.event_id
    # A lift older than the request does not end it.
    early_lift = event("restriction.lifted", 1, event_id="early")
    assert reason(engine, fold(grant, request, early_lift), "offers", "email") is Reason.RESTRICTED


def test_state_round_trips_through_bytes(event: MakeEvent) -> None:
    state = fold(
        event("consent.confirmed", 1, purpose="newsletter", identifiers={"email": "a@example.com"}),
        event("unsubscribed", 2),
        event("restriction.requested", 3),
    )
    assert SubjectState.from_bytes(state.to_bytes()) == state
    assert SubjectState.from_bytes(None) == EMPTY


def test_states_stored_in_version_2_still_load(engine: Engine, event: MakeEvent) -> None:
    events = (
        event(
            "consent.confirmed",
            1,
            purpose="newsletter",
            event_id="e1",
            identifiers={"email": "a@example.com"},
        ),
        event("unsubscribed", 2, event_id="e2"),
        event("restriction.requested", 3, event_id="e3"),
    )
    # As the previous version wrote it to the changelog.
    stored = (
        b'{"v":2,"slots":{"c|newsletter|*#g":[1793523660000000,0,"e1","consent.confirmed"],'
        b'"c|newsletter|*#f":[1793523660000000,0,"e1","consent.confirmed"],'
        b'"u|*|email#d":[1793523720000000,1,"e2","unsubscribed"],'
        b'"r#r":[1793523780000000,1,"e3","restriction.requested"]},'
        b'"identifiers":{"email":[1793523660000000,"a@example.com"]},"seen":["e1","e2","e3"]}'
    )
    state = SubjectState.from_bytes(stored)
    assert state == fold(*events)
    assert all(engine.apply(state, e, NOW).duplicate for e in events)
    assert SubjectState.from_bytes(state.to_bytes()) == state
    with pytest.raises(ValueError, match="version"):
        SubjectState.from_bytes(b'{"v":1}')


def test_a_state_remembers_the_last_64_events_only(event: MakeEvent) -> None:
    events = [event("unsubscribed", minute, event_id=f"id-{minute}") for minute in range(70)]
    state = SubjectState.from_bytes(fold(*events).to_bytes())
    assert [state.has_seen(e.event_id) for e in events] == [False] * 6 + [True] * 64
