"""Hypothesis strategies: admitted events over the test policy, with collisions on purpose.

The vocabulary (event types, objections, signals) is the contract's, as in the seeded workloads
(:mod:`tests.resilience.workload`); shrinking needs Hypothesis' own draws, not a seeded generator.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from schemas.events import ConsentEvent
from schemas.vocabulary import EventType, Objection, Signal
from tests.support.core import NOW, T0

# (purpose, its channels) of controller acme in the test policy.
PURPOSES = {
    "newsletter": ["email", "sms"],
    "offers": ["email", "sms"],
    "customer-marketing": ["email", "post"],
    "personalisation": ["web"],
    "analytics": ["web"],
    "orders": ["email", "post"],
    "bookkeeping": ["post"],
}

# Few distinct minutes, so equal event times (tie-breaks) are common.
minutes = st.integers(min_value=0, max_value=6)


@st.composite
def events(draw: st.DrawFn, subject_id: str = "subject-1") -> ConsentEvent:
    type_ = draw(st.sampled_from([t.value for t in EventType]))
    data: dict[str, Any] = {"type": type_}
    if type_.startswith("consent.") or type_ in ("confirmation.lapsed", "retention.due"):
        purpose = draw(st.sampled_from(sorted(PURPOSES)))
        data["purpose"] = purpose
        data["channel"] = draw(st.none() | st.sampled_from(PURPOSES[purpose]))
    elif type_ == "unsubscribed":
        purpose = draw(st.none() | st.sampled_from(["newsletter", "offers", "customer-marketing"]))
        data["purpose"] = purpose
        data["channel"] = draw(st.none() | st.sampled_from(PURPOSES[purpose or "offers"]))
    elif type_ == "objection.raised":
        data["objection"] = draw(st.sampled_from([o.value for o in Objection]))
    elif type_ == "privacy.signal":
        data["signal"] = draw(st.sampled_from([s.value for s in Signal]))
    elif type_ == "access.fulfilled":  # names a request, known or not
        data["request_id"] = draw(st.sampled_from("abcdefghijklmnop")) + "0"
    # Few distinct values, so identifiers are gained, repeated and changed.
    data["identifiers"] = draw(
        st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "email": st.sampled_from(["a@example.org", "b@example.org"]),
                "cookie_id": st.sampled_from(["ck-1", "ck-2"]),
            },
        )
    )
    data = {k: v for k, v in data.items() if v is not None}
    data["event_id"] = draw(st.sampled_from("abcdefghijklmnop")) + draw(
        st.text("0123456789", min_size=1, max_size=3)
    )
    data["occurred_at"] = T0 + timedelta(minutes=draw(minutes))
    data["controller"] = "acme"
    data["subject_id"] = subject_id
    return ConsentEvent.model_validate(data, context={"now": NOW})


def unique_ids(batch: list[ConsentEvent]) -> list[ConsentEvent]:
    """Keep the first event per event_id: one id names one logical event."""
    seen: dict[str, ConsentEvent] = {}
    for e in batch:
        seen.setdefault(e.event_id, e)
    return list(seen.values())


event_sets = st.lists(events(), min_size=1, max_size=25).map(unique_ids)
