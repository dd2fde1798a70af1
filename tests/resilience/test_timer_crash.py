"""A worker SIGKILLed while timers are due: after the restart nothing fired twice with different
outcomes and nothing was skipped.

Every subject gets a clock that comes due a few seconds after it is published, spread over a
window; the worker is killed in the middle of that window (some items fired, some not, some
perhaps fired and not yet removed from the index) and restarted on the same data directory.
The timer index comes back from its changelog and the rest fires. Then, per subject: exactly one
timer event id per clock (a re-fire carries the same id), and the destination's last message is
the clock's outcome, with no two messages of one id saying different things.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.resilience.cluster import read_to_end
from tests.resilience.harness import Publisher, recovery_pipeline, start
from tests.resilience.report import FULL, Report
from tests.support.kafka import TopicReader, event_record, unique
from tests.support.timers import clocked_policy, timers_on

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("timers", "timers (killed while due)")
SUBJECTS = 400 if FULL else 60
LIFETIME = 8  # seconds
SPREAD = 4.0  # due times spread over this many seconds
#: purpose -> (the timer event it ends in, the last instruction the destination must have)
#: (a lapse erases the sign-up's data, then restates the decision: the last message is a decision)
ENDS = {
    "offers": ("consent.expired", "suppress"),
    "newsletter": ("confirmation.lapsed", "suppress"),
}


async def test_a_kill_while_timers_are_due_skips_nothing_and_doubles_nothing(
    bootstrap: str, tmp_path: Path, report: Report
) -> None:
    pipeline = recovery_pipeline(
        bootstrap, tmp_path, **timers_on(tmp_path, clocked_policy(LIFETIME, LIFETIME), 0.1)
    )
    topics = pipeline.topics
    email = next(iter(t for d, t in topics.suppressions.items() if d.value == "email"))
    rng = random.Random(20261201)
    worker = await start(pipeline.worker)
    try:
        # Grants that come due between 3 and 3 + SPREAD seconds from now (event time).
        base = datetime.now(UTC) - timedelta(seconds=LIFETIME - 3)
        events: list[dict[str, Any]] = []
        for n in range(SUBJECTS):
            purpose = "offers" if n % 2 else "newsletter"
            at = base + timedelta(seconds=rng.uniform(0, SPREAD))
            events.append(
                {
                    "event_id": unique("grant"),
                    "type": "consent.granted",
                    "occurred_at": at.isoformat(),
                    "controller": "clocked",
                    "subject_id": unique("subject"),
                    "purpose": purpose,
                    "channel": "email",
                }
            )
        async with Publisher(bootstrap, topics.events) as publisher:
            await publisher.send(event_record(e) for e in events)
        # Kill once the first clocks have fired, with others still to come.
        async with TopicReader(bootstrap, topics.events) as reader:
            await reader.until(lambda r: _fired(r.values()) >= SUBJECTS // 6, timeout=60)
            worker.kill()
            fired_before = _fired(reader.values())
        worker = await start(pipeline.worker)
        ends = {e["subject_id"]: ENDS[e["purpose"]] for e in events}
        async with TopicReader(bootstrap, email) as told:
            await told.until(
                lambda r: _ended(r.values(), ends) == len(ends), timeout=90 + SUBJECTS / 10
            )
    finally:
        worker.stop()

    inputs = [v for v in await _values(bootstrap, topics.events) if v["subject_id"] in ends]
    outputs = [v for v in await _values(bootstrap, email) if v["subject_id"] in ends]
    timer_ids: dict[str, set[str]] = defaultdict(set)
    copies = 0
    for value in inputs:
        if value["type"] in ("consent.expired", "confirmation.lapsed"):
            timer_ids[value["subject_id"]].add(value["event_id"])
            copies += 1
    # Nothing skipped, nothing fired twice under another id.
    assert {s: len(ids) for s, ids in timer_ids.items()} == dict.fromkeys(ends, 1)
    # One message per id (redeliveries repeat it exactly, but for the emission time).
    by_id: dict[str, set[bytes]] = defaultdict(set)
    last: dict[str, dict[str, Any]] = {}
    for value in outputs:
        by_id[value["suppression_id"]].add(orjson.dumps({**value, "emitted_at": None}))
        last[value["subject_id"]] = value
    assert all(len(variants) == 1 for variants in by_id.values())
    for subject, (_, action) in ends.items():
        [cause] = timer_ids[subject]
        assert (last[subject]["action"], last[subject]["reason"]) == (action, "expired")
        assert last[subject]["caused_by_event_id"] == cause
    report.add(
        *PART,
        subjects=SUBJECTS,
        fired_before_kill=fired_before,
        timer_events=copies,
        refired_copies=copies - len(ends),
        skipped=0,
        conflicting=0,
        restarts=pipeline.worker.restarts_seen - 1,
    )


async def _values(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in await read_to_end(bootstrap, topic) if r.value]


def _fired(values: list[dict[str, Any]]) -> int:
    return len(
        {v["event_id"] for v in values if v["type"] in ("consent.expired", "confirmation.lapsed")}
    )


def _ended(values: list[dict[str, Any]], ends: dict[str, tuple[str, str]]) -> int:
    return len(
        {
            v["subject_id"]
            for v in values
            if v["subject_id"] in ends
            and v["action"] == ends[v["subject_id"]][1]
            and v["reason"] == "expired"
        }
    )
