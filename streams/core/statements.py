"""Statements: what an event asserts, where it applies, and how statements are ordered.

State keeps, per scope and slot, only the greatest statement under one total order, so folding
is commutative, associative and idempotent: the result depends only on the set of events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, EventType, Reason

# Slots inside a scope.
GRANT: Final = "g"
DENIAL: Final = "d"
CONFIRMED: Final = "f"
RESTRICTION: Final = "r"

RESTRICTION_SCOPE: Final = "r"
ERASURE_SCOPE: Final = "e"
ANY: Final = "*"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# At equal event time a denial beats a grant (and a restriction request beats a lift).
_RANK: dict[EventType, int] = {
    EventType.CONSENT_GRANTED: 0,
    EventType.CONSENT_CONFIRMED: 0,
    EventType.RESTRICTION_LIFTED: 0,
    EventType.CONSENT_WITHDRAWN: 1,
    EventType.UNSUBSCRIBED: 1,
    EventType.OBJECTION_RAISED: 1,
    EventType.PRIVACY_SIGNAL: 1,
    EventType.ERASURE_REQUESTED: 1,
    EventType.RESTRICTION_REQUESTED: 1,
}

DENIAL_REASON: dict[EventType, Reason] = {
    EventType.CONSENT_WITHDRAWN: Reason.CONSENT_WITHDRAWN,
    EventType.UNSUBSCRIBED: Reason.UNSUBSCRIBED,
    EventType.OBJECTION_RAISED: Reason.OBJECTION,
    EventType.PRIVACY_SIGNAL: Reason.PRIVACY_SIGNAL,
    EventType.ERASURE_REQUESTED: Reason.ERASURE,
    EventType.RESTRICTION_REQUESTED: Reason.RESTRICTED,
}


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


@dataclass(frozen=True, slots=True)
class Statement:
    """One recorded event, reduced to what decisions need."""

    at: int  # occurred_at, microseconds since the epoch (UTC)
    event_id: str
    type: EventType

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.at, _RANK[self.type], self.event_id)

    @property
    def occurred_at(self) -> datetime:
        return from_micros(self.at)

    @property
    def is_denial(self) -> bool:
        return _RANK[self.type] == 1


def latest(a: Statement | None, b: Statement | None) -> Statement | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.order >= b.order else b


def consent_scope(purpose: str, channel: Channel | str) -> str:
    return f"c|{purpose}|{channel}"


def unsubscribe_scope(purpose: str, channel: Channel | str) -> str:
    return f"u|{purpose}|{channel}"


def objection_scope(objection: str) -> str:
    return f"o|{objection}"


def signal_scope(signal: str) -> str:
    return f"s|{signal}"


def placements(event: ConsentEvent) -> tuple[tuple[str, str], ...]:
    """The (scope, slot) places an event's statement is folded into."""
    kind = event.type
    if kind is EventType.CONSENT_GRANTED or kind is EventType.CONSENT_CONFIRMED:
        scope = consent_scope(event.purpose or ANY, event.channel or ANY)
        if kind is EventType.CONSENT_CONFIRMED:
            return ((scope, GRANT), (scope, CONFIRMED))
        return ((scope, GRANT),)
    if kind is EventType.CONSENT_WITHDRAWN:
        return ((consent_scope(event.purpose or ANY, event.channel or ANY), DENIAL),)
    if kind is EventType.UNSUBSCRIBED:
        return ((unsubscribe_scope(event.purpose or ANY, event.channel or Channel.EMAIL), DENIAL),)
    if kind is EventType.OBJECTION_RAISED:
        assert event.objection is not None  # guaranteed by the contract
        return ((objection_scope(event.objection), DENIAL),)
    if kind is EventType.PRIVACY_SIGNAL:
        assert event.signal is not None  # guaranteed by the contract
        return ((signal_scope(event.signal), DENIAL),)
    if kind is EventType.ERASURE_REQUESTED:
        return ((ERASURE_SCOPE, DENIAL),)
    return ((RESTRICTION_SCOPE, RESTRICTION),)
