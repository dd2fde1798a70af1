"""The tests' own reading of an outcome's messages as ledger effects: an independent check of
the effects the engine hands the ledger (``Outcome.effects``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from streams.core.ledger import Effect


class Instruction(Protocol):
    """What :func:`effects_of` reads of an outbound message (the engine's ``Outbound``)."""

    @property
    def destination(self) -> str: ...

    @property
    def value(self) -> bytes: ...


def effects_of(messages: Iterable[Instruction]) -> tuple[Effect, ...]:
    """The effects recorded for an outcome's messages: one per suppression id, with the
    destinations that were told."""
    found: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for message in messages:
        value = orjson.loads(message.value)
        entry = found.setdefault(value["suppression_id"], (value, []))
        entry[1].append(str(message.destination))
    return tuple(
        Effect(v["purpose"], v["channel"], v["action"], sid, tuple(destinations))
        for sid, (v, destinations) in found.items()
    )
