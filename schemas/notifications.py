"""Output contract: one record on ``consent.notifications`` (contract 1.2).

Notifications are not decisions: they tell the controller's messaging systems that something is
about to happen, such as a consent that will expire unless it is given again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.events import SCHEMA_VERSION, EventId, Identifiers, Slug, SubjectId
from schemas.vocabulary import Channel


class NotificationKind(StrEnum):
    RENEWAL_REMINDER = "renewal_reminder"  # the consent expires soon: ask for it again


class ConsentNotification(BaseModel):
    """Something the controller may want to tell the subject about one (purpose, channel)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="ConsentNotification")

    notification_id: str = Field(
        description="Deterministic for the same consent and the same due time: a redelivery "
        "carries the same id"
    )
    kind: NotificationKind
    controller: Slug
    subject_id: SubjectId
    purpose: Slug
    channel: Channel
    due_at: AwareDatetime = Field(description="When the reminder was due (event time)")
    expires_at: AwareDatetime = Field(description="When the consent expires unless renewed")
    consent_event_id: EventId = Field(description="The statement that gave the consent")
    identifiers: Identifiers = Field(description="Identifiers known for the subject")
    emitted_at: AwareDatetime
    schema_version: Literal[1] = SCHEMA_VERSION
