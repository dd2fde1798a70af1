"""The ledger chain head is part of the subject state (format v5); older states still load."""

from __future__ import annotations

import hashlib

import orjson

from streams.core.engine import Engine
from streams.core.ledger import GENESIS, ChainHead
from streams.core.state import EMPTY, SubjectState, event_digest, head_of
from tests.support.core import NOW, MakeEvent

HEAD = ChainHead(10_000, hashlib.sha256(b"entry 10000").hexdigest())


def folded(*events: object) -> SubjectState:
    state = EMPTY
    for e in events:
        state = state.fold(e)  # type: ignore[arg-type]
    return state


def test_the_head_round_trips_with_the_state(event: MakeEvent) -> None:
    state = folded(
        event("consent.confirmed", 1, purpose="newsletter", identifiers={"email": "a@example.com"}),
        event("unsubscribed", 2),
    ).with_head(HEAD)
    stored = state.to_bytes()
    assert stored[0] == 5
    loaded = SubjectState.from_bytes(stored)
    assert loaded == state and loaded.head == HEAD
    assert head_of(stored) == HEAD
    assert loaded != state.with_head(ChainHead())  # the head is part of what is stored


def test_a_state_without_entries_has_the_genesis_head(event: MakeEvent) -> None:
    state = folded(event("unsubscribed", 1))
    assert state.head == ChainHead(0, GENESIS)
    assert state.to_bytes()[0] == 3  # no head to keep: the bytes older workers read
    assert SubjectState.from_bytes(state.to_bytes()).head == ChainHead(0, GENESIS)
    assert head_of(None) == ChainHead(0, GENESIS)


def test_folding_keeps_the_head(engine: Engine, event: MakeEvent) -> None:
    state = folded(event("unsubscribed", 1)).with_head(HEAD)
    outcome = engine.apply(state, event("restriction.requested", 2), NOW)
    assert outcome.state.head == HEAD  # the pipeline moves it when it appends
    assert engine.apply(outcome.state, event("restriction.requested", 2), NOW).duplicate


def test_states_stored_in_version_3_still_load(engine: Engine, event: MakeEvent) -> None:
    events = (
        event("consent.confirmed", 1, purpose="newsletter", event_id="e1"),
        event("unsubscribed", 2, event_id="e2", identifiers={"email": "a@example.com"}),
    )
    # As version 3 wrote it: version, count, digests, then [slots, identifiers] as JSON.
    expected = folded(*events)
    seen = event_digest("e1") + event_digest("e2")
    stored = (
        bytes([3, 2]) + seen + orjson.dumps((expected.slots, expected.identifiers), default=tuple)
    )
    state = SubjectState.from_bytes(stored)
    assert state == expected and state.head == ChainHead()
    assert head_of(stored) == ChainHead()
    assert all(engine.apply(state, e, NOW).duplicate for e in events)
    assert SubjectState.from_bytes(state.to_bytes()) == state
    chained = SubjectState.from_bytes(state.with_head(HEAD).to_bytes())
    assert chained.head == HEAD and chained.slots == state.slots
