"""Talking to the broker: create topics, publish the input, read everything a system wrote."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from bench.processes import child_pid_with
from streams.broker import EmbeddedBroker

#: Set at creation: this broker answers DescribeConfigs only with configs given then.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}

Record = tuple[bytes | None, bytes]


@dataclass(frozen=True, slots=True)
class Cluster:
    bootstrap: str
    broker_pid: int | None  # the embedded broker's process, None for an external cluster


@contextlib.asynccontextmanager
async def cluster(external: str | None) -> AsyncIterator[Cluster]:
    """A fresh embedded broker for one measurement, or the configured cluster."""
    if external:
        yield Cluster(external, None)
        return
    broker = EmbeddedBroker().start()
    try:
        yield Cluster(broker.bootstrap, child_pid_with(f"tcp://127.0.0.1:{broker.port}"))
    finally:
        broker.stop(grace=1.0)


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="consent-bench")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, partitions, 1, topic_configs=dict(TOPIC_CONFIG))
            for name in dict.fromkeys(names)
            if name not in existing
        ]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


def producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=linger_ms,
        max_batch_size=512 * 1024,
        max_request_size=4 << 20,
    )


async def publish(bootstrap: str, topic: str, records: Sequence[Record]) -> None:
    """Publish in order, as fast as the producer batches."""
    out = producer(bootstrap)
    await out.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await out.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await out.stop()


@dataclass(frozen=True, slots=True)
class Seen:
    topic: str
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


def _partitions(topics: Iterable[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(partitions)]


def _consumer(bootstrap: str, fetch_wait_ms: int = 100) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
        max_partition_fetch_bytes=4 << 20,
    )


async def read_all(bootstrap: str, topics: Sequence[str], partitions: int) -> list[Seen]:
    """Every record of ``topics``, from the beginning to the end as the broker reports it."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        tps = _partitions(topics, partitions)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Seen] = []
        while True:
            batches = await consumer.getmany(timeout_ms=300, max_records=50_000)
            for tp, records in batches.items():
                out += [Seen(tp.topic, r.key, r.value, r.timestamp) for r in records]
            if not batches and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                return out
    finally:
        await consumer.stop()


class Progress:
    """Cheap progress: the sum of the topics' end offsets (approximate on this broker)."""

    def __init__(self, bootstrap: str, topics: Sequence[str], partitions: int) -> None:
        self._consumer = _consumer(bootstrap)
        self._topics = set(topics)
        self._tps = _partitions(topics, partitions)
        self._exist = False

    async def __aenter__(self) -> Progress:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def count(self) -> int:
        """0 until every topic exists (asking for a missing one would wait for it)."""
        if not self._exist:
            self._exist = self._topics <= await self._consumer.topics()
            if not self._exist:
                return 0
        ends = await self._consumer.end_offsets(self._tps)
        return int(sum(ends.values()))


class Tail:
    """Follows topics from the beginning; each record comes with the wall time it arrived."""

    def __init__(
        self, bootstrap: str, topics: Sequence[str], partitions: int, fetch_wait_ms: int
    ) -> None:
        self._consumer = _consumer(bootstrap, fetch_wait_ms)
        self._tps = _partitions(topics, partitions)

    async def __aenter__(self) -> Tail:
        await self._consumer.start()
        self._consumer.assign(self._tps)
        await self._consumer.seek_to_beginning(*self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self, timeout_ms: int = 100) -> tuple[float, list[Seen]]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        arrived = time.time()
        return arrived, [
            Seen(tp.topic, r.key, r.value, r.timestamp)
            for tp, records in batches.items()
            for r in records
        ]
