"""Hypothesis strategies: admitted events over the test policy, with collisions on purpose.

An event's shape (which fields its type carries, which purposes and channels) is drawn by the
one generator's :func:`bench.workload.scope`, its choices made by Hypothesis: shrinking needs
Hypothesis' own draws, not a seeded ``random.Random``. Ids, identifiers and times come from
small pools here, so that they collide.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import strategies as st

from bench.workload import scope
from schemas.events import ConsentEvent
from schemas.vocabulary import EventType
from streams.core.policy import Controller, parse_policy
from tests.support.core import NOW, POLICY_TOML, T0

T = TypeVar("T")

ACME = parse_policy(POLICY_TOML, "test-policy.toml").controllers["acme"]
# (purpose, its channels) of controller acme in the test policy.
PURPOSES = {name: [c.value for c in p.channels] for name, p in ACME.purposes.items()}

# What an access.fulfilled names: event ids the draws below may give a request, or not.
REQUESTS = [f"{letter}0" for letter in "abcdefghijklmnop"]

# Few distinct minutes, so equal event times (tie-breaks) are common.
minutes = st.integers(min_value=0, max_value=6)


class Drawn:
    """The generator's choices, made by Hypothesis."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw

    def chance(self, p: float) -> bool:
        return self.draw(st.booleans())

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))


@st.composite
def events(
    draw: st.DrawFn,
    subject_id: str = "subject-1",
    controller: tuple[str, Controller] = ("acme", ACME),
) -> ConsentEvent:
    """An admitted event of ``controller`` (its name and its policy; acme by default)."""
    kind = draw(st.sampled_from(list(EventType)))
    data: dict[str, Any] = {"type": kind.value}
    data |= scope(kind, list(controller[1].purposes.values()), Drawn(draw), REQUESTS)
    # Few distinct values, so identifiers are gained, repeated and changed.
    identifiers = draw(
        st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "email": st.sampled_from(["a@example.org", "b@example.org"]),
                "cookie_id": st.sampled_from(["ck-1", "ck-2"]),
            },
        )
    )
    if identifiers is not None:
        data["identifiers"] = identifiers
    data["event_id"] = draw(st.sampled_from("abcdefghijklmnop")) + draw(
        st.text("0123456789", min_size=1, max_size=3)
    )
    data["occurred_at"] = T0 + timedelta(minutes=draw(minutes))
    data["controller"] = controller[0]
    data["subject_id"] = subject_id
    return ConsentEvent.model_validate(data, context={"now": NOW})


def unique_ids(batch: list[ConsentEvent]) -> list[ConsentEvent]:
    """Keep the first event per event_id: one id names one logical event."""
    seen: dict[str, ConsentEvent] = {}
    for e in batch:
        seen.setdefault(e.event_id, e)
    return list(seen.values())


event_sets = st.lists(events(), min_size=1, max_size=25).map(unique_ids)
