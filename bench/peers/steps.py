"""What every stateful peer does per record: the worker's work, written out plainly.

Strict decoding, the policy check, the engine's fold and decisions, one message per destination,
the new state stored unless the record was a redelivery, and a dead letter (the record kept
intact) for anything rejected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bench.peers.args import DEADLETTER
from bench.reference import erasure_rules
from schemas.codec import RejectedRecord, dead_letter_record, decode_event
from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from streams.core.engine import Engine, subject_key
from streams.core.state import SubjectState


@dataclass(frozen=True, slots=True)
class Source:
    topic: str
    partition: int
    offset: int


Output = tuple[str, bytes | None, bytes]  # (destination or DEADLETTER, key, value)


def admit(
    engine: Engine, key: bytes | None, value: bytes | None
) -> ConsentEvent | list[FieldError]:
    """The decoded event, or why the record is rejected."""
    try:
        event = decode_event(value, key)
        errors = engine.admit(event)
    except RejectedRecord as exc:
        return exc.errors
    return errors or event


def table_key(event: ConsentEvent) -> bytes:
    return subject_key(event.controller, event.subject_id).encode()


def reject(
    key: bytes | None, value: bytes | None, errors: list[FieldError], source: Source
) -> Output:
    record = dead_letter_record(
        value,
        key,
        errors,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        received_at=datetime.now(UTC),
    )
    return DEADLETTER, key, record


_ERASURE = erasure_rules()


def fold(
    engine: Engine, event: ConsentEvent, stored: bytes | None
) -> tuple[list[Output], bytes | None]:
    """The messages an admitted event calls for, and the state to store (None: unchanged)."""
    state = SubjectState.from_bytes(stored)
    event = _ERASURE.recognise(state, event)
    outcome = engine.apply(state, event, datetime.now(UTC))
    outputs: list[Output] = [(m.destination.value, m.key, m.value) for m in outcome.messages]
    if outcome.duplicate:
        return outputs, None
    after = outcome.state
    if outcome.shred:  # identifiers kept as keyed hashes, as the worker keeps them
        key = table_key(event)
        after = _ERASURE.erase(key, 0, state, after, event.event_id)
        _ERASURE.take()
    return outputs, after.to_bytes()
