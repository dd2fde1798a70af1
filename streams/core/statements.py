"""Statements: what an event asserts, where it applies, and how statements are ordered.

State keeps, per slot, only the greatest statement under one total order, so folding is
commutative, associative and idempotent: the result depends only on the set of events.

Slot keys and statements are a storage format: they are written into every stored subject state
(``streams/core/state.py``) and read back after a restart, so changing a code below needs a new
state version or a new application id. A slot key is ``scope#slot``:

=====================  ================================================================
scope                  what it holds
=====================  ================================================================
``c|purpose|channel``  consent (``consent.*``); ``*`` for an absent purpose or channel
``u|purpose|channel``  unsubscribes; ``*`` for every direct-marketing purpose
``o|objection``        objections (``direct_marketing``, ``profiling``, ...)
``s|signal``           privacy signals (``gpc``, ``dnt``)
``e``                  erasure requests
``r``                  restriction requests and lifts
``t|purpose``          retention ends (``retention.due``)
=====================  ================================================================

Access requests and their fulfilments (``access.*``) have no slot: they decide nothing.

and the slot inside the scope is ``g`` (grant; a confirmation is one too), ``f`` (confirmation),
``d`` (denial), ``r`` (restriction: a request or a lift), ``x`` (an expiry, in a consent scope),
``l`` (a lapsed confirmation window, in a consent scope), ``n`` (a material notice change took
effect, in a consent scope: it moves the subject's clock and decides nothing else) or ``e`` (a
retention end). A
statement is stored as the array ``[at, rank, event_id, type]``: event time in microseconds
since the epoch (UTC), ``1`` for a denial or a restriction request and ``0`` otherwise, the
event id and the event type's name.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from schemas.events import ACCESS_TYPES, ConsentEvent
from schemas.vocabulary import Channel, EventType, Reason

# Slots inside a scope, and scopes (stored: see the module docstring before changing one).
GRANT: Final = "g"
DENIAL: Final = "d"
CONFIRMED: Final = "f"
RESTRICTION: Final = "r"
EXPIRY: Final = "x"
LAPSE: Final = "l"
SUPERSEDED: Final = "n"
RETENTION_END: Final = "e"

RESTRICTION_SCOPE: Final = "r"
ERASURE_SCOPE: Final = "e"
ANY: Final = "*"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: At equal event time a denial (rank 1) beats a grant (rank 0); a restriction request beats a lift.
RANK: dict[str, int] = {
    EventType.CONSENT_GRANTED: 0,
    EventType.CONSENT_CONFIRMED: 0,
    EventType.RESTRICTION_LIFTED: 0,
    EventType.CONSENT_WITHDRAWN: 1,
    EventType.UNSUBSCRIBED: 1,
    EventType.OBJECTION_RAISED: 1,
    EventType.PRIVACY_SIGNAL: 1,
    EventType.ERASURE_REQUESTED: 1,
    EventType.RESTRICTION_REQUESTED: 1,
    EventType.CONSENT_EXPIRED: 0,
    EventType.CONFIRMATION_LAPSED: 0,
    EventType.RETENTION_DUE: 0,
    EventType.CONSENT_SUPERSEDED: 0,
    EventType.ACCESS_REQUESTED: 0,
    EventType.ACCESS_FULFILLED: 0,
}

DENIAL_REASON: dict[str, Reason] = {
    EventType.CONSENT_WITHDRAWN: Reason.CONSENT_WITHDRAWN,
    EventType.UNSUBSCRIBED: Reason.UNSUBSCRIBED,
    EventType.OBJECTION_RAISED: Reason.OBJECTION,
    EventType.PRIVACY_SIGNAL: Reason.PRIVACY_SIGNAL,
    EventType.ERASURE_REQUESTED: Reason.ERASURE,
    EventType.RESTRICTION_REQUESTED: Reason.RESTRICTED,
}


_TYPE = {kind: kind.value for kind in EventType}  # enum .value is slow on a hot path


def to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class Statement(NamedTuple):
    """One recorded event, reduced to what decisions need.

    Field order is the decision order: tuples compare by event time, then rank (a denial wins
    a tie), then event id. ``max`` over statements is therefore "the latest".
    """

    at: int  # occurred_at, microseconds since the epoch (UTC)
    rank: int
    event_id: str
    type: str  # an EventType value

    @classmethod
    def of(cls, event: ConsentEvent) -> Statement:
        kind = event.type
        return cls(to_micros(event.occurred_at), RANK[kind], event.event_id, _TYPE[kind])

    @property
    def occurred_at(self) -> datetime:
        return from_micros(self.at)


def slot_key(scope: str, slot: str) -> str:
    return f"{scope}#{slot}"


def consent_scope(purpose: str, channel: Channel | str) -> str:
    return f"c|{purpose}|{channel}"


def unsubscribe_scope(purpose: str, channel: Channel | str) -> str:
    return f"u|{purpose}|{channel}"


def retention_scope(purpose: str) -> str:
    return f"t|{purpose}"


def objection_scope(objection: str) -> str:
    return f"o|{objection}"


def signal_scope(signal: str) -> str:
    return f"s|{signal}"


def placements(event: ConsentEvent) -> tuple[str, ...]:
    """The slot keys an event's statement is folded into."""
    kind = event.type
    if kind is EventType.CONSENT_GRANTED or kind is EventType.CONSENT_CONFIRMED:
        scope = consent_scope(event.purpose or ANY, event.channel or ANY)
        if kind is EventType.CONSENT_CONFIRMED:
            return (slot_key(scope, GRANT), slot_key(scope, CONFIRMED))
        return (slot_key(scope, GRANT),)
    if kind is EventType.CONSENT_WITHDRAWN:
        return (slot_key(consent_scope(event.purpose or ANY, event.channel or ANY), DENIAL),)
    if kind is EventType.UNSUBSCRIBED:
        scope = unsubscribe_scope(event.purpose or ANY, event.channel or Channel.EMAIL)
        return (slot_key(scope, DENIAL),)
    if kind is EventType.OBJECTION_RAISED:
        assert event.objection is not None  # guaranteed by the contract
        return (slot_key(objection_scope(event.objection), DENIAL),)
    if kind is EventType.PRIVACY_SIGNAL:
        assert event.signal is not None  # guaranteed by the contract
        return (slot_key(signal_scope(event.signal), DENIAL),)
    if kind is EventType.ERASURE_REQUESTED:
        return (slot_key(ERASURE_SCOPE, DENIAL),)
    if kind is EventType.CONSENT_EXPIRED or kind is EventType.CONFIRMATION_LAPSED:
        slot = EXPIRY if kind is EventType.CONSENT_EXPIRED else LAPSE
        return (slot_key(consent_scope(event.purpose or ANY, event.channel or ANY), slot),)
    if kind is EventType.CONSENT_SUPERSEDED:
        return (slot_key(consent_scope(event.purpose or ANY, event.channel or ANY), SUPERSEDED),)
    if kind is EventType.RETENTION_DUE:
        return (slot_key(retention_scope(event.purpose or ANY), RETENTION_END),)
    if kind in ACCESS_TYPES:  # decides nothing: no slot
        return ()
    return (slot_key(RESTRICTION_SCOPE, RESTRICTION),)
