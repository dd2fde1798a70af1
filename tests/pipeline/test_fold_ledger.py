"""The fold appends the ledger: one entry per accepted event, none for a redelivery, the head
in the state, arrival from the record and its headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streams.core.engine import Engine
from streams.core.ledger import (
    GENESIS,
    Arrival,
    ChainHead,
    Entry,
    Personal,
    Sealed,
    verify_chain,
)
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import API_KEY_HEADER, LINK_HEADER, Record, fold, route
from streams.pipeline.ledger_store import entry_key, split_key
from tests.support.ledger import effects_of

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
HOME = 3
KEY = b"hms-se/s-1"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy())


def event(n: int, type_: str = "unsubscribed", subject: str = "s-1", **fields: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e-{n}",
            "type": type_,
            "occurred_at": f"2026-11-01T09:{n:02d}:00Z",
            "controller": "hms-se",
            "subject_id": subject,
            **fields,
        }
    )


def record(value: bytes, n: int = 0, headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return Record("events", HOME, n, b"s-1", value, None, headers)


class Store:
    """What the worker stores between batches: states (with heads) and entries by key."""

    def __init__(self) -> None:
        self.states: dict[bytes, SubjectState] = {}
        self.entries: dict[bytes, bytes] = {}

    def load(self, key: bytes, partition: int) -> SubjectState:
        return self.states.get(key, EMPTY)

    def run(self, engine: Engine, records: list[Record], **options: Any) -> list[Entry]:
        folded = fold(
            route(records, engine, lambda s: HOME).fold, self.load, engine, NOW, **options
        )
        for _, key, value in folded.stored:
            self.entries[key] = value
        self.states.update({k: s for k, (_, s) in folded.states.items()})
        return [Entry.from_bytes(data) for _, _, data in folded.stored]

    def chain(self, key: bytes) -> list[Entry]:
        found = sorted((split_key(k), v) for k, v in self.entries.items())
        return [Entry.from_bytes(v) for k, v in found if k is not None and k[0] == key]


def test_every_accepted_event_appends_one_entry_and_the_state_carries_the_head(
    engine: Engine,
) -> None:
    store = Store()
    appended = store.run(
        engine,
        [
            record(event(1, "consent.granted", purpose="newsletter", channel="email"), 10),
            record(event(2, "consent.confirmed", purpose="newsletter", channel="email"), 11),
            record(event(3), 12),
        ],
    )
    assert [(e.sequence, e.record.event_id) for e in appended] == [
        (1, "e-1"),
        (2, "e-2"),
        (3, "e-3"),
    ]
    assert appended[0].previous == GENESIS
    assert store.states[KEY].head == appended[-1].head == ChainHead(3, appended[-1].digest)
    assert verify_chain(store.chain(KEY), store.states[KEY].head) == []
    # The head survives the state's storage, and the next batch continues the chain.
    store.states[KEY] = SubjectState.from_bytes(store.states[KEY].to_bytes())
    (later,) = store.run(engine, [record(event(4, "restriction.requested"), 13)])
    assert (later.sequence, later.previous) == (4, appended[-1].digest)
    assert verify_chain(store.chain(KEY), store.states[KEY].head) == []


def test_a_redelivery_appends_nothing(engine: Engine) -> None:
    store = Store()
    first = [record(event(1, "consent.granted", purpose="newsletter", channel="email"), 1)]
    store.run(engine, first)
    head = store.states[KEY].head
    again = fold(route(first * 2, engine, lambda s: HOME).fold, store.load, engine, NOW)
    assert again.stored == [] and again.duplicates == 2
    assert store.states[KEY].head == head


def test_a_batch_redelivered_after_a_crash_rewrites_the_same_entries(engine: Engine) -> None:
    """Entries acknowledged, state not stored: the redelivery appends at the same sequences
    from the stored head, so it overwrites the same keys; nothing lost, nothing doubled."""
    store = Store()
    store.run(engine, [record(event(1), 1)])
    batch = [
        record(event(2, "consent.granted", purpose="newsletter", channel="email"), 2),
        record(event(3), 3),
    ]
    crashed = fold(route(batch, engine, lambda s: HOME).fold, store.load, engine, NOW)
    for _, key, value in crashed.stored:
        store.entries[key] = value  # acknowledged; the kill comes before the states are stored
    written = set(store.entries)
    store.run(engine, batch)
    assert set(store.entries) == written
    chain = store.chain(KEY)
    assert [e.record.event_id for e in chain] == ["e-1", "e-2", "e-3"]
    assert verify_chain(chain, store.states[KEY].head) == []


def test_an_entry_records_the_statement_its_arrival_and_its_effects(engine: Engine) -> None:
    headers = ((API_KEY_HEADER, b"shop-frontend"), (LINK_HEADER, b"unsubscribe"), ("x", b"y"))
    value = event(
        1,
        "consent.granted",
        purpose="newsletter",
        channel="email",
        notice_version="2026-10",
        source="web-form",
        jurisdiction="SE",
        evidence={"form": "signup"},
        identifiers={"email": "a@example.com"},
    )
    (entry,) = Store().run(engine, [record(value, 42, headers)])
    r = entry.record
    assert (r.controller, r.subject_id, r.event_id, r.type) == (
        "hms-se",
        "s-1",
        "e-1",
        "consent.granted",
    )
    assert (r.purpose, r.channel, r.notice_version, r.source, r.jurisdiction) == (
        "newsletter",
        "email",
        "2026-10",
        "web-form",
        "SE",
    )
    assert r.received_at == NOW
    assert r.arrival == Arrival("events", HOME, 42, "shop-frontend", "unsubscribe")
    assert r.personal.identifiers == {"email": "a@example.com"}  # type: ignore[union-attr]
    assert r.personal.evidence == {"form": "signup"}  # type: ignore[union-attr]
    # A grant awaiting confirmation changes nothing yet: a withdrawal after a confirmation does.
    assert r.effects == ()
    store = Store()
    store.run(
        engine, [record(event(1, "consent.confirmed", purpose="newsletter", channel="email"))]
    )
    (withdrawal,) = store.run(
        engine, [record(event(2, "consent.withdrawn", purpose="newsletter", channel="email"), 1)]
    )
    assert {(e.purpose, e.channel, e.action) for e in withdrawal.record.effects} == {
        ("newsletter", "email", "suppress")
    }
    assert all(e.destinations for e in withdrawal.record.effects)
    plain = Store().run(engine, [record(event(1), 7)])[0]
    assert plain.record.arrival == Arrival("events", HOME, 7)


def test_the_sealer_sees_key_partition_and_personal_data_before_the_append(
    engine: Engine,
) -> None:
    calls: list[tuple[bytes, int, Personal | Sealed]] = []

    def seal(
        key: bytes, partition: int, personal: Personal | Sealed
    ) -> tuple[Personal | Sealed, dict[str, str]]:
        calls.append((key, partition, personal))
        return Sealed("ciphertext"), {"email": "hash"}

    store = Store()
    given = event(1, identifiers={"email": "a@example.com"}, evidence={"form": "signup"})
    (entry,) = store.run(engine, [record(given)], seal=seal)
    assert calls == [(KEY, HOME, Personal({"email": "a@example.com"}, {"form": "signup"}))]
    assert entry.record.personal == Sealed("ciphertext")
    assert entry.record.identifier_hashes == {"email": "hash"}
    assert entry.computed_digest() == entry.digest  # the digest covers what is stored


def test_with_the_ledger_off_nothing_is_appended_and_the_head_stays(engine: Engine) -> None:
    store = Store()
    store.run(engine, [record(event(1), 1)])
    head = store.states[KEY].head
    assert store.run(engine, [record(event(2, "restriction.requested"), 2)], ledger=False) == []
    assert store.states[KEY].head == head and store.states[KEY].has_seen("e-2")


def test_entry_keys_keep_a_subjects_entries_together_in_sequence_order() -> None:
    keys = [entry_key(b"c/s", n) for n in (1, 2, 255, 256, 10_000)]
    assert sorted(keys) == keys
    assert [split_key(k) for k in keys] == [(b"c/s", n) for n in (1, 2, 255, 256, 10_000)]
    assert split_key(b"c/s") is None
    # A subject whose id extends another's is not read as its entries.
    assert split_key(entry_key(b"c/s\x00x", 1)) == (b"c/s\x00x", 1)


def test_entries_are_stored_as_to_bytes_encodes_them_with_effects_as_effects_of(
    engine: Engine,
) -> None:
    values = [
        event(1, "consent.confirmed", purpose="newsletter", channel="email"),
        event(2, "consent.withdrawn", purpose="newsletter", channel="email"),
        event(3, "unsubscribed", identifiers={"email": "a@example.com"}),
        event(4, "restriction.requested"),
    ]
    # A header value that looks like the key the stored form is spliced at.
    headers = ((API_KEY_HEADER, b'"effects":[]'),)
    records = [record(v, n, headers) for n, v in enumerate(values)]
    admitted = route(records, engine, lambda s: HOME).fold
    folded = fold(admitted, nothing_stored, engine, NOW)
    entries = [Entry.from_bytes(data) for _, _, data in folded.stored]
    assert [data for _, _, data in folded.stored] == [e.to_bytes() for e in entries]
    assert all(e.computed_digest() == e.digest for e in entries)
    assert [k for _, k, _ in folded.stored] == [entry_key(KEY, n) for n in (1, 2, 3, 4)]
    assert entries[0].record.arrival.api_key == '"effects":[]'
    state = EMPTY
    for entry, item in zip(entries, admitted, strict=True):
        outcome = engine.apply(state, item.event, NOW)
        assert entry.record.effects == effects_of(outcome.messages)
        state = outcome.state
    assert any(entry.record.effects for entry in entries)


def nothing_stored(key: bytes, partition: int) -> SubjectState:
    return EMPTY
