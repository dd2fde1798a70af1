"""The HTTP API's view of this worker (:class:`streams.web.backend.Backend`) over the Faust app.

Ownership comes from Faust's assignor and table metadata, state from the subjects table,
publishing from the app's producer, metrics from the pipeline's counters and the consumer.
Implements the protocol structurally: the pipeline does not import the web layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from yarl import URL

from streams.core.clocks import Clock, Summary
from streams.core.ledger import CorruptEntry, Entry, LedgerView, Record
from streams.core.state import head_of
from streams.pipeline.clocks import ClockBook
from streams.pipeline.ledger_store import LedgerStore
from streams.pipeline.rewrap import Rewrapper, rewrap_metrics
from streams.pipeline.stats import PREFIX, batch_metrics, counter, histogram
from streams.pipeline.store import scan_stored
from streams.pipeline.timers import Ticker, timer_metrics
from streams.storage import SharedMemory
from streams.topology import TopicNames, partition_key, partition_of

#: Kafka record headers as (name, value) pairs (the web layer's ``Headers``, structurally).
Headers = tuple[tuple[str, bytes], ...]


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


#: (state key, stored record) -> the record to show (personal data opened, say)
Opener = Callable[[bytes, Record], Record]


def as_stored(key: bytes, record: Record) -> Record:
    """The default opener: the record as stored."""
    return record


class FaustBackend:
    def __init__(
        self,
        app: Any,
        table: Any,
        counters: Any,
        topics: TopicNames,
        clocks: ClockBook | None = None,
        ledger: LedgerStore | None = None,
        opener: Opener = as_stored,
        ticker: Ticker | None = None,
        rewrap: Rewrapper | None = None,
        memory: SharedMemory | None = None,
    ) -> None:
        self.app = app  # faust.App
        self.table = table  # faust Table[bytes, bytes]
        self.counters = counters  # streams.app.Counters
        self.topics = topics
        self.clocks = clocks
        self.ledger_store = ledger
        self.opener = opener
        self.ticker = ticker  # None: timers off
        self.rewrap = rewrap
        self.memory = memory  # None: the tables are not in RocksDB

    @property
    def _changelog(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def settled(self) -> bool:
        app = self.app
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return False
        return bool(app.tables.actives_ready)

    def ready(self) -> bool:
        consumer = self.app.consumer
        return bool(consumer and consumer.assignment()) and self.settled()

    def partition_of(self, key: bytes) -> int:
        # A state lives on its subject id's partition, where the subject's keyed events arrive.
        return partition_of(partition_key(key), int(self.table.partitions))

    def partition_count(self) -> int:
        return int(self.table.partitions)

    def active_partitions(self) -> list[int]:
        topic = self._changelog
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic
        )

    def owner_of(self, partition: int) -> str | None:
        me = _ident(URL(str(self.app.conf.canonical_url)))
        topic = self._changelog
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            if partition in topics.get(topic, ()) and _ident(URL(str(url))) != me:
                return str(url)
        return None

    def state(self, key: bytes) -> bytes | None:
        value: bytes | None = self.table.get(key)
        return value

    def scan_states(
        self, partition: int, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        start = prefix if after is None or after < prefix else after
        for key, value in scan_stored(self.table, partition, start):
            if key == after:
                continue
            if not key.startswith(prefix):
                return
            yield key, value

    def open_clocks(self, partition: int) -> Iterable[Clock]:
        return () if self.clocks is None else self.clocks.open_clocks(partition)

    def clock_summaries(self, partition: int) -> Iterable[tuple[str, str, Summary]]:
        return () if self.clocks is None else self.clocks.summaries(partition)

    def ledger(self, key: bytes) -> LedgerView:
        """The stored entries of ``key`` in sequence order, their records opened, and the head
        kept with its state. Undecodable entries are left out (``ledger verify`` names them)."""
        store = self.ledger_store
        if store is None:
            return LedgerView()
        entries: list[Entry] = []
        for data in store.read(key, self.partition_of(key)):
            try:
                entries.append(Entry.from_bytes(data))
            except CorruptEntry:
                continue
        head = head_of(self.state(key))
        return LedgerView(
            entries=tuple(entries),
            records=tuple(self.opener(key, entry.record) for entry in entries),
            head=head if head.sequence else None,
        )

    async def publish(self, records: Sequence[tuple[bytes, bytes, Headers]]) -> None:
        producer = self.app.producer
        topic = self.topics.events
        pending = [
            await producer.send(topic, k, v, None, None, list(headers)) for k, v, headers in records
        ]
        await asyncio.gather(*pending)

    def consumer_lag(self) -> Iterator[tuple[str, int, int]]:
        """(topic, partition, records not yet committed) for the owned input partitions."""
        consumer = self.app.consumer
        if not consumer:
            return
        sources = {self.topics.events, self.topics.by_subject}
        monitor = self.app.monitor
        for tp in sorted(consumer.assignment()):
            if tp.topic not in sources:
                continue
            end = consumer.highwater(tp)
            done = monitor.tp_committed_offsets.get(tp)
            if done is None and tp in monitor.tp_read_offsets:
                done = monitor.tp_read_offsets[tp] + 1
            if end is not None and done is not None:
                yield tp.topic, tp.partition, max(int(end) - int(done), 0)

    def metrics(self) -> Iterator[Metric]:
        counters = self.counters
        stats = counters.events
        yield counter(
            "events_processed",
            "Events folded into subject state (redeliveries included), by event type.",
            dict(sorted(stats.processed.items())),
            "type",
        )
        yield counter(
            "events_rejected",
            "Records sent to the dead-letter topic, by the event type they name (unknown if none).",
            dict(sorted(stats.rejected.items())),
            "type",
        )
        yield counter(
            "events_duplicate",
            "Redelivered events recognised by their event id.",
            counters.duplicates,
        )
        yield counter(
            "suppressions_emitted",
            "Suppress/allow messages sent, by destination.",
            {d.value: n for d, n in counters.emitted.items()},
            "destination",
        )
        yield histogram(
            "processing_latency_seconds",
            "From an input record's Kafka timestamp to the end of its processing.",
            stats.latency,
        )
        yield from batch_metrics(counters.batches)
        lag = GaugeMetricFamily(
            PREFIX + "consumer_lag",
            "Records in an owned input partition not yet processed and committed.",
            labels=["topic", "partition"],
        )
        for topic, partition, behind in self.consumer_lag():
            lag.add_metric([topic, str(partition)], behind)
        yield lag
        if self.memory is not None:
            rocksdb = GaugeMetricFamily(
                PREFIX + "rocksdb_memory_bytes",
                "Memory RocksDB holds for all the worker's tables, by part: memtables (written, "
                "not yet flushed) and the shared block cache (read); both fill up to a budget.",
                labels=["part"],
            )
            rocksdb.add_metric(["memtables"], self.memory.memtable_usage)
            rocksdb.add_metric(["block_cache"], self.memory.block_cache_usage)
            yield rocksdb
        # Open clocks, the timer index and key rotation are read only while no partition is
        # moving (the tables are co-partitioned: the same partitions).
        if self.clocks is None and self.ticker is None and self.rewrap is None:
            return
        owned = self.active_partitions() if self.settled() else None  # None: moving
        if self.rewrap is not None:
            yield from rewrap_metrics(self.rewrap, owned)
        if self.clocks is not None:
            yield from self.clocks.metrics(owned or [], datetime.now(UTC))
        if self.ticker is not None:
            yield from timer_metrics(self.ticker, owned or [], self.ticker.clock())
