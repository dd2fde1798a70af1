"""Seeded consent workloads over the shipped policy (the contested profile of
:mod:`bench.workload`), and the verdict of the oracle (:mod:`bench.reference`) on what the
destination topics were told."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bench.reference import Pair, final_pairs, told_right
from bench.workload import CONTESTED_T0 as T0
from bench.workload import Record as RawRecord
from bench.workload import Workload
from bench.workload import contested as generate
from schemas.suppressions import SuppressionMessage
from schemas.vocabulary import Destination
from streams.core.decisions import Ruling
from streams.core.policy import Policy
from tests.resilience.cluster import Record

__all__ = ["T0", "RawRecord", "Verdict", "Workload", "generate", "judge"]


# -- the oracle (bench.reference), judged over what the topics say -----------------------------


@dataclass
class Verdict:
    """What the destination topics say, judged pair by pair."""

    pairs: int = 0
    messages: int = 0
    duplicates: int = 0  # the same suppression_id again on the same topic
    mismatches: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # off-contract, or about no known pair

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.missing or self.invalid)

    def explain(self, limit: int = 10) -> str:
        lines = [
            f"{len(self.mismatches)} mismatches, {len(self.missing)} missing, "
            f"{len(self.invalid)} invalid"
        ]
        for title, items in (
            ("mismatch", self.mismatches),
            ("missing", self.missing),
            ("invalid", self.invalid),
        ):
            lines += [f"  {title}: {item}" for item in items[:limit]]
        return "\n".join(lines)


def judge(
    policy: Policy,
    events: Iterable[Mapping[str, Any]],
    outputs: Iterable[Record],
    destination_of: Mapping[str, Destination],
) -> Verdict:
    """Compare, per destination and pair, the last message on the topic with the final decision.

    The rule is :func:`bench.reference.told_right`. A missing required message is counted apart
    from a contradicting one.
    """
    verdict = Verdict()
    history: dict[Pair, list[tuple[str, str]]] = defaultdict(list)
    seen_ids: set[tuple[str, str]] = set()
    ordered = sorted(outputs, key=lambda r: (r.topic, r.partition, r.offset))
    for record in ordered:
        verdict.messages += 1
        destination = destination_of[record.topic].value
        try:
            message = SuppressionMessage.model_validate_json(record.value or b"")
        except ValidationError as exc:
            verdict.invalid.append(f"{record.topic}@{record.offset}: {exc.errors()[0]['msg']}")
            continue
        if record.key != message.subject_id.encode():
            verdict.invalid.append(f"{record.topic}@{record.offset}: key is not the subject id")
        if (record.topic, message.suppression_id) in seen_ids:
            verdict.duplicates += 1
        seen_ids.add((record.topic, message.suppression_id))
        pair = (
            destination,
            message.controller,
            message.subject_id,
            message.purpose,
            message.channel.value,
        )
        history[pair].append((message.action.value, message.caused_by_event_id))

    expected = final_pairs(policy, events)
    for pair, decision in expected.items():
        verdict.pairs += 1
        _judge_pair(verdict, pair, decision, history.get(pair, []))
    for pair in sorted(history.keys() - expected.keys()):
        verdict.invalid.append(f"{'/'.join(pair)}: messages about a pair with no decision")
    return verdict


def _judge_pair(
    verdict: Verdict, pair: Pair, decision: Ruling, told: list[tuple[str, str]]
) -> None:
    last = told[-1][0] if told else None
    if told_right(decision, last):
        return
    cause = decision.cause.event_id if decision.cause else None
    detail = (
        f"{'/'.join(pair)}: decision {decision.state.value} ({decision.reason.value}, "
        f"cause {cause}); told {told[-6:]}"
    )
    (verdict.missing if last is None else verdict.mismatches).append(detail)
