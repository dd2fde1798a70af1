"""Compressed input from a librdkafka producer (the usual publisher outside Python) is processed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from tests.integration.conftest import Pipeline, pipeline_for
from tests.support.kafka import TopicReader, event_record, unique

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")
EVENTS_PER_CODEC = 20  # one compressible batch per partition


@pytest.fixture(scope="module")
def compressed_pipeline(
    bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    running = pipeline_for(bootstrap, tmp_path_factory.mktemp("compressed"))
    running.worker.start()
    yield running
    running.worker.stop()


def produce_compressed(bootstrap: str, topic: str, codec: str, subjects: list[str]) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 50}
    )
    for subject in subjects:
        key, value = event_record(
            {
                "event_id": unique("evt"),
                "type": "unsubscribed",
                "occurred_at": "2026-11-20T10:00:00Z",
                "controller": "kms-uk",
                "subject_id": subject,
            }
        )
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0, "records left undelivered"


@pytest.mark.parametrize("codec", CODECS)
async def test_records_of_every_codec_are_processed(
    compressed_pipeline: Pipeline, codec: str
) -> None:
    pipeline = compressed_pipeline
    subjects = [unique(f"{codec}-subject") for _ in range(EVENTS_PER_CODEC)]
    await asyncio.to_thread(
        produce_compressed, pipeline.bootstrap, pipeline.topics.events, codec, subjects
    )
    email = pipeline.topics.suppressions["email"]
    wanted = set(subjects)

    def suppressed(reader: TopicReader) -> set[str]:
        return {
            v["subject_id"]
            for v in reader.values(email)
            if v["subject_id"] in wanted and v["action"] == "suppress"
        }

    async with TopicReader(pipeline.bootstrap, email) as reader:
        try:
            await reader.until(lambda r: suppressed(r) == wanted, timeout=45)
        except AssertionError:
            status = pipeline.worker.process.poll() if pipeline.worker.process else None
            raise AssertionError(
                f"{len(suppressed(reader))} of {len(wanted)} {codec} events processed; "
                f"worker exit code {status}:\n{pipeline.worker.tail()}"
            ) from None
    assert pipeline.worker.process is not None and pipeline.worker.process.poll() is None
