"""Bulk recovery: exact store contents, Faust's bookkeeping, and the Faust internals it uses.

The shape tests fail loudly when a faust-streaming upgrade moves or renames an internal that
streams/recovery.py overrides or calls; the others drive the real RocksDB store without Kafka.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import pytest
import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from streams.recovery import (
    _UNLOGGED,
    BulkRecovery,
    BulkRecoveryConsumer,
    use_bulk_recovery,
    write_changelog,
)

TOPIC = "shape-subjects-changelog"


@dataclass(frozen=True)
class Rec:
    """The fields of aiokafka's ConsumerRecord that bulk recovery reads."""

    offset: int
    key: bytes
    value: bytes | None


@pytest.fixture
def app(tmp_path: Path) -> Iterator[faust.App]:
    app = faust.App(
        "shape",
        broker="kafka://127.0.0.1:1",
        store="rocksdb://",
        datadir=str(tmp_path),
    )
    yield app


def subjects(app: faust.App) -> Any:
    return app.Table("subjects", partitions=2, key_type=bytes, value_type=bytes)


def read(store: RocksDBStore, partition: int) -> dict[bytes, bytes]:
    db = store._db_for_partition(partition)
    return {k: v for k, v in db.items() if k != store.offset_key}


# -- the Faust internals streams/recovery.py relies on -----------------------------------------


def test_the_consumer_still_fetches_through_wait_next_records() -> None:
    method = Consumer._wait_next_records
    assert inspect.iscoroutinefunction(method)
    assert list(inspect.signature(method).parameters) == ["self", "timeout"]
    # getmany (what the drain iterates) must get its records from that method.
    assert "self._wait_next_records(timeout)" in inspect.getsource(Consumer.getmany)
    assert issubclass(driver.Consumer, Consumer)


def test_the_transport_builds_its_consumer_from_its_consumer_attribute() -> None:
    assert issubclass(driver.Transport.Consumer, Consumer)
    assert "self.Consumer(" in inspect.getsource(driver.Transport.create_consumer)


def test_recovery_keeps_the_bookkeeping_bulk_recovery_updates(app: faust.App) -> None:
    recovery = app.tables.recovery
    assert isinstance(recovery, Recovery)
    for name in ("active_tps", "standby_tps", "tp_to_table"):
        assert isinstance(getattr(recovery, name), set | dict), name
    for name in ("active_offsets", "standby_offsets", "active_highwaters"):
        assert isinstance(getattr(recovery, name), dict), name
    assert recovery.in_recovery is False
    for name in (
        "need_recovery",
        "flush_buffers",
        "_set_recovery_ended",
        "standby_remaining_total",
    ):
        assert callable(getattr(recovery, name)), name
    assert hasattr(recovery.signal_recovery_end, "set")
    assert callable(app.tables.on_standbys_ready)
    assert app.tables.standbys_ready is False
    # Recovery ends the way _slurp_changelogs ends it: these calls, in this order.
    source = inspect.getsource(Recovery._slurp_changelogs.fun)  # a mode ServiceTask
    ending = ["self.need_recovery()", "self.flush_buffers()", "self._set_recovery_ended()"]
    positions = [source.index(call) for call in ending]
    assert positions == sorted(positions)
    assert "self.signal_recovery_end.set()" in source


def test_the_store_keeps_its_offset_where_bulk_recovery_writes_it(app: faust.App) -> None:
    store = subjects(app).data
    assert isinstance(store, RocksDBStore)
    assert store.use_rocksdict
    assert store.offset_key == b"__faust\0offset__"
    tp = TP(TOPIC, 1)
    store.set_persisted_offset(tp, 41)
    assert store._db_for_partition(1)[store.offset_key] == b"41"
    assert store.persisted_offset(tp) == 41


def test_unlogged_writes_are_really_unlogged() -> None:
    assert getattr(_UNLOGGED, "disable_wal") is True  # noqa: B009 - a property at runtime
    assert isinstance(rocksdict.WriteBatch(raw_mode=True), rocksdict.WriteBatch)


