"""The timer index without Kafka: what a batch writes to it, and what a scan finds due."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import rocksdict

from streams.core.engine import Engine
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, SubjectState
from streams.core.timers import Due, TimerPlan
from streams.pipeline.fold import Record, fold, route
from streams.pipeline.store import SubjectStore
from streams.pipeline.timers import TimerIndex, Write, decode, encode, index_key
from streams.topology import partition_of
from tests.support.core import POLICY_TOML
from tests.support.outbox import FakeBroker

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
PARTITIONS = 6


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(parse_policy(POLICY_TOML))


@pytest.fixture
def index(engine: Engine) -> TimerIndex:
    # A memory store: one mapping for every partition (Faust's memory Store keeps ``data``).
    table = SimpleNamespace(data=SimpleNamespace(data={}), partitions=PARTITIONS)
    return TimerIndex(table, TimerPlan(engine.policy, engine.plans))


def record(n: int, type_: str, subject: str = "s-1", **fields: Any) -> Record:
    value = orjson.dumps(
        {
            "event_id": f"e-{n}",
            "type": type_,
            "occurred_at": f"2026-11-01T09:{n:02d}:00Z",
            "controller": "acme",
            "subject_id": subject,
            **fields,
        }
    )
    home = partition_of(subject.encode(), PARTITIONS)
    return Record("events", home, n, subject.encode(), value)


def batch(engine: Engine, stored: dict[bytes, SubjectState], *records: Record) -> Any:
    place = lambda subject: partition_of(subject, PARTITIONS)  # noqa: E731
    routed = route(records, engine, place, now=NOW)
    return fold(routed.fold, lambda key, _: stored.get(key, EMPTY), engine, NOW)


def apply(index: TimerIndex, writes: dict[int, list[Write]]) -> None:
    index._write(0, [w for items in writes.values() for w in items], None, 0)  # type: ignore[arg-type]


def test_keys_sort_by_due_time_then_id() -> None:
    early = Due(-5, "expiry", "acme", "s", "offers", "email", "e", -5, "r")
    late = early._replace(at=10, until=10)
    assert index_key(early) < index_key(late)
    assert decode(encode(late)) == late


def test_a_batch_puts_new_items_and_deletes_those_that_no_longer_apply(
    engine: Engine, index: TimerIndex
) -> None:
    stored: dict[bytes, SubjectState] = {}
    first = batch(engine, stored, record(1, "consent.granted", purpose="offers", channel="email"))
    writes = index.stage(first, lambda key, _: stored.get(key, EMPTY))
    kinds = sorted(decode(v).kind for items in writes.values() for _, v in items if v)
    assert kinds == ["expiry", "reminder", "retention"]
    apply(index, writes)
    stored.update({k: s for k, (_, s) in first.states.items()})

    renewal = batch(engine, stored, record(2, "consent.granted", purpose="offers", channel="email"))
    writes = index.stage(renewal, lambda key, _: stored.get(key, EMPTY))
    [(partition, items)] = writes.items()
    assert partition == partition_of(b"s-1", PARTITIONS)
    assert sum(v is None for _, v in items) == 3  # the first grant's three items go
    assert sorted(decode(v).cause for _, v in items if v) == ["e-2"] * 3
    apply(index, writes)
    stored.update({k: s for k, (_, s) in renewal.states.items()})

    due = index.due(partition, datetime(2026, 11, 1, 9, 4, 59, tzinfo=UTC))
    assert [(item and item.kind, item and item.cause) for _, item in due] == [("reminder", "e-2")]
    later = index.due(partition, datetime(2026, 11, 1, 9, 7, tzinfo=UTC))
    assert [item and item.kind for _, item in later] == ["reminder", "expiry", "retention"]
    assert index.due(partition + 1, NOW) == []


def test_a_redelivered_event_writes_its_subjects_items_again(
    engine: Engine, index: TimerIndex
) -> None:
    """A kill after the state was stored and before the index was: the event comes again as a
    duplicate, and the index gets the items it lacks."""
    grant = record(1, "consent.granted", purpose="offers", channel="email")
    first = batch(engine, {}, grant)
    stored = {k: s for k, (_, s) in first.states.items()}
    again = batch(engine, stored, grant)
    assert again.duplicates == 1 and not again.states
    writes = index.stage(again, lambda key, _: stored.get(key, EMPTY))
    assert sorted(decode(v).kind for items in writes.values() for _, v in items if v) == [
        "expiry",
        "reminder",
        "retention",
    ]
    apply(index, writes)
    partition = partition_of(b"s-1", PARTITIONS)
    assert len(index.due(partition, NOW + timedelta(days=1))) == 3


def test_an_unreadable_entry_is_handed_back_for_removal(index: TimerIndex) -> None:
    item = Due(0, "expiry", "acme", "s-1", "offers", "email", "e", 0, "r")
    index.table.data.data[index_key(item)] = b'["from", "another", "version"]'
    partition = partition_of(b"s-1", PARTITIONS)
    assert index.due(partition, NOW) == [(index_key(item), None)]


def test_the_old_states_items_are_remembered_only_for_the_state_that_was_stored(
    engine: Engine, index: TimerIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose states never reached the store (the broker failed; the batch comes again)
    must not diff against what it staged: the items would never be written."""
    grant = record(1, "consent.granted", purpose="offers", channel="email")
    stored: dict[bytes, SubjectState] = {}
    index.stage(batch(engine, stored, grant), lambda key, _: stored.get(key, EMPTY))  # lost
    retried = batch(engine, stored, grant)
    writes = index.stage(retried, lambda key, _: stored.get(key, EMPTY))
    assert sorted(decode(v).kind for items in writes.values() for _, v in items if v) == [
        "expiry",
        "reminder",
        "retention",
    ]
    stored.update({k: s for k, (_, s) in retried.states.items()})
    computed: list[SubjectState] = []
    work = index.work
    monkeypatch.setattr(
        index, "work", lambda key, state: computed.append(state) or work(key, state)
    )
    renewal = batch(engine, stored, record(2, "consent.granted", purpose="offers", channel="email"))
    writes = index.stage(renewal, lambda key, _: stored.get(key, EMPTY))
    assert computed == [s for _, s in renewal.states.values()]  # the old state's: remembered
    assert sum(v is None for items in writes.values() for _, v in items) == 3


