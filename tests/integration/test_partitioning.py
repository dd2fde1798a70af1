"""An input topic with another partition count than the subject table still folds right."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.topology import DEFAULT_PARTITIONS, SUBJECTS_TABLE, partition_of
from streams.worker import ensure_topics
from tests.integration.scenario import Scenario, publish, told_when
from tests.support.kafka import TopicReader
from tests.support.pipeline import pipeline_for

pytestmark = pytest.mark.integration


async def test_input_not_copartitioned_with_the_table_takes_the_hop(
    bootstrap: str, tmp_path: Path
) -> None:
    pipeline = pipeline_for(bootstrap, tmp_path)
    # Created before the worker, as an operator might: 3 partitions, the table has 6.
    await ensure_topics(bootstrap, (pipeline.topics.events,), partitions=3)
    pipeline.worker.start()
    try:
        scenarios = [Scenario("hms-se") for _ in range(6)]
        for s in scenarios:
            s.add("consent.granted", 1, purpose="newsletter")
            s.add("consent.confirmed", 2, purpose="newsletter")
        await publish(pipeline, *scenarios)
        told = await told_when(
            pipeline, lambda t: all(len(t.messages(s.subject_id)) >= 2 for s in scenarios)
        )
        for s in scenarios:
            assert told.messages(s.subject_id) == [
                ("email", "newsletter", "email", "allow"),
                ("crm", "newsletter", "email", "allow"),
            ]
        changelog = f"{pipeline.worker.app_id}-{SUBJECTS_TABLE}-changelog"
        async with TopicReader(bootstrap, changelog) as reader:
            await reader.until(lambda r: len(r.records) >= len(scenarios), timeout=30)
        for record in reader.records:
            assert record.key is not None
            subject = record.key.partition(b"/")[2]
            assert record.partition == partition_of(subject, DEFAULT_PARTITIONS)
        assert "every record takes the repartition hop" in pipeline.worker.log_path.read_text()
    finally:
        pipeline.worker.stop()