def test_the_app_consumer_gets_the_mixin(app: faust.App) -> None:
    table = subjects(app)
    bulk = use_bulk_recovery(app, table)
    consumer = app.consumer
    assert isinstance(consumer, BulkRecoveryConsumer)
    assert isinstance(consumer, driver.Consumer)
    assert consumer.bulk_recovery is bulk
    assert bulk.tables == {table.changelog_topic.get_topic_name(): table}


# -- exact contents ------------------------------------------------------------------------------


def test_a_batch_keeps_the_last_value_of_each_key_and_its_offset(app: faust.App) -> None:
    store = subjects(app).data
    tp = TP(TOPIC, 0)
    records = [
        Rec(10, b"a", b"1"),
        Rec(11, b"b", b"1"),
        Rec(12, b"a", b"2"),
        Rec(13, b"c", b"1"),
        Rec(14, b"b", None),  # tombstone
        Rec(15, b"c", b"3"),
    ]
    assert write_changelog(store, tp, records, logged=False) == 15
    assert read(store, 0) == {b"a": b"2", b"c": b"3"}
    assert store.persisted_offset(tp) == 15
    assert read(store, 1) == {}


def recovering(app: faust.App, table: Any, highwater: int) -> tuple[Recovery, TP, TP]:
    recovery = app.tables.recovery
    active, standby = TP(table.changelog_topic.get_topic_name(), 0), TP("x", 0)
    standby = TP(active.topic, 1)
    recovery.add_active(table, active)
    recovery.add_standby(table, standby)
    recovery.active_highwaters[active] = highwater
    recovery.standby_highwaters[standby] = highwater
    recovery._set_recovery_started()
    return recovery, active, standby


def test_recovery_ends_when_the_last_fetch_reaches_the_highwater(app: faust.App) -> None:
    table = subjects(app)
    bulk = BulkRecovery(app, [table])
    recovery, active, _ = recovering(app, table, highwater=5)
    other = TP("consent.events", 0)
    left = bulk.absorb({active: [Rec(i, b"k%d" % (i % 2), b"v%d" % i) for i in range(3)]})
    assert left == {}
    assert recovery.active_offsets[active] == 2
    assert recovery.in_recovery and not recovery.signal_recovery_end.is_set()
    first = [Rec(i, b"k%d" % (i % 2), b"v%d" % i) for i in range(3, 6)]
    left = bulk.absorb({active: [Rec(1, b"k1", b"old"), *first], other: ["input"]})
    assert left == {other: ["input"]}  # not a changelog: Faust's own path
    assert recovery.active_offsets[active] == 5
    assert not recovery.in_recovery
    assert recovery.signal_recovery_end.is_set()
    assert read(table.data, 0) == {b"k0": b"v4", b"k1": b"v5"}  # offset 1 was read again
    assert table.data.persisted_offset(active) == 5
    assert not bulk._unflushed  # flushed before recovery ended


def test_outside_recovery_an_active_partition_is_left_to_faust(app: faust.App) -> None:
    table = subjects(app)
    bulk = BulkRecovery(app, [table])
    recovery, active, _ = recovering(app, table, highwater=5)
    recovery._set_recovery_ended()
    batch = {active: [Rec(0, b"k", b"v")]}
    assert bulk.absorb(batch) == batch
    assert read(table.data, 0) == {}


def test_standby_batches_are_written_and_standbys_declared_ready(app: faust.App) -> None:
    table = subjects(app)
    bulk = BulkRecovery(app, [table])
    recovery, active, standby = recovering(app, table, highwater=3)
    bulk.absorb({active: [Rec(0, b"a", b"unflushed")]})
    assert bulk._unflushed
    left = bulk.absorb({standby: [Rec(i, b"s", b"v%d" % i) for i in range(2)]})
    assert left == {}
    assert recovery.standby_offsets[standby] == 1
    assert not app.tables.standbys_ready
    bulk.absorb({standby: [Rec(2, b"s", b"v2"), Rec(3, b"t", b"v3")]})
    assert read(table.data, 1) == {b"s": b"v2", b"t": b"v3"}
    assert table.data.persisted_offset(standby) == 3
    assert app.tables.standbys_ready