def tables(
    engine: Engine,
) -> tuple[SubjectStore, TimerIndex, dict[bytes, bytes], dict[bytes, bytes]]:
    states: dict[bytes, bytes] = {}
    items: dict[bytes, bytes] = {}

    def table(name: str, data: dict[bytes, bytes]) -> Any:
        changelog = SimpleNamespace(get_topic_name=lambda: name)
        return SimpleNamespace(
            data=SimpleNamespace(data=data), partitions=PARTITIONS, changelog_topic=changelog
        )

    index = TimerIndex(table("timers-changelog", items), TimerPlan(engine.policy, engine.plans))
    return SubjectStore(None, table("subjects-changelog", states)), index, states, items


async def test_index_writes_share_the_states_flush_and_are_stored_after_it(engine: Engine) -> None:
    store, index, states, items = tables(engine)
    folded = batch(engine, {}, record(1, "consent.granted", purpose="offers", channel="email"))
    writes = index.stage(folded, store.load)
    broker = FakeBroker()
    flush = broker.outbox()
    await index.send(writes, flush)
    assert not items  # nothing stored before the broker has it
    flushed = await store.save(folded.states, flush)
    index.store(writes, flushed)
    assert broker.waits == 1
    assert {topic for topic, *_ in broker.acked} == {"timers-changelog", "subjects-changelog"}
    assert list(states) == list(folded.states) and len(items) == 3


async def test_a_flush_without_states_still_sends_the_index_writes(engine: Engine) -> None:
    """A batch of redeliveries changes no state, and re-puts its subjects' items."""
    store, index, states, items = tables(engine)
    grant = record(1, "consent.granted", purpose="offers", channel="email")
    first = batch(engine, {}, grant)
    stored = {k: s for k, (_, s) in first.states.items()}
    again = batch(engine, stored, grant)
    writes = index.stage(again, lambda key, _: stored.get(key, EMPTY))
    broker = FakeBroker()
    flush = broker.outbox()
    await index.send(writes, flush)
    index.store(writes, await store.save(again.states, flush))
    assert broker.waits == 1 and not states and len(items) == 3


class _Rocks:
    """A RocksDB store as Faust's driver holds it: one raw database per partition."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dbs: dict[int, rocksdict.Rdict] = {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self.dbs:
            options = rocksdict.Options(raw_mode=True)
            self.dbs[partition] = rocksdict.Rdict(str(self.root / str(partition)), options)
        return self.dbs[partition]

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        pass

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()


@pytest.fixture(params=["memory", "rocksdb"])
def any_index(
    request: pytest.FixtureRequest, engine: Engine, tmp_path: Path
) -> Iterator[TimerIndex]:
    store: Any = SimpleNamespace(data={}) if request.param == "memory" else _Rocks(tmp_path)
    table = SimpleNamespace(data=store, partitions=PARTITIONS)
    yield TimerIndex(table, TimerPlan(engine.policy, engine.plans))
    if isinstance(store, _Rocks):
        store.close()


def _item(kind: str, n: int, subject: str = "s-1") -> Due:
    return Due(n, kind, "acme", subject, "offers", "email", f"e-{n}", n, "r")


def _put(item: Due) -> Write:
    return index_key(item), encode(item)


def test_the_census_reads_the_index_once_and_writes_keep_it_true(
    any_index: TimerIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scrape every few seconds must not read every entry of a large index: after the first
    census, each write adjusts the count, whatever it overwrites or fails to find."""
    index, partition = any_index, partition_of(b"s-1", PARTITIONS)
    expiry, reminder, retention = _item("expiry", 5), _item("reminder", 3), _item("retention", 9)
    index._write(partition, [_put(expiry), _put(reminder)], None, 0)  # type: ignore[arg-type]
    reads: list[int] = []
    count = index.count
    monkeypatch.setattr(index, "count", lambda p: reads.append(p) or count(p))

    def census() -> dict[str, int]:
        counts, _ = index.census(partition)
        assert {k: n for k, n in counts.items() if n} == count(partition)  # as a full read
        return counts

    assert census() == {"expiry": 1, "reminder": 1} and reads == [partition]
    unreadable = index_key(_item("expiry", 7))
    for writes in (
        [_put(retention)],  # new
        [_put(expiry)],  # again, as a redelivered batch puts it: not counted twice
        [(index_key(reminder), None)],  # gone
        [(index_key(reminder), None)],  # gone already: nothing to take away
        [(unreadable, b'["from", "another", "version"]')],
        [(unreadable, None), _put(_item("lapse", 8)), (index_key(_item("lapse", 8)), None)],
    ):
        index._write(partition, writes, None, 0)  # type: ignore[arg-type]
        census()
    assert {k: n for k, n in census().items() if n} == {"expiry": 1, "retention": 1}
    assert index.census(partition)[1] == 5  # the earliest due time: the expiry's
    assert reads == [partition]  # counted once
    index.forget_counts()  # partitions moved: recovery may have written below the index
    census()
    assert reads == [partition, partition]
