"""A straightforward reference for ``Engine.apply``: fold, decide every affected pair before and
after with full ``Ruling`` objects, and encode each instruction from scratch."""

from __future__ import annotations

from datetime import datetime

from schemas.codec import suppression_record
from schemas.events import ConsentEvent
from schemas.vocabulary import Action, EventType, Reason
from streams.core.decisions import ControllerPlan, PairPlan, PairState, Ruling
from streams.core.engine import Engine
from streams.core.propagation import action_of, suppression_id, transition
from streams.core.state import SubjectState
from streams.core.statements import Statement, placements

#: (destination, key, value) of each message, in order
Sent = list[tuple[str, bytes, bytes]]


def reference_apply(
    engine: Engine, state: SubjectState, event: ConsentEvent, now: datetime
) -> tuple[SubjectState, Sent, bool]:
    plan = engine.plans[event.controller]
    if state.has_seen(event.event_id):
        restated = []
        for pair in plan.pairs:
            decision = pair.decide(state)
            action = action_of(decision.state)
            if (
                pair in plan.affected(placements(event))
                and action is not None
                and decision.cause is not None
                and decision.cause.event_id == event.event_id
            ):
                restated.append((pair, decision, action))
        if event.type is EventType.ERASURE_REQUESTED:
            restated = _erasure(plan, event, state, [])
        restated = _clocks(plan, event, state, restated)
        return state, _sent(event, state, restated, now), True
    after, changed = state.absorb(event)
    changes: list[tuple[PairPlan, Ruling, Action]] = []
    for pair in plan.pairs:
        before, new = pair.decide(state), pair.decide(after)
        action = transition(before.state, new.state)
        if action is not None:
            assert pair in plan.affected(changed)  # only affected pairs can change
            changes.append((pair, new, action))
        elif (
            after.known_identifiers().items() - state.known_identifiers().items()
            and new.state is PairState.SUPPRESSED
        ):
            changes.append((pair, new, Action.SUPPRESS))
    if event.type is EventType.ERASURE_REQUESTED:
        changes = _erasure(plan, event, after, changes)
    if changed:
        changes = _clocks(plan, event, after, changes)
    return after, _sent(event, after, changes, now), False


def _clocks(
    plan: ControllerPlan,
    event: ConsentEvent,
    state: SubjectState,
    changes: list[tuple[PairPlan, Ruling, Action]],
) -> list[tuple[PairPlan, Ruling, Action]]:
    """A lapse that made a pair expired, or a retention end recorded in the state for a purpose
    whose retention of all data says erase: ``erase``, then the change or the decision."""
    statement = Statement.of(event)
    out = []
    for pair in plan.pairs:
        own = [change for change in changes if change[0] is pair]
        decision = pair.decide(state)
        if event.type is EventType.CONFIRMATION_LAPSED:
            hit = pair in plan.affected(placements(event)) and (
                decision.reason is Reason.EXPIRED and decision.cause == statement
            )
        elif event.type is EventType.RETENTION_DUE:
            hit = (
                pair.purpose.name == event.purpose
                and (event.channel is None or pair.channel is event.channel)
                and any(r.action == "erase" and not r.data for r in pair.purpose.retention)
                and state.slots.get(f"t|{event.purpose}#e") == statement
            )
        else:
            hit = False
        if hit:
            erase = Ruling(pair.purpose, pair.channel, Reason.EXPIRED, statement)
            out.append((pair, erase, Action.ERASE))
            if not own:
                own = [(pair, decision, Action.ALLOW if decision.allowed else Action.SUPPRESS)]
        out += own
    return out


def _erasure(
    plan: ControllerPlan,
    event: ConsentEvent,
    state: SubjectState,
    changes: list[tuple[PairPlan, Ruling, Action]],
) -> list[tuple[PairPlan, Ruling, Action]]:
    """Every pair erasure reaches: ``erase``, then its change or else its decision restated."""
    out = []
    for pair in plan.pairs:
        own = [change for change in changes if change[0] is pair]
        if pair.purpose.erasable:
            erase = Ruling(pair.purpose, pair.channel, Reason.ERASURE, Statement.of(event))
            out.append((pair, erase, Action.ERASE))
            if not own:
                decision = pair.decide(state)
                own = [(pair, decision, Action.ALLOW if decision.allowed else Action.SUPPRESS)]
        out += own
    return out


def _sent(
    event: ConsentEvent,
    state: SubjectState,
    changes: list[tuple[PairPlan, Ruling, Action]],
    now: datetime,
) -> Sent:
    out = []
    for pair, decision, action in changes:
        cause = decision.cause or Statement.of(event)
        identifiers = state.known_identifiers()
        value = suppression_record(
            {
                "suppression_id": suppression_id(
                    event.controller,
                    event.subject_id,
                    pair.purpose.name,
                    pair.channel.value,
                    action.value,
                    cause.event_id,
                    identifiers,
                ),
                "action": action.value,
                "controller": event.controller,
                "subject_id": event.subject_id,
                "purpose": pair.purpose.name,
                "channel": pair.channel.value,
                "reason": decision.reason.value,
                "legal_basis": pair.purpose.legal_basis.value,
                "effective_at": cause.occurred_at,
                "caused_by_event_id": cause.event_id,
                "identifiers": identifiers,
                "emitted_at": now,
                "schema_version": 1,
            }
        )
        out += [(d.value, event.subject_id.encode(), value) for d in pair.purpose.destinations]
    return out
