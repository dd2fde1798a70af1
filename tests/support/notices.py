"""A controller whose second notice version changed one purpose materially, and subject
states stored in the in-memory backend for the reconsent listing."""

from __future__ import annotations

from datetime import UTC, date, datetime

from schemas.events import ConsentEvent
from streams.core.engine import Engine, subject_key
from streams.core.policy import load_policy
from streams.core.state import EMPTY
from tests.support.fake_backend import Served


def reconsent_policy(change: date) -> str:
    """The policy, its second notice version (materially changing ``offers``) effective on
    ``change``."""
    return _RECONSENT_POLICY.replace("effective = CHANGE", f"effective = {change.isoformat()}")


_RECONSENT_POLICY = """
[controllers.acme]
name = "Acme AB"

[[controllers.acme.notices]]
version = "v1"
effective = 2026-01-01

[[controllers.acme.notices]]
version = "v2"
effective = CHANGE
material = ["offers"]

[controllers.acme.purposes.offers]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email", "sms"]
destinations = ["email"]

[controllers.acme.purposes.tips]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
"""
RECONSENT_POLICY = reconsent_policy(date(2026, 6, 1))
BEFORE = datetime(2026, 5, 1, tzinfo=UTC)
AFTER = datetime(2026, 7, 1, tzinfo=UTC)


def granted(subject: str, at: datetime, purpose: str = "offers") -> ConsentEvent:
    return ConsentEvent(
        event_id=f"g-{subject}-{purpose}",
        type="consent.granted",
        occurred_at=at,
        controller="acme",
        subject_id=subject,
        purpose=purpose,
    )


def store(served: Served, subject: str, *events: ConsentEvent) -> None:
    engine = Engine(load_policy(served.settings.policy_file))
    state = EMPTY
    for one in events:
        state = engine.apply(state, one, AFTER).state
    served.backend.states[subject_key("acme", subject).encode()] = state.to_bytes()
