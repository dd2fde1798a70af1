"""Input contract: one record on ``consent.events``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.vocabulary import Channel, EventType, Objection, Signal

MAX_RECORD_BYTES = 64 * 1024
MAX_FUTURE_SKEW = timedelta(minutes=5)
SCHEMA_VERSION: Literal[1] = 1

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
SubjectId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128)]

_CONSENT_TYPES = frozenset(
    {EventType.CONSENT_GRANTED, EventType.CONSENT_CONFIRMED, EventType.CONSENT_WITHDRAWN}
)
# Types that apply to every purpose and channel: a purpose or channel on them is a publisher bug.
_UNSCOPED_TYPES = frozenset(
    {
        EventType.OBJECTION_RAISED,
        EventType.PRIVACY_SIGNAL,
        EventType.ERASURE_REQUESTED,
        EventType.RESTRICTION_REQUESTED,
        EventType.RESTRICTION_LIFTED,
    }
)


class Identifiers(BaseModel):
    """Ways downstream systems address the subject; all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: (
        Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()./-]{2,31}$")] | None = None
    cookie_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    crm_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None


class ConsentEvent(BaseModel):
    """A statement by or about a data subject, published by any service."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ConsentEvent")

    event_id: EventId = Field(description="Unique per logical event; a duplicate is the same event")
    type: EventType
    occurred_at: AwareDatetime = Field(
        description="Event time, RFC 3339 with offset; at most 5 minutes in the future"
    )
    controller: Slug = Field(description="Controller (tenant) id; must exist in the policy")
    subject_id: SubjectId = Field(description="The data subject's stable id at that controller")
    purpose: Slug | None = Field(
        default=None,
        description="Required for consent.*; for unsubscribed absent = every direct-marketing "
        "purpose on the channel",
    )
    channel: Channel | None = Field(
        default=None,
        description="Absent = every channel of the purpose; for unsubscribed absent = email",
    )
    objection: Objection | None = Field(default=None, description="Required for objection.raised")
    signal: Signal | None = Field(default=None, description="Required for privacy.signal")
    identifiers: Identifiers | None = None
    source: ShortText | None = Field(default=None, description="Publishing system")
    jurisdiction: (
        Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")] | None
    ) = Field(default=None, description="ISO 3166 country or subdivision, e.g. SE, US-CA")
    notice_version: ShortText | None = Field(
        default=None, description="Version of the privacy notice shown"
    )
    evidence: dict[str, Any] | None = Field(
        default=None, description="Proof of consent (form, IP hash, wording shown...)"
    )
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now") or datetime.now(UTC)
        try:
            utc = value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+00:01 is before year 1 in UTC
            raise ValueError("occurred_at is out of range") from None
        if utc - now > MAX_FUTURE_SKEW:
            raise ValueError("occurred_at is more than 5 minutes in the future")
        return utc

    @model_validator(mode="after")
    def _fields_fit_type(self) -> ConsentEvent:
        problems: list[str] = []
        if self.type in _CONSENT_TYPES and self.purpose is None:
            problems.append(f"purpose is required for {self.type.value}")
        if self.type in _UNSCOPED_TYPES:
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
        if problems:
            raise ValueError("; ".join(problems))
        return self
