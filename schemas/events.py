"""Input contract: one record on ``consent.events``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from schemas.rfc3339 import DATE_TIME, DATE_TIME_MESSAGE
from schemas.vocabulary import Channel, EventType, Objection, Signal

MAX_RECORD_BYTES = 64 * 1024
MAX_FUTURE_SKEW = timedelta(minutes=5)
SCHEMA_VERSION: Literal[1] = 1

# Characters Unicode calls White_Space, spelled out so that every regex dialect reads them alike.
_SPACE = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
DOT_SEGMENTS = (".", "..")


def _not_a_dot_segment(value: str) -> str:
    # "." and ".." cannot be a path segment of the decisions API: they would never be readable.
    if value in DOT_SEGMENTS:
        raise ValueError("subject_id must not be '.' or '..' (they cannot name a URL path segment)")
    return value


SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
JURISDICTION_PATTERN = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
EMAIL_PATTERN = f"^[^@{_SPACE}]+@[^@{_SPACE}]+$"
PHONE_PATTERN = r"^\+?[0-9][0-9 ()./-]{2,31}$"

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
SubjectId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256),
    AfterValidator(_not_a_dot_segment),
    Field(json_schema_extra={"not": {"enum": list(DOT_SEGMENTS)}}),
]
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]

CONSENT_TYPES = frozenset(
    {EventType.CONSENT_GRANTED, EventType.CONSENT_CONFIRMED, EventType.CONSENT_WITHDRAWN}
)
# Types the worker's timers emit (a lifetime, a confirmation window or a retention period ran
# out, a material notice change took effect): each names the purpose it is about. Publishers
# need not send them.
TIMER_TYPES = frozenset(
    {
        EventType.CONSENT_EXPIRED,
        EventType.CONFIRMATION_LAPSED,
        EventType.RETENTION_DUE,
        EventType.CONSENT_SUPERSEDED,
    }
)
PURPOSE_TYPES = CONSENT_TYPES | TIMER_TYPES
# Types that apply to every purpose and channel: a purpose or channel on them is a publisher bug.
UNSCOPED_TYPES = frozenset(
    {
        EventType.OBJECTION_RAISED,
        EventType.PRIVACY_SIGNAL,
        EventType.ERASURE_REQUESTED,
        EventType.RESTRICTION_REQUESTED,
        EventType.RESTRICTION_LIFTED,
        EventType.ACCESS_REQUESTED,
        EventType.ACCESS_FULFILLED,
    }
)
# Types that run a deadline clock and decide nothing: an access or portability request, and
# its fulfilment, which names the request (``request_id``) and stops the request's clock.
ACCESS_TYPES = frozenset({EventType.ACCESS_REQUESTED, EventType.ACCESS_FULFILLED})


def _type_rules() -> list[JsonValue]:
    """The model validator's rules below, as JSON Schema, so that the published schema has them."""

    def of(*types: EventType) -> JsonDict:
        values: list[JsonValue] = [kind.value for kind in sorted(types)]
        return {"properties": {"type": {"enum": values}}, "required": ["type"]}

    def present(name: str) -> JsonDict:
        required: list[JsonValue] = [name]
        return {"required": required, "properties": {name: {"not": {"type": "null"}}}}

    def absent(*names: str) -> JsonDict:
        return {"properties": {name: {"type": "null"} for name in names}}

    return [
        {"if": of(*PURPOSE_TYPES), "then": present("purpose")},
        {"if": of(*UNSCOPED_TYPES), "then": absent("purpose", "channel")},
        {
            "if": of(EventType.OBJECTION_RAISED),
            "then": present("objection"),
            "else": absent("objection"),
        },
        {"if": of(EventType.PRIVACY_SIGNAL), "then": present("signal"), "else": absent("signal")},
        {
            "if": of(EventType.ACCESS_FULFILLED),
            "then": present("request_id"),
            "else": absent("request_id"),
        },
    ]


