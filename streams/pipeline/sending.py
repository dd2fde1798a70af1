"""Producing a batch's records: one producer batch per (topic, partition), no per-record future.

Partitions are chosen as Kafka's default (Java) partitioner does, murmur2 of the key, with the
hash of recent keys remembered: outputs are keyed by subject id, and a batch repeats them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.partitioner import murmur2


class KeyHashes:
    """``murmur2(key)`` as the default partitioner uses it, for recent keys (bounded)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._known: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        known = self._known
        found = known.get(key)
        if found is None:
            if len(known) >= self.limit:
                known.clear()
            found = known[key] = murmur2(key) & 0x7FFFFFFF
        return found


class Producer:
    """The worker's aiokafka producer, seen as topics with known partition counts."""

    def __init__(self, client: Any, hashes: KeyHashes) -> None:
        self.client = client  # aiokafka.AIOKafkaProducer, started by Faust
        self.hashes = hashes
        self._partitions: dict[str, int] = {}

    async def partitions(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.client.partitions_for(topic))
        return count

    def outbox(self) -> Outbox:
        return Outbox(self)


class Outbox:
    """Records for the broker, appended to open batches; :meth:`sent` waits for all acks."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self._open: dict[tuple[str, int], Any] = {}  # (topic, partition) -> BatchBuilder
        self._pending: list[tuple[asyncio.Future[Any], int]] = []  # (ack, records in batch)

    async def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        """Append a record; the partition is the default partitioner's unless given."""
        if partition is None:
            count = await self.producer.partitions(topic)
            # A keyless record (a dead letter of a keyless input) goes to any partition.
            partition = self.producer.hashes(key) % count if key is not None else 0
        place = (topic, partition)
        batch = self._open.get(place)
        if batch is None:
            batch = self._open[place] = self.producer.client.create_batch()
        while (
            batch.append(key=key, value=value, timestamp=timestamp_ms, headers=list(headers))
            is None
        ):
            await self._send(topic, partition, batch)  # full: it goes, a new one opens
            batch = self._open[place] = self.producer.client.create_batch()

    async def sent(self) -> dict[tuple[str, int], int]:
        """Send what is open and wait for the broker: the last offset per (topic, partition)."""
        for (topic, partition), batch in self._open.items():
            await self._send(topic, partition, batch)
        self._open.clear()
        pending, self._pending = self._pending, []
        acks = await asyncio.gather(*(ack for ack, _ in pending))
        last: dict[tuple[str, int], int] = {}
        for metadata, (_, count) in zip(acks, pending, strict=True):
            place = (metadata.topic, metadata.partition)
            last[place] = max(metadata.offset + count - 1, last.get(place, -1))
        return last

    async def _send(self, topic: str, partition: int, batch: Any) -> None:
        count = batch.record_count()
        if count:
            batch.close()  # complete: the producer sends a closed batch without lingering
            ack = await self.producer.client.send_batch(batch, topic, partition=partition)
            self._pending.append((ack, count))
