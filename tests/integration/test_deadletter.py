"""Every rejected record lands on the dead-letter topic intact, and valid events keep flowing."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.scenario import Scenario, told_when
from tests.support.kafka import TopicReader, event_record, produce, unique
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration


def valid(subject: str, **fields: object) -> dict[str, object]:
    return {
        "event_id": unique("evt"),
        "type": "unsubscribed",
        "occurred_at": "2026-11-20T10:00:00Z",
        "controller": "hms-se",
        "subject_id": subject,
        "purpose": "customer-surveys",
        **fields,
    }


async def test_bad_records_are_kept_with_reasons_while_valid_ones_flow(pipeline: Pipeline) -> None:
    subject = unique("subject")
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (None, b"\xff\xfe\x00garbage", ""),  # broken UTF-8
        (None, b"{truncated", ""),  # not JSON
        (None, b'"a string"', ""),  # JSON, not an object
        (None, orjson.dumps(valid(subject, extra_field=1)), "extra_field"),
        (None, orjson.dumps(valid(subject, occurred_at="2026-11-20 10:00")), "occurred_at"),
        (None, orjson.dumps(valid(subject, controller="nobody")), "controller"),
        (None, orjson.dumps(valid(subject, purpose="no-such-purpose")), "purpose"),
        (None, orjson.dumps(valid(subject, channel="sms")), "channel"),  # not a channel of it
        (None, orjson.dumps(valid(subject, subject_id="x" * 300)), "subject_id"),
        (b"someone-else", orjson.dumps(valid(subject)), "key"),  # key is not the subject
        (None, orjson.dumps(valid(subject, evidence={"blob": "x" * 70_000})), ""),  # too big
        (b"k", None, ""),  # tombstone
    ]
    s = Scenario("hms-se", subject_id=subject)
    first = s.add("unsubscribed", 1, purpose="customer-marketing")
    last = s.add("unsubscribed", 2, purpose="customer-surveys")
    records = [event_record(first), *[(k, v) for k, v, _ in bad], event_record(last)]
    await produce(pipeline.bootstrap, pipeline.topics.events, records)

    async with TopicReader(pipeline.bootstrap, pipeline.topics.deadletter) as reader:
        await reader.until(
            lambda r: len([v for v in r.values() if v["source"]["offset"] >= 0]) >= len(bad),
            timeout=60,
        )
        # Keyless records spread over partitions: match letters to records by payload.
        letters = {base64.b64decode(v["payload_b64"]): v for v in reader.values()}
    assert _payloads(bad) <= set(letters)
    for key, value, loc in bad:
        letter = letters[value or b""]
        assert letter["key_b64"] == (None if key is None else base64.b64encode(key).decode())
        assert letter["source"]["topic"] == pipeline.topics.events
        assert letter["errors"] and all(e["msg"] for e in letter["errors"])
        assert loc in {e["loc"] for e in letter["errors"]}, letter["errors"]

    # The valid events on both sides of the bad ones were processed.
    told = await told_when(pipeline, lambda t: len(t.messages(subject)) >= 4)
    assert told.last(subject) == {
        ("email", "customer-marketing", "email"): "suppress",
        ("crm", "customer-marketing", "email"): "suppress",
        ("email", "customer-surveys", "email"): "suppress",
        ("crm", "customer-surveys", "email"): "suppress",
    }


def _payloads(bad: list[tuple[bytes | None, bytes | None, str]]) -> set[bytes]:
    return {value or b"" for _, value, _ in bad}


async def test_a_rejected_record_keeps_its_headers_in_order(pipeline: Pipeline) -> None:
    value = orjson.dumps(valid(unique("subject"), controller="nobody"))
    headers = [("trace-id", b"abc"), ("raw", b"\xff\x00"), ("trace-id", b"again")]
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(pipeline.topics.events, value, headers=headers)
    finally:
        await producer.stop()
    async with TopicReader(pipeline.bootstrap, pipeline.topics.deadletter) as reader:
        await reader.until(
            lambda r: any(base64.b64decode(v["payload_b64"]) == value for v in r.values()),
            timeout=60,
        )
    [letter] = [v for v in reader.values() if base64.b64decode(v["payload_b64"]) == value]
    assert letter["headers"] == [
        {"key": name, "value_b64": base64.b64encode(data).decode()} for name, data in headers
    ]
