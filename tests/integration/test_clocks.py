"""Clocks end to end on the embedded broker: opt-outs and requests with old event times are
honoured and reported as met or missed (API, CLI, /metrics, across a restart), an access
request stays open until its fulfilment, and a material notice change lists a subject for
reconsent and, once its clock passes the change, suppresses."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.cli import main as cli_main
from streams.web.clocks_cli import gather_report
from tests.support.http import event
from tests.support.kafka import TopicReader, event_record, produce, unique
from tests.support.keys import ALL_KEY, API_ENV, READ_KEY, WRITE_KEY
from tests.support.notices import RECONSENT_POLICY
from tests.support.waiting import eventually
from tests.support.worker import Worker, make_worker

pytestmark = pytest.mark.integration

# The reconsent controller, with a jurisdiction so that the GDPR month applies to it too; and
# one that promises to answer requests within four weeks, for the access requests.
POLICY = RECONSENT_POLICY.replace('name = "Acme AB"', 'name = "Acme AB"\njurisdiction = "GB"')
POLICY += """
[controllers.archive]
name = "Archive BV"
jurisdiction = "NL"

[controllers.archive.promises.requests]
within = "P4W"

[controllers.archive.purposes.news]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
"""


@pytest.fixture(scope="module")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("clocks")
    policy = tmp / "policy.toml"
    policy.write_text(POLICY)
    # Restarted in a test: one record per produce batch, or the embedded broker's offset quirk
    # cuts the changelogs' recovery short (see the broker notes).
    running = make_worker(
        bootstrap,
        tmp,
        **API_ENV,
        CONSENT_POLICY_FILE=str(policy),
        CONSENT_PRODUCER_MAX_BATCH_SIZE="1",
    )
    try:
        running.process.start()
        yield running
    finally:
        running.process.stop()


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat().replace("+00:00", "Z")


async def publish(worker: Worker, *events: dict[str, Any]) -> None:
    await produce(worker.bootstrap, worker.topics.events, [event_record(e) for e in events])


def row(report: dict[str, Any], rule: str, controller: str = "acme") -> dict[str, Any]:
    found = [r for r in report["rows"] if (r["controller"], r["rule"]) == (controller, rule)]
    return found[0] if found else {"count": 0, "open": 0}


async def report_of(worker: Worker) -> dict[str, Any]:
    reply = await worker.api(READ_KEY).get("/v1/deadlines/report")
    return reply.json() if reply.status == 200 else {"rows": []}


def samples(text: str, controller: str = "acme") -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("controller") == controller:
                found[(sample.name, sample.labels.get("rule", ""))] = sample.value
    return found


async def test_late_and_timely_opt_outs_and_requests_are_met_or_missed(
    worker: Worker, tmp_path: Path
) -> None:
    late, timely, eraser = unique("late"), unique("timely"), unique("eraser")
    await publish(
        worker,
        # Published three days after the unsubscribe: the 2-day bulk sender rule is missed.
        event("unsubscribed", "acme", late, occurred_at=ago(days=3)),
        event("unsubscribed", "acme", timely, occurred_at=ago(hours=1)),
        # The worker erases in the batch (data key destroyed, erase instructions sent): a day
        # of the GDPR month.
        event("erasure.requested", "acme", eraser, occurred_at=ago(days=1)),
    )

    def done(report: dict[str, Any]) -> bool:
        return (
            row(report, "bulk_sender_unsubscribe")["count"] >= 2
            and row(report, "gdpr_request")["count"] >= 1
        )

    report = await eventually(lambda: report_of(worker), done)
    bulk, gdpr = row(report, "bulk_sender_unsubscribe"), row(report, "gdpr_request")
    assert (bulk["count"], bulk["met"], bulk["missed"]) == (2, 1, 1)
    assert 1.4 < bulk["worst_fraction"] < 1.6  # three days of two
    assert 3600 <= bulk["p50_seconds"] <= 3600 * 1.1 + 60
    assert (gdpr["count"], gdpr["met"], gdpr["missed"], gdpr["open"]) == (1, 1, 0, 0)
    assert 0.02 < gdpr["worst_fraction"] < 0.05  # a day of a month

    listed = (await worker.api(READ_KEY).get("/v1/deadlines?controller=acme")).json()
    assert listed["clocks"] == []  # everything honoured: nothing is waiting

    metrics = samples((await worker.api(None).get("/metrics")).text)
    assert metrics[("consent_streams_deadline_missed_total", "bulk_sender_unsubscribe")] == 1
    assert (
        metrics[("consent_streams_deadline_honoured_seconds_count", "bulk_sender_unsubscribe")] == 2
    )
    assert metrics[("consent_streams_deadline_missed_total", "gdpr_request")] == 0
    assert ("consent_streams_deadline_open_clocks", "gdpr_request") not in metrics

    # The auditor's report is kept in the clocks table: a restart does not lose it.
    worker.process.stop()
    worker.process.start()
    again = await gather_report([worker.url], READ_KEY)
    kept = row(again, "bulk_sender_unsubscribe")
    assert (kept["count"], kept["met"], kept["missed"]) == (2, 1, 1)
    assert (row(again, "gdpr_request")["count"], row(again, "gdpr_request")["met"]) == (1, 1)


async def test_an_access_request_is_open_until_fulfilled_once(
    worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = unique("asker")
    asked = event("access.requested", "archive", subject, occurred_at=ago(days=2))
    await publish(worker, asked)

    async def listed() -> list[dict[str, Any]]:
        reply = await worker.api(READ_KEY).get("/v1/deadlines?controller=archive")
        return reply.json().get("clocks", []) if reply.status == 200 else []

    (clock,) = await eventually(listed, lambda clocks: len(clocks) == 1)
    assert (clock["event_id"], clock["type"], clock["rule"], clock["awaiting"]) == (
        asked["event_id"],
        "access.requested",
        "promise_requests",  # four weeks: before the GDPR month
        "confirmed",
    )
    assert 0.9 < clock["remaining_fraction"] < 0.95  # two days of four weeks gone
    metrics = samples((await worker.api(None).get("/metrics")).text, "archive")
    assert metrics[("consent_streams_deadline_open_clocks", "promise_requests")] == 1
    assert metrics[("consent_streams_deadline_overdue_clocks", "promise_requests")] == 0

    # Handed over a day later, reported over the API: closed, honoured within the promise.
    done = event(
        "access.fulfilled",
        "archive",
        subject,
        occurred_at=ago(days=1),
        request_id=asked["event_id"],
    )
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=done)).status == 202

    async def promise() -> dict[str, Any]:
        return row(await report_of(worker), "promise_requests", "archive")

    honoured = await eventually(promise, lambda found: found["count"] == 1)
    assert (honoured["met"], honoured["missed"], honoured["open"]) == (1, 0, 0)
    assert 86_400 * 0.99 < honoured["worst_seconds"] < 86_400 * 1.01  # request to hand-over
    assert await listed() == []

    # The fulfilment redelivered, then a second request of the subject (on its partition, so
    # folded after the redelivery): the first clock is counted once.
    again = event("access.requested", "archive", subject, occurred_at=ago(hours=1))
    await publish(worker, done, again)
    await eventually(listed, lambda clocks: [c["event_id"] for c in clocks] == [again["event_id"]])
    assert await promise() == {**honoured, "open": 1}

    # The second is answered with the export command, which publishes its fulfilment.
    argv = ["export", "--url", worker.url, "--controller", "archive", "--subject", subject]
    argv += ["-o", str(tmp_path / "export.json"), "--fulfils", again["event_id"]]
    monkeypatch.setenv("CONSENT_API_KEY", ALL_KEY)
    assert await asyncio.to_thread(cli_main, argv) == 0
    closed = await eventually(promise, lambda found: found["count"] == 2)
    assert (closed["met"], closed["open"]) == (2, 0)
    assert await listed() == []

    # Both requests and both fulfilments are in the subject's ledger, each once.
    exported = await worker.api(ALL_KEY).get(f"/v1/controllers/archive/subjects/{subject}/export")
    ledger = [(e["type"], e["request_id"]) for e in exported.json()["ledger"]]
    assert ledger == [
        ("access.requested", None),
        ("access.fulfilled", asked["event_id"]),
        ("access.requested", None),
        ("access.fulfilled", again["event_id"]),
    ]


async def test_a_notice_change_lists_the_subject_and_its_next_event_suppresses(
    worker: Worker,
) -> None:
    stale, renewed = unique("stale"), unique("renewed")
    before, after = "2026-05-01T09:00:00Z", "2026-07-01T09:00:00Z"
    grant = event("consent.granted", "acme", stale, purpose="offers", occurred_at=before)
    async with TopicReader(worker.bootstrap, worker.topics.suppressions["email"]) as reader:
        await publish(
            worker,
            grant,
            event("consent.granted", "acme", renewed, purpose="offers", occurred_at=after),
        )

        async def listed() -> set[str]:
            reply = await worker.api(READ_KEY).get("/v1/controllers/acme/reconsent")
            return {s["subject_id"] for s in reply.json().get("subjects", [])}

        await eventually(listed, lambda found: stale in found)
        assert renewed not in await listed()

        def told(purpose: str, action: str, reason: str) -> Any:
            return lambda r: any(
                (v["subject_id"], v["purpose"], v["action"], v["reason"])
                == (stale, purpose, action, reason)
                for v in r.values()
            )

        # Its clock stands before the change: what was emitted is the allow.
        await reader.until(told("offers", "allow", "consent"))
        # Its next event is after the change: the old consent is suppressed, dated the change.
        await publish(
            worker, event("consent.granted", "acme", stale, purpose="tips", occurred_at=after)
        )
        await reader.until(told("offers", "suppress", "reconsent_required"))
    (suppressed,) = [
        v
        for v in reader.values()
        if (v["subject_id"], v["channel"], v["reason"]) == (stale, "email", "reconsent_required")
    ]
    assert suppressed["effective_at"] == "2026-06-01T00:00:00Z"
    assert suppressed["caused_by_event_id"] == grant["event_id"]
    decision = await worker.api(READ_KEY).get(
        f"/v1/controllers/acme/subjects/{stale}/decisions/offers?channel=email"
    )
    assert decision.json()["reason"] == "reconsent_required"
