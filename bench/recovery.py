"""Table recovery and memory: a worker with an empty data directory rebuilds ``subjects``.

The changelog is written the way the worker writes it (key ``controller/subject``, the engine's
state encoding, the partition the subject id hashes to), with real states taken from the workload's
reference fold. Each partition's last record goes in a produce batch of its own: the embedded
broker answers ListOffsets with the first offset of the last batch + 1, and Faust stops reading a
changelog at that offset. The worker is then started on it; the time between Faust's "restoring"
and "done reading" log lines is the recovery time; "ready after" runs from the process start to
the first 200 from ``/ready`` (it adds the interpreter's start and the group join). The
worker's resident memory is sampled when recovery begins and after it settles, and probe events
whose outcome depends on the recovered state check that it is exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.kafka import Tail, cluster, create_topics, producer
from bench.processes import Monitor, serves_ready
from bench.reference import SuppressionKey, suppression_key
from bench.systems import CONSENT_STREAMS, Run
from bench.throughput import MB, Log, SystemFailed
from bench.workload import probe_event
from schemas.codec import decode_event
from schemas.vocabulary import EventType
from streams.core.engine import Engine
from streams.core.state import EMPTY, SubjectState
from streams.settings import DEFAULT_FETCH_WAIT_MS
from streams.topology import DEFAULT_PARTITIONS, partition_key, partition_of

RESTORING = "Restoring state from changelog topics"
RESTORED = "Done reading from changelog topics"
UP_TO_DATE = "table recovery: active partitions up to date"
PROBES = 60


@dataclass(frozen=True, slots=True)
class Template:
    controller: str
    state: SubjectState
    value: bytes


def templates(states: dict[str, SubjectState], limit: int = 5000) -> list[Template]:
    """Distinct final states of the workload's subjects, to fill a big table with."""
    out = []
    for key, state in states.items():
        if state.seen:
            out.append(Template(key.partition("/")[0], state, state.to_bytes()))
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class RecoveryRun:
    subjects: int
    changelog_records: int
    seconds: float
    records_per_s: float
    ready_after_s: float
    #: RSS when recovery began (an empty table), and settled after it.
    rss_before_mb: float
    rss_mb: float
    peak_rss_mb: float
    probes: int
    probes_ok: bool
    verdict: str
    #: From the worker's own "up to date" log line: seconds building and writing the RocksDB
    #: batches and flushing them; the rest of the recovery is fetching (aiokafka and broker).
    write_s: float | None = None
    flush_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def write_table(
    bootstrap: str, topic: str, subjects: int, pool: Sequence[Template], log: Log
) -> dict[int, tuple[bytes, bytes]]:
    """``subjects`` table entries; returns each partition's last record (written alone)."""
    out = producer(bootstrap)
    await out.start()
    last: dict[int, tuple[bytes, bytes]] = {}
    try:
        pending = []
        for i in range(subjects):
            template = pool[i % len(pool)]
            key = f"{template.controller}/tbl-{i:08d}".encode()
            # Where the worker keeps it: the partition of the subject id (streams/topology.py).
            partition = partition_of(partition_key(key), DEFAULT_PARTITIONS)
            sent = await out.send(topic, template.value, key=key, partition=partition)
            pending.append((key, template.value, sent))
            if len(pending) >= 50_000:
                for k, v, fut in pending:
                    last[(await fut).partition] = (k, v)
                pending.clear()
                if (i + 1) % 200_000 == 0:
                    log(f"    table: {i + 1:,} of {subjects:,} entries written")
        for k, v, fut in pending:
            last[(await fut).partition] = (k, v)
        await out.flush()
        # The same last record again, alone in its batch: an identical update, exact end offset.
        for partition, (key, value) in sorted(last.items()):
            await out.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await out.stop()
    return last


@dataclass(frozen=True, slots=True)
class _Probe:
    record: tuple[bytes | None, bytes]
    expected: frozenset[SuppressionKey]


def choose_probes(
    engine: Engine,
    pool: Sequence[Template],
    subjects: int,
    must: Sequence[bytes],
    rng: random.Random,
) -> list[_Probe]:
    """Events whose messages differ between the recovered state and an empty one."""
    keys = list(must) + [
        f"{pool[i % len(pool)].controller}/tbl-{i:08d}".encode()
        for i in rng.sample(range(subjects), min(subjects, PROBES))
    ]
    at = datetime.now(UTC) - timedelta(seconds=5)
    out = []
    for n, key in enumerate(dict.fromkeys(keys)):
        controller, _, subject = key.decode().partition("/")
        state = pool[int(subject[4:]) % len(pool)].state
        found = _distinguishing(engine, controller, subject, state, f"rcv-{n:05d}", at)
        if found is not None:
            out.append(found)
    return out


