"""Compressed input from a librdkafka producer (the usual publisher outside Python) is processed,
and a fetch the worker cannot read ends it loudly with its own exit code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streams.worker import EXIT_UNREADABLE_FETCH
from tests.support.kafka import TopicReader, event_record, unique
from tests.support.pipeline import Pipeline, pipeline_for

pytestmark = pytest.mark.integration

CODECS = ("gzip", "snappy", "lz4", "zstd")
EVENTS_PER_CODEC = 20  # one compressible batch per partition


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
                "identifiers": {"email": f"{subject}@example.org"},
            }
        )
        producer.produce(topic, key=key, value=value)
    assert producer.flush(10) == 0, "records left undelivered"


@pytest.mark.parametrize("codec", CODECS)
async def test_records_of_every_codec_are_processed(pipeline: Pipeline, codec: str) -> None:
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


async def test_a_fetch_the_worker_cannot_read_ends_it_with_its_own_code(
    bootstrap: str, tmp_path: Path
) -> None:
    # A worker whose Python lacks the codecs (as every worker did before they were declared).
    stub = tmp_path / "without-codecs" / "cramjam"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("no codecs in this test")\n')
    pipeline = pipeline_for(bootstrap, tmp_path, PYTHONPATH=str(stub.parent))
    worker = pipeline.worker.start()
    assert worker.process is not None
    subject = unique("unreadable-subject")
    try:
        await asyncio.to_thread(
            produce_compressed, bootstrap, pipeline.topics.events, "snappy", [subject]
        )
        code = await asyncio.to_thread(worker.process.wait, 30)
    finally:
        worker.stop()
    assert code == EXIT_UNREADABLE_FETCH, worker.tail()
    log = worker.log_path.read_text(errors="replace")
    entries = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    [entry] = [e for e in entries if e["msg"] == "cannot read a fetch; exiting"]
    assert entry["topic"] == pipeline.topics.events
    assert isinstance(entry["partition"], int)
    assert entry["offset"] == 0  # the only record on a new topic
    assert entry["error"] == "UnsupportedCodecError"
    assert entry["exit_code"] == EXIT_UNREADABLE_FETCH
    assert subject not in log and "example.org" not in log  # no personal data
