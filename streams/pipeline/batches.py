"""The worker's order for one fetched batch: route, fold, send, then store.

1. route (pure): rejects to the dead-letter topic, keyless records (and records published
   with another partitioner) forwarded once to the repartition topic, the rest fold here;
2. fold (pure) into subject states, after raising the partition's lease if the batch reaches it
   (streams/pipeline/replay.py: what an earlier owner may have folded restates its decisions);
   step 4 raises it ahead with the states, so this waits for a raise only when a batch outgrows
   the last one;
3. send every output, dead letter, forwarded record and ledger entry, and the batch's data key
   creations and destructions to the keys changelog, and wait until the broker has them all;
4. store the data keys and the ledger entries, then each changed state once (changelog
   acknowledged, then the store), with the deadline clocks the batch stopped at step 3
   (streams/pipeline/clocks.py), the timer index writes and the leases raised ahead in the same
   flush: the states carry the ledger chain heads, so a head is never stored before its
   entries;
5. only then may the consumer mark the batch's offsets committable.

A kill at any point before 5 redelivers the batch; the engine's redelivery rule restates what
a duplicate still decides, so the destination topics end up right (see docs/guarantees.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from schemas.codec import dead_letter_record
from streams.core.engine import Engine
from streams.pipeline.clocks import ClockBook
from streams.pipeline.consumer import Batches
from streams.pipeline.fold import Record, Rejected, Sealer, fold, keep, route
from streams.pipeline.ledger_store import LedgerStore
from streams.pipeline.personal import KeysTable, SubjectKeys
from streams.pipeline.replay import ReplayWindow
from streams.pipeline.sending import KeyHashes, Outbox, Producer
from streams.pipeline.store import SubjectStore
from streams.pipeline.timers import TimerIndex
from streams.topology import TopicNames

log = logging.getLogger("consent_streams")

#: Logged once, when the first input records are fetched (benchmarks time runs from it).
FIRST_FETCH = "first input records fetched"


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


def wall_clock() -> datetime:
    return datetime.now(UTC)


def _elsewhere(subject: bytes) -> int:
    return -1  # no partition: forward


class BatchPipeline:
    def __init__(
        self,
        app: Any,  # faust.App
        engine: Engine,
        store: SubjectStore,
        counters: Any,  # streams.app.Counters
        names: TopicNames,
        partitions: int,
        hashes: KeyHashes,
        *,
        keys: SubjectKeys,
        keys_table: KeysTable,
        timers: TimerIndex | None = None,
        clock: Callable[[], datetime] = wall_clock,
        deadlines: ClockBook | None = None,
        ledger: LedgerStore | None = None,  # None: no ledger (CONSENT_LEDGER=false)
        seal: Sealer = keep,
        window: ReplayWindow | None = None,  # None: nothing is restated
    ) -> None:
        self.window = window
        self.ledger = ledger
        self.seal = seal
        self.app = app
        self.engine = engine
        self.store = store
        self.counters = counters
        self.names = names
        self.partitions = partitions
        self.hashes = hashes
        self.keys = keys
        self.keys_table = keys_table
        self.timers = timers  # the due-work index, when the policy has clocks
        self.clock = clock
        self.deadlines = deadlines  # legal deadline clocks
        self._producer: Producer | None = None
        self._started = False
        self._copartitioned: bool | None = None

    async def copartitioned(self) -> bool:
        """Whether input partition n is table partition n (same count), so it may fold there.

        If not, Faust's assignor does not keep them together, and every input record takes
        the repartition hop: slower, still right. The count is the producer's metadata: the
        consumer's own snapshot of topic sizes is kept by the group's leader only, and a
        member without it would send every record through the hop.
        """
        if self._copartitioned is None:
            count = await self.producer.partitions(self.names.events)
            self._copartitioned = count == self.partitions
            if not self._copartitioned:
                log.warning(
                    "input topic has another partition count than the subject table: "
                    "every record takes the repartition hop",
                    extra={"input_partitions": count, "table_partitions": self.partitions},
                )
        return self._copartitioned

    def place(self, subject: bytes) -> int:
        """The partition of a subject id under the default partitioner: where its state is."""
        return self.hashes(subject) % self.partitions

    @property
    def producer(self) -> Producer:
        if self._producer is None:  # Faust starts its producer after the app is built
            self._producer = Producer(self.app.producer._ensure_producer(), self.hashes)
        return self._producer

    @property
    def topics(self) -> frozenset[str]:
        return frozenset((self.names.events, self.names.by_subject))

    async def __call__(self, batches: Batches) -> None:
        names, counters = self.names, self.counters
        began = time.perf_counter()
        if not self._started:
            self._started = True
            log.info(FIRST_FETCH, extra={"records": sum(len(b) for b in batches.values())})
        fresh: list[Record] = []
        forwarded: list[Record] = []
        for tp, batch in batches.items():
            (forwarded if tp.topic == names.by_subject else fresh).extend(records_of(batch))
        now = self.clock()
        place = self.place if await self.copartitioned() else _elsewhere
        routed = route(fresh, self.engine, place, now=now)
        again = route(forwarded, self.engine, self.place, repartitioned=True, now=now)
        self.keys.forget_pending()  # a batch that failed before step 3 left its changes
        window = self.window
        if window is not None:
            await self._lease(window, batches)
        ledger = self.ledger
        folded = fold(
            routed.fold + again.fold,
            self.store.load,
            self.engine,
            now,
            erasure=self.keys,
            ledger=ledger is not None,
            seal=self.seal,
            replayed=window.replayed if window is not None else None,
        )
        deadlines = self.deadlines
        started = deadlines.start(folded.fresh) if deadlines is not None else []
        fulfilled = deadlines.fulfilments(folded.folded) if deadlines is not None else []

        outbox = self.producer.outbox()
        if folded.reject:
            log.error("events could not be processed", extra={"count": len(folded.reject)})
        for rejected in routed.reject + again.reject + folded.reject:
            await self._dead_letter(outbox, rejected)
        for subject, record in routed.forward:
            # The record's own timestamp and headers travel on: latency is end to end.
            published = round(record.timestamp * 1000) if record.timestamp else None
            await outbox.add(
                names.by_subject,
                subject,
                record.value,
                partition=self.place(subject),
                timestamp_ms=published,
                headers=record.headers,
            )
        emitted = counters.emitted
        topics = names.suppressions
        for message in folded.messages:
            await outbox.add(topics[message.destination], message.key, message.value)
            emitted[message.destination] += 1
        entries = folded.stored
        if ledger is not None and entries:
            await ledger.add(entries, outbox)
        # Data keys travel with the outputs: no state that references an entry sealed under a
        # key is stored before the broker has that key (docs/guarantees.md, "Erasure").
        keys = self.keys.take()
        await self.keys_table.send(keys, outbox)
        # Outputs, ledger entries and keys first: once the broker has them, record the states
        # that caused them (and carry the entries' chain heads).
        folded_at = time.perf_counter()
        last = await outbox.sent()
        sent_at = time.perf_counter()
        self.keys_table.write(keys, last)
        if ledger is not None:
            ledger.write(entries, last)
        index = self.timers
        timers = index.stage(folded, self.store.load) if index is not None else {}
        saving = self.producer.outbox()
        if index is not None:  # due work goes with the states it comes from
            await index.send(timers, saving)
        # Leases raised ahead with the states: the next batch need not wait for a raise.
        leases = window.ahead(batches) if window is not None else {}
        await self.keys_table.send(leases, saving)
        stopped = None
        if deadlines is not None and (started or fulfilled):
            # Honoured: the broker has every instruction the batch caused; an access request
            # when its fulfilment is folded.
            stopped = deadlines.stop(started, self.clock(), fulfilled)
            await deadlines.stage(stopped, saving)
        # One flush: states, deadline clocks and index writes acknowledged together; the states
        # are stored first, the index after them, all before the batch may be committed.
        flushed = await self.store.save(folded.states, saving)
        if window is not None and leases:
            self.keys_table.write(leases, flushed)
            window.stored(leases)
        if deadlines is not None and stopped is not None:
            deadlines.written(stopped, flushed)
        if index is not None:
            index.store(timers, flushed)

        counters.batches.on_batch(
            len(fresh) + len(forwarded),
            folded_at - began,
            sent_at - folded_at,
            time.perf_counter() - sent_at,
        )
        counters.duplicates += folded.duplicates
        stats, done = counters.events, time.time()
        for _, event, record in folded.folded:
            stamp = record.timestamp
            stats.on_processed(event.type.value, done - stamp if stamp else None)

    async def _lease(self, window: ReplayWindow, batches: Batches) -> None:
        """Raise the leases the batch reaches before folding it (streams/pipeline/replay.py)."""
        raised = window.raised(batches)
        if not raised:
            return
        try:
            await self.keys_table.save(raised, self.producer.outbox())
        except BaseException:
            window.forget()  # raised here, maybe never stored: read the leases again
            raise

    async def _dead_letter(self, outbox: Outbox, rejected: Rejected) -> None:
        record, errors = rejected
        value = dead_letter_record(
            record.value,
            record.key,
            errors,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            received_at=self.clock(),
            headers=record.headers,
        )
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
        await outbox.add(self.names.deadletter, record.key, value)
