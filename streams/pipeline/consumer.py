"""A Faust consumer that hands fetched batches of chosen topics to a batch handler.

It extends the worker's Kafka driver (:mod:`streams.transport`: fetch wait, read_committed,
unreadable fetches) and bulk table recovery (:mod:`streams.recovery`), which takes the
changelog records of a fetch before this takes the input records.

Faust still subscribes (an agent is declared on each such topic), joins the group, assigns,
recovers tables and commits; only the per-message path (one ``Event`` per record, a queue and
a stream iteration each) is skipped for those topics. Records of every other topic (table
changelogs during recovery, standbys) take Faust's own path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from aiokafka.structs import ConsumerRecord
from faust.types import TP
from faust.types.tuples import ack_lock

from streams import transport
from streams.recovery import BulkRecoveryConsumer

Batches = Mapping[TP, Sequence[ConsumerRecord[bytes, bytes]]]


class BatchHandler:
    """What the consumer calls with each fetch of ``topics``; returns once it is all done."""

    def __init__(self, topics: frozenset[str], run: Callable[[Batches], Awaitable[None]]) -> None:
        self.topics = topics
        self.run = run


class BatchConsumer(BulkRecoveryConsumer, transport.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def batch_handler(self) -> BatchHandler | None:
        handler: BatchHandler | None = getattr(self.transport, "batch_handler", None)
        return handler

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        handler = self.batch_handler
        if not records or handler is None:
            return records, active
        mine = {tp: batch for tp, batch in records.items() if tp.topic in handler.topics}
        if not mine:
            return records, active
        rest = {tp: batch for tp, batch in records.items() if tp not in mine}
        # Records come back from the fetcher consistent with the positions after any seek (a
        # rebalance seeks to the committed offsets before the flow resumes). While the flow is
        # stopped or the consumer stops, they are left: Faust seeks back to the committed
        # offsets, so they come again.
        if self.flow_active and not self.should_stop:
            mine = {tp: b for tp, b in mine.items() if active is None or tp in active}
            if mine:
                await self._handle(handler, mine)
        return rest, active

    async def _handle(self, handler: BatchHandler, batches: Batches) -> None:
        self._idle.clear()
        try:
            await handler.run(batches)
            for tp, batch in batches.items():
                await self._ack_all(tp, [record.offset for record in batch])
        finally:
            self._idle.set()
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()

    async def _ack_all(self, tp: TP, offsets: list[int]) -> None:
        """Mark processed offsets committable, as Faust's ``ack`` does message by message."""
        previous = self._read_offset[tp]
        for offset in offsets:
            if previous is not None and offset > previous + 1:
                await self._add_gap(tp, previous + 1, offset)  # compacted or control records
            previous = offset
        with ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            acked = self._acked[tp]
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    acked.append(offset)
                    self._n_acked += 1
        self._read_offset[tp] = offsets[-1]
        monitor = self.app.monitor  # what /metrics reads for lag, as Faust's path would set
        monitor.messages_received_total += len(offsets)
        monitor.messages_received_by_topic[tp.topic] += len(offsets)
        monitor.tp_read_offsets[tp] = offsets[-1]
        monitor.track_tp_end_offset(tp, self.highwater(tp))

    async def wait_empty(self) -> None:
        """A rebalance or shutdown also waits for the batch in flight."""
        await self._idle.wait()
        await super().wait_empty()


class BatchTransport(transport.Transport):
    Consumer: ClassVar[type[BatchConsumer]] = BatchConsumer
    batch_handler: BatchHandler | None = None
