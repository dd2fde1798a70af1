"""The input contract: every kind of valid record, every kind of invalid one, clear messages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from schemas.codec import RejectedRecord, dead_letter_record, decode_event, encode_event
from schemas.deadletter import DeadLetter, FieldError
from schemas.events import MAX_RECORD_BYTES
from schemas.vocabulary import EventType

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

VALID: dict[str, dict[str, Any]] = {
    "consent.granted": {"purpose": "newsletter", "channel": "email"},
    "consent.confirmed": {"purpose": "newsletter"},
    "consent.withdrawn": {"purpose": "newsletter", "channel": "sms"},
    "unsubscribed": {},
    "objection.raised": {"objection": "direct_marketing"},
    "privacy.signal": {"signal": "gpc"},
    "erasure.requested": {},
    "restriction.requested": {},
    "restriction.lifted": {},
}


def record(type_: str = "unsubscribed", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "type": type_,
        "occurred_at": "2026-11-22T10:00:00+01:00",
        "controller": "hms-se",
        "subject_id": "c-1001",
        **VALID.get(type_, {}),
        **fields,
    }


def reject(value: bytes | None, key: bytes | None = None) -> list[tuple[str, str]]:
    with pytest.raises(RejectedRecord) as caught:
        decode_event(value, key, now=NOW)
    return [(e.loc, e.msg) for e in caught.value.errors]


@pytest.mark.parametrize("type_", sorted(VALID))
def test_every_event_type_is_accepted(type_: str) -> None:
    event = decode_event(orjson.dumps(record(type_)), b"c-1001", now=NOW)
    assert event.type is EventType(type_)
    assert event.occurred_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # normalised to UTC
    assert decode_event(encode_event(event), now=NOW) == event


def test_keyless_records_and_optional_fields_are_accepted() -> None:
    full = record(
        identifiers={"email": "anna@example.org", "phone": "+46 8 123 456", "cookie_id": "ck-9"},
        source="web-signup",
        jurisdiction="SE",
        notice_version="2023-03-30",
        evidence={"form": "footer", "ip_hash": "ab12", "wording": ["I agree"]},
        schema_version=1,
    )
    event = decode_event(orjson.dumps(full), None, now=NOW)
    assert event.identifiers is not None and event.identifiers.email == "anna@example.org"
    assert event.evidence == {"form": "footer", "ip_hash": "ab12", "wording": ["I agree"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\xff\xfe{}", ("", "record value is not valid UTF-8")),
        (b"{not json", ("", "Invalid JSON")),
        (b"[1, 2]", ("", "Input should be an object")),
        (orjson.dumps(record(extra="x")), ("extra", "Extra inputs are not permitted")),
        (orjson.dumps(record(type="consent.lost")), ("type", "Input should be")),
        (orjson.dumps(record(event_id="")), ("event_id", "at least 1 character")),
        (orjson.dumps(record(event_id="x" * 129)), ("event_id", "at most 128 characters")),
        (orjson.dumps(record(subject_id="s" * 257)), ("subject_id", "at most 256 characters")),
        (orjson.dumps(record(occurred_at="2026-11-22T10:00:00")), ("occurred_at", "timezone")),
        (orjson.dumps(record(occurred_at="yesterday")), ("occurred_at", "RFC 3339 date-time")),
        (
            orjson.dumps(record(occurred_at="0001-01-01T00:00:00+00:01")),
            ("occurred_at", "out of range"),
        ),
        (
            orjson.dumps(record(occurred_at="2026-11-22T12:06:00Z")),
            ("occurred_at", "more than 5 minutes in the future"),
        ),
        (orjson.dumps(record(controller="Acme/SE")), ("controller", "should match pattern")),
        (orjson.dumps(record(channel="fax")), ("channel", "Input should be")),
        (orjson.dumps(record(subject_id=42)), ("subject_id", "valid string")),
        (
            orjson.dumps(record(identifiers={"email": "not-an-address"})),
            ("identifiers.email", "should match pattern"),
        ),
        (orjson.dumps(record(identifiers={"fax": "1"})), ("identifiers.fax", "Extra inputs")),
        (orjson.dumps(record(schema_version=2)), ("schema_version", "Input should be 1")),
        (orjson.dumps(record(evidence=[1])), ("evidence", "should be an object")),
    ],
)
def test_invalid_records_say_which_field_and_why(value: bytes, expected: tuple[str, str]) -> None:
    errors = reject(value)
    loc, fragment = expected
    assert any(e_loc == loc and fragment in msg for e_loc, msg in errors), errors


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "consent.granted", "purpose": None}, "purpose is required for consent.granted"),
        ({"type": "objection.raised", "objection": None}, "objection is required"),
        ({"type": "privacy.signal", "signal": None}, "signal is required for privacy.signal"),
        ({"signal": "gpc"}, "signal is only allowed for privacy.signal"),
        ({"objection": "profiling"}, "objection is only allowed for objection.raised"),
        ({"type": "erasure.requested", "purpose": "newsletter"}, "purpose is not allowed"),
        ({"type": "privacy.signal", "signal": "gpc", "channel": "web"}, "channel is not allowed"),
    ],
)
def test_fields_must_fit_the_event_type(fields: dict[str, Any], message: str) -> None:
    data = {k: v for k, v in {**record(fields.get("type", "unsubscribed")), **fields}.items()}
    data = {k: v for k, v in data.items() if v is not None}
    [(loc, msg)] = reject(orjson.dumps(data))
    assert loc == "" and message in msg


def test_missing_required_fields_are_all_listed() -> None:
    errors = reject(b"{}")
    assert {loc for loc, _ in errors} == {
        "event_id",
        "type",
        "occurred_at",
        "controller",
        "subject_id",
    }
    assert all(msg == "Field required" for _, msg in errors)


def test_size_limit_tombstone_and_key() -> None:
    big = orjson.dumps(record(evidence={"blob": "x" * MAX_RECORD_BYTES}))
    [(loc, msg)] = reject(big)
    assert loc == "" and f"the limit is {MAX_RECORD_BYTES}" in msg
    assert reject(None) == [("", "record has no value")]
    assert reject(orjson.dumps(record()), b"someone-else") == [
        ("key", "record key must be the subject_id (UTF-8) or absent")
    ]


def test_dead_letter_keeps_the_record_intact() -> None:
    value, key = b"\x00\xffbinary \xc3(", b"\xfe"
    letter = DeadLetter.model_validate_json(
        dead_letter_record(
            value,
            key,
            [FieldError(loc="", msg="record value is not valid UTF-8")],
            topic="consent.events",
            partition=3,
            offset=42,
            received_at=NOW,
        )
    )
    assert base64.b64decode(letter.payload_b64) == value
    assert letter.key_b64 is not None and base64.b64decode(letter.key_b64) == key
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == (
        "consent.events",
        3,
        42,
    )
    assert letter.errors[0].msg == "record value is not valid UTF-8"


def test_dead_letter_keeps_headers_and_tells_a_null_value_from_an_empty_one() -> None:
    def letter(value: bytes | None, headers: list[tuple[str, bytes | None]] | None) -> DeadLetter:
        return DeadLetter.model_validate_json(
            dead_letter_record(
                value,
                None,
                [FieldError(loc="", msg="record has no value")],
                topic="consent.events",
                partition=0,
                offset=7,
                received_at=NOW,
                headers=headers,
            )
        )

    tombstone = letter(None, [("trace", b"\x00\x01"), ("trace", b"again"), ("empty", None)])
    assert tombstone.tombstone and tombstone.payload_b64 == ""
    assert tombstone.headers is not None
    assert [(h.key, h.value_b64) for h in tombstone.headers] == [
        ("trace", base64.b64encode(b"\x00\x01").decode()),
        ("trace", base64.b64encode(b"again").decode()),
        ("empty", None),
    ]
    empty = letter(b"", [])
    assert not empty.tombstone and empty.payload_b64 == "" and empty.headers == []
    # Without the keyword: the dead letter of before (no headers field, no tombstone field).
    plain = orjson.loads(
        dead_letter_record(
            b"x",
            None,
            [FieldError(loc="", msg="m")],
            topic="t",
            partition=0,
            offset=0,
            received_at=NOW,
        )
    )
    assert set(plain) == {"payload_b64", "key_b64", "errors", "source", "received_at"}


@pytest.mark.parametrize("subject_id", [".", ".."])
def test_dot_segment_subject_ids_are_rejected(subject_id: str) -> None:
    # The decisions API could never read them back: /decisions/<controller>/. is not a resource.
    assert reject(orjson.dumps(record(subject_id=subject_id))) == [
        ("subject_id", "subject_id must not be '.' or '..' (they cannot name a URL path segment)")
    ]
    assert decode_event(orjson.dumps(record(subject_id="...")), now=NOW).subject_id == "..."
