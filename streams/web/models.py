"""Request and response bodies of the HTTP API; the OpenAPI document is generated from these."""

from __future__ import annotations

from typing import Any, Literal

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
Role = Literal["grant", "denial", "confirmation", "restriction", "expiry", "lapse", "retention_end"]
AppliesTo = Literal[
    "consent", "unsubscribe", "objection", "privacy_signal", "erasure", "restriction", "retention"
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


# -- the ledger: proof, receipts, export --------------------------------------------------------

Problem = Literal[
    "altered",
    "broken_link",
    "missing",
    "duplicate",
    "out_of_order",
    "foreign",
    "head_mismatch",
    "corrupt",
]


class ArrivalOut(_Out):
    topic: str | None = Field(description="Kafka topic the event was read from")
    partition: int | None
    offset: int | None
    api_key: str | None = Field(description="Name of the API key that published it (never the key)")
    link_kind: str | None = Field(description="unsubscribe or confirm: a link click published it")


class EffectOut(_Out):
    purpose: str
    channel: str
    action: str = Field(description="The instruction sent: suppress, allow, erase...")
    suppression_id: str
    destinations: list[str] = Field(description="The destination topics that were told")


class LedgerEntryOut(_Out):
    sequence: int = Field(description="Position in the subject's chain, from 1")
    previous: str = Field(description="SHA-256 digest of the entry before (64 zeros for the first)")
    digest: str = Field(description="SHA-256 digest of this entry as stored")
    event_id: str
    type: str = Field(description="The event type")
    occurred_at: AwareDatetime = Field(description="When the statement was made")
    received_at: AwareDatetime = Field(description="When the worker recorded it")
    purpose: str | None
    channel: str | None
    objection: str | None
    signal: str | None
    notice_version: str | None
    source: str | None
    jurisdiction: str | None
    request_id: str | None = Field(
        default=None, description="For access.fulfilled: the access request it fulfils"
    )
    arrival: ArrivalOut
    shredded: bool = Field(
        description="The subject's personal data was erased: identifiers and evidence are "
        "unreadable (null); the rest of the entry remains. False for an entry whose event "
        "carried no personal data (nothing to erase)"
    )
    identifiers: dict[str, str] | None = Field(description="As the event carried them")
    evidence: dict[str, Any] | None = Field(description="As the publisher sent it (untrusted)")
    effects: list[EffectOut] = Field(description="The instructions this event caused")


class ChainFinding(_Out):
    sequence: int = Field(description="The entry concerned (the position, for corrupt)")
    problem: Problem
    detail: str


class ChainCheck(_Out):
    intact: bool = Field(description="Every entry matches its digest and follows the one before")
    entries: int = Field(description="Entries checked")
    head_sequence: int | None = Field(description="Sequence of the recorded chain head")
    problems: list[ChainFinding]


class ProofOut(_Out):
    controller: str
    subject_id: str
    purpose: str
    channel: Channel
    at: AwareDatetime = Field(description="The time the decision is proven for")
    known_at: AwareDatetime | None = Field(
        description="Only statements recorded by then were considered (null: everything recorded)"
    )
    decision: PairDecision
    cause: LedgerEntryOut | None = Field(
        description="The entry whose statement made the decision (null: the policy's default)"
    )
    basis: list[LedgerEntryOut] = Field(
        description="The entries whose statements were in force for the pair at that time"
    )
    chain: ChainCheck


class ReceiptOut(_Out):
    event_id: str
    receipt: str = Field(
        description="Compact JWS (EdDSA, typ consent-receipt+jwt); verify with "
        "/.well-known/jwks.json"
    )
    claims: dict[str, Any] = Field(description="The signed claims (ISO/IEC TS 27560, W3C DPV)")


class Jwks(_Out):
    keys: list[dict[str, Any]] = Field(
        description="Public keys (RFC 7517) receipts are signed with"
    )


class ControllerOut(_Out):
    id: str
    name: str


class IdentifierOut(_Out):
    kind: str = Field(description="email, phone...")
    value: str
    first_recorded: AwareDatetime
    last_recorded: AwareDatetime


class NotificationOut(EffectOut):
    sequence: int = Field(description="The ledger entry whose event caused it")
    event_id: str
    at: AwareDatetime = Field(description="When the event was recorded and the instruction sent")


class ExportOut(_Out):
    format: Literal["consent-streams.export"] = "consent-streams.export"
    version: Literal[1] = 1
    controller: ControllerOut
    subject_id: str
    generated_at: AwareDatetime
    decisions: list[PairDecision] = Field(
        description="Current decision for every purpose x channel of the controller"
    )
    statements: list[StatementOut] = Field(description="The statements the decisions rest on")
    identifiers: list[IdentifierOut] = Field(
        description="Every identifier recorded for the subject (readable entries only)"
    )
    ledger: list[LedgerEntryOut] = Field(description="Every recorded event, oldest first")
    notifications: list[NotificationOut] = Field(
        description="Which destinations were told what, and when"
    )
    receipts: list[ReceiptOut] = Field(description="A signed receipt per consent statement")
    receipts_unavailable: str | None = Field(
        description="Why there are no receipts (receipt signing not configured); else null"
    )
    chain: ChainCheck


class ReconsentPair(_Out):
    purpose: str
    channel: Channel
    notice_version: str = Field(description="The notice version that changed the purpose")
    since: AwareDatetime = Field(
        description="When the consent stopped counting (its effective date)"
    )
    consent_event_id: str = Field(description="The consent that no longer counts")


class ReconsentSubject(_Out):
    subject_id: str
    pairs: list[ReconsentPair]


class ReconsentPage(_Out):
    controller: str
    purpose: str | None = Field(description="The purpose asked about; null = every purpose")
    decided_at: AwareDatetime = Field(description="The moment the decisions were made at")
    partitions: list[int] = Field(description="The table partitions this worker listed")
    others: dict[int, str | None] = Field(
        description="The table's other partitions, each with the worker that holds it (null: "
        "none known now): ask them for the rest"
    )
    subjects: list[ReconsentSubject]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null = done")


class OpenClock(_Out):
    controller: str
    subject_id: str
    event_id: str
    type: EventType
    rule: str = Field(description="The deadline that applies: a legal rule or promise_requests")
    started: AwareDatetime = Field(description="The event's occurred_at")
    deadline: AwareDatetime
    remaining_seconds: float = Field(description="Until the deadline; negative when overdue")
    remaining_fraction: float = Field(description="remaining_seconds over the time allowed")
    awaiting: Literal["sent", "confirmed"] = Field(
        description="What stops the clock: sent (the batch's instructions acknowledged) or "
        "confirmed (work outside the worker, reported back)"
    )


class OpenClocks(_Out):
    now: AwareDatetime
    partitions: list[int] = Field(description="The table partitions this worker listed")
    others: dict[int, str | None] = Field(
        description="The table's other partitions, each with the worker that holds it (null: "
        "none known now): ask them for the rest"
    )
    clocks: list[OpenClock] = Field(description="Soonest deadline first")


class DeadlineRow(_Out):
    controller: str
    rule: str
    count: int = Field(description="Clocks closed")
    met: int
    missed: int
    open: int = Field(description="Clocks still open")
    overdue: int = Field(description="Open clocks past their deadline")
    worst_fraction: float = Field(description="Largest time to honour over the time allowed")
    worst_seconds: float
    p50_seconds: float | None = Field(description="Median time to honour (at most 9 % high)")
    p99_seconds: float | None
    buckets: dict[str, int] = Field(
        description="Time to honour histogram: bucket i counts times up to 2^(i/8) seconds "
        "(summed across workers to merge reports)"
    )


class DeadlineReport(_Out):
    generated_at: AwareDatetime
    partitions: list[int] = Field(description="The table partitions this worker reported")
    others: dict[int, str | None] = Field(
        description="The table's other partitions, each with the worker that holds it (null: "
        "none known now): ask them for the rest"
    )
    rows: list[DeadlineRow]
