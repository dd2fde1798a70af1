"""What every system must emit for a workload: the engine's own fold, record by record.

Valid records are keyed by subject, so each (controller, subject) sees its events in publication
order in any system; folding in publication order is therefore the reference. Messages are compared
on the fields that identify an instruction (``emitted_at`` differs by design).
"""

from __future__ import annotations

import base64
import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from schemas.codec import RejectedRecord, decode_event
from streams.core.engine import Engine, subject_key
from streams.core.state import EMPTY, SubjectState

#: (destination, controller, subject_id, purpose, channel, action, suppression_id)
SuppressionKey = tuple[str, str, str, str, str, str, str]
Record = tuple[bytes | None, bytes]


def suppression_key(destination: str, value: bytes) -> SuppressionKey:
    m = orjson.loads(value)
    return (
        destination,
        m["controller"],
        m["subject_id"],
        m["purpose"],
        m["channel"],
        m["action"],
        m["suppression_id"],
    )


def dead_letter_payload(value: bytes) -> bytes:
    return base64.b64decode(orjson.loads(value)["payload_b64"])


@dataclass(slots=True)
class Expected:
    suppressions: set[SuppressionKey] = field(default_factory=set)
    messages: int = 0  # suppression messages, restatements of redeliveries included
    deadletters: set[bytes] = field(default_factory=set)
    rejected: int = 0
    duplicates: int = 0
    states: dict[str, SubjectState] = field(default_factory=dict)

    @property
    def outputs(self) -> int:
        """Records a correct system writes to the suppression and dead-letter topics."""
        return self.messages + self.rejected


def reference_fold(records: Iterable[Record], engine: Engine) -> Expected:
    out = Expected()
    gc.disable()
    try:
        _fold(records, engine, out)
    finally:
        gc.enable()
    return out


def _fold(records: Iterable[Record], engine: Engine, out: Expected) -> None:
    now = datetime.now(UTC)
    for key, value in records:
        try:
            event = decode_event(value, key)
            errors = engine.admit(event)
        except RejectedRecord as exc:
            errors = exc.errors
        if errors:
            out.rejected += 1
            out.deadletters.add(value)
            continue
        table_key = subject_key(event.controller, event.subject_id)
        outcome = engine.apply(out.states.get(table_key, EMPTY), event, now)
        out.states[table_key] = outcome.state
        out.duplicates += outcome.duplicate
        for message in outcome.messages:
            out.messages += 1
            out.suppressions.add(suppression_key(message.destination.value, message.value))


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a system's output compares with the reference."""

    ok: bool
    summary: str
    missing: int = 0
    unexpected: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "summary": self.summary,
            "missing": self.missing,
            "unexpected": self.unexpected,
        }


def compare(
    expected: Expected, suppressions: set[SuppressionKey], deadletters: set[bytes]
) -> Verdict:
    missing = len(expected.suppressions - suppressions)
    unexpected = len(suppressions - expected.suppressions)
    dl_missing = len(expected.deadletters - deadletters)
    dl_unexpected = len(deadletters - expected.deadletters)
    if missing or unexpected or dl_missing or dl_unexpected:
        return Verdict(
            False,
            f"differs: {missing} missing, {unexpected} unexpected suppressions; "
            f"{dl_missing} missing, {dl_unexpected} unexpected dead letters",
            missing + dl_missing,
            unexpected + dl_unexpected,
        )
    return Verdict(
        True,
        f"identical: {len(suppressions)} distinct suppressions, {len(deadletters)} dead letters",
    )
