"""The broker round trip and the worker's basic path, end to end."""

from __future__ import annotations

import pytest

from tests.support.kafka import TopicReader, event_record, produce, unique
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


async def test_broker_round_trip(bootstrap: str) -> None:
    topic = unique("smoke")
    await produce(bootstrap, topic, [(b"k", b"v1"), (None, b"v2")])
    async with TopicReader(bootstrap, topic) as reader:
        await reader.until(lambda r: len(r.records) == 2)
    # Two partitions may interleave in any order; keys and keyless values both arrive intact.
    assert sorted((r.value, r.key) for r in reader.records) == [(b"v1", b"k"), (b"v2", None)]


async def test_unsubscribe_reaches_email_and_crm(pipeline: Pipeline) -> None:
    subject = unique("subject")
    event = {
        "event_id": unique("evt"),
        "type": "unsubscribed",
        "occurred_at": "2026-11-20T10:00:00Z",
        "controller": "kms-uk",
        "subject_id": subject,
        "identifiers": {"email": "ben@example.org"},
    }
    await produce(pipeline.bootstrap, pipeline.topics.events, [event_record(event)])
    topics = pipeline.topics.suppressions
    async with TopicReader(pipeline.bootstrap, *topics.values()) as reader:
        await reader.until(lambda r: len(r.records) >= 2, timeout=30)
    by_topic = {r.topic: r for r in reader.records}
    email = by_topic[topics["email"]]
    assert email.key == subject.encode()
    message = reader.values(topics["email"])[0]
    assert (message["action"], message["purpose"], message["reason"]) == (
        "suppress",
        "marketing-email",
        "unsubscribed",
    )
    assert message["identifiers"] == {"email": "ben@example.org"}
