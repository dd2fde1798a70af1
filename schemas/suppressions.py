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
    action: Action
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
