"""The common case of ``decode_event`` without a pydantic pass: plain checks on ``orjson`` output.

It accepts a subset of what ``ConsentEvent`` accepts and builds the same object; anything it is
unsure of returns ``None``, and the model decides (and explains a reject). The property test in
``tests/schemas/test_fastpath.py`` holds it to that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from schemas.events import (
    CONSENT_TYPES,
    DOT_SEGMENTS,
    EMAIL_PATTERN,
    JURISDICTION_PATTERN,
    MAX_FUTURE_SKEW,
    PHONE_PATTERN,
    SLUG_PATTERN,
    UNSCOPED_TYPES,
    ConsentEvent,
    Identifiers,
)
from schemas.rfc3339 import DATE_TIME
from schemas.vocabulary import Channel, EventType, Objection, Signal

_FIELDS: Final = frozenset(ConsentEvent.model_fields)
_IDENTIFIER_FIELDS: Final = frozenset(Identifiers.model_fields)
_TYPES: Final = {member.value: member for member in EventType}
_CHANNELS: Final = {member.value: member for member in Channel}
_OBJECTIONS: Final = {member.value: member for member in Objection}
_SIGNALS: Final = {member.value: member for member in Signal}
_SLUG: Final = re.compile(SLUG_PATTERN)
_JURISDICTION: Final = re.compile(JURISDICTION_PATTERN)
_EMAIL: Final = re.compile(EMAIL_PATTERN)
_PHONE: Final = re.compile(PHONE_PATTERN)
_OFFSETS: dict[str, timezone] = {}


class _Unsure(Exception):
    """The fast path does not decide this record."""


def _text(value: object, longest: int) -> str:
    if type(value) is not str or not 0 < len(value) <= longest:
        raise _Unsure
    return value


def _matching(value: object, pattern: re.Pattern[str]) -> str:
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise _Unsure
    return value


def _member(value: object, members: dict[str, Any]) -> Any:
    if type(value) is not str or value not in members:
        raise _Unsure
    return members[value]


def _offset(text: str) -> timezone:
    zone = _OFFSETS.get(text)
    if zone is None:
        minutes = int(text[1:3]) * 60 + int(text[4:6])
        zone = timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))
        _OFFSETS[text] = zone
    return zone


def _moment(value: object, now: datetime) -> datetime:
    if type(value) is not str or DATE_TIME.fullmatch(value) is None:
        raise _Unsure
    # DATE_TIME fixes the positions: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM)
    tail = value[19:]
    micros = 0
    if tail[0] == ".":
        end = len(tail) - (1 if tail[-1] in "Zz" else 6)
        micros = int(tail[1:end][:6].ljust(6, "0"))  # truncated to microseconds, as pydantic does
        tail = tail[end:]
    zone = UTC if tail in ("Z", "z") else _offset(tail)
    try:
        moment = datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            micros,
            zone,
        ).astimezone(UTC)
    except OverflowError:
        raise _Unsure from None
    if moment - now > MAX_FUTURE_SKEW:
        raise _Unsure
    return moment


def _identifiers(value: object) -> Identifiers:
    if type(value) is not dict or not value.keys() <= _IDENTIFIER_FIELDS:
        raise _Unsure
    fields: dict[str, str | None] = {}
    for name, item in value.items():
        if item is None:
            fields[name] = None
        elif name == "email":
            fields[name] = _matching(_text(item, 320), _EMAIL)
        elif name == "phone":
            fields[name] = _matching(item, _PHONE)
        else:
            fields[name] = _text(item, 256 if name == "cookie_id" else 128)
    return Identifiers.model_construct(**fields)


def _checked(name: str, value: Any, now: datetime) -> Any:
    if name == "occurred_at":
        return _moment(value, now)
    if name == "event_id":
        return _text(value, 128)
    if name == "type":
        return _member(value, _TYPES)
    if name == "controller":
        return _matching(value, _SLUG)
    if name == "subject_id":
        if value in DOT_SEGMENTS:
            raise _Unsure
        return _text(value, 256)
    if name == "schema_version":
        if type(value) is not int or value != 1:
            raise _Unsure
        return value
    if value is None:
        return None
    if name == "purpose":
        return _matching(value, _SLUG)
    if name == "channel":
        return _member(value, _CHANNELS)
    if name == "objection":
        return _member(value, _OBJECTIONS)
    if name == "signal":
        return _member(value, _SIGNALS)
    if name == "identifiers":
        return _identifiers(value)
    if name == "jurisdiction":
        return _matching(value, _JURISDICTION)
    if name == "evidence":
        if type(value) is not dict:
            raise _Unsure
        return dict(value)
    return _text(value, 128)  # source, notice_version


def fast_event(data: object, now: datetime | None) -> ConsentEvent | None:
    """The event ``data`` (parsed JSON) states, or None if the model must decide."""
    if type(data) is not dict or not data.keys() <= _FIELDS:
        return None
    moment_now = now or datetime.now(UTC)
    try:
        fields = {name: _checked(name, value, moment_now) for name, value in data.items()}
    except _Unsure:
        return None
    kind = fields.get("type")
    if (
        kind is None
        or "event_id" not in fields
        or "occurred_at" not in fields
        or "controller" not in fields
        or "subject_id" not in fields
        or (kind in CONSENT_TYPES and fields.get("purpose") is None)
        or (
            kind in UNSCOPED_TYPES
            and (fields.get("purpose") is not None or fields.get("channel") is not None)
        )
        or (kind is EventType.OBJECTION_RAISED) != (fields.get("objection") is not None)
        or (kind is EventType.PRIVACY_SIGNAL) != (fields.get("signal") is not None)
    ):
        return None
    return ConsentEvent.model_construct(**fields)
