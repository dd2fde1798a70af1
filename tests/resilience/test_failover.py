"""Failover: two workers share the partitions, one is SIGKILLed mid-stream, the other takes over,
recovers the tables and keeps answering correctly, on the topics and through the decisions API."""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.reference import final_decisions
from streams.core.policy import Policy
from streams.security.apikeys import generate_key, hash_key
from tests.resilience.cluster import wait_drained
from tests.resilience.harness import (
    Publisher,
    destinations,
    outputs,
    peer,
    recovery_pipeline,
    start,
)
from tests.resilience.report import FULL, Mode, Report
from tests.resilience.workload import T0, Verdict, Workload, generate, judge
from tests.support.pipeline import Pipeline
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("failover", "failover (2 workers, 1 killed)")
PROBES = 24
#: A consent-based purpose: its grant is told, and a stale withdrawal must not undo it.
PROBE_CONTROLLER, PROBE_PURPOSE = "hms-contact-nl", "newsletter"


@dataclass
class FailoverRun:
    pipeline: Pipeline
    survivor: WorkerProcess
    seed: int
    events: list[dict[str, Any]]
    verdict: Verdict
    victim_partitions: set[int]
    survivor_partitions: set[int]
    api_key: str
    seconds: float


def assigned(log: Path, topic: str) -> set[int]:
    """Partitions of ``topic`` in the worker's latest assignment, from its log."""
    latest: set[int] = set()
    pattern = re.compile(rf"topic='{re.escape(topic)}', partition=(\d+)")
    for line in log.read_text(errors="replace").splitlines():
        if "Setting newly assigned partitions" in line:
            latest = {int(p) for p in pattern.findall(line)}
    return latest


def _probe(kind: str, n: int, minutes: int) -> dict[str, Any]:
    return {
        "event_id": f"probe-{kind}-{n}",
        "type": kind,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "controller": PROBE_CONTROLLER,
        "subject_id": f"probe-{n:03d}",
        "purpose": PROBE_PURPOSE,
    }


def _api_key_env() -> tuple[str, dict[str, str]]:
    """An API key with the read scope, and the worker environment that accepts it."""
    key = generate_key()
    return key, {"CONSENT_API_KEYS": f"resilience:read:{hash_key(key)}"}


@pytest.fixture(scope="module")
async def failover_run(
    bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    policy: Policy,
    mode: Mode,
) -> AsyncIterator[FailoverRun]:
    tmp = tmp_path_factory.mktemp("failover")
    seed = mode.seed + 31
    print(f"\nfailover: seed {seed}", flush=True)
    rng = random.Random(seed)
    workload: Workload = generate(
        policy, seed, events=mode.failover_events, subjects=mode.crash_subjects
    )
    grants = [_probe("consent.granted", n, 40) for n in range(PROBES)]
    stale = [_probe("consent.withdrawn", n, 30) for n in range(PROBES)]
    api_key, env = _api_key_env()
    pipeline = recovery_pipeline(bootstrap, tmp, **env)
    first, second = pipeline.worker, peer(pipeline, tmp, "b")
    started = time.monotonic()
    await asyncio.gather(start(first), start(second))
    await asyncio.to_thread(first.wait_ready, 60)
    await asyncio.to_thread(second.wait_ready, 60)
    try:
        half = len(workload.records) // 2
        early, late = workload.records[:half], workload.records[half:]
        async with Publisher(bootstrap, pipeline.topics.events) as publisher:
            await publisher.send(early)
            await publisher.send((p["subject_id"].encode(), orjson.dumps(p)) for p in grants)
            await wait_drained(
                bootstrap,
                first.app_id,
                publisher.topic,
                publisher.sent,
                pipeline.topics.by_subject,
            )
            victim_partitions = assigned(second.log_path, pipeline.topics.by_subject)
            cut = len(late) // 3
            await publisher.send(late[:cut])
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            second.kill()  # mid-stream
            await publisher.send(late[cut:])
            # Only the recovered table knows these subjects were granted: the withdrawals are
            # older and must change nothing.
            await publisher.send((p["subject_id"].encode(), orjson.dumps(p)) for p in stale)
            await wait_drained(
                bootstrap,
                first.app_id,
                publisher.topic,
                publisher.sent,
                pipeline.topics.by_subject,
                timeout=180,
            )
        events = [*workload.events, *grants, *stale]
        records = await outputs(pipeline)
        verdict = judge(policy, events, records, destinations(pipeline.topics))
        yield FailoverRun(
            pipeline=pipeline,
            survivor=first,
            seed=seed,
            events=events,
            verdict=verdict,
            victim_partitions=victim_partitions,
            survivor_partitions=assigned(first.log_path, pipeline.topics.by_subject),
            api_key=api_key,
            seconds=round(time.monotonic() - started, 1),
        )
    finally:
        second.kill()
        first.stop()


