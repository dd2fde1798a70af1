"""Output contract: one record on ``consent.suppressions.<destination>``."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import SCHEMA_VERSION, EventId, Identifiers, Slug, SubjectId
from schemas.vocabulary import Action, Channel, LegalBasis, Reason


class SuppressionMessage(BaseModel):
    """What a subscribed system must do for one (subject, purpose, channel)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="SuppressionMessage")

    suppression_id: str = Field(
        description=(
            "Deterministic for the same cause and the same known identifiers: a redelivery "
            "carries the same id; a newly learned identifier gives a new one"
        )
    )
    action: Action = Field(
        description=(
            "suppress: stop contacting the person for this purpose and channel (keep the "
            "address on a suppression list); allow: contacting is allowed again; erase (since "
            "1.2.0): delete the person's data held for this purpose and channel up to "
            "effective_at, keeping only what the suppression needs. An erase is a command, not "
            "a decision: the same destination then receives the pair's decision (suppress or "
            "allow), so the last message per pair is always suppress or allow. Consumers must "
            "handle erase: one that rejects an unknown action rejects it"
        )
    )
    controller: Slug
    subject_id: SubjectId
    purpose: Slug
    channel: Channel
    reason: Reason
    legal_basis: LegalBasis
    effective_at: AwareDatetime = Field(description="Event time of the cause")
    caused_by_event_id: EventId
    identifiers: Identifiers = Field(description="Identifiers known for the subject")
    emitted_at: AwareDatetime
    schema_version: Literal[1] = SCHEMA_VERSION
