"""Browser privacy signals (Global Privacy Control, Do Not Track) from forwarded visitor headers.

Pure: header parsing and the events they become.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

from schemas.events import ConsentEvent
from schemas.vocabulary import EventType, Signal
from streams.core.policy import Policy

#: Request header -> signal. Both specifications define "1" as the only opt-out value.
HEADERS: dict[str, Signal] = {"Sec-GPC": Signal.GPC, "DNT": Signal.DNT}
SOURCE = "http-privacy-signal"


def signals_in(headers: Mapping[str, str]) -> list[Signal]:
    """The signals a visitor's headers express, in a stable order."""
    return [signal for name, signal in HEADERS.items() if headers.get(name, "").strip() == "1"]


def honoured(policy: Policy, controller: str, signal: Signal) -> bool:
    """A signal counts for a controller only if its policy opts it out of something."""
    return bool(policy.signal_categories(controller, signal))


def signal_event_id(controller: str, subject_id: str, signal: Signal, now: datetime) -> str:
    """One event per subject, signal and UTC day: a visitor's every page view within a day
    is the same statement, and the next day restates it."""
    material = "\x1f".join((controller, subject_id, signal.value, now.date().isoformat()))
    return f"signal-{signal.value}-{hashlib.blake2b(material.encode(), digest_size=16).hexdigest()}"


def signal_event(controller: str, subject_id: str, signal: Signal, now: datetime) -> ConsentEvent:
    header = next(name for name, s in HEADERS.items() if s is signal)
    return ConsentEvent(
        event_id=signal_event_id(controller, subject_id, signal, now),
        type=EventType.PRIVACY_SIGNAL,
        occurred_at=now,
        controller=controller,
        subject_id=subject_id,
        signal=signal,
        source=SOURCE,
        evidence={"header": header},
    )
