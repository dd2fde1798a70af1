"""The replay window on the real worker: an event folded below the lease an earlier run left in
the keys table restates the decisions it reaches, which a first fold would have left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.pipeline.personal import KEYS_TABLE
from streams.pipeline.replay import FLOOR, lease_key
from tests.integration.scenario import Scenario, Told, publish, told_when
from tests.support.kafka import TopicReader
from tests.support.pipeline import pipeline_for

pytestmark = pytest.mark.integration


async def test_an_event_below_an_earlier_runs_lease_restates_its_decisions(
    bootstrap: str, tmp_path: Path
) -> None:
    # One record per produce batch: the embedded broker's offset quirk would otherwise cut the
    # restart's changelog recovery short (see the broker notes).
    pipeline = pipeline_for(bootstrap, tmp_path, CONSENT_PRODUCER_MAX_BATCH_SIZE="1")
    s = Scenario("sms-tech")
    grant = s.add("consent.granted", 2, purpose="marketing-offers", channel="email")
    older = s.add("consent.withdrawn", 1, purpose="marketing-offers", channel="email")
    worker = pipeline.worker.start()
    try:
        await publish(pipeline, s)
        first = await told_when(pipeline, lambda t: len(t.raw(s.subject_id)) >= 2)
        allowed = said(first.raw(s.subject_id))
        assert [(d, action, cause) for d, _, action, cause in allowed] == [
            ("email", "allow", grant["event_id"]),
            ("crm", "allow", grant["event_id"]),
        ]  # the older withdrawal changed nothing, so it said nothing
        worker.stop()
        worker.start()  # the lease the first run raised stays in the keys table
        s.events = [older]  # delivered again, at an offset below that lease
        await publish(pipeline, s)
        told = await told_when(pipeline, lambda t: len(t.raw(s.subject_id)) >= 4)
        # As if the first run had folded it before the grant and been killed: the decision it
        # reaches is said again, under the grant's own ids.
        assert said(told.raw(s.subject_id)) == [allowed[0], allowed[0], allowed[1], allowed[1]]
    finally:
        worker.stop()


async def test_one_record_at_a_time_the_lease_is_raised_ahead_with_the_states(
    bootstrap: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(bootstrap, tmp_path)
    s = Scenario("sms-tech")
    count = FLOOR // 2 + 8
    worker = pipeline.worker.start()
    try:
        topics = pipeline.topics.suppressions.values()
        async with TopicReader(pipeline.bootstrap, *topics) as reader:
            told = Told(pipeline, reader)
            for n in range(count):  # each folded in a batch of its own: the next waits for it
                s.events = []
                kind = "consent.withdrawn" if n % 2 else "consent.granted"
                s.add(kind, n, purpose="marketing-offers", channel="email")
                await publish(pipeline, s)
                await reader.until(lambda _, n=n: len(told.raw(s.subject_id)) >= 2 * (n + 1))
        changelog = f"{pipeline.worker.app_id}-{KEYS_TABLE}-changelog"
        async with TopicReader(pipeline.bootstrap, changelog) as keys:
            await keys.until(lambda r: any(_is_lease(x.key) for x in r.records), timeout=10)
            await keys.poll(0.5)
    finally:
        worker.stop()
    leases = [
        orjson.loads(r.value)[pipeline.topics.events] for r in keys.records if _is_lease(r.key)
    ]
    # Raised before the first record (offset 0) was folded; then, with the states of the batch
    # that left less than half the floor past it (offset FLOOR // 2 + 1), never in a wait of its
    # own. A worker that only raised before folding would still hold the first lease.
    assert leases == [1 + FLOOR, FLOOR // 2 + 2 + FLOOR]


def _is_lease(key: bytes | None) -> bool:
    return key is not None and any(key == lease_key(p) for p in range(64))


def said(raw: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str, str]]:
    """(destination, suppression id, action, cause) of each message, in topic order."""
    return [(d, v["suppression_id"], v["action"], v["caused_by_event_id"]) for d, v in raw]
