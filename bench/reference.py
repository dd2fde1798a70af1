"""What a system must emit, two ways: exactly, and as the final decision of every pair.

``reference_fold`` is the benchmark's reference: the engine's own fold, record by record. Valid
records are keyed by subject, so each (controller, subject) sees its events in publication order
in any system; folding in publication order is therefore the reference. Messages are compared on
the fields that identify an instruction (``emitted_at`` differs by design).

``final_decisions`` and ``told_right`` are the oracle of the tests, which hold for any order and
any number of redeliveries: per destination and pair, the last message sent matches the decision
over the whole set of events. ``erase`` is not a decision: each one is followed at once by the
pair's decision for the same destination, so the last message is never an ``erase``, and
``erasures_owed`` says which ``erase`` instructions must have been sent at least once.
"""

from __future__ import annotations

import base64
import gc
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.codec import RejectedRecord, decode_event
from schemas.events import ConsentEvent
from schemas.vocabulary import EventType, LegalBasis
from streams.core.decisions import PairState, Ruling
from streams.core.engine import Engine, subject_key
from streams.core.policy import Policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.personal import SubjectKeys
from streams.security.shredding import IdentifierHasher, Keyring, new_key

#: (destination, controller, subject_id, purpose, channel, action, suppression_id)
SuppressionKey = tuple[str, str, str, str, str, str, str]
Record = tuple[bytes | None, bytes]
#: (destination, controller, subject_id, purpose, channel)
Pair = tuple[str, str, str, str, str]
#: a Pair and the id of the erasure request an ``erase`` for it is caused by
Erasure = tuple[str, str, str, str, str, str]


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


def erasure_rules() -> SubjectKeys:
    """The worker's erasure rules for identifiers (kept as keyed hashes, matched when imported
    again), which decide what later messages carry and so their ids; keys in memory only."""
    return SubjectKeys(
        Keyring.parse(f"ref:{new_key()}"),
        IdentifierHasher.parse(new_key()),
        read=lambda key, partition: None,
        place=lambda key: 0,
    )


def _fold(records: Iterable[Record], engine: Engine, out: Expected) -> None:
    now = datetime.now(UTC)
    erasure = erasure_rules()
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
        state = out.states.get(table_key, EMPTY)
        event = erasure.recognise(state, event)
        outcome = engine.apply(state, event, now)
        after = outcome.state
        if outcome.shred and not outcome.duplicate:  # as streams/pipeline/fold.py does
            after = erasure.erase(table_key.encode(), 0, state, after, event.event_id)
            erasure.take()
        out.states[table_key] = after
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


# -- the final-decision oracle -------------------------------------------------------------------


def final_decisions(
    policy: Policy, events: Iterable[Mapping[str, Any]]
) -> dict[tuple[str, str], list[Ruling]]:
    """Per (controller, subject): every pair's decision over the whole set of events."""
    engine = Engine(policy)
    states: dict[tuple[str, str], SubjectState] = defaultdict(lambda: EMPTY)
    for raw in events:
        event = ConsentEvent.model_validate(raw)
        owner = (event.controller, event.subject_id)
        states[owner] = states[owner].fold(event)
    return {
        owner: engine.decide_all(state, owner[0])
        for owner, state in sorted(states.items())
        if owner[0] in engine.plans
    }


def final_pairs(policy: Policy, events: Iterable[Mapping[str, Any]]) -> dict[Pair, Ruling]:
    """Per destination and pair: the decision its last message must agree with."""
    return {
        (destination.value, controller, subject, decision.purpose.name, decision.channel.value): (
            decision
        )
        for (controller, subject), decisions in final_decisions(policy, events).items()
        for decision in decisions
        for destination in decision.purpose.destinations
    }


def told_right(decision: Ruling, last: str | None) -> bool:
    """Whether ``last`` (the last action sent for the pair, or None) agrees with ``decision``.

    ALLOWED needs a last ``allow``, except where the legal basis allows by default and no message
    was ever needed; SUPPRESSED needs a last ``suppress``; NOT_ALLOWED accepts nothing or
    ``suppress``. A last ``erase`` is always wrong: the decision must follow it.
    """
    state = decision.state
    if state is PairState.ALLOWED:
        return last == "allow" or (
            last is None and decision.purpose.legal_basis is not LegalBasis.CONSENT
        )
    if state is PairState.SUPPRESSED:
        return last == "suppress"
    return last in (None, "suppress")


def erasures_owed(policy: Policy, events: Iterable[Mapping[str, Any]]) -> set[Erasure]:
    """Per destination and pair, every erasure request it must have been told to ``erase`` for:
    each ``erasure.requested`` of the subject, for every pair of a purpose erasure reaches (not
    one the policy exempts). Destinations of exempt purposes are owed none, and get none."""
    owed: set[Erasure] = set()
    for raw in events:
        if raw["type"] != EventType.ERASURE_REQUESTED:
            continue
        controller = policy.controller(raw["controller"])
        if controller is None:
            continue
        for purpose in controller.purposes.values():
            if not purpose.erasable:
                continue
            for channel in purpose.channels:
                for destination in purpose.destinations:
                    owed.add(
                        (
                            destination.value,
                            controller.id,
                            raw["subject_id"],
                            purpose.name,
                            channel.value,
                            raw["event_id"],
                        )
                    )
    return owed
