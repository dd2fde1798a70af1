"""Seeded random event sets over a policy, and the outcome the pure core expects for them."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import ConsentEvent
from schemas.vocabulary import Category, LegalBasis
from streams.core.decisions import PairState, decide_all
from streams.core.policy import Policy
from streams.core.state import EMPTY, SubjectState

T0 = datetime(2026, 10, 1, tzinfo=UTC)
_TYPES = [
    "consent.granted",
    "consent.granted",
    "consent.confirmed",
    "consent.withdrawn",
    "unsubscribed",
    "objection.raised",
    "privacy.signal",
    "erasure.requested",
    "restriction.requested",
    "restriction.lifted",
]


def random_events(
    policy: Policy, rng: random.Random, subjects: int, count: int, prefix: str
) -> list[dict[str, Any]]:
    """``count`` events over ``subjects`` subjects of every controller, shuffled, some repeated."""
    controllers = sorted(policy.controllers)
    events: list[dict[str, Any]] = []
    for n in range(count):
        controller = policy.controllers[rng.choice(controllers)]
        type_ = rng.choice(_TYPES)
        event: dict[str, Any] = {
            "event_id": f"{prefix}-{n}",
            "type": type_,
            # Few distinct minutes: equal event times (tie-breaks) happen.
            "occurred_at": (T0 + timedelta(minutes=rng.randrange(30))).isoformat(),
            "controller": controller.id,
            "subject_id": f"{prefix}-s{rng.randrange(subjects)}",
        }
        purposes = sorted(controller.purposes)
        if type_.startswith("consent."):
            purpose = controller.purposes[rng.choice(purposes)]
            event["purpose"] = purpose.name
            if rng.random() < 0.5:
                event["channel"] = rng.choice(purpose.channels).value
        elif type_ == "unsubscribed":
            marketing = [
                p for p in controller.purposes.values() if p.has_category(Category.DIRECT_MARKETING)
            ]
            if marketing and rng.random() < 0.5:
                purpose = rng.choice(marketing)
                event["purpose"] = purpose.name
                event["channel"] = rng.choice(purpose.channels).value
        elif type_ == "objection.raised":
            event["objection"] = rng.choice(
                ["direct_marketing", "profiling", "legitimate_interest"]
            )
        elif type_ == "privacy.signal":
            event["signal"] = rng.choice(["gpc", "dnt"])
        if rng.random() < 0.3:
            event["identifiers"] = {"email": f"{event['subject_id']}@example.org"}
        events.append(event)
    duplicates = [dict(rng.choice(events)) for _ in range(count // 50)]
    arrival = events + duplicates
    rng.shuffle(arrival)
    return arrival


PairKey = tuple[str, str, str, str, str]  # destination, controller, subject, purpose, channel


def final_states(
    policy: Policy, events: Iterable[dict[str, Any]]
) -> dict[PairKey, tuple[PairState, LegalBasis]]:
    """What the pure core decides over the whole set, per destination and pair."""
    states: dict[tuple[str, str], SubjectState] = defaultdict(lambda: EMPTY)
    for raw in events:
        event = ConsentEvent.model_validate(raw)
        key = (event.controller, event.subject_id)
        states[key] = states[key].fold(event)
    expected: dict[PairKey, tuple[PairState, LegalBasis]] = {}
    for (controller, subject), state in states.items():
        for decision in decide_all(policy, controller, state):
            for destination in decision.purpose.destinations:
                pair = (
                    destination.value,
                    controller,
                    subject,
                    decision.purpose.name,
                    decision.channel.value,
                )
                expected[pair] = (decision.state, decision.purpose.legal_basis)
    return expected


def mismatches(
    expected: dict[PairKey, tuple[PairState, LegalBasis]], last: dict[PairKey, str]
) -> list[tuple[PairKey, str, str | None]]:
    """Pairs whose last message contradicts the final decision (see the propagation rules)."""
    wrong = []
    for pair, (state, basis) in expected.items():
        told = last.get(pair)
        if state is PairState.ALLOWED:
            ok = told == "allow" or (told is None and basis is not LegalBasis.CONSENT)
        elif state is PairState.SUPPRESSED:
            ok = told == "suppress"
        else:
            ok = told in (None, "suppress")
        if not ok:
            wrong.append((pair, state.value, told))
    unknown = [(pair, "no decision", told) for pair, told in last.items() if pair not in expected]
    return wrong + unknown


def last_actions(values: Iterable[tuple[str, dict[str, Any]]]) -> dict[PairKey, str]:
    """(destination, message) in topic order -> the last action per destination and pair."""
    return {
        (d, v["controller"], v["subject_id"], v["purpose"], v["channel"]): v["action"]
        for d, v in values
    }
