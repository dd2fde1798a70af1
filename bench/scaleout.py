"""Scale-out: the throughput measurement with two worker processes on the same machine.

Both consent-streams workers join one consumer group (each with its own data directory and
web port) and share the input partitions. They are started on the empty input topic and the
workload is published once both answer ``/ready``, so that the group has settled into one
assignment before the first record is consumed (a rebalance mid-run would measure the group
join, not the added capacity). Events/s is measured exactly as for one
worker (first consume to last output); CPU is the sum of both process trees. The report sets it
beside the one-worker figure of the same run: the percentage a second worker adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path

from bench.kafka import cluster, create_topics, publish
from bench.processes import Child, Monitor, serves_ready
from bench.reference import Expected
from bench.systems import Run, System
from bench.throughput import MB, Log, SystemFailed, ThroughputRun, verify, wait_for_outputs, window
from bench.workload import Workload
from streams.broker import free_port

WORKERS = 2
READY_TIMEOUT = 120.0


async def _all_ready(runs: list[Run], children: list[Child]) -> None:
    deadline = time.time() + READY_TIMEOUT
    for run, child in zip(runs, children, strict=True):
        while not await asyncio.to_thread(serves_ready, run.web_port):
            if child.exited:
                raise SystemFailed(f"a worker exited before it was ready:\n{child.tail()}")
            if time.time() > deadline:
                raise SystemFailed(f"workers not ready after {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.25)


async def measure(
    system: System,
    workload: Workload,
    expected: Expected,
    *,
    workdir: Path,
    fetch_wait_ms: int,
    partitions: int,
    bootstrap: str | None,
    log: Log,
    extra_env: dict[str, str] | None = None,
) -> ThroughputRun:
    inputs = len(workload.records)
    async with cluster(bootstrap) as found:
        run = Run(found.bootstrap, workdir, partitions)
        await create_topics(found.bootstrap, run.public_topics + system.outputs(run), partitions)
        wait = system.fetch_wait(fetch_wait_ms)
        # The same application and topics; its own data directory and web port per worker.
        runs = [run] + [
            replace(run, workdir=workdir / f"worker-{n + 1}", web_port=free_port())
            for n in range(1, WORKERS)
        ]
        children = []
        for n, each in enumerate(runs):
            each.workdir.mkdir(parents=True, exist_ok=True)
            log_name = f"scaleout-{n + 1}.log"
            children.append(system.launch(each, wait, log_name=log_name, extra_env=extra_env))
        with contextlib.ExitStack() as stack:
            monitors = [stack.enter_context(Monitor(child.pid)) for child in children]
            try:
                await _all_ready(runs, children)
                published = time.time()
                await publish(found.bootstrap, run.events_topic, workload.records)
                seen, watch = await wait_for_outputs(
                    run,
                    system.outputs(run),
                    expected.outputs,
                    children[0],
                    log,
                    f"{system.key} x{WORKERS}",
                    since=published,
                )
            finally:
                for child in children:
                    child.stop()
        firsts = [
            await system.first_consume(each, c) for each, c in zip(runs, children, strict=True)
        ]
    if not seen:
        raise SystemFailed(f"{system.key} x{WORKERS}: no output:\n{children[0].tail()}")
    known = [f for f in firsts if f is not None]
    first, last = window(min(known) if known else None, seen, watch)
    seconds = max(last - first, 1e-3)
    verdict = verify(system, run, seen, expected, inputs)
    cpu = sum(m.cpu_between(first, last) for m in monitors)
    return ThroughputRun(
        system=system.key,
        events=inputs,
        outputs=len(seen),
        seconds=round(seconds, 3),
        events_per_s=round(inputs / seconds, 1),
        cpu_s_per_1k=round(cpu / (inputs / 1000), 4),
        peak_rss_mb=round(sum(m.peak_rss for m in monitors) / MB, 1),
        broker_cpu_s_per_1k=None,
        fetch_wait_ms=wait,
        correct=verdict.ok,
        verdict=verdict.summary,
    )
