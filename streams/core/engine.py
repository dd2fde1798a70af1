"""The decision engine: fold one event into a subject's state and say what to propagate.

Pure: no I/O, no clocks (the caller passes ``now``), no Faust or Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.codec import suppression_record
from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from schemas.vocabulary import Action, Channel, Destination, Reason
from streams.core.admission import policy_errors
from streams.core.decisions import ControllerPlan, Decision, PairPlan, PairState, compile_policy
from streams.core.policy import Policy
from streams.core.propagation import action_of, suppression_id, transition
from streams.core.state import SubjectState
from streams.core.statements import Statement, placements


def subject_key(controller: str, subject_id: str) -> str:
    """Table and partitioning key; controller ids never contain '/'."""
    return f"{controller}/{subject_id}"


def split_subject_key(key: str) -> tuple[str, str]:
    controller, _, subject_id = key.partition("/")
    return controller, subject_id


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message for one destination topic."""

    destination: Destination
    key: bytes
    value: bytes
    action: Action


@dataclass(frozen=True, slots=True)
class Outcome:
    state: SubjectState
    messages: tuple[Outbound, ...]
    duplicate: bool


class Engine:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.plans: dict[str, ControllerPlan] = compile_policy(policy)

    def admit(self, event: ConsentEvent) -> list[FieldError]:
        return policy_errors(event, self.policy)

    def plan(self, controller: str) -> ControllerPlan:
        return self.plans[controller]

    def decide(
        self, state: SubjectState, controller: str, purpose: str, channel: Channel
    ) -> Decision:
        return self.plans[controller].by_pair[(purpose, channel)].decide(state)

    def decide_all(self, state: SubjectState, controller: str) -> list[Decision]:
        return [pair.decide(state) for pair in self.plans[controller].pairs]

    def apply(self, state: SubjectState, event: ConsentEvent, now: datetime) -> Outcome:
        """Fold an admitted event into ``state``; the messages its changes require."""
        plan = self.plans[event.controller]
        if state.has_seen(event.event_id):
            # A redelivery: state stays; restate what this event still decides, with the same ids.
            restated = []
            for pair in plan.affected(placements(event)):
                decision = pair.decide(state)
                action = action_of(decision)
                if action and decision.cause and decision.cause.event_id == event.event_id:
                    restated.append((pair, decision, action))
            return Outcome(state, _messages(event, state, restated, now), duplicate=True)
        after, changed = state.absorb(event)
        # Only pairs that read a slot this event changed can change their decision.
        changes = _changes(plan.affected(changed), state, after) if changed else []
        if after.identifiers is not state.identifiers and (
            after.known_identifiers() != state.known_identifiers()
        ):
            # A new or changed identifier: every suppressed pair is sent again with it (under a
            # new id), so a consumer that deduplicates by id learns the address.
            changes = _with_suppressed(plan, after, changes)
        return Outcome(after, _messages(event, after, changes, now), duplicate=False)


Change = tuple[PairPlan, Decision, Action]


def _changes(
    pairs: tuple[PairPlan, ...], before: SubjectState, after: SubjectState
) -> list[Change]:
    changes = []
    for pair in pairs:
        new = pair.decide(after)
        action = transition(pair.decide(before).state, new.state)
        if action is not None:
            changes.append((pair, new, action))
    return changes


def _with_suppressed(
    plan: ControllerPlan, state: SubjectState, changes: list[Change]
) -> list[Change]:
    changed = {id(pair): change for change in changes for pair in (change[0],)}
    out = []
    for pair in plan.pairs:
        change = changed.get(id(pair))
        if change is None:
            decision = pair.decide(state)
            if decision.state is PairState.SUPPRESSED:
                change = (pair, decision, Action.SUPPRESS)
        if change is not None:
            out.append(change)
    return out


def _messages(
    event: ConsentEvent, state: SubjectState, changes: list[Change], now: datetime
) -> tuple[Outbound, ...]:
    if not changes:
        return ()
    trigger = Statement.of(event)
    controller, subject_id = event.controller, event.subject_id
    identifiers = state.known_identifiers()
    key = subject_id.encode()
    out = []
    moments: dict[int, datetime] = {}
    for pair, decision, action in changes:
        cause = decision.cause or trigger
        effective_at = moments.get(cause.at) or moments.setdefault(cause.at, cause.occurred_at)
        verb = _ACTION[action]
        value = suppression_record(
            {
                "suppression_id": suppression_id(
                    controller,
                    subject_id,
                    pair.name,
                    pair.channel_name,
                    verb,
                    cause.event_id,
                    identifiers,
                ),
                "action": verb,
                "controller": controller,
                "subject_id": subject_id,
                "purpose": pair.name,
                "channel": pair.channel_name,
                "reason": _REASON[decision.reason],
                "legal_basis": pair.legal_basis,
                "effective_at": effective_at,
                "caused_by_event_id": cause.event_id,
                "identifiers": identifiers,
                "emitted_at": now,
                "schema_version": 1,
            }
        )
        out += [Outbound(d, key, value, action) for d in pair.destinations]
    return tuple(out)


_ACTION = {action: action.value for action in Action}
_REASON = {reason: reason.value for reason in Reason}
