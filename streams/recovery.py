"""Bulk table recovery: fetched changelog batches go straight into the store.

Faust rebuilds a table one record at a time: each changelog record becomes an ``Event`` that
crosses the consumer's drain (a ``wait_first`` per record), a queue and
``Recovery._slurp_changelogs`` (a ``wait_for(queue.get())`` and a ``need_recovery()`` Counter
rebuild per record). That caps recovery at ~5k records/s. Here the consumer hands each fetched
batch of a changelog partition that is being recovered (active, during recovery) or replicated
(standby) to :class:`BulkRecovery`, which writes it as one RocksDB write batch (records and the
persisted offset together), advances Faust's own recovery offsets, and ends recovery the way
Faust does once no active partition has anything left. Faust still decides what to recover and
from where (assignment, persisted offsets, highwaters, seeks, pauses); only the per-record path
is skipped.

Active recovery writes skip RocksDB's write-ahead log (it halves the write rate). A batch holds
its records and its offset, so a crash loses a consistent tail that the next recovery reads
again; every such database is flushed to disk before recovery ends, so no logged write (a
standby's, or the worker's own) can outlive unlogged data written before it.

Wiring: :func:`use_bulk_recovery` (one call in ``create_app``). A Consumer subclass written
elsewhere may include :class:`BulkRecoveryConsumer` itself; the call then only configures it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import rocksdict
from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables.recovery import Recovery
from faust.types import TP, AppT, CollectionT

log = logging.getLogger("consent_streams")

_UNLOGGED = rocksdict.WriteOptions()
setattr(_UNLOGGED, "disable_wal", True)  # noqa: B010 - a property; the stub says method
_LOGGED = rocksdict.WriteOptions()


class ChangelogRecord(Protocol):
    """What is read of a fetched record (aiokafka's ``ConsumerRecord``)."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes: ...  # a table's changelog record always has its key
    @property
    def value(self) -> bytes | None: ...


def write_changelog(
    store: RocksDBStore, tp: TP, records: Sequence[ChangelogRecord], *, logged: bool = True
) -> int:
    """Write ``records`` of one changelog partition and its new persisted offset in one batch.

    Later records of a key overwrite earlier ones, as they would one at a time; a record
    without a value (a tombstone) deletes the key. Returns the last offset.
    """
    batch = rocksdict.WriteBatch(raw_mode=True)
    for record in records:
        if record.value is None:
            batch.delete(record.key)
        else:
            batch.put(record.key, record.value)
    last = records[-1].offset
    # The same key and encoding as Store.set_persisted_offset, in the same atomic batch.
    batch.put(store.offset_key, str(last).encode())
    store._db_for_partition(tp.partition).write(batch, _LOGGED if logged else _UNLOGGED)
    return last


class BulkRecovery:
    """Applies fetched changelog batches of the given tables to their RocksDB stores."""

    def __init__(self, app: AppT, tables: Iterable[CollectionT]) -> None:
        self.app = app
        #: Changelog topic -> its table (a Faust Collection; its ``data`` is the store).
        self.tables: dict[str, Any] = {t.changelog_topic.get_topic_name(): t for t in tables}
        #: Changelog records written here for the current recovery (active) and in all
        #: (standby), seconds spent writing them, and when the first arrived: what the
        #: "up to date" log lines report.
        self.recovered = 0
        self.replicated = 0
        self.busy_s = 0.0
        self.first_at: float | None = None
        #: Partition databases holding writes not yet flushed from memory (no WAL).
        self._unflushed: dict[tuple[str, int], RocksDBStore] = {}

    @property
    def recovery(self) -> Recovery:
        return cast(Recovery, self.app.tables.recovery)  # type: ignore[attr-defined]

    def absorb(self, records: Mapping[TP, list[Any]]) -> Mapping[TP, list[Any]]:
        """Apply the batches this handles; returns the records left for Faust's own path."""
        if not any(tp.topic in self.tables for tp in records):
            return records
        started = time.perf_counter()
        if self.first_at is None:
            self.first_at = started
        recovery = self.recovery
        left: dict[TP, list[Any]] = {}
        active = standby = False
        for tp, batch in records.items():
            offsets = self._offsets_for(recovery, tp)
            if offsets is None or not batch:
                left[tp] = batch
                continue
            seen = offsets.get(tp)
            if seen is not None and batch[0].offset <= seen:
                batch = [r for r in batch if r.offset > seen]  # read again after a seek
                if not batch:
                    continue
            store = cast(RocksDBStore, self.tables[tp.topic].data)
            is_active = offsets is recovery.active_offsets
            if not is_active:
                self._flush(tp)  # a logged write must not land on unlogged data
            offsets[tp] = write_changelog(store, tp, batch, logged=not is_active)
            if is_active:
                self._unflushed[(tp.topic, tp.partition)] = store
            if is_active:
                self.recovered += len(batch)
            else:
                self.replicated += len(batch)
            active |= is_active
            standby |= not is_active
        self.busy_s += time.perf_counter() - started
        if active:
            self._maybe_end_recovery(recovery)
        if standby and not recovery.tables.standbys_ready:
            self._maybe_standbys_ready(recovery)
        return left

    def _maybe_standbys_ready(self, recovery: Recovery) -> None:
        # What Recovery._slurp_changelogs does after each standby record.
        if not recovery.standby_remaining_total():
            log.info(
                "table standbys: partitions up to date",
                extra={"standby_records": self.replicated},
            )
            recovery.tables.on_standbys_ready()

    def _offsets_for(self, recovery: Recovery, tp: TP) -> Any:
        """Faust's offsets this partition's records advance, or None to leave them to Faust."""
        table = self.tables.get(tp.topic)
        if table is None or not getattr(table.data, "use_rocksdict", False):
            return None
        if tp in recovery.active_tps:
            # Outside recovery an active changelog partition is paused; if Faust resumed it
            # anyway (recovery_buffer_size=1), its own path keeps the order of its buffers.
            return recovery.active_offsets if recovery.in_recovery else None
        if tp in recovery.standby_tps:
            return recovery.standby_offsets
        return None

    def _flush(self, tp: TP | None = None) -> None:
        keys = list(self._unflushed) if tp is None else [(tp.topic, tp.partition)]
        for key in keys:
            store = self._unflushed.pop(key, None)
            if store is not None:
                store._db_for_partition(key[1]).flush(True)

    def _maybe_end_recovery(self, recovery: Recovery) -> None:
        # What Recovery._slurp_changelogs does after each record, done once per fetch.
        if recovery.in_recovery and not recovery.need_recovery():
            started = time.perf_counter()
            self._flush()
            flushed_s = time.perf_counter() - started
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            log.info(
                "table recovery: active partitions up to date",
                extra={
                    "recovered_records": self.recovered,
                    "write_s": round(self.busy_s, 3),
                    "flush_s": round(flushed_s, 3),
                    "since_first_fetch_s": round(time.perf_counter() - (self.first_at or 0), 3),
                },
            )
            self.first_at, self.recovered, self.busy_s = None, 0, 0.0
            recovery.signal_recovery_end.set()


class BulkRecoveryConsumer:
    """Consumer mixin, listed before Faust's Consumer in the bases: fetched changelog batches
    of the tables given to :func:`use_bulk_recovery` skip the per-record path."""

    bulk_recovery: BulkRecovery | None = None

    async def _wait_next_records(
        self, timeout: float
    ) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
        records, active = await super()._wait_next_records(timeout)  # type: ignore[misc]
        bulk = self.bulk_recovery
        if records and bulk is not None:
            records = bulk.absorb(records)
        return records, active


def use_bulk_recovery(app: AppT, *tables: CollectionT) -> BulkRecovery:
    """Recover and replicate ``tables`` (RocksDB stores) in bulk; call before the worker starts.

    The app's consumer class gets :class:`BulkRecoveryConsumer` unless it has it already.
    """
    bulk = BulkRecovery(app, tables)
    transport: Any = app.transport
    base = transport.Consumer
    bases = (base,) if issubclass(base, BulkRecoveryConsumer) else (BulkRecoveryConsumer, base)
    # A subclass per app: the transport's instance attribute shadows its class's Consumer.
    transport.Consumer = type(
        f"BulkRecovering{base.__name__}", bases, {"bulk_recovery": bulk, "__module__": __name__}
    )
    return bulk