def _distinguishing(
    engine: Engine, controller: str, subject: str, state: SubjectState, event_id: str, at: datetime
) -> _Probe | None:
    purposes = engine.policy.controllers[controller].purposes.values()
    candidates: list[tuple[EventType, dict[str, str]]] = [
        (EventType.RESTRICTION_LIFTED, {}),
        (EventType.ERASURE_REQUESTED, {}),
    ]
    for purpose in purposes:
        for channel in purpose.channels:
            scope = {"purpose": purpose.name, "channel": channel.value}
            candidates += [(EventType.CONSENT_GRANTED, scope), (EventType.CONSENT_WITHDRAWN, scope)]
    for kind, scope in candidates:
        record = probe_event(controller, subject, kind, event_id, at, **scope)
        event = decode_event(record[1], record[0])
        with_state = engine.apply(state, event, at).messages
        without = engine.apply(EMPTY, event, at).messages
        expected = frozenset(suppression_key(m.destination.value, m.value) for m in with_state)
        if expected != {suppression_key(m.destination.value, m.value) for m in without}:
            return _Probe(record, expected)
    return None


async def measure(
    engine: Engine,
    pool: Sequence[Template],
    *,
    subjects: int,
    workdir: Path,
    bootstrap: str | None,
    log: Log,
    seed: int = 7,
    extra_env: dict[str, str] | None = None,
) -> RecoveryRun:
    async with cluster(bootstrap) as found:
        run = Run(found.bootstrap, workdir, DEFAULT_PARTITIONS)
        await create_topics(found.bootstrap, run.public_topics, DEFAULT_PARTITIONS)
        await create_topics(found.bootstrap, [run.changelog_topic], DEFAULT_PARTITIONS)
        started = time.time()
        last = await write_table(found.bootstrap, run.changelog_topic, subjects, pool, log)
        log(f"    table: {subjects:,} entries written in {time.time() - started:.1f} s")
        tails = [key for key, _ in last.values()]
        probes = choose_probes(engine, pool, subjects, tails, random.Random(seed))
        child = CONSENT_STREAMS.launch(
            run,
            DEFAULT_FETCH_WAIT_MS,
            log_name="recovery.log",
            watch=(RESTORING, RESTORED),
            extra_env=extra_env,
        )
        launched = time.time()
        with Monitor(child.pid, interval=0.25) as monitor:
            try:
                ready = await _wait_ready(run, child, subjects, log)
                await asyncio.sleep(2.0)
                settled = monitor.rss_since(ready)
                ok, verdict = await _check(run, probes)
            finally:
                child.stop()
    begin, end = child.seen.get(RESTORING), child.seen.get(RESTORED)
    if begin is None or end is None:
        raise SystemFailed(f"recovery log lines not seen:\n{child.tail()}")
    seconds = max(end - begin, 1e-3)
    records = subjects + len(last)
    return RecoveryRun(
        subjects=subjects,
        changelog_records=records,
        seconds=round(seconds, 2),
        records_per_s=round(records / seconds, 1),
        ready_after_s=round(ready - launched, 2),
        rss_before_mb=round(next(iter(monitor.rss_since(begin)), 0) / MB, 1),
        rss_mb=round(max(settled, default=0) / MB, 1),
        peak_rss_mb=round(monitor.peak_rss / MB, 1),
        probes=len(probes),
        probes_ok=ok,
        verdict=verdict,
        **_breakdown(child.log_path),
    )


def _breakdown(log_path: Path) -> dict[str, float]:
    """What the worker reported about its bulk recovery (the last such line)."""
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in log_path.read_text(errors="replace").splitlines():
            if UP_TO_DATE in line:
                with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                    entry = orjson.loads(line)
                    found = {"write_s": entry["write_s"], "flush_s": entry["flush_s"]}
    return found


async def _wait_ready(run: Run, child: Any, subjects: int, log: Log) -> float:
    start = last_report = time.time()
    limit = 120 + subjects / 1000
    while not serves_ready(run.web_port):
        if child.exited:
            raise SystemFailed(f"worker exited during recovery:\n{child.tail()}")
        now = time.time()
        if now - start > limit:
            raise SystemFailed(f"worker not ready after {limit:.0f} s:\n{child.tail()}")
        if now - last_report >= 15:
            phase = "recovering" if RESTORING in child.seen else "starting"
            log(f"    worker {phase}, {now - start:.0f} s")
            last_report = now
        await asyncio.sleep(0.25)
    return time.time()


async def _check(run: Run, probes: Sequence[_Probe]) -> tuple[bool, str]:
    """Send the probes; the messages must be the ones the recovered states call for."""
    expected = set().union(*(p.expected for p in probes)) if probes else set()
    destinations = {topic: d for d, topic in run.suppression_topics.items()}
    got: set[SuppressionKey] = set()
    out = producer(run.bootstrap, linger_ms=0)
    await out.start()
    try:
        for probe in probes:
            key, value = probe.record
            await out.send(run.events_topic, value, key=key)
        await out.flush()
    finally:
        await out.stop()
    topics = list(run.suppression_topics.values())
    async with Tail(run.bootstrap, topics, run.partitions, 100) as tail:
        deadline = time.time() + 45
        while not expected <= got and time.time() < deadline:
            _, seen = await tail.poll(timeout_ms=200)
            got |= {suppression_key(destinations[s.topic], s.value) for s in seen if s.value}
        with contextlib.suppress(Exception):
            _, seen = await tail.poll(timeout_ms=1500)
            got |= {suppression_key(destinations[s.topic], s.value) for s in seen if s.value}
    missing, unexpected = len(expected - got), len(got - expected)
    if missing or unexpected:
        return False, f"{missing} missing, {unexpected} unexpected probe messages"
    return True, f"{len(probes)} probes answered from recovered state"
