"""The Faust application: topics, the subject table and the batch pipeline, wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from faust.types import StreamT

from schemas.vocabulary import Destination
from streams.core.engine import Engine
from streams.core.policy import Policy
from streams.core.timers import TimerPlan, fingerprint
from streams.pipeline.batches import BatchPipeline, wall_clock
from streams.pipeline.clocks import CLOCKS_TABLE, ClockBook
from streams.pipeline.consumer import Batches, BatchHandler, BatchTransport
from streams.pipeline.ledger_store import LEDGER_TABLE, LEDGER_TOPIC_CONFIG, LedgerStore
from streams.pipeline.personal import COMPACTION_CONFIGS, KEYS_TABLE, KeysTable, SubjectKeys
from streams.pipeline.replay import ReplayWindow
from streams.pipeline.rewrap import Rewrapper
from streams.pipeline.sending import KeyHashes, Producer
from streams.pipeline.stats import BatchStats, EventStats
from streams.pipeline.store import SubjectStore
from streams.pipeline.timers import TIMERS_TABLE, Reindexer, Ticker, TimerIndex
from streams.recovery import use_bulk_recovery
from streams.settings import Settings
from streams.storage import SharedMemory, share_memory
from streams.topology import (
    DEADLETTER_MAX_BYTES,
    DEFAULT_PARTITIONS,
    SUBJECTS_TABLE,
    TopicNames,
    partition_key,
    partition_of,
)
from streams.transport import broker_url

RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}


@dataclass
class Counters:
    """Running totals for /metrics (read by streams/pipeline/web_backend.py)."""

    duplicates: int = 0
    emitted: dict[Destination, int] = field(default_factory=lambda: dict.fromkeys(Destination, 0))
    events: EventStats = field(default_factory=EventStats)  # per type, latency (for /metrics)
    batches: BatchStats = field(default_factory=BatchStats)  # records and step times per batch


@dataclass
class ConsentStreams:
    """Everything a worker runs; built by :func:`create_app`."""

    app: faust.App
    engine: Engine
    subjects: Any  # faust Table[bytes, bytes]
    counters: Counters
    keys: SubjectKeys  # seals and opens personal data (the ledger's sealer and opener)
    ledger: LedgerStore  # declared even when CONSENT_LEDGER=false: its topic stays known
    pipeline: BatchPipeline
    ticker: Ticker | None = None  # None: timers off, or a policy without clocks
    rewrap: Rewrapper | None = None  # data keys under the newest KEK, once per assignment
    deadlines: ClockBook | None = None  # legal deadline clocks (streams/pipeline/clocks.py)
    memory: SharedMemory | None = None  # RocksDB's shared budget (None: stores in memory)


def create_app(
    settings: Settings,
    policy: Policy,
    *,
    bootstrap: str,
    store: str = "rocksdb://",
    partitions: int = DEFAULT_PARTITIONS,
    clock: Callable[[], datetime] = wall_clock,
) -> ConsentStreams:
    """The worker's app; ``clock`` is its time source (timers, emitted_at, the future-skew
    check), injectable for tests."""
    app = faust.App(
        settings.app_id,
        broker=broker_url(bootstrap, settings.fetch_wait_ms),  # streams/transport.py
        store=store,
        datadir=str(settings.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 6),
        producer_max_batch_size=settings.producer_max_batch_size,
        producer_linger=0.01,
        producer_max_request_size=DEADLETTER_MAX_BYTES,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        canonical_url=settings.advertised_url,  # how other workers reach this one (routed reads)
        # Faust's own browsing endpoints would reveal table contents: keep them off.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        # Records per fetch, so per batch: more amortise the two broker round trips a batch
        # waits for (outputs, then changelog); fewer keep the event loop responsive.
        broker_max_poll_records=settings.batch_max,
    )
    keyring, hasher = settings.personal_keys()  # the CLI checked them before starting
    engine = Engine(policy)
    counters = Counters()
    names = TopicNames.of(settings)
    # Keyed input folds on its own partition; keyless records come back once through
    # by_subject, keyed by subject id and co-partitioned with the input and the table.
    events_topic = app.topic(names.events, **RAW)
    by_subject = app.topic(names.by_subject, partitions=partitions, internal=True, **RAW)
    # key_type/value_type bytes select the raw serializer for the store and the changelog.
    subjects = app.Table(
        SUBJECTS_TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs=COMPACTION_CONFIGS,  # erased identifiers leave old values in time
    )
    keys_table = app.Table(
        KEYS_TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs=COMPACTION_CONFIGS,  # destroyed keys leave old values in time
    )
    states = SubjectStore(app, subjects, cache_max=settings.state_cache)
    # Deadline clocks, co-partitioned with the subjects (streams/pipeline/clocks.py).
    deadline_table = app.Table(
        CLOCKS_TABLE, partitions=partitions, key_type=bytes, value_type=bytes
    )
    deadlines = ClockBook(policy, deadline_table)
    # One entry per accepted event, on its subject's partition (co-partitioned with subjects).
    ledger_table = app.Table(
        LEDGER_TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        extra_topic_configs=LEDGER_TOPIC_CONFIG,
    )
    ledger = LedgerStore(ledger_table)
    hashes = KeyHashes()
    stored_keys = KeysTable(keys_table)
    keys = SubjectKeys(
        keyring,
        hasher,
        stored_keys.get,
        lambda key: partition_of(partition_key(key), partitions),
        cache_max=settings.state_cache,
    )
    clocks = TimerPlan(policy, engine.plans)
    running = settings.timers and clocks.any()
    # Due work per partition, beside the states it follows from (streams/pipeline/timers.py).
    # Declared with the timers off too: the index then says so, and is rebuilt when they are
    # turned on again (the states folded meanwhile were not indexed).
    table = app.Table(TIMERS_TABLE, partitions=partitions, key_type=bytes, value_type=bytes)
    index = TimerIndex(table, clocks, memo_max=settings.state_cache)
    # One batch, or one step of an index rebuild, at a time.
    gate = asyncio.Lock()
    window = ReplayWindow(stored_keys)
    pipeline = BatchPipeline(
        app,
        engine,
        states,
        counters,
        names,
        partitions,
        hashes,
        keys=keys,
        keys_table=stored_keys,
        timers=index if running else None,
        clock=clock,
        deadlines=deadlines,
        ledger=ledger if settings.ledger else None,
        seal=keys.seal_personal,  # personal data sealed under the subject's data key, then appended
        window=window,  # what an earlier owner may have folded restates its decisions
    )

    def producer() -> Producer:
        return pipeline.producer  # Faust starts its producer after the app is built

    reindex = Reindexer(index, states, fingerprint(policy, running), gate, producer)
    # Data keys move to the newest KEK once per assignment (streams/pipeline/rewrap.py).
    rewrap = Rewrapper(keys, stored_keys, gate, producer)
    ticker = Ticker(
        app, index, states, names, producer, clock, reindex=reindex, rewrap=rewrap, firing=running
    )
    app.timer(interval=settings.timer_interval, name="timers")(ticker.tick)

    async def serialised(batches: Batches) -> None:
        async with gate:
            await ticker.before_batch()  # a new assignment's index, looked at first
            await pipeline(batches)

    transport = BatchTransport(app.conf.broker_consumer, app)
    transport.batch_handler = BatchHandler(pipeline.topics, serialised)
    app.transport = transport
    stored = (subjects, keys_table, deadline_table, ledger_table, table)
    memory = SharedMemory()
    shared = share_memory(stored, memory)  # RocksDB's sizes and one memory budget
    use_bulk_recovery(app, *stored)  # changelog batches straight into the stores

    async def unreachable(stream: StreamT[bytes]) -> AsyncIterator[None]:
        """Declares the topic (subscription, assignment, commits); records go to the batches."""
        async for _ in stream:
            raise RuntimeError("a record bypassed the batch handler")
            yield None

    app.agent(events_topic, name="intake", concurrency=1)(unreachable)
    app.agent(by_subject, name="fold-repartitioned", concurrency=1)(unreachable)

    async def forget(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        states.forget()  # a revoked partition may come back changed by another worker
        keys.forget()
        window.forget()
        ticker.revoked()

    app.on_partitions_revoked.connect(forget)

    streams = ConsentStreams(
        app=app,
        engine=engine,
        subjects=subjects,
        counters=counters,
        keys=keys,
        ledger=ledger,
        pipeline=pipeline,
        ticker=ticker if running else None,
        rewrap=rewrap,
        deadlines=deadlines,
        memory=memory if shared else None,
    )
    return streams
