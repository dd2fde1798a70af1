"""The worker's order for one fetched batch: route, fold, send, then store.

1. route (pure): rejects to the dead-letter topic, keyless records (and records published
   with another partitioner) forwarded once to the repartition topic, the rest fold here;
2. fold (pure) into subject states;
3. send every output, dead letter and forwarded record, and wait until the broker has them all;
4. store each changed state once (changelog acknowledged, then the store);
5. only then may the consumer mark the batch's offsets committable.

A kill at any point before 5 redelivers the batch; the engine's redelivery rule restates what
a duplicate still decides, so the destination topics end up right (see docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from schemas.codec import dead_letter_record
from streams.core.engine import Engine
from streams.pipeline.consumer import Batches
from streams.pipeline.fold import Record, Rejected, fold, route
from streams.pipeline.store import SubjectStore
from streams.topology import Topology, partition_of

log = logging.getLogger("consent_streams")

#: Logged once, when the first input records are fetched (benchmarks time runs from it).
FIRST_FETCH = "first input records fetched"

Send = Callable[..., Awaitable[Awaitable[Any]]]


def records_of(batch: Sequence[ConsumerRecord[bytes, bytes]]) -> list[Record]:
    return [
        Record(
            r.topic,
            r.partition,
            r.offset,
            r.key,
            r.value,
            r.timestamp / 1000.0 if r.timestamp else None,
            tuple(r.headers),
        )
        for r in batch
    ]


class Placement:
    """The partition of a subject id under the default partitioner, remembered (bounded)."""

    def __init__(self, partitions: int, limit: int = 100_000) -> None:
        self.partitions = partitions
        self.limit = limit
        self._known: dict[bytes, int] = {}

    def __call__(self, subject: bytes) -> int:
        known = self._known
        partition = known.get(subject)
        if partition is None:
            if len(known) >= self.limit:
                known.clear()
            partition = known[subject] = partition_of(subject, self.partitions)
        return partition


class BatchPipeline:
    def __init__(
        self,
        app: Any,  # faust.App
        engine: Engine,
        store: SubjectStore,
        counters: Any,  # streams.app.Counters
        names: Topology,
        partitions: int,
    ) -> None:
        self.app = app
        self.engine = engine
        self.store = store
        self.counters = counters
        self.names = names
        self.place = Placement(partitions)
        self._started = False

    @property
    def topics(self) -> frozenset[str]:
        return frozenset((self.names.events, self.names.by_subject))

    async def __call__(self, batches: Batches) -> None:
        names, counters = self.names, self.counters
        if not self._started:
            self._started = True
            log.info(FIRST_FETCH, extra={"records": sum(len(b) for b in batches.values())})
        send: Send = self.app.producer.send
        fresh: list[Record] = []
        forwarded: list[Record] = []
        for tp, batch in batches.items():
            (forwarded if tp.topic == names.by_subject else fresh).extend(records_of(batch))
        routed = route(fresh, self.engine, self.place)
        again = route(forwarded, self.engine, self.place, repartitioned=True)
        folded = fold(routed.fold + again.fold, self.store.load, self.engine, datetime.now(UTC))
        counters.accepted += len(routed.fold) + len(routed.forward)

        pending = []
        if folded.reject:
            log.error("events could not be processed", extra={"count": len(folded.reject)})
        for rejected in routed.reject + again.reject + folded.reject:
            pending.append(await self._dead_letter(send, rejected))
        for subject, record in routed.forward:
            # The record's own timestamp and headers travel on: latency is end to end.
            pending.append(
                await send(
                    names.by_subject,
                    subject,
                    record.value,
                    None,
                    record.timestamp,
                    list(record.headers) or None,
                )
            )
        emitted = counters.emitted
        topics = names.suppressions
        for message in folded.messages:
            topic = topics[message.destination]
            pending.append(await send(topic, message.key, message.value, None, None, None))
            emitted[message.destination] += 1
        # Outputs first: once the broker has them, record the states that caused them.
        await asyncio.gather(*pending)
        await self.store.save(folded.states)

        counters.folded += len(folded.folded)
        counters.duplicates += folded.duplicates
        stats, now = counters.events, time.time()
        for _, event, record in folded.folded:
            stamp = record.timestamp
            stats.on_processed(event.type.value, now - stamp if stamp else None)

    async def _dead_letter(self, send: Send, rejected: Rejected) -> Awaitable[Any]:
        record, errors = rejected
        value = dead_letter_record(
            record.value,
            record.key,
            errors,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            received_at=datetime.now(UTC),
        )
        self.counters.rejected += 1
        self.counters.events.on_rejected(record.value)
        log.warning(
            "record rejected",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "fields": [e.loc for e in errors],
            },
        )
        return await send(self.names.deadletter, record.key, value, None, None, None)
