"""Standby replicas keep working with bulk recovery: a survivor takes over from its standby copy.

Two workers share the partitions; each keeps a standby copy of the other's table partitions
(Faust's default of one standby replica), written by the bulk path, and each folds keyed records
where they arrive. One is SIGKILLed; the survivor must recover only the tail its standby copy
lacked, and every later decision must be the one the engine computes from the full history.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.core.policy import load_policy
from tests.integration.scenario import is_marker, publish_markers, told_everywhere
from tests.support.events import final_states, last_actions, mismatches, random_events
from tests.support.kafka import TopicReader, event_record, produce
from tests.support.pipeline import pipeline_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261201
UP_TO_DATE = "table recovery: active partitions up to date"
STANDBYS = "table standbys: partitions up to date"


def log_entries(worker: WorkerProcess, message: str) -> list[dict[str, Any]]:
    out = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        if message in line:
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out


async def test_survivor_recovers_from_its_standby_copy(bootstrap: str, tmp_path: Path) -> None:
    policy = load_policy()
    events = random_events(policy, random.Random(SEED), subjects=120, count=1600, prefix="stb")
    early, late = events[:1200], events[1200:]
    expected = final_states(policy, events)
    # One record per produce batch (the broker's ListOffsets quirk, see test_crash.py); a short
    # session so that the killed worker leaves the group soon.
    env = {"CONSENT_PRODUCER_MAX_BATCH_SIZE": "1", "CONSENT_SESSION_TIMEOUT": "4"}
    pipeline = pipeline_for(bootstrap, tmp_path, **env)
    survivor = pipeline.worker
    victim = WorkerProcess(
        bootstrap,
        survivor.app_id,
        tmp_path / "data-b",
        tmp_path / "worker-b.log",
        extra_env=dict(survivor.extra_env),
    )
    await asyncio.gather(asyncio.to_thread(survivor.start, 90), asyncio.to_thread(victim.start, 90))
    try:
        topics = pipeline.topics.suppressions
        destination = {topic: d.value for d, topic in topics.items()}
        async with TopicReader(bootstrap, *topics.values()) as reader:

            def told() -> dict[tuple[str, str, str, str, str], str]:
                return last_actions(
                    (destination[r.topic], v)
                    for r, v in zip(reader.records, reader.values(), strict=True)
                    if not is_marker(v["subject_id"])  # told after the events, about no pair
                )

            await produce(bootstrap, pipeline.topics.events, [event_record(e) for e in early])
            early_expected = final_states(policy, early)
            # A wait, not a marker: it also lets the survivor's standby copy catch up before the
            # kill, which no output on a destination topic can show.
            await reader.until(lambda _: not mismatches(early_expected, told()), 120, settle=3)
            replicated = sum(e.get("standby_records", 0) for e in log_entries(survivor, STANDBYS))
            assert replicated > 0, "the survivor's standby copy received nothing"
            # Every record is keyed by its subject: each worker, the group's leader or not,
            # folds it on the partition it arrived on, and none takes the repartition hop.
            async with TopicReader(bootstrap, pipeline.topics.by_subject) as hop:
                for _ in range(10):
                    await hop.poll()
            assert len(hop.records) == 0, "keyed records took the repartition hop"
            before = len(log_entries(survivor, UP_TO_DATE))
            victim.kill()
            await produce(bootstrap, pipeline.topics.events, [event_record(e) for e in late])
            await reader.until(lambda _: not mismatches(expected, told()), timeout=120)
            markers = await publish_markers(pipeline)
            await reader.until(lambda r: told_everywhere(r, topics.values(), markers), 120)
        assert mismatches(expected, told()) == []
        # The take-over read only what the standby copy lacked, not the victim's whole history
        # (about half of the ~1,200 changelog records written before the kill).
        takeover = log_entries(survivor, UP_TO_DATE)[before:]
        recovered = sum(e["recovered_records"] for e in takeover)
        assert recovered < 150, f"take-over recovered {recovered} records: standby not used"
    finally:
        victim.kill()
        survivor.stop()