@pytest.mark.timeout(900 if FULL else 300)
async def test_survivor_takes_over_and_the_topics_stay_right(
    failover_run: FailoverRun, report: Report
) -> None:
    run = failover_run
    verdict = run.verdict
    report.add(
        *PART,
        seed=str(run.seed),
        events=len(run.events),
        partitions_of_killed_worker=len(run.victim_partitions),
        partitions_of_survivor_after=len(run.survivor_partitions),
        pairs_checked=verdict.pairs,
        mismatches=len(verdict.mismatches),
        required_missing=len(verdict.missing),
        invalid_messages=len(verdict.invalid),
        duplicate_deliveries=verdict.duplicates,
        seconds=run.seconds,
    )
    assert run.victim_partitions, "the killed worker owned no partition: nothing was taken over"
    assert run.survivor_partitions >= run.victim_partitions
    assert verdict.ok, f"seed {run.seed}: {verdict.explain()}"


@pytest.mark.timeout(600 if FULL else 180)
async def test_survivor_answers_decisions_correctly(
    failover_run: FailoverRun, policy: Policy, report: Report
) -> None:
    run = failover_run
    base = run.survivor.url
    # A lost route must fail here, not pass as "no such subject".
    assert await asyncio.to_thread(_route_exists, base, run.api_key), "no decisions route"
    checked = wrong = unavailable = 0
    problems: list[str] = []
    for (controller, subject), decisions in final_decisions(policy, run.events).items():
        for decision in decisions:
            query = urllib.parse.urlencode({"channel": decision.channel.value})
            url = (
                f"{base}/v1/controllers/{controller}/subjects/"
                f"{urllib.parse.quote(subject, safe='')}/decisions/{decision.purpose.name}?{query}"
            )
            status, body = await asyncio.to_thread(_get_ready, url, run.api_key)
            checked += 1
            if status == 503:
                unavailable += 1
                continue
            answer = body if isinstance(body, dict) else {}
            if (
                status != 200
                or answer.get("allowed") != decision.allowed
                or answer.get("reason") != decision.reason.value
            ):
                wrong += 1
                problems.append(
                    f"{controller}/{subject} {decision.purpose.name}/{decision.channel.value}: "
                    f"expected {decision.allowed} ({decision.reason.value}), got {status} {body}"
                )
    report.add(
        *PART,
        api_decisions_checked=checked,
        api_wrong_answers=wrong,
        api_unavailable_after_retries=unavailable,
    )
    assert wrong == 0, "\n".join(problems[:10])
    assert unavailable == 0


def _get(url: str, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, orjson.loads(body)
        except orjson.JSONDecodeError:
            return exc.code, body[:200]


def _get_ready(url: str, key: str, attempts: int = 20) -> tuple[int, Any]:
    """A 503 (rebalancing) is retried after its Retry-After; never a wrong answer."""
    status, body = _get(url, key)
    for _ in range(attempts):
        if status != 503:
            break
        time.sleep(1)
        status, body = _get(url, key)
    return status, body


def _route_exists(base: str, key: str) -> bool:
    """Tell "no such route" from "no such subject": an unknown controller gives a JSON error."""
    status, body = _get(f"{base}/v1/controllers/no-such-controller/subjects/x/decisions/y", key)
    return status != 404 or (isinstance(body, dict) and "error" in body)
