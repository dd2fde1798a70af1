"""Hostile input on ``consent.events``: every bad record reaches the dead-letter topic intact, every
valid one is processed, and the worker never restarts anything."""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.codec import RejectedRecord, decode_event
from schemas.deadletter import DeadLetter
from streams.core.engine import Engine
from streams.core.policy import Policy
from tests.resilience.cluster import Record, read_to_end, wait_drained
from tests.resilience.harness import Publisher, destinations, outputs, start
from tests.resilience.hostile import MALFORMED, edge_cases, malformed, valid_event
from tests.resilience.report import FULL, Mode, Report
from tests.resilience.workload import judge
from tests.support.examples import examples
from tests.support.pipeline import Pipeline, pipeline_for

pytestmark = pytest.mark.resilience

PART = ("hostile", "hostile input (Kafka)")
EXAMPLES = 2000 if FULL else examples(300)
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rejected(key: bytes | None, value: bytes | None, engine: Engine) -> list[Any]:
    """The field errors the worker would dead-letter with; [] if the record is valid."""
    try:
        event = decode_event(value, key)
    except RejectedRecord as exc:
        return list(exc.errors)
    return list(engine.admit(event))


# -- the codec, without a broker ----------------------------------------------------------------


@FAST
@given(rng=st.randoms(use_true_random=False), category=st.sampled_from(sorted(MALFORMED)))
def test_every_malformed_record_is_rejected_with_reasons(
    rng: random.Random, category: str, policy: Policy
) -> None:
    key, value = MALFORMED[category](rng, 1)
    errors = _rejected(key, value, Engine(policy))
    assert errors, f"{category}: accepted {value[:200] if value else value!r}"


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(
    field=st.sampled_from(
        [
            "event_id",
            "type",
            "occurred_at",
            "controller",
            "subject_id",
            "purpose",
            "channel",
            "objection",
            "signal",
            "identifiers",
            "source",
            "jurisdiction",
            "evidence",
            "extra",
        ]
    ),
    value=_JSON,
    keyed=st.booleans(),
)
def test_any_json_in_any_field_is_accepted_or_rejected_cleanly(
    field: str, value: Any, keyed: bool
) -> None:
    event = {**valid_event(1), field: value}
    key = (
        str(event["subject_id"]).encode()
        if keyed and isinstance(event["subject_id"], str)
        else None
    )
    try:
        decode_event(orjson.dumps(event), key)
    except RejectedRecord as exc:
        assert exc.errors


@FAST
@given(value=st.binary(max_size=3000), key=st.none() | st.binary(max_size=40))
def test_arbitrary_bytes_are_accepted_or_rejected_cleanly(value: bytes, key: bytes | None) -> None:
    try:
        decode_event(value, key)
    except RejectedRecord as exc:
        assert exc.errors


@FAST
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
    offset_minutes=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
@example(moment=datetime(1, 1, 1), offset_minutes=1)  # earlier than year 1 in UTC
def test_any_rfc3339_timestamp_is_accepted_or_rejected_cleanly(
    moment: datetime, offset_minutes: int
) -> None:
    stamp = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()
    try:
        decode_event(orjson.dumps(valid_event(1, occurred_at=stamp)))
    except RejectedRecord as exc:
        assert exc.errors


# -- the worker ---------------------------------------------------------------------------------


def _dead_letters(records: list[Record], source_topic: str) -> tuple[Counter[Any], list[str]]:
    """(key, payload) of every dead letter, and whatever is wrong with them."""
    found: Counter[Any] = Counter()
    problems: list[str] = []
    for record in records:
        letter = DeadLetter.model_validate_json(record.value or b"")
        payload = base64.b64decode(letter.payload_b64)
        key = None if letter.key_b64 is None else base64.b64decode(letter.key_b64)
        found[(key, payload)] += 1
        if letter.source.topic != source_topic:
            problems.append(f"source topic {letter.source.topic}")
        if any("could not process" in e.msg for e in letter.errors):
            problems.append(f"processing failure, not a validation error: {letter.errors}")
    return found, problems


