"""Topic and table names a worker uses, derived from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from schemas.topics import (
    DEADLETTER_TOPIC,
    EVENTS_TOPIC,
    NOTIFICATIONS_TOPIC,
    SUPPRESSION_TOPICS,
)
from schemas.vocabulary import Destination
from streams.settings import Settings

#: Partitions of topics the worker creates (public ones if missing, the internal ones always).
DEFAULT_PARTITIONS = 6
SUBJECTS_TABLE = "subjects"
#: A dead letter carries its record base64-encoded (4/3 of the size) plus the reasons: room for
#: the largest record a broker accepts by default (1 MiB), on the topic and in produce requests.
DEADLETTER_MAX_BYTES = 4 * 1024 * 1024
#: consent.events and the suppression topics are kept for ever (Kafka's default deletes after
#: 7 days): the promise is about the last message on each output topic, which a consumer that
#: starts late must still find, and the events are the record the decisions were made from.
#: Not compacted: output keys are subjects, and a subject has a last message per pair.
KEEP_FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The names of the topics one worker reads and writes (prefixed as the settings say)."""

    events: str
    deadletter: str
    suppressions: dict[Destination, str]
    by_subject: str  # internal: keyless events re-keyed by subject id, co-partitioned
    notifications: str = NOTIFICATIONS_TOPIC  # renewal reminders (contract 1.2)

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        prefix = settings.topic_prefix
        return cls(
            events=prefix + EVENTS_TOPIC,
            deadletter=prefix + DEADLETTER_TOPIC,
            suppressions={d: prefix + name for d, name in SUPPRESSION_TOPICS.items()},
            by_subject=f"{settings.app_id}.events-by-subject",
            notifications=prefix + NOTIFICATIONS_TOPIC,
        )

    @property
    def public(self) -> tuple[str, ...]:
        return (self.events, *self.suppressions.values(), self.deadletter, self.notifications)

    @property
    def public_configs(self) -> dict[str, dict[str, str]]:
        """Topic configs the worker sets when it creates a public topic (compose/ sets the same).

        The dead-letter topic keeps the broker's retention: every record on it is also on the
        events topic, which is kept for ever.
        """
        kept = {topic: dict(KEEP_FOREVER) for topic in (self.events, *self.suppressions.values())}
        return {
            **kept,
            self.deadletter: {"max.message.bytes": str(DEADLETTER_MAX_BYTES)},
            self.notifications: {},  # reminders are transient: the broker's retention
        }


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (Java, murmur2) partitioner sends ``key`` to."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def partition_key(table_key: bytes) -> bytes:
    """The bytes that place a ``controller/subject_id`` state: the subject id.

    A subject's state lives on the partition its keyed input records arrive on (the producer
    hashes the record key, the subject id), so every controller's state for one subject shares
    that partition with the subject's events. Controller ids never contain '/'.
    """
    return table_key.partition(b"/")[2]
