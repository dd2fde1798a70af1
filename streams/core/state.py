"""Per-(controller, subject) state: the greatest statement per scope and slot, plus identifiers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.events import ConsentEvent
from schemas.vocabulary import EventType
from streams.core.statements import Statement, latest, placements, to_micros

STATE_VERSION = 1
#: How many recent event ids a subject remembers to recognise redeliveries.
SEEN_LIMIT = 64

Slots = Mapping[str, Statement]


@dataclass(frozen=True, slots=True)
class SubjectState:
    scopes: Mapping[str, Slots] = field(default_factory=dict)
    identifiers: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    seen: tuple[str, ...] = ()

    def get(self, scope: str, slot: str) -> Statement | None:
        slots = self.scopes.get(scope)
        return None if slots is None else slots.get(slot)

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen

    def statements(self) -> Iterator[tuple[str, str, Statement]]:
        for scope, slots in self.scopes.items():
            for slot, statement in slots.items():
                yield scope, slot, statement

    def known_identifiers(self) -> dict[str, str]:
        return {kind: value for kind, (_, value) in sorted(self.identifiers.items())}

    def fold(self, event: ConsentEvent) -> SubjectState:
        """The state with ``event`` included; the same state again for a known statement."""
        statement = Statement(to_micros(event.occurred_at), event.event_id, event.type)
        scopes = dict(self.scopes)
        for scope, slot in placements(event):
            slots = scopes.get(scope, {})
            if latest(slots.get(slot), statement) is statement:
                scopes[scope] = {**slots, slot: statement}
        identifiers = dict(self.identifiers)
        if event.identifiers is not None:
            for kind, value in event.identifiers.model_dump(exclude_none=True).items():
                current = identifiers.get(kind)
                candidate = (statement.at, value)
                if current is None or candidate > current:
                    identifiers[kind] = candidate
        seen = self.seen if event.event_id in self.seen else (*self.seen, event.event_id)
        return SubjectState(scopes, identifiers, seen[-SEEN_LIMIT:])

    # -- storage ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "scopes": {
                    scope: {slot: [s.at, s.event_id, s.type.value] for slot, s in slots.items()}
                    for scope, slots in self.scopes.items()
                },
                "identifiers": {kind: list(pair) for kind, pair in self.identifiers.items()},
                "seen": self.seen,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> SubjectState:
        if not data:
            return EMPTY
        raw: dict[str, Any] = orjson.loads(data)
        if raw.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported subject state version {raw.get('v')!r}")
        return cls(
            scopes={
                scope: {
                    slot: Statement(at, event_id, EventType(kind))
                    for slot, (at, event_id, kind) in slots.items()
                }
                for scope, slots in raw["scopes"].items()
            },
            identifiers={kind: (at, value) for kind, (at, value) in raw["identifiers"].items()},
            seen=tuple(raw["seen"]),
        )


EMPTY = SubjectState()
