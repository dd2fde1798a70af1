"""The common case of ``decode_event`` without a pydantic pass: plain checks on ``orjson`` output.

It accepts a subset of what ``ConsentEvent`` accepts and builds the same object; anything it is
unsure of returns ``None``, and the model decides (and explains a reject). The property test in
``tests/schemas/test_fastpath.py`` holds it to that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from pydantic import BaseModel

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
_M = TypeVar("_M", bound=BaseModel)
_TYPES: Final = {member.value: member for member in EventType}
_CHANNELS: Final = {member.value: member for member in Channel}
_OBJECTIONS: Final = {member.value: member for member in Objection}
_SIGNALS: Final = {member.value: member for member in Signal}
_NEEDS_PURPOSE: Final = frozenset(member.value for member in CONSENT_TYPES)
_UNSCOPED: Final = frozenset(member.value for member in UNSCOPED_TYPES)
_SLUG: Final = re.compile(SLUG_PATTERN)
_JURISDICTION: Final = re.compile(JURISDICTION_PATTERN)
_EMAIL: Final = re.compile(EMAIL_PATTERN)
_PHONE: Final = re.compile(PHONE_PATTERN)
_DEEPEST: Final = 100  # well inside pydantic's limit; deeper evidence goes to the model
_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {
    model: {name: info.default for name, info in model.model_fields.items()}
    for model in (ConsentEvent, Identifiers)
}


# The slots every pydantic model instance has; setting them directly is what model_construct does.
_SLOTS = BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def _built(model: type[_M], fields: dict[str, Any]) -> _M:
    """What ``model.model_construct(**fields)`` builds, at a fraction of the cost."""
    instance = object.__new__(model)
    values = _DEFAULTS[model].copy()
    values.update(fields)
    _set_dict(instance, values)
    _set_fields_set(instance, set(fields))
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


class _Unsure(Exception):
    """The fast path does not decide this record."""


def _moment(value: object, now: datetime) -> datetime:
    if type(value) is not str or DATE_TIME.fullmatch(value) is None:
        raise _Unsure
    # DATE_TIME admits only forms that fromisoformat reads as pydantic does (fraction truncated)
    try:
        moment = datetime.fromisoformat(value.upper()).astimezone(UTC)
    except OverflowError:
        raise _Unsure from None
    if moment - now > MAX_FUTURE_SKEW:
        raise _Unsure
    return moment


def _optional_text(value: object, longest: int) -> bool:
    return value is None or (type(value) is str and 0 < len(value) <= longest)


def _optional_match(value: object, pattern: re.Pattern[str]) -> bool:
    return value is None or (type(value) is str and pattern.fullmatch(value) is not None)


def _plain(node: object, depth: int = 2) -> bool:
    """True if orjson and pydantic read this evidence alike.

    orjson reads an integer beyond 64 bits as a float (pydantic: an int), and nests deeper than
    pydantic's parser allows (200 levels): in both cases the model decides.
    """
    if depth > _DEEPEST:
        return False
    if type(node) is dict:
        return all(_plain(item, depth + 1) for item in node.values())
    if type(node) is list:
        return all(_plain(item, depth + 1) for item in node)
    return type(node) is not float


def _identifiers(value: object) -> Identifiers | None:
    if value is None:
        return None
    if type(value) is not dict or not value.keys() <= _IDENTIFIER_FIELDS:
        raise _Unsure
    email = value.get("email")
    if not (
        (email is None or (type(email) is str and len(email) <= 320 and _EMAIL.fullmatch(email)))
        and _optional_match(value.get("phone"), _PHONE)
        and _optional_text(value.get("cookie_id"), 256)
        and _optional_text(value.get("crm_id"), 128)
    ):
        raise _Unsure
    return _built(Identifiers, value)


def fast_event(data: object, now: datetime | None) -> ConsentEvent | None:
    """The event ``data`` (parsed JSON) states, or None if the model must decide."""
    if type(data) is not dict or not data.keys() <= _FIELDS:
        return None
    get = data.get
    try:
        kind = _TYPES[data["type"]]
        event_id, controller, subject_id = data["event_id"], data["controller"], data["subject_id"]
        occurred_at = _moment(data["occurred_at"], now or datetime.now(UTC))
        identifiers = _identifiers(get("identifiers"))
    except (KeyError, TypeError, _Unsure):  # missing, unhashable or unsure: the model explains
        return None
    purpose, channel, objection, signal = (
        get("purpose"),
        get("channel"),
        get("objection"),
        get("signal"),
    )
    evidence, version = get("evidence"), get("schema_version", 1)
    if not (
        type(event_id) is str
        and 0 < len(event_id) <= 128
        and type(controller) is str
        and _SLUG.fullmatch(controller)
        and type(subject_id) is str
        and 0 < len(subject_id) <= 256
        and subject_id not in DOT_SEGMENTS
        and _optional_match(purpose, _SLUG)
        and (channel is None or (type(channel) is str and channel in _CHANNELS))
        and (objection is None or (type(objection) is str and objection in _OBJECTIONS))
        and (signal is None or (type(signal) is str and signal in _SIGNALS))
        and _optional_match(get("jurisdiction"), _JURISDICTION)
        and _optional_text(get("source"), 128)
        and _optional_text(get("notice_version"), 128)
        and (evidence is None or (type(evidence) is dict and _plain(evidence)))
        and type(version) is int
        and version == 1
        # the model validator's rules on the type
        and (purpose is not None or kind.value not in _NEEDS_PURPOSE)
        and ((purpose is None and channel is None) or kind.value not in _UNSCOPED)
        and (objection is not None) == (kind is EventType.OBJECTION_RAISED)
        and (signal is not None) == (kind is EventType.PRIVACY_SIGNAL)
    ):
        return None
    fields = dict(data)
    fields["type"] = kind
    fields["occurred_at"] = occurred_at
    if channel is not None:
        fields["channel"] = _CHANNELS[channel]
    if objection is not None:
        fields["objection"] = _OBJECTIONS[objection]
    if signal is not None:
        fields["signal"] = _SIGNALS[signal]
    if identifiers is not None:
        fields["identifiers"] = identifiers
    if evidence is not None:
        fields["evidence"] = dict(evidence)
    return _built(ConsentEvent, fields)
