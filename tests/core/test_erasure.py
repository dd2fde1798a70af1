"""Erasure: ``erase`` to every destination of each pair it reaches, then the decision."""

from __future__ import annotations

from collections import defaultdict

from schemas.events import ConsentEvent
from schemas.suppressions import SuppressionMessage
from schemas.vocabulary import Destination
from streams.core.engine import Engine, Outcome
from streams.core.propagation import suppression_id
from streams.core.state import EMPTY, SubjectState
from tests.support.core import NOW, MakeEvent

from .test_engine import messages, run

#: (purpose, channel) of the test policy that erasure reaches; orders (contract, exempt in the
#: policy) and bookkeeping (legal obligation, exempt by default) are left alone.
ERASABLE = {
    ("newsletter", "email"),
    ("newsletter", "sms"),
    ("offers", "email"),
    ("offers", "sms"),
    ("customer-marketing", "email"),
    ("customer-marketing", "post"),
    ("personalisation", "web"),
    ("analytics", "web"),
}

Sequence = dict[tuple[Destination, str, str], list[SuppressionMessage]]


def per_pair(outcome: Outcome) -> Sequence:
    """The messages of one outcome per (destination, purpose, channel), in order."""
    found: Sequence = defaultdict(list)
    for destination, message in messages(outcome):
        found[(destination, message.purpose, message.channel)].append(message)
    return found


def erase_then(outcome: Outcome) -> dict[tuple[Destination, str, str], tuple[str, ...]]:
    return {key: tuple(m.action for m in sent) for key, sent in per_pair(outcome).items()}


def test_erasure_erases_then_suppresses_every_pair_it_reaches(
    engine: Engine, event: MakeEvent
) -> None:
    erasure = event("erasure.requested", 2, identifiers={"email": "a@example.com"})
    _, [outcome] = run(engine, [erasure])
    assert outcome.shred and not outcome.duplicate
    sequences = erase_then(outcome)
    assert {(purpose, channel) for _, purpose, channel in sequences} == ERASABLE
    assert set(sequences.values()) == {("erase", "suppress")}
    # Every destination of each pair: offers goes to email and crm.
    assert {d for d, p, c in sequences if (p, c) == ("offers", "email")} == {
        Destination.EMAIL,
        Destination.CRM,
    }
    for (_, purpose, channel), (erase, suppress) in per_pair(outcome).items():
        assert (erase.reason, suppress.reason) == ("erasure", "erasure")
        assert erase.caused_by_event_id == suppress.caused_by_event_id == erasure.event_id
        assert erase.effective_at == erasure.occurred_at
        assert erase.identifiers.email == "a@example.com"  # so the data can be found
        assert erase.suppression_id == suppression_id(
            "acme",
            "subject-1",
            purpose,
            channel,
            "erase",
            erasure.event_id,
            {"email": "a@example.com"},
        )
        assert erase.suppression_id != suppress.suppression_id


def test_exempt_purposes_keep_their_decisions_and_hear_nothing(
    engine: Engine, event: MakeEvent
) -> None:
    state, [_, outcome] = run(
        engine, [event("consent.granted", 1, purpose="orders"), event("erasure.requested", 2)]
    )
    sent = {(m.purpose, m.channel) for _, m in messages(outcome)}
    assert not sent & {("orders", "email"), ("orders", "post"), ("bookkeeping", "post")}
    assert [d.reason.value for d in engine.decide_all(state, "acme") if not d.purpose.erasable] == [
        "consent",
        "consent",
        "legal_obligation",
    ]


def test_an_exempt_suppressed_pair_learns_a_new_address_but_is_not_erased(
    engine: Engine, event: MakeEvent
) -> None:
    unsubscribe = event("unsubscribed", 1, purpose="orders", channel="email")
    erasure = event("erasure.requested", 2, identifiers={"email": "a@example.com"})
    _, [_, outcome] = run(engine, [unsubscribe, erasure])
    sequences = erase_then(outcome)
    assert sequences[(Destination.CRM, "orders", "email")] == ("suppress",)
    assert (Destination.CRM, "orders", "post") not in sequences
    assert all(
        sent == ("erase", "suppress") for sent in sequences.values() if sent != ("suppress",)
    )


def test_redelivery_says_it_all_again_with_the_same_ids(engine: Engine, event: MakeEvent) -> None:
    erasure = event("erasure.requested", 2, identifiers={"email": "a@example.com"})
    state, [_, first] = run(engine, [event("consent.granted", 1, purpose="offers"), erasure])
    again = engine.apply(state, erasure, NOW)
    assert again.duplicate and again.shred and again.state == state
    assert [m.value for m in again.messages] == [m.value for m in first.messages]
    assert [m.destination for m in again.messages] == [m.destination for m in first.messages]


def test_a_later_consent_is_restated_after_the_erase(engine: Engine, event: MakeEvent) -> None:
    # The person consents again after asking for erasure; the erasure arrives last.
    grant = event("consent.granted", 3, purpose="offers", channel="email")
    _, [granted, outcome] = run(engine, [grant, event("erasure.requested", 2)])
    allow_ids = {m.suppression_id for _, m in messages(granted)}
    sequences = per_pair(outcome)
    for destination in (Destination.EMAIL, Destination.CRM):
        erase, allow = sequences[(destination, "offers", "email")]
        assert (erase.action, allow.action) == ("erase", "allow")
        assert allow.caused_by_event_id == grant.event_id and allow.suppression_id in allow_ids
    assert [m.action for m in sequences[(Destination.EMAIL, "offers", "sms")]] == [
        "erase",
        "suppress",
    ]


def test_a_pair_already_suppressed_by_a_later_opt_out_is_erased_and_still_suppressed(
    engine: Engine, event: MakeEvent
) -> None:
    unsubscribe = event("unsubscribed", 3, purpose="offers", channel="email")
    _, [opted_out, outcome] = run(engine, [unsubscribe, event("erasure.requested", 2)])
    suppress_ids = {m.suppression_id for _, m in messages(opted_out)}
    erase, suppress = per_pair(outcome)[(Destination.EMAIL, "offers", "email")]
    assert (erase.action, suppress.action, suppress.reason) == ("erase", "suppress", "unsubscribed")
    assert suppress.suppression_id in suppress_ids  # the same instruction as before, same id


def test_each_erasure_request_erases_under_its_own_ids(engine: Engine, event: MakeEvent) -> None:
    later, earlier = event("erasure.requested", 5), event("erasure.requested", 2)
    _, [first, second] = run(engine, [later, earlier])
    assert second.shred and not second.duplicate
    erased = [(d, m) for d, m in messages(second) if m.action == "erase"]
    assert {(m.purpose, m.channel) for _, m in erased} == ERASABLE
    assert {m.caused_by_event_id for _, m in erased} == {earlier.event_id}
    # The decision still rests on the later request: restated under the id sent before.
    sent_before = {m.suppression_id for _, m in messages(first) if m.action == "suppress"}
    restated = [m for _, m in messages(second) if m.action == "suppress"]
    assert {m.caused_by_event_id for m in restated} == {later.event_id}
    assert {m.suppression_id for m in restated} == sent_before


def test_only_erasure_shreds(engine: Engine, event: MakeEvent) -> None:
    events: list[ConsentEvent] = [
        event("consent.granted", 1, purpose="offers"),
        event("unsubscribed", 2),
        event("restriction.requested", 3),
        event("restriction.lifted", 4),
    ]
    state: SubjectState = EMPTY
    for e in events + events:
        outcome = engine.apply(state, e, NOW)
        assert not outcome.shred
        state = outcome.state
