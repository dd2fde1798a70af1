"""The HTTP API in this process over an in-memory backend: no broker, milliseconds per test.

The fake stands in for our own :class:`streams.web.backend.Backend` interface (what the worker
offers the web layer), never for Kafka: tests of what reaches the broker use a real worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.metrics_core import Metric

from schemas.events import ConsentEvent
from streams.broker import free_port
from streams.core.clocks import Clock, Summary
from streams.core.engine import Engine, subject_key
from streams.core.ledger import (
    Arrival,
    ChainHead,
    Entry,
    LedgerView,
    Record,
    append,
    seal,
)
from streams.core.policy import load_policy
from streams.core.state import SubjectState
from streams.settings import Settings
from streams.topology import partition_of
from streams.web.backend import Outgoing
from streams.web.setup import install_web
from tests.support.http import Api
from tests.support.keys import ALL_KEY, API_ENV

PARTITIONS = 6


@dataclass
class FakeBackend:
    """Owns every partition, holds states in a dict and keeps what is published in a list."""

    states: dict[bytes, bytes] = field(default_factory=dict)
    ledgers: dict[bytes, LedgerView] = field(default_factory=dict)
    published: list[Outgoing] = field(default_factory=list)
    active: set[int] = field(default_factory=lambda: set(range(PARTITIONS)))
    owners: dict[int, str] = field(default_factory=dict)  # partition -> another worker's URL
    clocks: list[Clock] = field(default_factory=list)  # open, each in its subject's partition
    summaries: dict[int, list[tuple[str, str, Summary]]] = field(default_factory=dict)
    is_settled: bool = True
    fail_publishing: bool = False

    def settled(self) -> bool:
        return self.is_settled

    def ready(self) -> bool:
        return self.is_settled and bool(self.active)

    def partition_of(self, key: bytes) -> int:
        return partition_of(key, PARTITIONS)

    def partition_count(self) -> int:
        return PARTITIONS

    def active_partitions(self) -> list[int]:
        return sorted(self.active)

    def owner_of(self, partition: int) -> str | None:
        return self.owners.get(partition)

    def state(self, key: bytes) -> bytes | None:
        return self.states.get(key)

    def scan_states(
        self, partition: int, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self.states):
            wanted = key.startswith(prefix) and (after is None or key > after)
            if wanted and self.partition_of(key) == partition:
                yield key, self.states[key]

    def open_clocks(self, partition: int) -> list[Clock]:
        return [
            clock
            for clock in self.clocks
            if self.partition_of(f"{clock.controller}/{clock.subject_id}".encode()) == partition
        ]

    def clock_summaries(self, partition: int) -> list[tuple[str, str, Summary]]:
        return self.summaries.get(partition, [])

    def ledger(self, key: bytes) -> LedgerView:
        return self.ledgers.get(key, LedgerView())

    async def publish(self, records: Sequence[Outgoing]) -> None:
        if self.fail_publishing:
            raise ConnectionError("broker down")
        self.published.extend(records)

    def metrics(self) -> Iterator[Metric]:
        return iter(())

    def record(
        self,
        engine: Engine,
        event: ConsentEvent,
        received_at: datetime,
        arrival: Arrival | None = None,
        shredded: bool = False,
    ) -> Entry:
        """Fold ``event`` into its subject's state and append it to the subject's ledger, as a
        worker does; ``shredded``: stored sealed, and its data key is gone."""
        key = subject_key(event.controller, event.subject_id).encode()
        outcome = engine.apply(SubjectState.from_bytes(self.states.get(key)), event, received_at)
        self.states[key] = outcome.state.to_bytes()
        record = Record.of(
            event,
            received_at=received_at,
            arrival=arrival or Arrival(),
            effects=outcome.effects,
        )
        if shredded:
            record = seal(record, lambda plain: f"sealed:{len(plain)}")
        view = self.ledgers.get(key, LedgerView())
        entry = append(view.head or ChainHead(), record)
        self.ledgers[key] = LedgerView((*view.entries, entry), (*view.records, record), entry.head)
        return entry


@dataclass
class Served:
    backend: FakeBackend
    url: str
    settings: Settings
    engine: Engine

    def api(self, key: str | None = ALL_KEY) -> Api:
        return Api(self.url, key)


@asynccontextmanager
async def serve(env: Mapping[str, str] = API_ENV) -> AsyncIterator[Served]:
    """The API on 127.0.0.1 (a free port, so that minted links point at it)."""
    port = free_port()
    settings = Settings.from_env({**env, "CONSENT_WEB_PORT": str(port)})
    backend = FakeBackend()
    engine = Engine(load_policy(settings.policy_file))
    app = web.Application()
    install_web(app, backend, engine, settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        yield Served(backend, f"http://127.0.0.1:{port}", settings, engine)
    finally:
        await server.close()
