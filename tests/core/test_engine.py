"""Propagation: which changes produce messages, to whom, with which ids."""

from __future__ import annotations

import orjson

from schemas.events import ConsentEvent
from schemas.suppressions import SuppressionMessage
from schemas.vocabulary import Destination
from streams.core.engine import Engine, Outcome
from streams.core.state import EMPTY, SubjectState
from tests.support.core import NOW, MakeEvent


def run(
    engine: Engine, events: list[ConsentEvent], state: SubjectState = EMPTY
) -> tuple[SubjectState, list[Outcome]]:
    outcomes = []
    for e in events:
        assert engine.admit(e) == []
        outcome = engine.apply(state, e, NOW)
        outcomes.append(outcome)
        state = outcome.state
    return state, outcomes


def messages(outcome: Outcome) -> list[tuple[Destination, SuppressionMessage]]:
    return [
        (m.destination, SuppressionMessage.model_validate_json(m.value)) for m in outcome.messages
    ]


def test_grant_allows_to_every_destination_with_identifiers(
    engine: Engine, event: MakeEvent
) -> None:
    grant = event(
        "consent.granted",
        1,
        purpose="offers",
        channel="email",
        identifiers={"email": "a@example.com"},
    )
    _, [outcome] = run(engine, [grant])
    sent = messages(outcome)
    assert [d for d, _ in sent] == [Destination.EMAIL, Destination.CRM]
    message = sent[0][1]
    assert (message.action, message.purpose, message.channel, message.reason) == (
        "allow",
        "offers",
        "email",
        "consent",
    )
    assert message.identifiers.email == "a@example.com"
    assert message.caused_by_event_id == grant.event_id
    assert message.effective_at == grant.occurred_at
    assert message.legal_basis == "consent"


def test_opt_out_of_a_never_allowed_pair_still_suppresses(engine: Engine, event: MakeEvent) -> None:
    _, [outcome] = run(engine, [event("unsubscribed", 1, purpose="offers")])
    assert [(d, m.action, m.reason) for d, m in messages(outcome)] == [
        (Destination.EMAIL, "suppress", "unsubscribed"),
        (Destination.CRM, "suppress", "unsubscribed"),
    ]


def test_entering_not_allowed_says_nothing(engine: Engine, event: MakeEvent) -> None:
    _, [outcome] = run(engine, [event("consent.granted", 1, purpose="newsletter")])
    assert outcome.messages == ()  # pending confirmation


def test_leaving_allowed_for_not_allowed_suppresses(engine: Engine, event: MakeEvent) -> None:
    # Confirmed, re-granted later; a withdrawal between them arrives last: pending again.
    events = [
        event("consent.confirmed", 1, purpose="newsletter", channel="email"),
        event("consent.granted", 3, purpose="newsletter", channel="email"),
        event("consent.withdrawn", 2, purpose="newsletter", channel="email"),
    ]
    _, outcomes = run(engine, events)
    last = messages(outcomes[-1])
    assert {m.action for _, m in last} == {"suppress"}
    assert {m.reason for _, m in last} == {"pending_confirmation"}


def test_no_change_no_message(engine: Engine, event: MakeEvent) -> None:
    events = [
        event("unsubscribed", 1, purpose="offers"),
        event("consent.withdrawn", 2, purpose="offers", channel="email"),
    ]
    _, outcomes = run(engine, events)
    assert outcomes[1].messages == ()


def test_late_older_event_changes_nothing(engine: Engine, event: MakeEvent) -> None:
    events = [
        event("consent.granted", 5, purpose="offers"),
        event("consent.withdrawn", 1, purpose="offers"),
    ]
    _, outcomes = run(engine, events)
    assert outcomes[1].messages == ()


def test_redelivery_restates_with_the_same_ids(engine: Engine, event: MakeEvent) -> None:
    unsubscribe = event("unsubscribed", 1)
    state, [first] = run(engine, [unsubscribe])
    again = engine.apply(state, unsubscribe, NOW)
    assert again.duplicate and again.state == state
    assert [m.value for m in again.messages] == [m.value for m in first.messages]
    # One id per (purpose, channel, action, cause), shared by both destinations.
    ids = {orjson.loads(m.value)["suppression_id"] for m in first.messages}
    assert len(ids) == len(first.messages) // 2


def test_redelivery_of_a_superseded_event_restates_nothing(
    engine: Engine, event: MakeEvent
) -> None:
    grant = event("consent.granted", 1, purpose="offers", channel="email")
    state, _ = run(engine, [grant, event("unsubscribed", 2, purpose="offers")])
    assert engine.apply(state, grant, NOW).messages == ()


def test_a_replayed_event_restates_every_pair_it_reaches_as_decided(
    engine: Engine, event: MakeEvent
) -> None:
    # A withdrawal older than the grant changes nothing; replayed, it restates the grant's
    # allow under the grant's own id (what an earlier fold in another order may have denied).
    grant = event("consent.granted", 5, purpose="offers", channel="email")
    state, [granted] = run(engine, [grant])
    late = event("consent.withdrawn", 1, purpose="offers", channel="email")
    plain = engine.apply(state, late, NOW)
    assert plain.messages == ()
    replayed = engine.replayed(plain, late, NOW)
    assert replayed.state is plain.state and not replayed.duplicate
    assert [m.value for m in replayed.messages] == [m.value for m in granted.messages]
    assert [(e.purpose, e.channel, e.action) for e in replayed.effects] == [
        ("offers", "email", "allow")
    ]


