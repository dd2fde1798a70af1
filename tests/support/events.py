"""Seeded random event sets for the integration tests, and the oracle's view of their outcome.

The events come from the contested profile of :func:`bench.workload.contested` and the
outcome from the oracle in :mod:`bench.reference`: one generator and one rule for every suite.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import orjson

from bench.reference import Pair, final_pairs, told_right
from bench.workload import contested
from streams.core.decisions import Ruling
from streams.core.policy import Policy

PairKey = Pair  # destination, controller, subject, purpose, channel


def random_events(
    policy: Policy, rng: random.Random, subjects: int, count: int, prefix: str
) -> list[dict[str, Any]]:
    """``count`` events over ``subjects`` subjects of every controller, shuffled, some repeated."""
    workload = contested(
        policy,
        rng.getrandbits(32),
        events=count,
        subjects=subjects,
        duplicate_ratio=0.02,
        keyless_ratio=0.0,
        prefix=f"{prefix}-",
    )
    return [orjson.loads(value) for _, value in workload.records]


def final_states(policy: Policy, events: Iterable[dict[str, Any]]) -> dict[PairKey, Ruling]:
    """What the pure core decides over the whole set, per destination and pair."""
    return final_pairs(policy, events)


def mismatches(
    expected: dict[PairKey, Ruling], last: dict[PairKey, str]
) -> list[tuple[PairKey, str, str | None]]:
    """Pairs whose last message contradicts the final decision (see the propagation rules)."""
    wrong = [
        (pair, decision.state.value, last.get(pair))
        for pair, decision in expected.items()
        if not told_right(decision, last.get(pair))
    ]
    unknown = [(pair, "no decision", told) for pair, told in last.items() if pair not in expected]
    return wrong + unknown


def last_actions(values: Iterable[tuple[str, dict[str, Any]]]) -> dict[PairKey, str]:
    """(destination, message) in topic order -> the last action per destination and pair."""
    return {
        (d, v["controller"], v["subject_id"], v["purpose"], v["channel"]): v["action"]
        for d, v in values
    }
