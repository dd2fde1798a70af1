"""Crash oracle: SIGKILL the real worker at random moments while a random event set streams in,
restart it on the same data directory, and judge every destination pair against the pure core."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from streams.core.policy import Policy
from tests.resilience.cluster import committed_offsets, read_to_end, wait_drained
from tests.resilience.harness import Publisher, destinations, outputs, recovery_pipeline, start
from tests.resilience.report import FULL, Mode, Report
from tests.resilience.workload import generate, judge

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("crash", "crash oracle (SIGKILL)")


@pytest.mark.timeout(3000 if FULL else 300)
async def test_sigkill_at_random_moments_loses_nothing(
    bootstrap: str, tmp_path: Path, policy: Policy, mode: Mode, report: Report
) -> None:
    for run in range(mode.crash_runs):
        seed = mode.seed + 104729 * run
        print(f"\ncrash oracle run {run + 1}/{mode.crash_runs}: seed {seed}", flush=True)
        run_dir = tmp_path / f"run{run}"
        run_dir.mkdir()
        await _one_run(bootstrap, run_dir, policy, mode, report, seed)


async def _one_run(
    bootstrap: str, tmp: Path, policy: Policy, mode: Mode, report: Report, seed: int
) -> None:
    workload = generate(policy, seed, events=mode.crash_events, subjects=mode.crash_subjects)
    rng = random.Random(seed)
    pipeline = recovery_pipeline(bootstrap, tmp)
    worker = pipeline.worker
    group = worker.app_id
    # Bursts alternate with kills; a kill lands while a burst (or a backlog) is being processed.
    parts = mode.crash_kills * 2 + 2
    size = -(-len(workload.records) // parts)
    bursts = [workload.records[i : i + size] for i in range(0, len(workload.records), size)]
    kills = uncommitted = 0
    started = time.monotonic()
    await start(worker)
    try:
        async with Publisher(bootstrap, pipeline.topics.events) as publisher:
            for index, burst in enumerate(bursts):
                await publisher.send(burst)
                left = len(bursts) - index
                if kills < mode.crash_kills and (
                    left <= mode.crash_kills - kills or rng.random() < 0.6
                ):
                    # Mostly mid-burst; sometimes after a commit has gone through.
                    wait = rng.uniform(0.02, 0.5) if rng.random() < 0.6 else rng.uniform(3, 4.5)
                    await asyncio.sleep(wait)
                    worker.kill()
                    kills += 1
                    committed = await committed_offsets(bootstrap, group, [publisher.topic])
                    done = sum(committed.values())
                    uncommitted += publisher.sent - done
                    await start(worker)
            await wait_drained(
                bootstrap, group, publisher.topic, publisher.sent, pipeline.topics.by_subject
            )
            produced = publisher.sent
        records = await outputs(pipeline)
        dead = await read_to_end(bootstrap, pipeline.topics.deadletter, idle=0.5)
    finally:
        worker.stop()
    verdict = judge(policy, workload.events, records, destinations(pipeline.topics))
    report.add(
        *PART,
        runs=1,
        kills=kills,
        events=len(workload.events),
        records_published=produced,
        uncommitted_at_kills=uncommitted,
        pairs_checked=verdict.pairs,
        messages=verdict.messages,
        mismatches=len(verdict.mismatches),
        required_missing=len(verdict.missing),
        invalid_messages=len(verdict.invalid),
        duplicate_deliveries=verdict.duplicates,
        dead_lettered=len(dead),
        seconds=round(time.monotonic() - started, 1),
    )
    report.add(*PART, seeds=[*report.part(*PART).figures.get("seeds", []), str(seed)])
    assert worker.restarts_seen == kills + 1
    assert not dead, f"valid events were dead-lettered: {dead[0].value[:300]!r}"
    assert verdict.ok, f"seed {seed}: {verdict.explain()}"
