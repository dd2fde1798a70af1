"""Helpers for tests that talk to a real broker: produce events, collect topic contents."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def event_record(event: Mapping[str, Any], keyed: bool = True) -> tuple[bytes | None, bytes]:
    key = str(event["subject_id"]).encode() if keyed else None
    return key, orjson.dumps(event)


class TopicReader:
    """Reads topics from the beginning and keeps everything it has seen."""

    def __init__(self, bootstrap: str, *topics: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=50,
        )
        self.records: list[ConsumerRecord[bytes, bytes]] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self, seconds: float = 0.2) -> int:
        batches = await self._consumer.getmany(timeout_ms=int(seconds * 1000))
        found = [record for batch in batches.values() for record in batch]
        self.records.extend(found)
        return len(found)

    async def until(self, predicate: Any, timeout: float = 30.0, settle: float = 0.0) -> None:
        """Poll until ``predicate(self)`` holds (then keep polling ``settle`` seconds)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s; saw {len(self.records)} records")
            await self.poll()
        end = time.monotonic() + settle
        while time.monotonic() < end:
            await self.poll()

    def values(self, topic: str | None = None) -> list[dict[str, Any]]:
        return [
            orjson.loads(r.value)
            for r in self.records
            if r.value is not None and (topic is None or r.topic == topic)
        ]


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
