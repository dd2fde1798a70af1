"""The replay window on the real worker: an event folded below the lease an earlier run left in
the keys table restates the decisions it reaches, which a first fold would have left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.scenario import Scenario, publish, told_when
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


def said(raw: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str, str]]:
    """(destination, suppression id, action, cause) of each message, in topic order."""
    return [(d, v["suppression_id"], v["action"], v["caused_by_event_id"]) for d, v in raw]
