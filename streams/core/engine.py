"""The decision engine: fold one event into a subject's state and say what to propagate.

Pure: no I/O, no clocks (the caller passes ``now``), no Faust or Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from schemas.codec import suppression_record
from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from schemas.vocabulary import Action, Category, Channel, Destination, EventType
from streams.core.admission import policy_errors
from streams.core.decisions import Decision, decide
from streams.core.policy import Policy
from streams.core.propagation import action_of, suppression_id, transition
from streams.core.state import SubjectState
from streams.core.statements import Statement, to_micros


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

    def admit(self, event: ConsentEvent) -> list[FieldError]:
        return policy_errors(event, self.policy)

    def affected(self, event: ConsentEvent) -> Iterable[tuple[str, Channel]]:
        """The (purpose, channel) pairs whose decision the event can change."""
        controller = self.policy.controller(event.controller)
        assert controller is not None, "admit() the event first"
        if event.type is EventType.UNSUBSCRIBED:
            channel = event.channel or Channel.EMAIL
            purposes = (
                [event.purpose]
                if event.purpose
                else [
                    name
                    for name, p in controller.purposes.items()
                    if p.has_category(Category.DIRECT_MARKETING)
                ]
            )
            return [(p, channel) for p in purposes if channel in controller.purposes[p].channels]
        if event.purpose is not None:
            channels = controller.purposes[event.purpose].channels
            return [(event.purpose, c) for c in channels if event.channel in (None, c)]
        return self.policy.pairs(event.controller)

    def decide(
        self, state: SubjectState, controller: str, purpose: str, channel: Channel
    ) -> Decision:
        found = self.policy.controller(controller)
        assert found is not None
        return decide(self.policy, controller, found.purposes[purpose], channel, state)

    def apply(self, state: SubjectState, event: ConsentEvent, now: datetime) -> Outcome:
        """Fold an admitted event into ``state``; the messages its changes require."""
        pairs = list(self.affected(event))
        if state.has_seen(event.event_id):
            # A redelivery: state stays; restate what this event still decides, with the same ids.
            restated = []
            for purpose, channel in pairs:
                decision = self.decide(state, event.controller, purpose, channel)
                action = action_of(decision)
                if action and decision.cause and decision.cause.event_id == event.event_id:
                    restated.append((decision, action))
            return Outcome(state, self._messages(event, state, restated, now), duplicate=True)
        after = state.fold(event)
        changes = []
        for purpose, channel in pairs:
            old = self.decide(state, event.controller, purpose, channel)
            new = self.decide(after, event.controller, purpose, channel)
            action = transition(old.state, new.state)
            if action is not None:
                changes.append((new, action))
        return Outcome(after, self._messages(event, after, changes, now), duplicate=False)

    def _messages(
        self,
        event: ConsentEvent,
        state: SubjectState,
        changes: list[tuple[Decision, Action]],
        now: datetime,
    ) -> tuple[Outbound, ...]:
        if not changes:
            return ()
        trigger = Statement(to_micros(event.occurred_at), event.event_id, event.type)
        identifiers = state.known_identifiers()
        key = event.subject_id.encode()
        out = []
        for decision, action in changes:
            cause = decision.cause or trigger
            value = suppression_record(
                {
                    "suppression_id": suppression_id(
                        event.controller,
                        event.subject_id,
                        decision.purpose.name,
                        decision.channel.value,
                        action,
                        cause.event_id,
                    ),
                    "action": action.value,
                    "controller": event.controller,
                    "subject_id": event.subject_id,
                    "purpose": decision.purpose.name,
                    "channel": decision.channel.value,
                    "reason": decision.reason.value,
                    "legal_basis": decision.purpose.legal_basis.value,
                    "effective_at": cause.occurred_at,
                    "caused_by_event_id": cause.event_id,
                    "identifiers": identifiers,
                    "emitted_at": now,
                    "schema_version": 1,
                }
            )
            out += [Outbound(d, key, value, action) for d in decision.purpose.destinations]
        return tuple(out)
