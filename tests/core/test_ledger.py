"""The ledger's hash chain: valid chains verify; any edit, deletion, duplicate or swap is found."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas.events import ConsentEvent
from streams.core.engine import Engine
from streams.core.ledger import (
    GENESIS,
    Arrival,
    ChainHead,
    Effect,
    Entry,
    Personal,
    Problem,
    Record,
    Sealed,
    append,
    append_event,
    append_stored,
    personal_of,
    verify_chain,
    verify_stored,
)
from streams.core.state import EMPTY
from tests.support.core import NOW, MakeEvent
from tests.support.ledger import effects_of

from .strategies import event_sets

ARRIVAL = Arrival(topic="consent.events", partition=3, offset=41)


def chain_of(events: Sequence[ConsentEvent]) -> list[Entry]:
    head = ChainHead()
    entries = []
    for number, event in enumerate(events):
        received = event.occurred_at + timedelta(seconds=number)
        entry = append(head, Record.of(event, received_at=received, arrival=ARRIVAL))
        entries.append(entry)
        head = entry.head
    return entries


def kinds(findings: Sequence[object]) -> set[tuple[int, Problem]]:
    return {(f.sequence, f.problem) for f in findings}  # type: ignore[attr-defined]


def five(event: MakeEvent) -> list[Entry]:
    return chain_of(
        [
            event(
                "consent.granted",
                0,
                event_id="first",
                purpose="offers",
                evidence={"form": "signup"},
                identifiers={"email": "a@example.com"},
                notice_version="2026-10",
            ),
            event("consent.granted", 1, purpose="analytics", channel="web"),
            event("consent.withdrawn", 2, purpose="offers", channel="sms"),
            event("privacy.signal", 3, signal="gpc"),
            event("unsubscribed", 4),
        ]
    )


def test_a_chain_links_each_entry_to_the_one_before(event: MakeEvent) -> None:
    entries = five(event)
    assert [e.sequence for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].previous == GENESIS
    assert all(b.previous == a.digest for a, b in pairwise(entries))
    assert verify_chain(entries, head=entries[-1].head) == []


def test_entries_round_trip_through_bytes(event: MakeEvent) -> None:
    entries = five(event)
    decoded = [Entry.from_bytes(e.to_bytes()) for e in entries]
    assert decoded == entries
    assert decoded[0].record.personal == Personal({"email": "a@example.com"}, {"form": "signup"})
    assert decoded[0].record.notice_version == "2026-10"
    assert decoded[0].record.arrival == ARRIVAL
    assert verify_stored([e.to_bytes() for e in entries]) == []


def test_a_fulfilment_keeps_the_request_it_names_and_other_entries_their_bytes(
    event: MakeEvent,
) -> None:
    requested = event("access.requested", 0, event_id="ask-1")
    done = event("access.fulfilled", 1, request_id="ask-1")
    entries = chain_of([requested, done])
    decoded = [Entry.from_bytes(e.to_bytes()) for e in entries]
    assert decoded == entries and decoded[1].record.request_id == "ask-1"
    assert decoded[1].record.event() == done.model_copy(
        update={"identifiers": None, "source": None, "evidence": None}
    )
    assert verify_stored([e.to_bytes() for e in entries]) == []
    # Only an entry with a request_id stores one: the others are stored as before 1.3.
    assert b"request_id" not in entries[0].to_bytes()
    edited = replace(entries[1], record=replace(entries[1].record, request_id="ask-2"))
    assert kinds(verify_chain([entries[0], edited])) == {(2, Problem.ALTERED)}


def test_an_edited_entry_is_named(event: MakeEvent) -> None:
    entries = five(event)
    forged = replace(entries[2].record, source="someone-else")
    entries[2] = entries[2].with_record(forged)
    assert kinds(verify_chain(entries)) == {(3, Problem.ALTERED)}


def test_an_edit_with_a_recomputed_digest_breaks_the_next_link(event: MakeEvent) -> None:
    entries = five(event)
    forged = replace(entries[2].record, type="consent.granted")
    entries[2] = append(ChainHead(2, entries[1].digest), forged)
    assert kinds(verify_chain(entries)) == {(4, Problem.BROKEN_LINK)}


def test_a_gap_a_duplicate_and_a_reorder_are_told_apart(event: MakeEvent) -> None:
    entries = five(event)
    assert kinds(verify_chain([*entries[:2], *entries[3:]])) == {(3, Problem.MISSING)}
    assert kinds(verify_chain([*entries[:3], entries[2], *entries[3:]])) == {(3, Problem.DUPLICATE)}
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    assert kinds(verify_chain(swapped)) == {(2, Problem.OUT_OF_ORDER)}


def test_the_head_catches_entries_cut_from_the_end(event: MakeEvent) -> None:
    entries = five(event)
    assert verify_chain(entries[:4]) == []  # undetectable without the head...
    assert kinds(verify_chain(entries[:4], head=entries[-1].head)) == {(5, Problem.MISSING)}
    stale = ChainHead(5, "f" * 64)
    assert kinds(verify_chain(entries, head=stale)) == {(5, Problem.HEAD_MISMATCH)}


def test_an_entry_of_another_subject_is_foreign(event: MakeEvent) -> None:
    entries = five(event)
    other = chain_of([event("consent.granted", 0, purpose="offers", subject_id="someone")])
    mixed = [*entries, append(entries[-1].head, other[0].record)]
    assert kinds(verify_chain(mixed)) == {(6, Problem.FOREIGN)}


def test_undecodable_bytes_are_reported_by_position(event: MakeEvent) -> None:
    stored = [e.to_bytes() for e in five(event)]
    stored[1] = stored[1][:-3]
    found = kinds(verify_stored(stored))
    assert (1, Problem.CORRUPT) in found
    assert (2, Problem.MISSING) in found


def test_a_sealed_entry_verifies_as_stored(event: MakeEvent) -> None:
    record = replace(five(event)[0].record, personal=Sealed("v1.opaque"))
    entry = append(ChainHead(), record)
    assert Entry.from_bytes(entry.to_bytes()) == entry
    assert verify_stored([entry.to_bytes()], head=entry.head) == []


def test_effects_record_each_instruction_once_with_its_destinations(
    event: MakeEvent, engine: Engine
) -> None:
    outcome = engine.apply(EMPTY, event("consent.granted", 0, purpose="offers"), NOW)
    effects = effects_of(outcome.messages)
    assert {(e.purpose, e.channel, e.action) for e in effects} == {
        ("offers", "email", "allow"),
        ("offers", "sms", "allow"),
    }
    assert all(e.destinations == ("email", "crm") for e in effects)
    assert all(isinstance(e, Effect) and len(e.suppression_id) == 32 for e in effects)


# -- properties -----------------------------------------------------------------------------


@given(event_sets, st.sampled_from([None, "shop"]), st.booleans())
def test_appending_an_event_stores_what_appending_its_record_stores(
    engine: Engine, events: list[ConsentEvent], api_key: str | None, sealed: bool
) -> None:
    """The worker's path (no record built) and the record's give the same bytes and head."""
    head, state = ChainHead(), EMPTY
    arrival = Arrival("consent.events", 2, 7, api_key, None)
    for event in events:
        outcome = engine.apply(state, event, NOW)
        state = outcome.state
        personal = personal_of(event)
        assert personal.identifiers == (
            event.identifiers.model_dump(exclude_none=True) if event.identifiers else {}
        )
        stored_as = Sealed(f"v1.1.{event.event_id}") if sealed else personal
        hashes = {kind: "h-" + value for kind, value in personal.identifiers.items()}
        said: dict[str, Any] = {
            "received_at": NOW,
            "arrival": arrival,
            "effects": outcome.effects,
            "personal": stored_as,
            "identifier_hashes": hashes,
        }
        entry, expected = append_stored(head, Record.of(event, **said))
        assert append_event(head, event, **said) == (entry.head, expected)
        assert expected == entry.to_bytes() and Entry.from_bytes(expected) == entry
        head = entry.head


@given(event_sets)
def test_the_engine_reports_the_effects_its_messages_carry(
    engine: Engine, events: list[ConsentEvent]
) -> None:
    """The fold records ``outcome.effects``: the same as reading the messages back, for first
    deliveries and redeliveries alike."""
    state = EMPTY
    for event in events + events[:3]:  # the last three are delivered again
        outcome = engine.apply(state, event, NOW)
        assert outcome.effects == effects_of(outcome.messages)
        state = outcome.state


@given(event_sets, st.data())
def test_any_single_byte_edit_is_detected(events: list[ConsentEvent], data: st.DataObject) -> None:
    entries = chain_of(events)
    stored = [e.to_bytes() for e in entries]
    which = data.draw(st.integers(0, len(stored) - 1))
    at = data.draw(st.integers(0, len(stored[which]) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != stored[which][at]))
    edited = bytearray(stored[which])
    edited[at] = byte
    stored[which] = bytes(edited)
    assert verify_stored(stored) != []  # even without the head


@given(event_sets, st.data())
def test_any_deletion_duplication_or_swap_is_detected(
    events: list[ConsentEvent], data: st.DataObject
) -> None:
    entries = chain_of(events)
    head = entries[-1].head
    i = data.draw(st.integers(0, len(entries) - 1))
    deleted = entries[:i] + entries[i + 1 :]
    assert kinds(verify_chain(deleted, head=head)) >= {(i + 1, Problem.MISSING)}
    duplicated = [*entries[: i + 1], entries[i], *entries[i + 1 :]]
    assert kinds(verify_chain(duplicated, head=head)) == {(i + 1, Problem.DUPLICATE)}
    if len(entries) > 1:
        j = data.draw(st.integers(0, len(entries) - 1).filter(lambda j: j != i))
        swapped = list(entries)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        assert Problem.OUT_OF_ORDER in {f.problem for f in verify_chain(swapped, head=head)}


@given(event_sets)
def test_valid_chains_verify(events: list[ConsentEvent]) -> None:
    entries = chain_of(events)
    assert verify_chain(entries, head=entries[-1].head) == []
    assert verify_stored([e.to_bytes() for e in entries], head=entries[-1].head) == []


def test_the_ledger_and_proofs_stay_pure() -> None:
    probe = (
        "import sys, streams.core.ledger, streams.core.proof;"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in {'faust', 'mode', 'aiokafka', 'aiohttp', 'jwt', 'cryptography'}"
        " or m.startswith(('streams.security', 'streams.web', 'streams.pipeline')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
