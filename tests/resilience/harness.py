"""Running pipelines for the resilience suite: workers, a publisher, and what they produced."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.vocabulary import Destination
from streams.topology import TopicNames
from tests.resilience.cluster import Record, read_to_end
from tests.resilience.workload import RawRecord
from tests.support.pipeline import Pipeline, pipeline_for
from tests.support.worker import WorkerProcess

#: One record per produce batch wherever table recovery matters (see the broker notes: the
#: embedded broker's ListOffsets answer would otherwise end changelog recovery early).
RECOVERY_ENV = {"CONSENT_PRODUCER_MAX_BATCH_SIZE": "1"}
#: Where workers are killed and restarted: a shorter group session, so that a killed member
#: leaves the group sooner (the broker notes' advice is "a few seconds").
REJOIN_ENV = {"CONSENT_SESSION_TIMEOUT": "4"}


def recovery_pipeline(bootstrap: str, tmp: Path, **extra_env: str) -> Pipeline:
    return pipeline_for(bootstrap, tmp, **{**RECOVERY_ENV, **REJOIN_ENV, **extra_env})


def peer(pipeline: Pipeline, tmp: Path, name: str) -> WorkerProcess:
    """Another worker of the same application (same group), with its own data directory."""
    first = pipeline.worker
    return WorkerProcess(
        first.bootstrap,
        first.app_id,
        tmp / f"data-{name}",
        tmp / f"worker-{name}.log",
        extra_env=dict(first.extra_env),
    )


async def start(worker: WorkerProcess, timeout: float = 90.0) -> WorkerProcess:
    """Start and wait until ready, without blocking the event loop."""
    return await asyncio.to_thread(worker.start, timeout)


def destinations(topics: TopicNames) -> dict[str, Destination]:
    return {topic: destination for destination, topic in topics.suppressions.items()}


async def outputs(pipeline: Pipeline) -> list[Record]:
    return await read_to_end(pipeline.bootstrap, *pipeline.topics.suppressions.values())


@dataclass
class Publisher:
    """One producer for a test; counts the records the broker acknowledged."""

    bootstrap: str
    topic: str
    max_request_size: int = 1024 * 1024
    sent: int = 0
    _producer: Any = None

    async def __aenter__(self) -> Publisher:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            linger_ms=5,
            max_request_size=self.max_request_size,
            request_timeout_ms=30000,
        )
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def send(self, records: Iterable[RawRecord]) -> int:
        futures = [await self._producer.send(self.topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
        self.sent += len(futures)
        return len(futures)
