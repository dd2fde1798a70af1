"""How long a consent lasts, and how long an unconfirmed double opt-in may wait.

Both come from the purpose in the policy (``consent_lifetime``, ``confirmation_window``); a
purpose without them never expires or lapses, and these functions return ``None``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from streams.core.policy import Purpose


def consent_expires(purpose: Purpose, given_at: datetime) -> datetime | None:
    """When a consent to ``purpose`` given at ``given_at`` stops counting (UTC), if ever."""
    if purpose.consent_lifetime is None:
        return None
    return purpose.consent_lifetime.after(_utc(given_at))


def pending_lapses(purpose: Purpose, requested_at: datetime) -> datetime | None:
    """When a double opt-in asked for at ``requested_at`` and not confirmed lapses (UTC)."""
    if purpose.confirmation_window is None:
        return None
    return purpose.confirmation_window.after(_utc(requested_at))


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC)
