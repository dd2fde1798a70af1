"""Reads over HTTP against a real worker: decisions follow events, metrics count them, and what
stays hidden. Auth, errors and headers are tested in process (test_api_reads.py)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.core.policy import load_policy
from streams.storage import BLOCK_CACHE_BYTES, MEMTABLE_BYTES
from tests.support.http import Reply, decision_path, event
from tests.support.kafka import event_record, produce, unique
from tests.support.keys import READ_KEY
from tests.support.waiting import eventually
from tests.support.worker import Worker

pytestmark = pytest.mark.integration


async def test_decision_follows_the_events(worker: Worker) -> None:
    subject = unique("anna")
    granted = event("consent.granted", "hms-se", subject, purpose="newsletter")
    confirmed = event(
        "consent.confirmed",
        "hms-se",
        subject,
        purpose="newsletter",
        occurred_at="2026-11-20T10:05:00Z",
    )
    assert (await worker.api().post("/v1/events", json=[granted, confirmed])).status == 202
    path = decision_path("hms-se", subject, "newsletter", "email")
    reply: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json().get("allowed") is True
    )
    body = reply.json()
    assert body == {
        "controller": "hms-se",
        "subject_id": subject,
        "purpose": "newsletter",
        "channel": "email",
        "allowed": True,
        "state": "allowed",
        "reason": "consent",
        "legal_basis": "consent",
        "since": "2026-11-20T10:05:00Z",
        "caused_by_event_id": confirmed["event_id"],
    }


async def test_preferences_list_every_pair_and_the_statements(worker: Worker) -> None:
    subject = unique("ben")
    unsubscribed = event("unsubscribed", "kms-uk", subject)
    signal = event("privacy.signal", "kms-uk", subject, signal="gpc")
    await worker.api().post("/v1/events", json=[unsubscribed, signal])
    path = f"/v1/controllers/kms-uk/subjects/{subject}/preferences"
    reply: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: len(r.json().get("statements", [])) == 2
    )
    body = reply.json()
    pairs = {(d["purpose"], d["channel"]): d for d in body["decisions"]}
    assert list(pairs) == list(load_policy().pairs("kms-uk"))  # every pair, in policy order
    assert pairs["marketing-email", "email"]["reason"] == "unsubscribed"
    assert pairs["web-tracking", "web"]["reason"] == "privacy_signal"
    assert pairs["billing", "email"]["allowed"] is True
    by_id = {s["event_id"]: s for s in body["statements"]}
    assert by_id[unsubscribed["event_id"]]["applies_to"] == "unsubscribe"
    assert by_id[unsubscribed["event_id"]]["channel"] == "email"
    assert by_id[signal["event_id"]]["signal"] == "gpc"


async def test_subject_ids_with_reserved_characters(worker: Worker) -> None:
    subject = unique("a/b c")
    await worker.api().post("/v1/events", json=event("unsubscribed", "kms-uk", subject))
    encoded = subject.replace("/", "%2F").replace(" ", "%20")
    reply: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(
            decision_path("kms-uk", encoded, "marketing-email", "email")
        ),
        lambda r: r.json().get("reason") == "unsubscribed",
    )
    assert reply.json()["subject_id"] == subject


async def test_metrics_count_events_and_requests(worker: Worker) -> None:
    subject = unique("m")
    await worker.api().post("/v1/events", json=event("erasure.requested", "kms-uk", subject))
    # Records that bypass the API's validation end on the dead-letter topic, counted by type.
    await produce(
        worker.bootstrap,
        worker.topics.events,
        [(None, b"not json"), event_record(event("unsubscribed", "acme", subject))],
    )
    reply: Reply = await eventually(
        lambda: worker.api(None).get("/metrics"),
        lambda r: all(
            needle in r.text
            for needle in (
                'consent_streams_events_processed_total{type="erasure.requested"}',
                'consent_streams_events_rejected_total{type="unknown"}',
                'consent_streams_events_rejected_total{type="unsubscribed"}',
            )
        ),
    )
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    for needle in (
        'consent_streams_suppressions_emitted_total{destination="email"}',
        'consent_streams_processing_latency_seconds_bucket{le="+Inf"}',
        "consent_streams_processing_latency_seconds_count",
        'consent_streams_consumer_lag{partition="',  # labels in name order
        'consent_streams_http_requests_total{method="POST",route="/v1/events",status="202"}',
        "consent_streams_ready 1",
    ):
        assert needle in text, needle
    assert subject not in text
    samples = {
        (s.name, s.labels.get("step") or s.labels.get("part")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # Every fetched batch is counted once, with its records and the time of each step.
    batches = samples["consent_streams_batch_records_count", None]
    assert batches >= 1 and samples["consent_streams_batch_records_sum", None] >= 3
    for step in ("fold", "send", "store"):
        assert samples["consent_streams_batch_step_seconds_count", step] == batches, step
        assert samples["consent_streams_batch_step_seconds_sum", step] > 0, step
    # What RocksDB holds: the states just written are still in the memtables.
    rocksdb = {
        part: value
        for (name, part), value in samples.items()
        if name == "consent_streams_rocksdb_memory_bytes"
    }
    assert rocksdb.keys() == {"memtables", "block_cache"}
    assert (
        0 < rocksdb["memtables"] <= MEMTABLE_BYTES and rocksdb["block_cache"] <= BLOCK_CACHE_BYTES
    )


@pytest.mark.parametrize(
    "path",
    [
        "/router/",
        "/table/subjects/",
        "/table/subjects/kms-uk%2Fx/",
        "/graph/",
        "/stats/",
        "/assignment/",
        "/performance/",
    ],
)
async def test_faust_browsing_endpoints_are_off(worker: Worker, path: str) -> None:
    assert (await worker.api(None).get(path)).status == 404


async def test_access_log_has_routes_not_paths(worker: Worker) -> None:
    subject = unique("private-person")
    await worker.api(READ_KEY).get(decision_path("kms-uk", subject, "marketing-email", "email"))
    await worker.api(None).get(f"/v1/unsubscribe/v1.{subject}.forged")
    log = worker.process.log_path.read_text()
    assert '"route":"/v1/controllers/{controller}/subjects/{subject_id}/decisions/{purpose}"' in log
    assert '"route":"/v1/unsubscribe/{token}"' in log
    assert subject not in log
    assert READ_KEY not in log


async def test_faust_index_answers(worker: Worker) -> None:
    # HEAD, 405 and 414 are checked in process (test_api_reads.py); the index is Faust's own.
    assert (await worker.api(None).get("/")).json() == {"status": "OK"}
