"""Seeded consent workloads over the shipped policy, and the verdict of the oracle
(:mod:`bench.reference`) on what the destination topics were told."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from pydantic import ValidationError

from bench.reference import Pair, final_pairs, told_right
from schemas.suppressions import SuppressionMessage
from schemas.vocabulary import Category, Channel, Destination, Objection, Signal
from streams.core.decisions import Ruling
from streams.core.policy import Policy
from tests.resilience.cluster import Record

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_PLUS_TWO = timezone(timedelta(hours=2))

# Weights favour the statements that interact: grants against withdrawals, restrictions and lifts,
# and confirmations for double opt-in purposes.
TYPE_WEIGHTS: dict[str, int] = {
    "consent.granted": 22,
    "consent.confirmed": 12,
    "consent.withdrawn": 12,
    "unsubscribed": 9,
    "objection.raised": 4,
    "privacy.signal": 5,
    "erasure.requested": 1,
    "restriction.requested": 7,
    "restriction.lifted": 12,
}

RawRecord = tuple[bytes | None, bytes]


@dataclass(frozen=True)
class Workload:
    seed: int
    events: tuple[dict[str, Any], ...]  # distinct logical events
    records: tuple[RawRecord, ...]  # arrival order: shuffled, with redelivered duplicates

    @property
    def duplicates(self) -> int:
        return len(self.records) - len(self.events)


def generate(
    policy: Policy,
    seed: int,
    *,
    events: int,
    subjects: int,
    duplicate_ratio: float = 0.15,
    keyless_ratio: float = 0.2,
    prefix: str = "",
    event_prefix: str | None = None,
) -> Workload:
    """``events`` distinct events over ``subjects`` (controller, subject) pairs of every controller.

    Subject ids are shared by two controllers each, times fall on a few minutes (equal event
    times are common), a share of records has no key, and ``duplicate_ratio`` of the events is
    published twice. Everything depends on ``seed`` only. ``prefix`` starts subject and event
    ids; ``event_prefix``, if given, replaces it for event ids (same subjects, new events).
    """
    rng = random.Random(seed)
    controllers = sorted(policy.controllers)
    owners = [
        (controllers[k % len(controllers)], f"{prefix}s{k // 2:04d}") for k in range(subjects)
    ]
    focus = {owner: _focus(policy, owner[0], rng) for owner in owners}
    types = list(TYPE_WEIGHTS)
    weights = list(TYPE_WEIGHTS.values())
    out: list[dict[str, Any]] = []
    for n in range(events):
        owner = rng.choice(owners)
        type_ = rng.choices(types, weights)[0]
        event_id = f"{prefix if event_prefix is None else event_prefix}e{n:06d}"
        out.append(_event(policy, rng, event_id, type_, owner, focus[owner]))
    records = [_record(e, rng, keyless_ratio) for e in out]
    records += [
        _record(rng.choice(out), rng, keyless_ratio) for _ in range(int(events * duplicate_ratio))
    ]
    rng.shuffle(records)
    return Workload(seed, tuple(out), tuple(records))


def _focus(policy: Policy, controller: str, rng: random.Random) -> list[str]:
    """A few purposes per subject, so that its events meet on the same pairs."""
    purposes = sorted(policy.controllers[controller].purposes)
    return rng.sample(purposes, k=min(3, len(purposes)))


def _event(
    policy: Policy,
    rng: random.Random,
    event_id: str,
    type_: str,
    owner: tuple[str, str],
    focus: Sequence[str],
) -> dict[str, Any]:
    controller_id, subject_id = owner
    controller = policy.controllers[controller_id]
    moment = T0 + timedelta(minutes=rng.randrange(20), seconds=rng.choice((0, 0, 0, 30)))
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        # The same instant is sometimes written with another offset.
        "occurred_at": (moment if rng.random() < 0.8 else moment.astimezone(_PLUS_TWO))
        .isoformat()
        .replace("+00:00", "Z"),
        "controller": controller_id,
        "subject_id": subject_id,
    }
    if type_.startswith("consent."):
        purpose = controller.purposes[rng.choice(focus)]
        event["purpose"] = purpose.name
        if rng.random() < 0.6:
            event["channel"] = rng.choice(purpose.channels).value
    elif type_ == "unsubscribed":
        marketing = [
            name
            for name in focus
            if controller.purposes[name].has_category(Category.DIRECT_MARKETING)
        ]
        if marketing and rng.random() < 0.6:
            purpose = controller.purposes[rng.choice(marketing)]
            event["purpose"] = purpose.name
            if rng.random() < 0.7:
                event["channel"] = rng.choice(purpose.channels).value
        elif rng.random() < 0.5:
            event["channel"] = rng.choice(list(Channel)).value
    elif type_ == "objection.raised":
        event["objection"] = rng.choice(list(Objection)).value
    elif type_ == "privacy.signal":
        event["signal"] = rng.choice(list(Signal)).value
    if rng.random() < 0.3:
        event["identifiers"] = {"email": f"{subject_id}.{rng.randrange(3)}@example.org"}
    if rng.random() < 0.2:
        event["source"] = rng.choice(("crm", "web-form", "email-platform"))
    return event


def _record(event: Mapping[str, Any], rng: random.Random, keyless_ratio: float) -> RawRecord:
    key = None if rng.random() < keyless_ratio else str(event["subject_id"]).encode()
    return key, orjson.dumps(event)


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
