"""Build events for a scenario and read back what each destination was told about a subject."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.topology import partition_of
from tests.support.kafka import TopicReader, event_record, produce, unique
from tests.support.pipeline import Pipeline

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

#: Subject ids of the marker events (:func:`publish_markers`) start with this.
MARKER = "marker"

#: (destination, purpose, channel, action) as told to downstream systems, in order.
Message = tuple[str, str, str, str]


class Scenario:
    """Events about one subject at one controller; unique ids so runs never collide."""

    def __init__(self, controller: str, subject_id: str | None = None) -> None:
        self.controller = controller
        self.subject_id = subject_id or unique("subject")
        self.events: list[dict[str, Any]] = []

    def add(self, type_: str, minute: int, **fields: Any) -> dict[str, Any]:
        event = {
            "event_id": unique("evt"),
            "type": type_,
            "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
            "controller": self.controller,
            "subject_id": self.subject_id,
            **fields,
        }
        self.events.append(event)
        return event


class Told:
    """Everything the destinations received, by subject."""

    def __init__(self, pipeline: Pipeline, reader: TopicReader) -> None:
        self.pipeline = pipeline
        self.reader = reader

    def raw(self, subject_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (destination.value, value)
            for destination, topic in self.pipeline.topics.suppressions.items()
            for value in self.reader.values(topic)
            if value["subject_id"] == subject_id
        ]

    def messages(self, subject_id: str) -> list[Message]:
        return [(d, v["purpose"], v["channel"], v["action"]) for d, v in self.raw(subject_id)]

    def last(self, subject_id: str) -> dict[tuple[str, str, str], str]:
        """(destination, purpose, channel) -> the last action sent."""
        return {(d, p, c): a for d, p, c, a in self.messages(subject_id)}


async def publish(pipeline: Pipeline, *scenarios: Scenario, keyed: bool = True) -> None:
    records = [event_record(e, keyed=keyed) for s in scenarios for e in s.events]
    await produce(pipeline.bootstrap, pipeline.topics.events, records)


async def told_when(pipeline: Pipeline, ready: Callable[[Told], bool], settle: bool = True) -> Told:
    """Read the destination topics until ``ready`` holds and, if ``settle``, until markers
    published after that have been told everywhere: then nothing published before is on its way.
    """
    async with TopicReader(pipeline.bootstrap, *pipeline.topics.suppressions.values()) as reader:
        told = Told(pipeline, reader)
        await reader.until(lambda _: ready(told), timeout=60)
        if settle:
            markers = await publish_markers(pipeline)
            topics = pipeline.topics.suppressions.values()
            await reader.until(lambda r: told_everywhere(r, topics, markers), timeout=60)
    return told


async def publish_markers(pipeline: Pipeline) -> set[str]:
    """An erasure of a fresh subject, without a key, to every input partition for every home.

    A keyless record is forwarded to its home by the repartition hop after everything before it
    on its input partition has been folded (fast path) or forwarded (keyless or misplaced, to
    the same repartition partition, so folded before it). Its outputs therefore follow, on the
    home's partition of every destination topic, all outputs of records published before it.
    The destination topics and the table (the repartition topic) share one partition count.
    """
    topics = pipeline.topics
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap)
    await producer.start()
    try:
        inputs = len(await producer.partitions_for(topics.events))
        [homes] = {len(await producer.partitions_for(t)) for t in topics.suppressions.values()}
        markers: set[str] = set()
        for home in range(homes):
            for partition in range(inputs):
                subject_id = unique(MARKER)
                while partition_of(subject_id.encode(), homes) != home:
                    subject_id = unique(MARKER)
                erasure = Scenario("hms-se", subject_id).add("erasure.requested", 0)
                _, value = event_record(erasure, keyed=False)
                await producer.send_and_wait(topics.events, value, partition=partition)
                markers.add(subject_id)
    finally:
        await producer.stop()
    return markers


def told_everywhere(reader: TopicReader, topics: Iterable[str], markers: set[str]) -> bool:
    """Every destination topic has been told about every marker."""
    return all(markers <= {v["subject_id"] for v in reader.values(topic)} for topic in topics)


def is_marker(subject_id: str) -> bool:
    return subject_id.startswith(MARKER)
