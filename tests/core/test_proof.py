"""Proof as of a time: the decision from the ledger's statements made by then, and its basis."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, Reason
from streams.core.engine import Engine
from streams.core.ledger import Arrival, ChainHead, Entry, Record, Sealed, append
from streams.core.proof import prove
from streams.core.state import EMPTY
from tests.support.core import T0, MakeEvent

from .strategies import PURPOSES, event_sets
from .test_ledger import chain_of


def test_the_decision_at_a_time_comes_with_the_statement_that_made_it(
    event: MakeEvent, engine: Engine
) -> None:
    entries = chain_of(
        [
            event("consent.granted", 0, event_id="grant", purpose="offers"),
            event("consent.withdrawn", 10, event_id="withdraw", purpose="offers"),
            event("consent.granted", 0, event_id="other", purpose="analytics"),
        ]
    )
    plan = engine.plans["acme"].by_pair[("offers", Channel.EMAIL)]

    before = prove(entries, plan, T0 - timedelta(minutes=1))
    assert before.decision.reason is Reason.NO_CONSENT
    assert before.cause is None and before.basis == ()

    during = prove(entries, plan, T0 + timedelta(minutes=5))
    assert during.decision.reason is Reason.CONSENT
    assert during.cause is entries[0]
    assert during.basis == (entries[0],)  # the analytics grant is no part of this proof

    after = prove(entries, plan, T0 + timedelta(minutes=10))
    assert after.decision.reason is Reason.CONSENT_WITHDRAWN
    assert after.cause is entries[1]
    assert after.basis == (entries[0], entries[1])


def test_known_at_leaves_out_what_arrived_later(event: MakeEvent, engine: Engine) -> None:
    grant = event("consent.granted", 0, purpose="offers")
    late = event("consent.withdrawn", 5, purpose="offers")
    head = ChainHead()
    entries: list[Entry] = []
    for evt, received in ((grant, 1), (late, 60)):
        record = Record.of(evt, received_at=T0 + timedelta(minutes=received), arrival=Arrival())
        entries.append(append(head, record))
        head = entries[-1].head
    plan = engine.plans["acme"].by_pair[("offers", Channel.SMS)]
    then = T0 + timedelta(minutes=30)
    assert prove(entries, plan, then).decision.reason is Reason.CONSENT_WITHDRAWN
    as_known = prove(entries, plan, then, known_at=then)
    assert as_known.decision.reason is Reason.CONSENT
    assert as_known.known_at == then


def test_a_confirmation_supersedes_the_grant_it_confirms(event: MakeEvent, engine: Engine) -> None:
    entries = chain_of(
        [
            event("consent.granted", 0, purpose="newsletter", channel="email"),
            event("consent.confirmed", 3, purpose="newsletter", channel="email"),
        ]
    )
    plan = engine.plans["acme"].by_pair[("newsletter", Channel.EMAIL)]
    assert prove(entries, plan, T0 + timedelta(minutes=1)).decision.reason is (
        Reason.PENDING_CONFIRMATION
    )
    confirmed = prove(entries, plan, T0 + timedelta(minutes=3))
    assert confirmed.decision.reason is Reason.CONSENT
    # A confirmation is also a grant: the later statement is the one in force in both slots.
    assert confirmed.basis == (entries[1],)


def test_a_proof_needs_no_personal_data(event: MakeEvent, engine: Engine) -> None:
    entries = chain_of(
        [event("consent.granted", 0, purpose="offers", identifiers={"email": "a@example.com"})]
    )
    shredded = [e.with_record(replace(e.record, personal=Sealed("gone"))) for e in entries]
    plan = engine.plans["acme"].by_pair[("offers", Channel.EMAIL)]
    proof = prove(shredded, plan, T0)
    assert proof.decision.reason is Reason.CONSENT
    assert proof.cause is shredded[0]


@given(event_sets, st.integers(-1, 7), st.data())
def test_a_proof_agrees_with_the_engine_on_the_statements_made_by_then(
    events: list[ConsentEvent], minute: int, data: st.DataObject
) -> None:
    from streams.core.policy import parse_policy
    from tests.support.core import POLICY_TOML

    engine = Engine(parse_policy(POLICY_TOML, "test-policy.toml"))
    purpose = data.draw(st.sampled_from(sorted(PURPOSES)))
    channel = Channel(data.draw(st.sampled_from(PURPOSES[purpose])))
    when = T0 + timedelta(minutes=minute)
    state = EMPTY
    for e in events:
        if e.occurred_at <= when:
            state = state.fold(e)
    expected = engine.decide(state, "acme", purpose, channel)
    proof = prove(chain_of(events), engine.plans["acme"].by_pair[(purpose, channel)], when)
    assert proof.decision == expected
    assert all(entry.record.occurred_at <= when for entry in proof.basis)
    if expected.cause is not None:
        assert proof.cause is not None
        assert proof.cause.record.event_id == expected.cause.event_id
        assert proof.cause in proof.basis
