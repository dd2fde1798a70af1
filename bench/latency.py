"""End-to-end latency at a steady light load: publish time to the destination message's arrival.

Each probe is an opt-out for a new subject, so every message it causes names it as
``caused_by_event_id``. The harness publishes at a fixed rate and follows the destination topics
itself; arrival is when its reader receives the record, so the reader's own fetch wait (a few ms)
is included, and stated. For the worker it also reads ``/metrics`` before and after the steady
load: records per fetched batch and the mean time of each of its steps (fold, send, store), so a
miss can be put down to the worker's own work or to waiting for the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.batches import batch_means, batch_totals
from bench.kafka import Tail, cluster, create_topics, producer
from bench.processes import Child
from bench.reference import Record
from bench.systems import Run, System
from bench.throughput import Log, SystemFailed
from bench.workload import CONTROLLERS, probe_event
from schemas.codec import decode_event
from schemas.vocabulary import EventType
from streams.core.engine import Engine
from streams.core.state import EMPTY

CDF_POINTS = 200


@dataclass(frozen=True, slots=True)
class Probe:
    event_id: str
    record: Record
    messages: int  # destination messages it causes


def probes(engine: Engine, count: int, tag: str, stateful: bool) -> list[Probe]:
    now = datetime.now(UTC) - timedelta(seconds=1)
    out = []
    for i in range(count):
        controller = CONTROLLERS[i % len(CONTROLLERS)][0]
        event_id = f"lat-{tag}-{i:07d}"
        record = probe_event(
            controller, f"lat-{tag}-{i:07d}", EventType.UNSUBSCRIBED, event_id, now, channel="email"
        )
        expected = 1
        if stateful:
            expected = len(engine.apply(EMPTY, decode_event(record[1]), now).messages)
        out.append(Probe(event_id, record, expected))
    return out


@dataclass(frozen=True, slots=True)
class LatencyRun:
    system: str
    fetch_wait_ms: int
    reader_fetch_wait_ms: int
    rate: int
    seconds: float
    probes: int
    messages: int
    missing: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cdf_ms: list[float] = field(repr=False)
    #: The worker's fetched batches during the steady load, their mean records and step times
    #: (None for the peers, which do not say).
    batches: int | None = None
    batch_records: float | None = None
    fold_ms: float | None = None
    send_ms: float | None = None
    store_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class _Collector:
    def __init__(self) -> None:
        self.published: dict[str, float] = {}
        self.latencies: list[float] = []
        self.warm = asyncio.Event()
        self.warmup_ids: set[str] = set()
        self.expected = 0  # set once the steady load is published
        self.complete = asyncio.Event()

    def take(self, arrived: float, values: list[bytes | None]) -> None:
        for value in values:
            if value is None:
                continue
            event_id = orjson.loads(value).get("caused_by_event_id")
            if event_id in self.warmup_ids:
                self.warm.set()
            sent = self.published.get(event_id)
            if sent is not None:
                self.latencies.append((arrived - sent) * 1000)
        if self.expected and len(self.latencies) >= self.expected:
            self.complete.set()


async def _follow(tail: Tail, collector: _Collector, stop: asyncio.Event) -> None:
    while not stop.is_set():
        arrived, seen = await tail.poll(timeout_ms=50)
        collector.take(arrived, [s.value for s in seen])


async def measure(
    system: System,
    engine: Engine,
    *,
    fetch_wait_ms: int,
    rate: int,
    seconds: float,
    reader_fetch_wait_ms: int,
    workdir: Path,
    partitions: int,
    bootstrap: str | None,
    log: Log,
    extra_env: dict[str, str] | None = None,
) -> LatencyRun:
    count = max(1, int(rate * seconds))
    steady = probes(engine, count, "s", system.stateful)
    warmup = probes(engine, 400, "w", system.stateful)
    expected = sum(p.messages for p in steady)
    collector = _Collector()
    collector.warmup_ids = {p.event_id for p in warmup}
    async with cluster(bootstrap) as found:
        run = Run(found.bootstrap, workdir, partitions)
        outputs = system.outputs(run)
        await create_topics(found.bootstrap, run.public_topics + outputs, partitions)
        wait = system.fetch_wait(fetch_wait_ms)
        child = system.launch(run, wait, log_name="latency.log", extra_env=extra_env)
        out = producer(found.bootstrap, linger_ms=0)
        stop = asyncio.Event()
        try:
            await out.start()
            async with Tail(found.bootstrap, outputs, partitions, reader_fetch_wait_ms) as tail:
                follower = asyncio.create_task(_follow(tail, collector, stop))
                await _warm_up(out, run, warmup, collector, child)
                log(f"    {system.key}: warm; {count:,} probes at {rate}/s")
                scrape = system.is_worker
                before = await asyncio.to_thread(batch_totals, run.web_port) if scrape else None
                await _publish_steadily(out, run, steady, rate, collector)
                collector.expected = expected
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(collector.complete.wait(), 2 * wait / 1000 + 10)
                stop.set()
                await follower
                after = await asyncio.to_thread(batch_totals, run.web_port) if scrape else None
        finally:
            with contextlib.suppress(Exception):
                await out.stop()
            child.stop()
    values = sorted(collector.latencies)
    step = max(1, len(values) // CDF_POINTS)
    return LatencyRun(
        system=system.key,
        fetch_wait_ms=wait,
        reader_fetch_wait_ms=reader_fetch_wait_ms,
        rate=rate,
        seconds=seconds,
        probes=count,
        messages=len(values),
        missing=max(0, expected - len(values)),
        p50_ms=round(quantile(values, 0.50), 2),
        p95_ms=round(quantile(values, 0.95), 2),
        p99_ms=round(quantile(values, 0.99), 2),
        max_ms=round(values[-1], 2) if values else float("nan"),
        cdf_ms=[round(v, 2) for v in values[::step]] + ([round(values[-1], 2)] if values else []),
        **batch_means(before, after),
    )


async def _warm_up(
    out: Any, run: Run, warmup: list[Probe], collector: _Collector, child: Child
) -> None:
    """Trickle probes until one comes out the other end: the system is up and assigned."""
    for probe in warmup:
        if collector.warm.is_set():
            break
        if child.exited:
            raise SystemFailed(f"exited during warm-up:\n{child.tail()}")
        key, value = probe.record
        await out.send(run.events_topic, value, key=key)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.warm.wait(), 0.5)
    if not collector.warm.is_set():
        raise SystemFailed(f"no output during warm-up:\n{child.tail()}")
    await asyncio.sleep(1.0)


async def _publish_steadily(
    out: Any, run: Run, steady: list[Probe], rate: int, collector: _Collector
) -> None:
    start = time.time() + 0.05
    for i, probe in enumerate(steady):
        delay = start + i / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        key, value = probe.record
        collector.published[probe.event_id] = time.time()
        await out.send(run.events_topic, value, key=key)
