"""Writes over HTTP: events and privacy signals reach the input topic once the broker has them.
Refusals (bodies, limits, scopes) are tested in process (test_api_writes.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.http import Reply, event
from tests.support.kafka import TopicReader, unique
from tests.support.keys import READ_KEY, WRITE_KEY
from tests.support.waiting import eventually
from tests.support.worker import Worker

pytestmark = pytest.mark.integration


async def records_for(worker: Worker, subject: str, count: int) -> list[Any]:
    async with TopicReader(worker.bootstrap, worker.topics.events) as reader:
        await reader.until(
            lambda r: sum(1 for x in r.records if x.key == subject.encode()) >= count
        )
    return [r for r in reader.records if r.key == subject.encode()]


async def test_one_event_is_published_keyed_by_subject(worker: Worker) -> None:
    subject = unique("one")
    sent = event("unsubscribed", "kms-uk", subject, identifiers={"email": "c@example.org"})
    reply = await worker.api(WRITE_KEY).post("/v1/events", json=sent)
    assert (reply.status, reply.json()) == (202, {"accepted": 1, "event_ids": [sent["event_id"]]})
    [record] = await records_for(worker, subject, 1)
    assert orjson.loads(record.value) == sent


async def test_a_batch_is_published_in_full(worker: Worker) -> None:
    subject = unique("batch")
    batch = [
        event("consent.granted", "hms-se", subject, purpose="newsletter"),
        event("objection.raised", "hms-se", subject, objection="profiling"),
        event("restriction.requested", "hms-se", subject),
    ]
    reply = await worker.api(WRITE_KEY).post("/v1/events", json=batch)
    assert reply.status == 202 and reply.json()["accepted"] == 3
    records = await records_for(worker, subject, 3)
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted(
        e["event_id"] for e in batch
    )


async def test_invalid_items_are_listed_and_nothing_is_published(worker: Worker) -> None:
    subject = unique("bad")
    good = event("unsubscribed", "kms-uk", subject)
    batch = [
        good,
        event("consent.granted", "kms-uk", subject),  # no purpose
        event("unsubscribed", "acme", subject),  # unknown controller
        {**event("unsubscribed", "kms-uk", subject), "colour": "red"},
        "not an object",
    ]
    reply = await worker.api(WRITE_KEY).post("/v1/events", json=batch)
    assert reply.status == 422
    body = reply.json()
    assert body["error"] == "invalid_events"
    items = {item["index"]: item for item in body["items"]}
    assert sorted(items) == [1, 2, 3, 4]
    assert items[1]["event_id"] == batch[1]["event_id"]
    assert "purpose is required" in items[1]["errors"][0]["msg"]
    assert items[2]["errors"] == [{"loc": "controller", "msg": "unknown controller 'acme'"}]
    assert items[3]["errors"][0]["loc"] == "colour"
    assert items[4]["event_id"] is None
    # The valid item was held back with the rest: a later valid event is the first on the topic.
    marker = event("unsubscribed", "kms-uk", subject)
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=marker)).status == 202
    [record] = await records_for(worker, subject, 1)
    assert orjson.loads(record.value)["event_id"] == marker["event_id"]


async def test_privacy_signals_from_visitor_headers(worker: Worker) -> None:
    subject = unique("visitor")
    path = f"/v1/controllers/kms-uk/subjects/{subject}/signals"
    api = worker.api(WRITE_KEY)
    both = await api.post(path, headers={"Sec-GPC": "1", "DNT": "1"})
    assert both.status == 202
    published = both.json()["published"]
    assert [p["signal"] for p in published] == ["gpc", "dnt"]
    assert both.json()["ignored"] == []
    again = await api.post(path, headers={"Sec-GPC": "1"})
    assert again.json()["published"][0]["event_id"] == published[0]["event_id"]  # same day
    none = await api.post(path, headers={"Sec-GPC": "0"})
    assert (none.status, none.json()) == (200, {"published": [], "ignored": []})
    records = await records_for(worker, subject, 3)
    assert [orjson.loads(r.value)["signal"] for r in records] == ["gpc", "dnt", "gpc"]
    decision: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(
            f"/v1/controllers/kms-uk/subjects/{subject}/decisions/web-tracking?channel=web"
        ),
        lambda r: r.json().get("reason") == "privacy_signal",
    )
    assert decision.json()["allowed"] is False


async def test_published_events_name_the_api_key_that_sent_them(worker: Worker) -> None:
    subject = unique("provenance")
    sent = event("unsubscribed", "kms-uk", subject)
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=sent)).status == 202
    [found] = await records_for(worker, subject, 1)
    # The key's name from the configuration, never the key itself: the ledger records it.
    assert list(found.headers) == [("consent-streams-api-key", b"writer")]
