"""Topic names of the public contract."""

from __future__ import annotations

from schemas.vocabulary import Destination

EVENTS_TOPIC = "consent.events"
DEADLETTER_TOPIC = "consent.deadletter"
NOTIFICATIONS_TOPIC = "consent.notifications"  # contract 1.2: renewal reminders
SUPPRESSION_TOPICS: dict[Destination, str] = {
    destination: f"consent.suppressions.{destination.value}" for destination in Destination
}
PUBLIC_TOPICS: tuple[str, ...] = (
    EVENTS_TOPIC,
    *SUPPRESSION_TOPICS.values(),
    DEADLETTER_TOPIC,
    NOTIFICATIONS_TOPIC,
)