class Identifiers(BaseModel):
    """Ways downstream systems address the subject; all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Annotated[str, StringConstraints(max_length=320, pattern=EMAIL_PATTERN)] | None = None
    phone: Annotated[str, StringConstraints(pattern=PHONE_PATTERN)] | None = None
    cookie_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    crm_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class ConsentEvent(BaseModel):
    """A statement by or about a data subject, published by any service."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="ConsentEvent",
        json_schema_extra={"allOf": _type_rules()},
    )

    event_id: EventId = Field(description="Unique per logical event; a duplicate is the same event")
    type: EventType = Field(
        description="consent.expired, confirmation.lapsed, retention.due and consent.superseded "
        "are emitted by the worker's timers (evidence.cause_event_id names the statement they "
        "follow from); publishers need not send them. access.requested (an access or "
        "portability request) and access.fulfilled (its export handed over; since 1.3.0) run a "
        "deadline clock and change no decision"
    )
    occurred_at: AwareDatetime = Field(
        description="Event time, RFC 3339 with offset; at most 5 minutes in the future",
        json_schema_extra={"pattern": DATE_TIME.pattern},
    )
    controller: Slug = Field(description="Controller (tenant) id; must exist in the policy")
    subject_id: SubjectId = Field(description="The data subject's stable id at that controller")
    purpose: Slug | None = Field(
        default=None,
        description="Required for consent.*, confirmation.lapsed and retention.due; for "
        "unsubscribed absent = every direct-marketing purpose on the channel",
    )
    channel: Channel | None = Field(
        default=None,
        description="Absent = every channel of the purpose; for unsubscribed absent = email",
    )
    objection: Objection | None = Field(default=None, description="Required for objection.raised")
    signal: Signal | None = Field(default=None, description="Required for privacy.signal")
    identifiers: Identifiers | None = None
    source: ShortText | None = Field(default=None, description="Publishing system")
    jurisdiction: Annotated[str, StringConstraints(pattern=JURISDICTION_PATTERN)] | None = Field(
        default=None, description="ISO 3166 country or subdivision, e.g. SE, US-CA"
    )
    notice_version: ShortText | None = Field(
        default=None, description="Version of the privacy notice shown"
    )
    evidence: dict[str, Any] | None = Field(
        default=None, description="Proof of consent (form, IP hash, wording shown...)"
    )
    request_id: EventId | None = Field(
        default=None,
        description="Required for access.fulfilled, not allowed otherwise: the event_id of the "
        "access.requested it fulfils (same subject and controller) (since 1.3.0)",
    )
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339_not_in_future(cls, value: object, info: ValidationInfo) -> object:
        # pydantic alone also takes epoch numbers, a space for T and +0200; the contract does not.
        if isinstance(value, str) and DATE_TIME.fullmatch(value):
            value = datetime.fromisoformat(value.upper())  # reads a fraction as pydantic does
        elif not isinstance(value, datetime):
            raise ValueError(DATE_TIME_MESSAGE)
        if value.tzinfo is None:
            return value  # AwareDatetime says why
        now = (info.context or {}).get("now") or datetime.now(UTC)
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 is before year 1 in UTC
            raise ValueError("occurred_at is out of range") from None
        if utc - now > MAX_FUTURE_SKEW:
            raise ValueError("occurred_at is more than 5 minutes in the future")
        return utc

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # JSON true is not the number 1 (pydantic's lax mode would take it).
        if isinstance(value, bool):
            raise ValueError("Input should be 1")
        return value

    @model_validator(mode="after")
    def _fields_fit_type(self) -> ConsentEvent:
        problems: list[str] = []
        if self.type in PURPOSE_TYPES and self.purpose is None:
            problems.append(f"purpose is required for {self.type.value}")
        if self.type in UNSCOPED_TYPES:
            problems += [
                f"{name} is not allowed for {self.type.value} (it applies to every {name})"
                for name in ("purpose", "channel")
                if getattr(self, name) is not None
            ]
        if (self.type is EventType.OBJECTION_RAISED) != (self.objection is not None):
            problems.append(
                "objection is required for objection.raised"
                if self.objection is None
                else f"objection is only allowed for objection.raised, not {self.type.value}"
            )
        if (self.type is EventType.PRIVACY_SIGNAL) != (self.signal is not None):
            problems.append(
                "signal is required for privacy.signal"
                if self.signal is None
                else f"signal is only allowed for privacy.signal, not {self.type.value}"
            )
        if (self.type is EventType.ACCESS_FULFILLED) != (self.request_id is not None):
            problems.append(
                "request_id is required for access.fulfilled"
                if self.request_id is None
                else f"request_id is only allowed for access.fulfilled, not {self.type.value}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self
