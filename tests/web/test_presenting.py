"""Statements in a subject's state, described for the preferences response."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.events import ConsentEvent
from streams.core.state import EMPTY
from streams.web.presenting import statements_of

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def event(event_id: str, type_: str, **fields: str) -> ConsentEvent:
    return ConsentEvent.model_validate(
        {
            "event_id": event_id,
            "type": type_,
            "occurred_at": AT.isoformat(),
            "controller": "hms-se",
            "subject_id": "s",
            **fields,
        }
    )


def test_every_kind_of_statement_is_described() -> None:
    state = EMPTY
    for e in (
        event("e1", "consent.confirmed", purpose="newsletter", channel="email"),
        event("e2", "consent.withdrawn", purpose="marketing-automation"),
        event("e3", "unsubscribed"),
        event("e4", "objection.raised", objection="profiling"),
        event("e5", "privacy.signal", signal="gpc"),
        event("e6", "erasure.requested"),
        event("e7", "restriction.requested"),
        event("e8", "consent.expired", purpose="newsletter", channel="email"),
        event("e9", "confirmation.lapsed", purpose="newsletter", channel="email"),
        event("e10", "retention.due", purpose="order-handling"),
    ):
        state = state.fold(e)
    described = {(s.event_id, s.role): s for s in statements_of(state)}
    grant = described["e1", "grant"]
    assert (grant.applies_to, grant.purpose, grant.channel) == ("consent", "newsletter", "email")
    assert described["e1", "confirmation"].applies_to == "consent"
    withdrawn = described["e2", "denial"]
    assert (withdrawn.purpose, withdrawn.channel) == ("marketing-automation", None)
    unsubscribed = described["e3", "denial"]
    assert (unsubscribed.applies_to, unsubscribed.purpose, unsubscribed.channel) == (
        "unsubscribe",
        None,
        "email",
    )
    assert described["e4", "denial"].objection == "profiling"
    assert described["e5", "denial"].signal == "gpc"
    assert described["e6", "denial"].applies_to == "erasure"
    assert described["e7", "restriction"].applies_to == "restriction"
    assert (described["e8", "expiry"].applies_to, described["e8", "expiry"].purpose) == (
        "consent",
        "newsletter",
    )
    assert described["e9", "lapse"].channel == "email"
    ended = described["e10", "retention_end"]
    assert (ended.applies_to, ended.purpose, ended.channel) == ("retention", "order-handling", None)
    assert all(s.occurred_at == AT for s in described.values())
    assert len(described) == 11
