"""The Faust application: topics, the subject table and the agents, wired to the pure engine."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import EventT, StreamT

from schemas.codec import RejectedRecord, dead_letter_record, decode_event
from schemas.deadletter import FieldError
from schemas.vocabulary import Destination
from streams.core.engine import Engine, subject_key
from streams.core.policy import Policy
from streams.core.state import SubjectState
from streams.recovery import ROCKSDB_OPTIONS, use_bulk_recovery
from streams.settings import Settings
from streams.topology import DEADLETTER_MAX_BYTES, DEFAULT_PARTITIONS, SUBJECTS_TABLE, Topology
from streams.transport import broker_url
from streams.web import register_web
from streams.web.metrics import EventStats

log = logging.getLogger("consent_streams")

RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}

#: Events per batch, and how long a batch waits to fill: throughput vs added latency.
BATCH_MAX = 500
BATCH_WINDOW = 0.01


@dataclass
class Counters:
    """Running totals for health, metrics and the demo summary."""

    accepted: int = 0
    rejected: int = 0
    folded: int = 0
    duplicates: int = 0
    emitted: dict[Destination, int] = field(default_factory=lambda: dict.fromkeys(Destination, 0))
    events: EventStats = field(default_factory=EventStats)  # per type, latency (for /metrics)


@dataclass
class ConsentStreams:
    """Everything a worker runs; built by :func:`create_app`."""

    app: faust.App
    engine: Engine
    subjects: Any  # faust Table[bytes, bytes]
    counters: Counters


def create_app(
    settings: Settings,
    policy: Policy,
    *,
    bootstrap: str,
    store: str = "rocksdb://",
    partitions: int = DEFAULT_PARTITIONS,
) -> ConsentStreams:
    app = faust.App(
        settings.app_id,
        broker=broker_url(bootstrap, settings.fetch_wait_ms),  # streams/transport.py
        store=store,
        rocksdb_options=ROCKSDB_OPTIONS,  # bounded memory (see streams/recovery.py)
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
    )
    engine = Engine(policy)
    counters = Counters()
    names = Topology.of(settings)
    events_topic = app.topic(names.events, **RAW)
    by_subject = app.topic(names.by_subject, partitions=partitions, internal=True, **RAW)
    deadletter = app.topic(names.deadletter, **RAW)
    # key_type/value_type bytes select the raw serializer for the store and the changelog.
    subjects = app.Table(SUBJECTS_TABLE, partitions=partitions, key_type=bytes, value_type=bytes)
    use_bulk_recovery(app, subjects)  # changelog batches straight into the store

    async def reject(event: EventT[bytes], errors: list[FieldError]) -> None:
        message = event.message
        await deadletter.send(
            key=message.key,
            value=dead_letter_record(
                message.value,
                message.key,
                errors,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                received_at=datetime.now(UTC),
            ),
        )
        counters.rejected += 1
        counters.events.on_rejected(message.value)
        log.warning(
            "record rejected",
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "fields": [e.loc for e in errors],
            },
        )

    async def send(
        topic: str, key: bytes | None, value: bytes, timestamp: float | None = None
    ) -> Any:
        """Hand a record to the producer; the returned future resolves when the broker has it."""
        return await app.producer.send(
            topic, key=key, value=value, partition=None, timestamp=timestamp, headers=None
        )

    @app.agent(events_topic, concurrency=1)
    async def intake(stream: StreamT[bytes]) -> AsyncIterator[None]:
        """Validate every record; route valid ones to the partition of (controller, subject)."""
        async for batch in cast(faust.Stream[bytes], stream).take_events(BATCH_MAX, BATCH_WINDOW):
            deliveries = []
            for event in batch:
                message = event.message
                try:
                    parsed = decode_event(message.value, message.key)
                    errors = engine.admit(parsed)
                except RejectedRecord as exc:
                    errors = exc.errors
                if errors:
                    await reject(event, errors)
                    continue
                key = subject_key(parsed.controller, parsed.subject_id).encode()
                assert message.value is not None  # decode_event rejects a missing value
                # Keep the record's timestamp (as Kafka Streams does): latency is end to end.
                deliveries.append(
                    await send(names.by_subject, key, message.value, message.timestamp or None)
                )
                counters.accepted += 1
            # The batch is acknowledged (its offsets committable) only once the broker has it all.
            await asyncio.gather(*deliveries)
            yield None

    @app.agent(by_subject, concurrency=1)
    async def fold(stream: StreamT[bytes]) -> AsyncIterator[None]:
        """Fold a batch into subject states; send what the changes require, then store."""
        async for batch in cast(faust.Stream[bytes], stream).take_events(BATCH_MAX, BATCH_WINDOW):
            now = datetime.now(UTC)
            states: dict[bytes, SubjectState] = {}
            changed: dict[bytes, EventT[bytes]] = {}  # key -> its last event in the batch
            deliveries = []
            for event in batch:
                key = cast(bytes, event.key)
                try:
                    parsed = decode_event(event.value)
                    state = states.get(key)
                    if state is None:
                        state = SubjectState.from_bytes(subjects.get(key))
                    outcome = engine.apply(state, parsed, now)
                except Exception as exc:  # keep the pipeline running; the record is kept intact
                    await reject(
                        event, [FieldError(loc="", msg=f"could not process: {type(exc).__name__}")]
                    )
                    log.exception("event could not be processed")
                    continue
                for outbound in outcome.messages:
                    topic = names.suppressions[outbound.destination]
                    deliveries.append(await send(topic, outbound.key, outbound.value))
                    counters.emitted[outbound.destination] += 1
                states[key] = outcome.state
                if outcome.duplicate:
                    counters.duplicates += 1
                else:
                    changed[key] = event
                counters.folded += 1
                stamp = event.message.timestamp
                counters.events.on_processed(
                    parsed.type.value, time.time() - stamp if stamp else None
                )
            # Outputs first: once the broker has them, record the states that caused them.
            await asyncio.gather(*deliveries)
            for key, last in changed.items():
                # The store and the changelog take the partition from the current event, which
                # in a batch must be this key's own event, not the batch's last.
                token = _current_event.set(weakref.ref(last))
                try:
                    subjects[key] = states[key].to_bytes()
                finally:
                    _current_event.reset(token)
            yield None

    streams = ConsentStreams(app=app, engine=engine, subjects=subjects, counters=counters)
    register_web(streams, settings)
    return streams
