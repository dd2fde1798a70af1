"""Bytes <-> contract: strict decoding of input records, cheap encoding of outputs."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.deadletter import FieldError
from schemas.events import MAX_RECORD_BYTES, ConsentEvent


class RejectedRecord(ValueError):
    """A record that does not satisfy the contract; ``errors`` says why, field by field."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.loc or '<record>'}: {e.msg}" for e in errors))
        self.errors = errors


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as the contract's (dotted location, message) pairs."""
    return [
        FieldError(
            loc=".".join(str(part) for part in err["loc"]),
            msg=err["msg"].removeprefix("Value error, "),
        )
        for err in exc.errors(include_url=False)
    ]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_event(
    value: bytes | None, key: bytes | None = None, *, now: datetime | None = None
) -> ConsentEvent:
    """Validate one ``consent.events`` record. Raises :class:`RejectedRecord`."""
    if value is None:
        raise RejectedRecord([FieldError(loc="", msg="record has no value")])
    if len(value) > MAX_RECORD_BYTES:
        raise RejectedRecord(
            [
                FieldError(
                    loc="", msg=f"record is {len(value)} bytes; the limit is {MAX_RECORD_BYTES}"
                )
            ]
        )
    try:
        event = ConsentEvent.model_validate_json(value, context={"now": now} if now else None)
    except ValidationError as exc:
        errors = field_errors(exc)
        if exc.errors()[0]["type"] == "json_invalid" and not _is_utf8(value):
            errors = [FieldError(loc="", msg="record value is not valid UTF-8")]
        raise RejectedRecord(errors) from None
    if key is not None and key != event.subject_id.encode():
        raise RejectedRecord(
            [FieldError(loc="key", msg="record key must be the subject_id (UTF-8) or absent")]
        )
    return event


def encode_event(event: ConsentEvent) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def dead_letter_record(
    value: bytes | None,
    key: bytes | None,
    errors: list[FieldError],
    *,
    topic: str,
    partition: int,
    offset: int,
    received_at: datetime,
    headers: Sequence[tuple[str, bytes | None]] | None = None,
) -> bytes:
    """Encode a ``DeadLetter``; ``headers`` are the original record's, kept in order."""
    letter: dict[str, Any] = {
        "payload_b64": base64.b64encode(value or b"").decode(),
        "key_b64": _b64(key),
        "errors": [{"loc": e.loc, "msg": e.msg} for e in errors],
        "source": {"topic": topic, "partition": partition, "offset": offset},
        "received_at": received_at,
    }
    if value is None:
        letter["tombstone"] = True
    if headers is not None:
        letter["headers"] = [{"key": name, "value_b64": _b64(data)} for name, data in headers]
    return orjson.dumps(letter)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def suppression_record(fields: Mapping[str, Any]) -> bytes:
    """Encode a suppression message (fields as in ``SuppressionMessage``) without a model pass."""
    return orjson.dumps(fields, option=orjson.OPT_UTC_Z)
