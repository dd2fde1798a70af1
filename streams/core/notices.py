"""Privacy notice versions, and whether a consent given under an older one still counts.

When a controller changes its notice materially for a purpose, consents given before that change
stop counting for the purpose from the new version's effective date: the person must be asked
again. Changes that are not material (a new address, clearer wording) leave consents standing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from streams.core.retention import DATA_PATTERN, no_duplicates


class NoticeVersion(BaseModel):
    """One published version of a controller's privacy notice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: How events name the version (``notice_version``), e.g. the date printed on the notice.
    version: str = Field(min_length=1, max_length=128)  # as long as an event's notice_version
    #: From when it applies: a TOML date (midnight UTC) or an offset date-time.
    effective: AwareDatetime
    #: Purposes this version changed materially; consents to them given earlier stop counting.
    material: Annotated[
        tuple[Annotated[str, Field(pattern=DATA_PATTERN)], ...], AfterValidator(no_duplicates)
    ] = ()
    note: str = ""

    @field_validator("effective", mode="before")
    @classmethod
    def _date_is_midnight_utc(cls, value: object) -> object:
        if isinstance(value, str) and len(value) == len("2024-06-01"):
            value = date.fromisoformat(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(), tzinfo=UTC)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("give a date (2023-03-30) or a date-time with an offset")
        return value


def version_at(notices: Sequence[NoticeVersion], moment: datetime) -> NoticeVersion | None:
    """The version in force at ``moment`` (``notices`` in effective-date order)."""
    current = None
    for notice in notices:
        if notice.effective <= moment:
            current = notice
    return current


def reconsent_required(
    notices: Sequence[NoticeVersion],
    purpose: str,
    now: datetime,
    *,
    version: str | None = None,
    given_at: datetime | None = None,
) -> bool:
    """Whether a consent to ``purpose`` given under ``version`` (or at ``given_at``) no longer
    counts at ``now`` because a later version in force by then changed the purpose materially.

    The named version decides when it is one of ``notices``; otherwise ``given_at`` does (the
    consent was given under whatever version was in force then). With neither, ValueError.
    """
    return superseded_by(notices, purpose, now, version=version, given_at=given_at) is not None


def next_material(
    notices: Sequence[NoticeVersion],
    purpose: str,
    *,
    version: str | None = None,
    given_at: datetime | None = None,
) -> NoticeVersion | None:
    """The first version after the consent (as :func:`reconsent_required` places it) that
    changes ``purpose`` materially: the consent stops counting at its effective date. None
    while no listed version does."""
    since = _since(notices, version, given_at)
    return next((n for n in notices if since < n.effective and purpose in n.material), None)


def _since(
    notices: Sequence[NoticeVersion], version: str | None, given_at: datetime | None
) -> datetime:
    since = None
    if version is not None:
        since = next((n.effective for n in notices if n.version == version), None)
    if since is None:
        if given_at is None:
            raise ValueError(f"notice version {version!r} is unknown and no consent time was given")
        since = given_at
    return since


def superseded_by(
    notices: Sequence[NoticeVersion],
    purpose: str,
    now: datetime,
    *,
    version: str | None = None,
    given_at: datetime | None = None,
) -> NoticeVersion | None:
    """The latest version in force at ``now`` that changed ``purpose`` materially after the
    consent was given (see :func:`reconsent_required`); None while the consent still counts."""
    since = _since(notices, version, given_at)
    found = None
    for notice in notices:
        if since < notice.effective <= now and purpose in notice.material:
            found = notice
    return found