@dataclass
class Running:
    """One worker for the tests below, and how many records they have published in all."""

    pipeline: Pipeline
    published: int = 0

    async def publish(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        pipeline = self.pipeline
        async with Publisher(
            pipeline.bootstrap, pipeline.topics.events, max_request_size=4 * 1024 * 1024
        ) as publisher:
            await publisher.send(records)  # type: ignore[arg-type]
        self.published += len(records)
        await wait_drained(
            pipeline.bootstrap,
            pipeline.worker.app_id,
            pipeline.topics.events,
            self.published,
            pipeline.topics.by_subject,
        )


@pytest.fixture(scope="module")
async def running(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    pipeline = pipeline_for(bootstrap, tmp_path_factory.mktemp("hostile"))
    try:
        await start(pipeline.worker)
        yield Running(pipeline)
    finally:
        pipeline.worker.stop()


def _agent_crashes(pipeline: Pipeline) -> list[str]:
    return [
        line[:300]
        for line in pipeline.worker.log_path.read_text(errors="replace").splitlines()
        if "Crashed reason=" in line or "Restarting dead" in line
    ]


@pytest.mark.integration
@pytest.mark.timeout(900 if FULL else 240)
async def test_worker_dead_letters_every_bad_record_and_processes_every_valid_one(
    running: Running, policy: Policy, mode: Mode, report: Report
) -> None:
    """Malformed records of every category, shuffled among valid ones, through a real worker.

    Records near the broker's size limit have a test of their own below.
    """
    seed = mode.seed + 17
    print(f"\nhostile input: seed {seed}", flush=True)
    rng = random.Random(seed)
    engine = Engine(policy)
    bad: list[tuple[str, tuple[bytes | None, bytes | None]]] = [
        malformed(rng, n) for n in range(mode.hostile_examples)
    ]
    valid: list[tuple[bytes | None, bytes | None]] = [
        (str(e["subject_id"]).encode(), orjson.dumps(e))
        for e in (valid_event(n) for n in range(10**6, 10**6 + mode.hostile_examples // 3))
    ]
    valid += edge_cases(2 * 10**6)
    for category, (key, value) in bad:  # the generator itself must be right
        assert _rejected(key, value, engine), f"{category} generated a valid record"
    for key, value in valid:
        assert not _rejected(key, value, engine), f"edge case rejected: {value!r:.120}"
    arrival: list[tuple[bytes | None, bytes | None]] = [r for _, r in bad] + valid
    rng.shuffle(arrival)

    pipeline = running.pipeline
    worker = pipeline.worker
    await running.publish(arrival)
    dead = await read_to_end(pipeline.bootstrap, pipeline.topics.deadletter)
    records = await outputs(pipeline)
    alive = worker.process is not None and worker.process.poll() is None
    restarts = worker.restarts_seen - 1
    crashes = _agent_crashes(pipeline)

    found, problems = _dead_letters(dead, pipeline.topics.events)
    expected = Counter((key, value or b"") for _, (key, value) in bad)
    missing = expected - found
    extra = found - expected
    verdict = judge(
        policy, [orjson.loads(v or b"") for _, v in valid], records, destinations(pipeline.topics)
    )
    by_category = Counter(category for category, _ in bad)
    report.add(
        *PART,
        seed=str(seed),
        bad_records=len(bad),
        categories=len(by_category),
        valid_records=len(valid),
        dead_lettered_intact=sum((found & expected).values()),
        bad_records_not_dead_lettered=sum(missing.values()),
        valid_records_dead_lettered=sum(extra.values()),
        valid_not_processed=len(verdict.missing) + len(verdict.mismatches),
        worker_restarts=restarts,
        agent_crashes=len(crashes),
    )
    report.note(
        *PART, "categories: " + ", ".join(f"{c} {n}" for c, n in sorted(by_category.items()))
    )
    assert alive and restarts == 0 and not crashes, crashes[:3]
    assert not problems, problems[:5]
    assert not missing, f"not dead-lettered (intact): {list(missing)[:3]}"
    assert not extra, f"dead-lettered but valid, or altered: {list(extra)[:3]}"
    assert verdict.ok, verdict.explain()


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_records_that_once_broke_the_intake_are_dead_lettered(
    running: Running, policy: Policy, report: Report
) -> None:
    """Bad records that used to crash the intake agent, which then skipped them (lost).

    * ``occurred_at`` of ``0001-01-01T00:00:00+00:01``: valid RFC 3339, but before year 1 in UTC;
      the UTC conversion raised ``OverflowError`` instead of a validation error.
    * Records of 800 kB and 1 MB: rejected for their size, but their dead letters (base64,
      4/3 of the size) exceeded the producer's request limit.

    All must reach the dead-letter topic intact, and the valid event after them be processed.
    """
    overflow = valid_event(9 * 10**6 + 1, occurred_at="0001-01-01T00:00:00+00:01")
    oversized = valid_event(9 * 10**6 + 2, evidence={"blob": "x" * 800_000})
    largest = valid_event(9 * 10**6 + 4, evidence={"blob": "y" * 1_000_000})
    follower = valid_event(9 * 10**6 + 3)
    bad = [(str(e["subject_id"]).encode(), orjson.dumps(e)) for e in (overflow, oversized, largest)]
    good = [(str(follower["subject_id"]).encode(), orjson.dumps(follower))]
    pipeline = running.pipeline
    before = len(_agent_crashes(pipeline))
    await running.publish([*bad, *good])
    dead = await read_to_end(pipeline.bootstrap, pipeline.topics.deadletter)
    records = [r for r in await outputs(pipeline) if r.key == good[0][0]]
    crashes = _agent_crashes(pipeline)[before:]
    found, _ = _dead_letters(dead, pipeline.topics.events)
    lost = [v[:60] for k, v in bad if found[(k, v)] == 0]
    verdict = judge(policy, [follower], records, destinations(pipeline.topics))
    report.add(
        *PART,
        out_of_range_or_near_limit_records=len(bad),
        out_of_range_or_near_limit_lost=len(lost),
    )
    assert verdict.ok, verdict.explain()
    assert not lost, f"lost, not dead-lettered: {lost}; agent crashes: {crashes[:2]}"
    assert not crashes, crashes[:2]
