"""Soak: a bounded, sustained load with the worker's memory and lag sampled throughout.

Memory must level off and lag must not grow; afterwards the backlog drains and every pair is
judged by the oracle. Runs on its own broker, with the worker's production settings.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest

from streams.broker import EmbeddedBroker
from streams.core.policy import Policy
from tests.resilience.cluster import (
    LagProbe,
    cpu_seconds,
    read_to_end,
    rocksdb_bytes,
    rss_bytes,
    wait_drained,
)
from tests.resilience.harness import Publisher, destinations, outputs, start
from tests.resilience.hostile import malformed
from tests.resilience.report import FULL, Mode, Report
from tests.resilience.workload import RawRecord, generate, judge
from tests.support.pipeline import pipeline_for

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("soak", "soak (sustained load)")
MB = 1024 * 1024
MALFORMED_SHARE = 0.005


@dataclass
class Sample:
    at: float  # seconds since the load started
    rss: int
    rocksdb: int  # bytes RocksDB holds (memtables and block cache, within their budget)
    input_lag: int  # records on consent.events not yet committed (exact)
    internal_lag: int  # repartitioned records not yet committed (ListOffsets-based)


Tagged = tuple[bytes | None, bytes, str | None]  # key, value, event id (None: malformed)


@dataclass
class Load:
    """Offers ``rate`` events/s from seeded chunks over a fixed pool of subjects."""

    policy: Policy
    seed: int
    rate: float
    subjects: int
    sent: dict[str, bytes] = field(default_factory=dict)  # event id -> value, as published
    malformed: int = 0

    def chunks(self) -> Iterator[list[Tagged]]:
        rng = random.Random(self.seed)
        chunk = 0
        while True:
            size = max(1, int(self.rate))  # about a second's worth
            workload = generate(
                self.policy,
                self.seed + chunk,
                events=size,
                subjects=self.subjects,
                duplicate_ratio=0.01,
                event_prefix=f"c{chunk}-",
            )
            records: list[Tagged] = [
                (key, value, orjson.loads(value)["event_id"]) for key, value in workload.records
            ]
            for n in range(int(size * MALFORMED_SHARE) + (rng.random() < 0.5)):
                _, (key, value) = malformed(rng, chunk * 10_000 + n)
                if value is not None and len(value) < 100_000:
                    records.insert(rng.randrange(len(records) + 1), (key, value, None))
            chunk += 1
            yield records

    def published(self, records: list[Tagged]) -> list[RawRecord]:
        """Account for records about to be published."""
        for _, value, event_id in records:
            if event_id is None:
                self.malformed += 1
            else:
                self.sent[event_id] = value
        return [(key, value) for key, value, _ in records]


def lag_floors(samples: Sequence[Sample], window: float) -> list[tuple[float, float]]:
    """(window start, smallest total lag sampled in it), per ``window`` seconds."""
    floors: dict[int, int] = {}
    for s in samples:
        slot = int(s.at // window)
        floors[slot] = min(
            floors.get(slot, s.input_lag + s.internal_lag), s.input_lag + s.internal_lag
        )
    return [(slot * window, float(v)) for slot, v in sorted(floors.items())]


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if den == 0
        else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
    )


@pytest.mark.timeout(2400 if FULL else 300)
async def test_sustained_load_memory_levels_off_and_lag_does_not_grow(
    tmp_path: Path, policy: Policy, mode: Mode, report: Report
) -> None:
    seed = mode.seed + 53
    print(
        f"\nsoak: seed {seed}, {mode.soak_rate:.0f} events/s for {mode.soak_seconds:.0f} s",
        flush=True,
    )
    broker = EmbeddedBroker(log_dir=tmp_path).start()
    pipeline = pipeline_for(broker.bootstrap, tmp_path)
    worker = pipeline.worker
    load = Load(policy, seed, mode.soak_rate, mode.soak_subjects)
    samples: list[Sample] = []
    every = 2.0 if mode.soak_seconds <= 120 else 5.0
    try:
        await start(worker)
        assert worker.process is not None
        pid = worker.process.pid
        async with Publisher(broker.bootstrap, pipeline.topics.events) as publisher:
            started = time.monotonic()

            async def sample() -> None:
                async with (
                    LagProbe(broker.bootstrap, worker.app_id) as probe,
                    aiohttp.ClientSession() as http,
                ):
                    while True:
                        lags = await probe.lag(
                            {publisher.topic: publisher.sent},
                            end_of=[pipeline.topics.by_subject],
                        )
                        samples.append(
                            Sample(
                                time.monotonic() - started,
                                rss_bytes(pid),
                                await rocksdb_bytes(http, worker.url),
                                lags[publisher.topic],
                                lags[pipeline.topics.by_subject],
                            )
                        )
                        await asyncio.sleep(every)

            cpu_before = cpu_seconds(pid)
            sampler = asyncio.create_task(sample())
            tick = 0.1
            due = 0.0
            pending: list[Tagged] = []
            chunks = load.chunks()
            while (elapsed := time.monotonic() - started) < mode.soak_seconds:
                due = elapsed * mode.soak_rate - publisher.sent
                while len(pending) < due:
                    pending += next(chunks)
                count = max(0, int(due))
                if count:
                    await publisher.send(load.published(pending[:count]))
                    del pending[:count]
                await asyncio.sleep(tick)
            offered_for = time.monotonic() - started
            worker_cpu = cpu_seconds(pid) - cpu_before
            if sampler.done():
                sampler.result()  # it stopped early: say why (the worker's /metrics, say)
            sampler.cancel()
            sent = publisher.sent
            drain_started = time.monotonic()
            await wait_drained(
                broker.bootstrap,
                worker.app_id,
                publisher.topic,
                sent,
                pipeline.topics.by_subject,
                timeout=300,
            )
            drain = time.monotonic() - drain_started
        records = await outputs(pipeline)
        dead = await read_to_end(broker.bootstrap, pipeline.topics.deadletter)
        rss_end = rss_bytes(pid)
        restarts = worker.restarts_seen - 1
    finally:
        worker.stop()
        broker.stop()

    # Judge memory and lag after a warm-up (a fifth of the run, at least 10 s). Memory is judged
    # net of what RocksDB holds: its memtables and block cache fill by design, up to the budget
    # streams/storage.py sets (tests/streams/test_storage.py holds them to it).
    warm = max(10.0, offered_for / 5)
    steady = [s for s in samples if s.at >= warm]
    half = len(steady) // 2
    first, second = steady[:half], steady[half:]

    def net(s: Sample) -> int:
        return s.rss - s.rocksdb

    net_first = max(net(s) for s in first)
    net_second = max(net(s) for s in second)
    rss_slope = slope_per_minute([(s.at, s.rss / MB) for s in steady])
    net_slope = slope_per_minute([(s.at, net(s) / MB) for s in steady])
    # Committed offsets move in steps (a commit every 2.8 s), so the lag saw-tooths; its floor
    # per 6-second window is the backlog that processing has not caught up with.
    floors = lag_floors(steady, window=6.0)
    lag_slope = slope_per_minute(floors)
    half_floors = len(floors) // 2
    lag_first = int(max(v for _, v in floors[:half_floors]))
    lag_second = int(max(v for _, v in floors[half_floors:]))
    events = [orjson.loads(v) for v in load.sent.values()]
    verdict = judge(policy, events, records, destinations(pipeline.topics))
    report.add(
        *PART,
        seed=str(seed),
        seconds=round(offered_for, 1),
        offered_per_s=mode.soak_rate,
        achieved_per_s=round(sent / offered_for, 1),
        records=sent,
        malformed_records=load.malformed,
        dead_lettered=len(dead),
        subjects=mode.soak_subjects,
        samples=len(samples),
        rss_after_warmup_mb=round(steady[0].rss / MB, 1),
        rss_end_mb=round(rss_end / MB, 1),
        rss_slope_mb_per_min=round(rss_slope, 2),
        rocksdb_end_mb=round(steady[-1].rocksdb / MB, 1),
        net_rss_max_first_half_mb=round(net_first / MB, 1),
        net_rss_max_second_half_mb=round(net_second / MB, 1),
        net_rss_slope_mb_per_min=round(net_slope, 2),
        worker_cpu_percent=round(100 * worker_cpu / offered_for, 1),
        lag_max=max(x.input_lag + x.internal_lag for x in steady),
        lag_floor_max_first_half=lag_first,
        lag_floor_max_second_half=lag_second,
        lag_floor_slope_per_min=round(lag_slope, 1),
        drain_s=round(drain, 1),
        pairs_checked=verdict.pairs,
        mismatches=len(verdict.mismatches),
        required_missing=len(verdict.missing),
        worker_restarts=restarts,
    )
    report.note(
        *PART,
        "lag = records not yet committed on consent.events (exact) plus on the repartition "
        "topic (ListOffsets; may under-count by one produce batch on the embedded broker); "
        f"sampled every {every:.0f} s",
    )
    report.series(
        *PART,
        "samples (s, rss MB, rocksdb MB, input lag, repartition lag)",
        [
            [
                round(x.at, 1),
                round(x.rss / MB, 1),
                round(x.rocksdb / MB, 1),
                x.input_lag,
                x.internal_lag,
            ]
            for x in samples
        ],
    )
    assert restarts == 0
    assert sent >= 0.95 * mode.soak_rate * offered_for, "the load generator fell behind"
    assert len(dead) == load.malformed
    # Memory levels off: net of write buffers, the second half may not exceed the first by more
    # than 10% (or 24 MB).
    assert net_second <= net_first + max(0.10 * net_first, 24 * MB), (
        f"memory still growing: {net_first / MB:.0f} -> {net_second / MB:.0f} MB"
    )
    # Lag does not grow: its floor rises by less than a share of the offered rate per second
    # (5% over the full run's ten minutes; a short run can only tell a worker that falls far
    # behind, 25%), the second half's worst floor stays within the first half's plus a few
    # seconds of input (2 s in the full run, 5 s in a short one), and the backlog drains soon
    # after the load stops.
    share, slack = (0.05, 2) if FULL else (0.25, 5)
    assert lag_slope / 60 < share * mode.soak_rate, f"lag growing by {lag_slope:.0f}/min"
    assert lag_second <= lag_first + slack * mode.soak_rate, (
        f"lag growing: {lag_first} -> {lag_second}"
    )
    assert drain < 30
    assert verdict.ok, verdict.explain()
