"""Per-(controller, subject) state: the greatest statement per slot, plus identifiers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas.events import ConsentEvent, Identifiers
from streams.core.statements import Statement, placements

STATE_VERSION = 2
#: How many recent event ids a subject remembers to recognise redeliveries.
SEEN_LIMIT = 64
IDENTIFIER_KINDS = tuple(Identifiers.model_fields)


@dataclass(frozen=True, slots=True)
class SubjectState:
    #: slot key ("scope#slot") -> the greatest statement folded into it
    slots: Mapping[str, Statement] = field(default_factory=dict)
    identifiers: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    seen: tuple[str, ...] = ()

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen

    def statements(self) -> Iterator[tuple[str, str, Statement]]:
        """(scope, slot, statement) for everything recorded."""
        for key, statement in self.slots.items():
            scope, _, slot = key.rpartition("#")
            yield scope, slot, statement

    def known_identifiers(self) -> dict[str, str]:
        return {kind: value for kind, (_, value) in sorted(self.identifiers.items())}

    def fold(self, event: ConsentEvent) -> SubjectState:
        """The state with ``event`` included; an equal state for a statement already known."""
        return self.absorb(event)[0]

    def absorb(self, event: ConsentEvent) -> tuple[SubjectState, tuple[str, ...]]:
        """Like :meth:`fold`, and also the slot keys whose statement changed."""
        statement = Statement.of(event)
        slots = dict(self.slots)
        changed = []
        for key in placements(event):
            current = slots.get(key)
            if current is None or statement > current:
                slots[key] = statement
                changed.append(key)
        identifiers = self.identifiers
        if event.identifiers is not None:
            identifiers = dict(identifiers)
            for kind in IDENTIFIER_KINDS:
                value = getattr(event.identifiers, kind)
                if value is None:
                    continue
                candidate = (statement.at, value)
                current_id = identifiers.get(kind)
                if current_id is None or candidate > current_id:
                    identifiers[kind] = candidate
        seen = self.seen if event.event_id in self.seen else (*self.seen, event.event_id)
        return SubjectState(slots, identifiers, seen[-SEEN_LIMIT:]), tuple(changed)

    # -- storage ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": STATE_VERSION,
                "slots": self.slots,
                "identifiers": self.identifiers,
                "seen": self.seen,
            },
            default=tuple,  # statements (NamedTuples) as arrays
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> SubjectState:
        if not data:
            return EMPTY
        raw: dict[str, Any] = orjson.loads(data)
        if raw.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported subject state version {raw.get('v')!r}")
        return cls(
            slots={key: Statement(*value) for key, value in raw["slots"].items()},
            identifiers={kind: (at, value) for kind, (at, value) in raw["identifiers"].items()},
            seen=tuple(raw["seen"]),
        )


EMPTY = SubjectState()
