"""Proof as of a time: was a (purpose, channel) allowed at T, and which statements say so.

The ledger's entries are folded exactly as the engine folds events (:meth:`SubjectState.fold`)
and decided by the pair's compiled plan, so a proof can never disagree with the live decision
made from the same statements. Personal data is not needed: a proof holds after erasure too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from streams.core.decisions import PairPlan, Ruling
from streams.core.ledger import Entry
from streams.core.state import EMPTY, SubjectState
from streams.core.statements import RESTRICTION, RESTRICTION_SCOPE, slot_key

_RESTRICTION_SLOT = slot_key(RESTRICTION_SCOPE, RESTRICTION)


@dataclass(frozen=True, slots=True)
class Proof:
    at: datetime
    known_at: datetime | None
    decision: Ruling
    #: the entry whose statement made the decision what it is (None: the purpose's default)
    cause: Entry | None
    #: the entries whose statements were in force for this pair at ``at``, in ledger order
    basis: tuple[Entry, ...]


def state_at(
    entries: Iterable[Entry], at: datetime, known_at: datetime | None = None
) -> tuple[SubjectState, dict[str, Entry]]:
    """The subject's state from the statements made by ``at`` (and received by ``known_at``).

    Also the first entry per event id, to trace a statement back to its entry.
    """
    state = EMPTY
    by_event: dict[str, Entry] = {}
    for entry in entries:
        record = entry.record
        if record.occurred_at > at or (known_at is not None and record.received_at > known_at):
            continue
        state = state.fold(record.event())
        by_event.setdefault(record.event_id, entry)
    return state, by_event


def prove(
    entries: Iterable[Entry], plan: PairPlan, at: datetime, known_at: datetime | None = None
) -> Proof:
    """The decision for ``plan``'s pair at ``at``, and the ledger entries behind it.

    ``known_at`` answers "what did we know then": entries received later are left out (a
    withdrawal published late changes the answer for T only once it is known).
    """
    state, by_event = state_at(entries, at, known_at)
    decision = plan.decide(state)
    slots = [*plan.grant_slots, *plan.confirmed_slots, *plan.denial_slots]
    if plan.restrictable:
        slots.append(_RESTRICTION_SLOT)
    in_force = {statement.event_id for key in slots if (statement := state.slots.get(key))}
    basis = tuple(sorted((by_event[e] for e in in_force), key=lambda entry: entry.sequence))
    cause = by_event[decision.cause.event_id] if decision.cause else None
    return Proof(at=at, known_at=known_at, decision=decision, cause=cause, basis=basis)
