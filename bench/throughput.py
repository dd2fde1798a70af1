"""Throughput: the whole workload published first, then one system drains it; and scale-out,
the same with several worker processes on the same machine.

Events/s is measured from the system's first consume to its last output record (producer
timestamps on the same machine); CPU is the system's process tree over that window (summed over
the processes). The report sets scale-out beside the one-worker figure of the same run: the
percentage the added workers add. For one worker process it also reads the worker's
``/metrics`` once the outputs are in: its mean fetched batch over the drain (records, and the
time of each step), which says how much of a batch is the worker's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.batches import SINCE_START, batch_means, batch_totals
from bench.kafka import Progress, Seen, cluster, create_topics, publish, read_all
from bench.processes import Child, Monitor, serves_ready
from bench.reference import Expected, Verdict, compare, dead_letter_payload, suppression_key
from bench.systems import Run, System
from bench.workload import Workload
from streams.broker import free_port

Log = Callable[[str], None]
MB = 1024 * 1024
#: Worker processes in the scale-out run.
SCALE_OUT_WORKERS = 2
READY_TIMEOUT = 120.0


class SystemFailed(RuntimeError):
    """The system under test exited or never produced its output."""


@dataclass(frozen=True, slots=True)
class ThroughputRun:
    system: str
    events: int
    outputs: int
    seconds: float
    events_per_s: float
    cpu_s_per_1k: float
    peak_rss_mb: float
    broker_cpu_s_per_1k: float | None
    fetch_wait_ms: int
    correct: bool
    verdict: str
    #: The worker's fetched batches over the whole drain, their mean records and step times
    #: (one worker process only; None for the peers, which do not say).
    batches: int | None = None
    batch_records: float | None = None
    fold_ms: float | None = None
    send_ms: float | None = None
    store_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(system: System, run: Run, seen: list[Seen], expected: Expected, inputs: int) -> Verdict:
    if not system.stateful:
        ok = len(seen) >= inputs
        return Verdict(ok, f"{len(seen)} outputs for {inputs} inputs (stateless: count only)")
    destinations = {topic: d for d, topic in run.suppression_topics.items()}
    suppressions = set()
    deadletters = set()
    for record in seen:
        if record.value is None:
            continue
        if record.topic == run.deadletter_topic:
            deadletters.add(dead_letter_payload(record.value))
        else:
            suppressions.add(suppression_key(destinations[record.topic], record.value))
    return compare(expected, suppressions, deadletters)


@dataclass(slots=True)
class Watch:
    """What polling the end offsets saw: when the system started, when output stopped."""

    launched: float
    last_change: float | None = None


async def wait_for_outputs(
    run: Run,
    topics: list[str],
    target: int,
    child: Child,
    log: Log,
    label: str,
    *,
    stall_timeout: float = 60.0,
    since: float | None = None,
) -> tuple[list[Seen], Watch]:
    """Poll end offsets (cheap) until the outputs stop growing, then read them all.

    ``since`` is when the system could first consume (default now): a system already running
    when the workload is published starts consuming while it is being published.
    """
    watch = Watch(launched=time.time() if since is None else since)
    start = last_report = last_read = watch.launched
    last = -1
    seen: list[Seen] = []
    async with Progress(run.bootstrap, topics, run.partitions) as progress:
        while True:
            if child.exited:
                raise SystemFailed(f"{label} exited early:\n{child.tail()}")
            count = await progress.count()
            now = time.time()
            if count != last:
                last, watch.last_change = count, now
            if now - last_report >= 10:
                log(f"    {label}: ~{count:,} of {target:,} outputs after {now - start:.0f} s")
                last_report = now
            quiet = now - (watch.last_change or now)
            if (count >= target or (count > 0 and quiet >= 3)) and now - last_read >= 5:
                seen = await read_all(run.bootstrap, topics, run.partitions)
                last_read = time.time()
                if len(seen) >= target:
                    return seen, watch
            if quiet >= stall_timeout or (count == 0 and now - start > stall_timeout * 3):
                if count == 0:
                    raise SystemFailed(f"{label} produced nothing:\n{child.tail()}")
                return seen or await read_all(run.bootstrap, topics, run.partitions), watch
            await asyncio.sleep(0.05)


def window(first: float | None, seen: list[Seen], watch: Watch) -> tuple[float, float]:
    """(first consume, last output), from the system's own stamps where they are processing time.

    Output records carry the producer's wall clock unless a system copies the input record's
    timestamp; then the polled time of the last change stands in (accurate to the poll interval).
    """
    if first is None or first < watch.launched:
        raise SystemFailed("no first consume observed")
    start = first
    last = max(record.timestamp_ms for record in seen) / 1000
    if last < start and watch.last_change is not None:
        last = watch.last_change
    return start, last


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
    workers: int = 1,
) -> ThroughputRun:
    """One process drains the workload published before it starts; or, for scale-out, ``workers``
    processes of one application (one consumer group, each its own data directory and web port)
    are started on the empty input topic and the workload is published once all answer
    ``/ready``, so that the group has settled into one assignment before the first record is
    consumed (a rebalance mid-run would measure the group join, not the added capacity). CPU and
    RSS are summed over the processes; the broker's CPU is given for one process only."""
    inputs = len(workload.records)
    target = expected.outputs if system.stateful else inputs
    label = system.key if workers == 1 else f"{system.key} x{workers}"
    async with cluster(bootstrap) as found:
        run = Run(found.bootstrap, workdir, partitions)
        await create_topics(found.bootstrap, run.public_topics + system.outputs(run), partitions)
        if workers == 1:
            await publish(found.bootstrap, run.events_topic, workload.records)
        wait = system.fetch_wait(fetch_wait_ms)
        # The same application and topics; its own data directory and web port per worker.
        runs = [run] + [
            replace(run, workdir=workdir / f"worker-{n + 1}", web_port=free_port())
            for n in range(1, workers)
        ]
        children = []
        for n, each in enumerate(runs):
            each.workdir.mkdir(parents=True, exist_ok=True)
            log_name = "throughput.log" if workers == 1 else f"scaleout-{n + 1}.log"
            children.append(system.launch(each, wait, log_name=log_name, extra_env=extra_env))
        with contextlib.ExitStack() as stack:
            monitors = [stack.enter_context(Monitor(child.pid)) for child in children]
            broker = (
                stack.enter_context(Monitor(found.broker_pid))
                if found.broker_pid and workers == 1
                else None
            )
            try:
                since = None
                if workers > 1:
                    await _all_ready(runs, children)
                    since = time.time()
                    await publish(found.bootstrap, run.events_topic, workload.records)
                seen, watch = await wait_for_outputs(
                    run, system.outputs(run), target, children[0], log, label, since=since
                )
                steps = (
                    await asyncio.to_thread(batch_totals, run.web_port)
                    if system.is_worker and workers == 1
                    else None
                )
            finally:
                for child in children:
                    child.stop()
        firsts = [
            await system.first_consume(each, c) for each, c in zip(runs, children, strict=True)
        ]
    if not seen:
        raise SystemFailed(f"{label}: no output:\n{children[0].tail()}")
    known = [f for f in firsts if f is not None]
    first, last = window(min(known) if known else None, seen, watch)
    seconds = max(last - first, 1e-3)
    per_1k = inputs / 1000
    verdict = verify(system, run, seen, expected, inputs)
    return ThroughputRun(
        system=system.key,
        events=inputs,
        outputs=len(seen),
        seconds=round(seconds, 3),
        events_per_s=round(inputs / seconds, 1),
        cpu_s_per_1k=round(sum(m.cpu_between(first, last) for m in monitors) / per_1k, 4),
        peak_rss_mb=round(sum(m.peak_rss for m in monitors) / MB, 1),
        broker_cpu_s_per_1k=(
            round(broker.cpu_between(first, last) / per_1k, 4) if broker is not None else None
        ),
        fetch_wait_ms=wait,
        correct=verdict.ok,
        verdict=verdict.summary,
        **batch_means(SINCE_START, steps),
    )
