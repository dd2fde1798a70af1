"""Broker trouble: a worker started before its broker, a broker that never comes, outages short
and long, and a broker that comes back without its data. Each test has brokers of its own."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.broker import EmbeddedBroker, free_port
from streams.core.policy import Policy
from streams.worker import EXIT_BROKER_UNREACHABLE
from tests.resilience.cluster import RelayedBroker, wait_drained
from tests.resilience.harness import RECOVERY_ENV, Publisher, destinations, outputs, start
from tests.resilience.report import Report
from tests.resilience.workload import T0, generate, judge
from tests.support.pipeline import Pipeline, pipeline_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("broker", "broker trouble")


def log_entries(worker: WorkerProcess, message: str) -> list[dict[str, Any]]:
    found = []
    text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    for line in text.splitlines():
        if message in line:
            try:
                found.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return [entry for entry in found if entry.get("msg") == message]


def exit_code_within(worker: WorkerProcess, seconds: float) -> int | None:
    assert worker.process is not None
    try:
        return worker.process.wait(seconds)
    except Exception:
        return None


def unsubscribe(n: int, prefix: str = "bt") -> tuple[bytes, bytes]:
    event = {
        "event_id": f"{prefix}-{n}",
        "type": "unsubscribed",
        "occurred_at": T0.isoformat().replace("+00:00", "Z"),
        "controller": "kms-uk",
        "subject_id": f"{prefix}-subject-{n}",
    }
    return event["subject_id"].encode(), orjson.dumps(event)


def told(records: list[Any], subject: str) -> int:
    return sum(1 for r in records if r.key == subject.encode())


@pytest.mark.timeout(180)
async def test_worker_started_before_its_broker_waits_and_says_so(
    tmp_path: Path, report: Report
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port, log_dir=tmp_path)
    pipeline = pipeline_for(broker.bootstrap, tmp_path, CONSENT_BROKER_WAIT="60")
    # Started from this thread: the embedded broker dies with the thread that started it.
    starting = asyncio.create_task(start(pipeline.worker))
    try:
        # The broker comes up only once the worker has said three times that it is waiting.
        deadline = time.monotonic() + 60
        while len(log_entries(pipeline.worker, "broker not reachable; retrying")) < 3:
            assert time.monotonic() < deadline, "the worker never said it was waiting"
            await asyncio.sleep(0.2)
        broker.start()
        await starting
        retries = log_entries(pipeline.worker, "broker not reachable; retrying")
        reached = log_entries(pipeline.worker, "broker reachable")
        async with Publisher(broker.bootstrap, pipeline.topics.events) as publisher:
            await publisher.send([unsubscribe(1)])
            await wait_drained(
                broker.bootstrap,
                pipeline.worker.app_id,
                publisher.topic,
                1,
                pipeline.topics.by_subject,
            )
        records = await outputs(pipeline)
    finally:
        starting.cancel()
        pipeline.worker.stop()
        broker.stop()
    report.add(
        *PART,
        late_broker_retries_logged=len(retries),
        late_broker_waited_s=reached[0]["waited_s"] if reached else None,
    )
    assert len(retries) >= 2
    assert all({"attempt", "retry_in_s", "gives_up_in_s", "error"} <= set(r) for r in retries)
    assert reached and reached[0]["waited_s"] >= 2.5
    assert told(records, "bt-subject-1") >= 2  # processed once the broker was there


@pytest.mark.timeout(60)
async def test_worker_gives_up_on_a_broker_that_never_comes(tmp_path: Path, report: Report) -> None:
    pipeline = pipeline_for(f"127.0.0.1:{free_port()}", tmp_path, CONSENT_BROKER_WAIT="3")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=f"worker exited with {EXIT_BROKER_UNREACHABLE}"):
        await start(pipeline.worker, timeout=30)
    took = time.monotonic() - started
    gave_up = log_entries(pipeline.worker, "broker not reachable; giving up")
    report.add(*PART, no_broker_exit_code=EXIT_BROKER_UNREACHABLE, no_broker_exit_s=round(took, 1))
    assert gave_up and gave_up[0]["exit_code"] == EXIT_BROKER_UNREACHABLE
    assert took < 3 + 10


def _probe(kind: str, n: int, minutes: int) -> tuple[bytes, bytes]:
    event = {
        "event_id": f"probe-{kind}-{n}",
        "type": kind,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "controller": "hms-contact-nl",
        "subject_id": f"probe-{n:03d}",
        "purpose": "newsletter",
    }
    return event["subject_id"].encode(), orjson.dumps(event)


@pytest.mark.timeout(300)
async def test_outages_are_ridden_out_or_end_the_worker_and_state_persists(
    tmp_path: Path, policy: Policy, report: Report
) -> None:
    """Through a relay that can drop every connection while the broker keeps its data.

    A cut shorter than the worker's broker wait is ridden out: everything is processed and the
    state written after it reaches the changelog (a worker with an empty data directory recovers
    it). A cut longer than the wait ends the worker with EXIT_BROKER_UNREACHABLE.
    """
    wait = 12.0
    outage = 8.0  # longer than the group session (6 s): the group forgets the worker meanwhile
    broker = RelayedBroker(tmp_path).start()
    pipeline = pipeline_for(
        broker.bootstrap, tmp_path, CONSENT_BROKER_WAIT=str(wait), **RECOVERY_ENV
    )
    worker = pipeline.worker
    workload = generate(policy, 4242, events=300, subjects=30)
    half = len(workload.records) // 2
    grants_before = [_probe("consent.granted", n, 40) for n in range(12)]
    grants_after = [_probe("consent.granted", n, 40) for n in range(12, 24)]
    stale = [_probe("consent.withdrawn", n, 30) for n in range(24)]
    try:
        await start(worker)
        pid = worker.process.pid if worker.process else None
        async with Publisher(broker.bootstrap, pipeline.topics.events) as publisher:
            await publisher.send([*workload.records[:half], *grants_before])
            await asyncio.sleep(0.3)  # mid-processing
            broker.relay.cut()
            await asyncio.sleep(outage)
            broker.relay.restore()
            await publisher.send([*workload.records[half:], *grants_after])
            await _drained(pipeline, publisher, timeout=120)
            rode_out = worker.process is not None and worker.process.poll() is None
            same_process = worker.process is not None and worker.process.pid == pid
            # A fresh worker with an empty data directory has only the changelog to go by.
            worker.kill()
            fresh = WorkerProcess(
                worker.bootstrap,
                worker.app_id,
                tmp_path / "fresh-data",
                tmp_path / "fresh.log",
                extra_env=dict(worker.extra_env),
            )
            await start(fresh)
            await publisher.send(stale)
            await _drained(pipeline, publisher, timeout=120)
            records = await outputs(pipeline)
            # Now a cut longer than the wait.
            broker.relay.cut()
            cut_at = time.monotonic()
            code = await asyncio.to_thread(exit_code_within, fresh, wait + 20)
            exit_after = time.monotonic() - cut_at
            broker.relay.restore()
    finally:
        worker.kill()
        if "fresh" in locals():
            fresh.kill()
        broker.stop()
    events = [
        orjson.loads(v) for _, v in [*workload.records, *grants_before, *grants_after, *stale]
    ]
    distinct = list({e["event_id"]: e for e in events}.values())
    verdict = judge(policy, distinct, records, destinations(pipeline.topics))
    report.add(
        *PART,
        short_outage_s=outage,
        short_outage_worker_exits=0 if rode_out and same_process else 1,
        short_outage_pairs_checked=verdict.pairs,
        short_outage_mismatches=len(verdict.mismatches) + len(verdict.missing),
        long_outage_exit_code=code,
        long_outage_exit_after_s=round(exit_after, 1),
        broker_wait_s=wait,
    )
    assert rode_out and same_process, "the worker did not ride out a short outage"
    assert verdict.ok, verdict.explain()
    assert code == EXIT_BROKER_UNREACHABLE
    assert exit_after < wait + 12


async def _drained(pipeline: Pipeline, publisher: Publisher, timeout: float) -> None:
    await wait_drained(
        pipeline.bootstrap,
        pipeline.worker.app_id,
        publisher.topic,
        publisher.sent,
        pipeline.topics.by_subject,
        timeout=timeout,
    )


@pytest.mark.timeout(240)
async def test_broker_that_comes_back_empty_ends_the_worker(tmp_path: Path, report: Report) -> None:
    """The embedded broker keeps everything in memory: after a restart it has no topics, no
    offsets and no changelog. The worker must not carry on as if nothing had happened.

    It exits non-zero: through the broker watch (EXIT_CLUSTER_CHANGED), or through Faust's own
    recovery check (ConsistencyError: the local store is ahead of the changelog), whichever
    notices first. A restart on the same data directory refuses in the same way, so a
    supervisor cannot hide the loss; once the data directory is removed (the operator's part),
    the worker starts on the new cluster and processes events again.
    """
    port = free_port()
    broker = EmbeddedBroker(port=port, log_dir=tmp_path).start()
    pipeline = pipeline_for(broker.bootstrap, tmp_path, CONSENT_BROKER_WAIT="30")
    worker = pipeline.worker
    reborn: EmbeddedBroker | None = None
    try:
        await start(worker)
        async with Publisher(broker.bootstrap, pipeline.topics.events) as publisher:
            await publisher.send([unsubscribe(n) for n in range(20)])
            await _drained(pipeline, publisher, timeout=60)
        broker.stop(grace=0)  # the data is gone either way
        reborn = EmbeddedBroker(port=port, log_dir=tmp_path).start()
        restarted_at = time.monotonic()
        code = await asyncio.to_thread(exit_code_within, worker, 60)
        exit_after = time.monotonic() - restarted_at
        reason = _loss_reported(worker)
        # A supervisor restarts it on the same data directory: it must refuse again.
        refused = False
        try:
            await start(worker, timeout=60)
        except RuntimeError:
            refused = True
        refused_code = worker.process.returncode if worker.process else None
        # The operator removes the data directory; the worker then runs on the new cluster.
        worker.kill()
        await asyncio.to_thread(shutil.rmtree, worker.data_dir)
        await start(worker)
        async with Publisher(reborn.bootstrap, pipeline.topics.events) as publisher:
            await publisher.send([unsubscribe(100)])
            await _drained(pipeline, publisher, timeout=60)
        records = await outputs(pipeline)
    finally:
        worker.kill()
        broker.stop()
        if reborn is not None:
            reborn.stop()
    report.add(
        *PART,
        emptied_broker_exit_code=code,
        emptied_broker_exit_after_s=round(exit_after, 1),
        emptied_broker_reported_as=reason,
        emptied_broker_restart_refused=refused,
    )
    assert code not in (None, 0), "the worker carried on against a cluster that lost its data"
    assert reason, "no log line says why the worker stopped"
    assert exit_after < 45
    assert refused and refused_code not in (None, 0)
    assert told(records, "bt-subject-100") >= 2


def _loss_reported(worker: WorkerProcess) -> str | None:
    if log_entries(worker, "the cluster lost this worker's data"):
        return "broker watch (exit 76)"
    if "ConsistencyError" in worker.log_path.read_text(errors="replace"):
        return "Faust recovery: ConsistencyError"
    return None
