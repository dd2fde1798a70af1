"""decode_event's fast path accepts and rejects exactly what the pydantic model does.

Same event (values, field set, dump) for every accepted record; for every rejected one the same
errors, since rejects are always explained by the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.codec import RejectedRecord, _validated, decode_event
from schemas.events import ConsentEvent
from tests.schemas.records import records

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SLOW = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(decode: Any, value: bytes, now: datetime | None) -> Any:
    try:
        event = decode(value, now)
    except RejectedRecord as exc:
        return ("rejected", [(e.loc, e.msg) for e in exc.errors])
    assert type(event) is ConsentEvent
    return (
        "accepted",
        event,
        event.model_fields_set,
        event.model_dump(),
        event.model_dump_json(exclude_unset=True),
        repr(event),
    )


def assert_same(value: bytes, now: datetime | None = NOW) -> None:
    fast = outcome(lambda v, n: decode_event(v, now=n), value, now)
    model = outcome(_validated, value, now)
    assert fast == model, value


@SLOW
@given(record=records(), now=st.sampled_from([NOW, datetime(9999, 12, 31, tzinfo=UTC), None]))
@example(
    record={
        "event_id": "e",
        "type": "unsubscribed",
        "occurred_at": "2026-11-22T12:05:00Z",
        "controller": "c",
        "subject_id": "s",
    },
    now=NOW,
)
@example(
    record={
        "event_id": "e",
        "type": "unsubscribed",
        "occurred_at": "2026-11-22T12:05:00.000001Z",
        "controller": "c",
        "subject_id": "s",
    },
    now=NOW,
)
def test_generated_records(record: dict[str, Any], now: datetime | None) -> None:
    assert_same(orjson.dumps(record), now)


@pytest.mark.parametrize(
    "value",
    [
        b'{"event_id":"a","event_id":"b","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s"}',
        b' {"event_id":"a","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s","evidence":{"n":123456789012345678901234567890}} ',
        b'{"event_id":"a","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s","evidence":{"x":1e400}}',
        b'{"event_id":"\\ud800","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s"}',
        b'\xef\xbb\xbf{"event_id":"a","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s"}',
        b'{"event_id":"a","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
        b'"controller":"c","subject_id":"s","schema_version":1.0}',
        b'{"event_id":"a","type":"unsubscribed","occurred_at":"0001-01-01T00:00:00+00:01",'
        b'"controller":"c","subject_id":"s"}',
        *(
            b'{"event_id":"a","type":"unsubscribed","occurred_at":"2026-11-22T10:00:00Z",'
            b'"controller":"c","subject_id":"s","evidence":'
            + b'{"a":' * depth
            + b"1"
            + b"}" * depth
            + b"}"
            for depth in (98, 99, 100, 198, 199, 200, 1000)
        ),
        b"null",
        b"[]",
        b"{}",
        b"\xff",
        b"",
    ],
)
def test_hand_written_bytes(value: bytes) -> None:
    assert_same(value)


@SLOW
@given(value=st.binary(max_size=200))
def test_arbitrary_bytes(value: bytes) -> None:
    assert_same(value)


@given(key=st.none() | st.sampled_from([b"c-1001", b"c-1002", b"\xff"]))
def test_the_key_check_is_unchanged(key: bytes | None) -> None:
    value = orjson.dumps(
        {
            "event_id": "e",
            "type": "unsubscribed",
            "occurred_at": "2026-11-22T10:00:00Z",
            "controller": "c",
            "subject_id": "c-1001",
        }
    )
    accepted = key in (None, b"c-1001")
    try:
        decode_event(value, key, now=NOW)
    except RejectedRecord as exc:
        assert not accepted
        assert [(e.loc, e.msg) for e in exc.errors] == [
            ("key", "record key must be the subject_id (UTF-8) or absent")
        ]
    else:
        assert accepted