def test_a_replayed_event_restates_not_allowed_as_suppress_and_says_nothing_twice(
    engine: Engine, event: MakeEvent
) -> None:
    pending = event("consent.granted", 1, purpose="newsletter", channel="email")
    state, [outcome] = run(engine, [pending])
    assert outcome.messages == ()  # not allowed yet: nothing said ...
    told = {(d, m.action, m.reason) for d, m in messages(engine.replayed(outcome, pending, NOW))}
    # ... but a replay may follow an earlier fold that allowed: it says suppress.
    assert told and {(a, r) for _, a, r in told} == {("suppress", "pending_confirmation")}
    unsubscribe = event("unsubscribed", 2, purpose="offers")
    _, [changed] = run(engine, [unsubscribe], state)
    again = engine.replayed(changed, unsubscribe, NOW)
    assert again.messages == changed.messages  # every pair reached was already told


def test_a_replayed_access_request_still_decides_nothing(engine: Engine, event: MakeEvent) -> None:
    request = event("access.requested", 1)
    outcome = engine.apply(EMPTY, request, NOW)
    assert engine.replayed(outcome, request, NOW) == outcome


def test_restriction_suppresses_everything_but_legal_obligations(
    engine: Engine, event: MakeEvent
) -> None:
    state, [_, outcome] = run(
        engine, [event("consent.granted", 1, purpose="offers"), event("restriction.requested", 2)]
    )
    sent = {(m.purpose, m.channel) for _, m in messages(outcome)}
    assert ("offers", "email") in sent and ("orders", "post") in sent
    assert ("bookkeeping", "post") not in sent
    _, [lifted] = run(engine, [event("restriction.lifted", 3)], state)
    assert {(m.purpose, m.action) for _, m in messages(lifted)} >= {
        ("offers", "allow"),
        ("orders", "allow"),
    }


def test_policy_admission(engine: Engine, event: MakeEvent) -> None:
    assert [e.loc for e in engine.admit(event("unsubscribed", controller="nobody"))] == [
        "controller"
    ]
    assert [e.loc for e in engine.admit(event("consent.granted", purpose="nothing"))] == ["purpose"]
    errors = engine.admit(event("consent.granted", purpose="analytics", channel="email"))
    assert [e.loc for e in errors] == ["channel"] and "web" in errors[0].msg


def test_a_late_known_address_reaches_a_deduplicating_consumer(
    engine: Engine, event: MakeEvent
) -> None:
    # A consumer that applies each suppression_id once per destination, as the README advises.
    applied: dict[tuple[Destination, str, str], SuppressionMessage] = {}
    ids: set[tuple[Destination, str]] = set()

    def consume(outcome: Outcome) -> None:
        for destination, message in messages(outcome):
            if (destination, message.suppression_id) not in ids:
                ids.add((destination, message.suppression_id))
                applied[(destination, message.purpose, message.channel)] = message

    unsubscribe = event("unsubscribed", 1)
    # Changes no decision, but brings the address.
    addressed = event("restriction.lifted", 0, identifiers={"email": "a@example.com"})
    state = EMPTY
    for e in (unsubscribe, addressed, unsubscribe, addressed):
        outcome = engine.apply(state, e, NOW)
        consume(outcome)
        state = outcome.state
    suppressed = {key: m for key, m in applied.items() if m.action == "suppress"}
    assert suppressed and all(m.identifiers.email == "a@example.com" for m in suppressed.values())
    assert all(m.caused_by_event_id == unsubscribe.event_id for m in suppressed.values())


def test_a_changed_address_is_sent_again_and_redeliveries_keep_their_ids(
    engine: Engine, event: MakeEvent
) -> None:
    unsubscribe = event("unsubscribed", 1, purpose="offers", identifiers={"email": "a@x.org"})
    state, outcomes = run(
        engine,
        [
            unsubscribe,
            event("consent.granted", 2, purpose="orders", identifiers={"email": "a@x.org"}),
            event("consent.granted", 3, purpose="orders", identifiers={"email": "b@x.org"}),
        ],
    )
    first, same_address, new_address = (messages(o) for o in outcomes)
    assert same_address == []  # the same address again is nothing new
    assert [(d, m.purpose, m.channel, m.action) for d, m in new_address] == [
        (d, m.purpose, m.channel, m.action) for d, m in first
    ]
    assert {m.identifiers.email for _, m in new_address} == {"b@x.org"}
    assert not {m.suppression_id for _, m in first} & {m.suppression_id for _, m in new_address}
    # A redelivery restates under the ids the current state implies, the same ones every time.
    again, once_more = (engine.apply(state, unsubscribe, NOW) for _ in range(2))
    assert again.duplicate and again.state == state
    assert [m.value for m in again.messages] == [m.value for m in once_more.messages]
    assert [m.suppression_id for _, m in messages(again)] == [
        m.suppression_id for _, m in new_address
    ]


def test_access_requests_and_fulfilments_decide_nothing_and_send_nothing(
    engine: Engine, event: MakeEvent
) -> None:
    withdrawn = event("unsubscribed", 1, purpose="offers", identifiers={"email": "a@example.com"})
    before, _ = run(engine, [withdrawn])
    asked = event("access.requested", 2, identifiers={"email": "new@example.com"})
    done = event("access.fulfilled", 3, request_id=asked.event_id)
    after, outcomes = run(engine, [asked, done], before)
    assert [o.messages for o in outcomes] == [(), ()]
    assert not any(o.duplicate for o in outcomes)
    # The same slots and identifiers (the new address is in the ledger, not sent on), but
    # both are remembered, so a redelivery is known.
    assert (after.slots, after.identifiers) == (before.slots, before.identifiers)
    assert after.has_seen(asked.event_id) and after.has_seen(done.event_id)
    assert engine.decide_all(after, "acme") == engine.decide_all(before, "acme")
    _, [again] = run(engine, [done], after)
    assert (again.duplicate, again.messages, again.state) == (True, (), after)
