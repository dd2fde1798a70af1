"""Request and response bodies of the HTTP API; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.deadletter import FieldError
from schemas.events import Slug, SubjectId
from schemas.vocabulary import Channel, EventType, LegalBasis, Reason, Signal
from streams.security.tokens import TokenKind

#: Most events one ``POST /v1/events`` may carry.
MAX_BATCH = 500
#: Longest a minted link may stay valid: two years.
MAX_TTL_SECONDS = 2 * 366 * 24 * 3600

PairStateValue = Literal["allowed", "suppressed", "not_allowed"]
Role = Literal["grant", "denial", "confirmation", "restriction"]
AppliesTo = Literal[
    "consent", "unsubscribe", "objection", "privacy_signal", "erasure", "restriction"
]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorBody(_Out):
    error: str = Field(description="Stable machine-readable code")
    message: str = Field(description="What went wrong, for people")


class ItemErrors(_Out):
    index: int = Field(description="Position in the submitted array (0 for a single object)")
    event_id: str | None = Field(description="The item's event_id, if it had a readable one")
    errors: list[FieldError]


class ValidationErrorBody(ErrorBody):
    items: list[ItemErrors]


class PairDecision(_Out):
    purpose: str
    channel: Channel
    allowed: bool = Field(description="May the controller process for this purpose and channel")
    state: PairStateValue = Field(
        description="allowed; suppressed (an opt-out); not_allowed (no consent or not confirmed)"
    )
    reason: Reason
    legal_basis: LegalBasis
    since: AwareDatetime | None = Field(
        description="Event time of the statement behind the decision; null = the policy default"
    )
    caused_by_event_id: str | None


class Decision(PairDecision):
    controller: str
    subject_id: str


class StatementOut(_Out):
    event_id: str
    type: EventType
    occurred_at: AwareDatetime
    role: Role
    applies_to: AppliesTo
    purpose: str | None = Field(description="null = every purpose the statement reaches")
    channel: str | None = Field(description="null = every channel")
    objection: str | None = None
    signal: str | None = None


class Preferences(_Out):
    controller: str
    subject_id: str
    decisions: list[PairDecision] = Field(description="Every purpose x channel of the controller")
    statements: list[StatementOut] = Field(
        description="The recorded statements decisions are made from (latest per scope)"
    )


class EventsAccepted(_Out):
    accepted: int
    event_ids: list[str]


class SignalPublished(_Out):
    signal: Signal
    event_id: str


class SignalIgnored(_Out):
    signal: Signal
    reason: str


class SignalsResult(_Out):
    published: list[SignalPublished]
    ignored: list[SignalIgnored]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TokenKind
    controller: Slug
    subject_id: SubjectId
    purpose: Slug | None = Field(
        default=None,
        description="confirm: required. unsubscribe: null = every direct-marketing purpose",
    )
    channel: Channel | None = Field(
        default=None, description="unsubscribe: null = email. confirm: null = every channel"
    )
    ttl_seconds: int | None = Field(
        default=None,
        ge=60,
        le=MAX_TTL_SECONDS,
        description="Validity; default: unsubscribe links never expire, confirm links 7 days",
    )


class MintedToken(_Out):
    kind: TokenKind
    token: str
    url: str
    expires_at: AwareDatetime | None
    headers: dict[str, str] = Field(
        description="Unsubscribe: the List-Unsubscribe and List-Unsubscribe-Post header values"
    )


class FaustIndex(_Out):
    status: Literal["OK"]


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    status: Literal["ready", "not ready"]
    partitions: list[int] = Field(description="Table partitions this worker answers for")
