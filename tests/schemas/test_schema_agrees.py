"""The published JSON Schema accepts exactly what the worker's decoder accepts.

Checked with two third-party validators (format checking on), on generated edge cases. Policy
(unknown controller or purpose) and the clock (more than 5 minutes ahead, before year 1 in UTC)
are not schema rules; ``FAR_FUTURE`` and the generated years keep them out of the comparison.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings

from schemas import generate
from schemas.codec import RejectedRecord, decode_event
from tests.schemas.records import FAR_FUTURE, records
from tests.support.examples import examples

SCHEMA = orjson.loads((generate.HERE / "json" / "consent-event.schema.json").read_bytes())
JSONSCHEMA = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
FASTJSONSCHEMA = fastjsonschema.compile(SCHEMA)


def fastjsonschema_accepts(data: Any) -> bool:
    try:
        FASTJSONSCHEMA(data)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def worker_accepts(value: bytes) -> bool:
    try:
        decode_event(value, now=FAR_FUTURE)
    except RejectedRecord:
        return False
    return True


def verdicts(record: dict[str, Any]) -> dict[str, bool]:
    value = orjson.dumps(record)
    data = orjson.loads(value)  # what any consumer of the bytes sees
    return {
        "worker": worker_accepts(value),
        "jsonschema": JSONSCHEMA.is_valid(data),
        "fastjsonschema": fastjsonschema_accepts(data),
    }


BASE = {
    "event_id": "evt-1",
    "type": "unsubscribed",
    "occurred_at": "2025-06-01T09:00:00Z",
    "controller": "hms-se",
    "subject_id": "c-1001",
}


# The cases the outside validators found, and their neighbours.
@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({}, True),
        ({"occurred_at": 1748768400}, False),
        ({"occurred_at": "2025-06-01 09:00:00Z"}, False),
        ({"occurred_at": "2025-06-01T09:00:00+0200"}, False),
        ({"occurred_at": "2025-06-01T09:00:00+02:00"}, True),
        ({"occurred_at": "2025-06-01t09:00:00.123456789z"}, True),
        ({"occurred_at": "2023-02-29T09:00:00Z"}, False),
        ({"occurred_at": "2024-02-29T09:00:00Z"}, True),
        ({"occurred_at": "2025-06-01T23:59:60Z"}, False),
        ({"occurred_at": "2025-06-01T09:00:00Z\n"}, False),
        ({"schema_version": True}, False),
        ({"schema_version": 1}, True),
        ({"schema_version": 1.0}, True),
        ({"type": "objection.raised"}, False),
        ({"type": "objection.raised", "objection": "profiling"}, True),
        ({"type": "objection.raised", "objection": None}, False),
        ({"type": "privacy.signal"}, False),
        ({"type": "privacy.signal", "signal": "gpc", "channel": "web"}, False),
        ({"signal": "gpc"}, False),
        ({"type": "consent.granted"}, False),
        ({"type": "consent.granted", "purpose": "newsletter", "channel": "sms"}, True),
        ({"type": "erasure.requested", "purpose": "newsletter"}, False),
        ({"type": "erasure.requested", "purpose": None, "channel": None}, True),
        ({"type": "access.requested"}, True),
        ({"type": "access.requested", "purpose": "newsletter"}, False),
        ({"type": "access.requested", "channel": "email"}, False),
        ({"type": "access.requested", "request_id": "evt-0"}, False),
        ({"type": "access.fulfilled"}, False),
        ({"type": "access.fulfilled", "request_id": None}, False),
        ({"type": "access.fulfilled", "request_id": ""}, False),
        ({"type": "access.fulfilled", "request_id": "x" * 129}, False),
        ({"type": "access.fulfilled", "request_id": "x" * 128}, True),
        ({"type": "access.fulfilled", "request_id": "evt-0"}, True),
        ({"type": "access.fulfilled", "request_id": "evt-0", "channel": "web"}, False),
        ({"request_id": "evt-0"}, False),
        ({"request_id": None}, True),
        ({"subject_id": "."}, False),
        ({"subject_id": ".."}, False),
        ({"subject_id": "..."}, True),
        ({"controller": "hms-se\n"}, False),
        ({"identifiers": {"email": "a\u3000b@example.org"}}, False),
        ({"identifiers": {"email": "a\u001cb@example.org"}}, True),
    ],
)
def test_known_edge_cases(fields: dict[str, Any], valid: bool) -> None:
    assert verdicts({**BASE, **fields}) == dict.fromkeys(
        ("worker", "jsonschema", "fastjsonschema"), valid
    )


@settings(max_examples=examples(500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records())
@example(record={**BASE, "occurred_at": "2025-06-01T09:00:00.Z"})
def test_schema_and_worker_agree_on_generated_records(record: dict[str, Any]) -> None:
    found = verdicts(record)
    assert len(set(found.values())) == 1, (record, found)


def test_the_clock_checks_are_the_only_ones_outside_the_schema() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for stamp in ("2026-11-22T12:06:00Z", "0001-01-01T00:00:00+00:01"):
        record = {**BASE, "occurred_at": stamp}
        assert JSONSCHEMA.is_valid(record) and fastjsonschema_accepts(record)
        with pytest.raises(RejectedRecord, match=r"future|out of range"):
            decode_event(orjson.dumps(record), now=now)
