"""The reconsent listing, open deadline clocks and the deadline report, in process over the
in-memory backend. End to end on a worker: tests/integration/test_clocks.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.core.clocks import Clock, Stop, Summary
from tests.support.fake_backend import Served, serve
from tests.support.keys import API_ENV, READ_KEY
from tests.support.notices import AFTER, BEFORE, RECONSENT_POLICY, granted, store


@pytest.fixture
async def acme(tmp_path: Path) -> AsyncIterator[Served]:
    path = tmp_path / "policy.toml"
    path.write_text(RECONSENT_POLICY)
    async with serve({**API_ENV, "CONSENT_POLICY_FILE": str(path)}) as running:
        yield running


async def test_subjects_whose_consent_a_material_change_superseded_are_listed(
    acme: Served,
) -> None:
    stale = {f"old-{n}" for n in range(5)}
    for subject in stale:
        store(acme, subject, granted(subject, BEFORE))
    store(acme, "renewed", granted("renewed", AFTER))
    store(acme, "tips-only", granted("tips-only", BEFORE, "tips"))
    listed: dict[str, list[dict[str, str]]] = {}
    cursor, pages = None, 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        reply = await acme.api(READ_KEY).get(f"/v1/controllers/acme/reconsent{query}")
        assert reply.status == 200, reply.text
        body = reply.json()
        assert body["partitions"] == list(range(6))
        listed.update({s["subject_id"]: s["pairs"] for s in body["subjects"]})
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert set(listed) == stale and pages >= 3
    pairs = listed["old-0"]
    assert {(p["purpose"], p["channel"]) for p in pairs} == {("offers", "email"), ("offers", "sms")}
    assert pairs[0]["notice_version"] == "v2"
    assert pairs[0]["since"] == "2026-06-01T00:00:00Z"
    assert pairs[0]["consent_event_id"] == "g-old-0-offers"


async def test_the_listing_filters_by_purpose_and_checks_its_input(acme: Served) -> None:
    store(acme, "old", granted("old", BEFORE))
    api = acme.api(READ_KEY)
    tips = await api.get("/v1/controllers/acme/reconsent?purpose=tips")
    assert (tips.status, tips.json()["subjects"]) == (200, [])
    offers = await api.get("/v1/controllers/acme/reconsent?purpose=offers")
    assert [s["subject_id"] for s in offers.json()["subjects"]] == ["old"]
    for path, status in (
        ("/v1/controllers/acme/reconsent?purpose=nope", 404),
        ("/v1/controllers/nope/reconsent", 404),
        ("/v1/controllers/acme/reconsent?limit=0", 400),
        ("/v1/controllers/acme/reconsent?cursor=%25%25", 400),
    ):
        assert (await api.get(path)).status == status, path
    acme.backend.is_settled = False
    busy = await api.get("/v1/controllers/acme/reconsent")
    assert busy.status == 503 and busy.headers["Retry-After"]


def clock(event_id: str, started: datetime, allowed: timedelta, stop: Stop = Stop.SENT) -> Clock:
    return Clock(
        "kms-uk",
        f"s-{event_id}",
        event_id,
        "erasure.requested",
        "gdpr_request",
        started,
        started + allowed,
        stop,
    )


async def test_open_clocks_are_listed_soonest_deadline_first(served: Served) -> None:
    now = datetime.now(UTC)
    served.backend.clocks = [
        clock("late", now - timedelta(days=40), timedelta(days=31), Stop.CONFIRMED),
        clock("fresh", now - timedelta(days=1), timedelta(days=30), Stop.CONFIRMED),
    ]
    reply = await served.api(READ_KEY).get("/v1/deadlines")
    assert reply.status == 200, reply.text
    clocks = reply.json()["clocks"]
    assert [c["event_id"] for c in clocks] == ["late", "fresh"]
    late, fresh = clocks
    assert late["remaining_seconds"] == pytest.approx(-9 * 86_400, abs=60)
    assert fresh["remaining_fraction"] == pytest.approx(29 / 30, abs=0.001)
    assert fresh["awaiting"] == "confirmed" and fresh["subject_id"] == "s-fresh"
    other = await served.api(READ_KEY).get("/v1/deadlines?rule=bulk_sender_unsubscribe")
    assert other.json()["clocks"] == []


async def test_the_report_merges_the_partitions_summaries(served: Served) -> None:
    start = datetime(2026, 11, 2, tzinfo=UTC)
    quick = clock("q", start, timedelta(days=31))
    one = Summary().record(quick, start + timedelta(hours=1))
    two = Summary().record(quick, start + timedelta(days=40))
    served.backend.summaries = {
        0: [("kms-uk", "gdpr_request", one)],
        4: [("kms-uk", "gdpr_request", two)],
    }
    served.backend.clocks = [clock("open", start, timedelta(days=1), Stop.CONFIRMED)]
    reply = await served.api(READ_KEY).get("/v1/deadlines/report")
    assert reply.status == 200, reply.text
    (row,) = reply.json()["rows"]
    assert {
        k: row[k] for k in ("controller", "rule", "count", "met", "missed", "open", "overdue")
    } == {
        "controller": "kms-uk",
        "rule": "gdpr_request",
        "count": 2,
        "met": 1,
        "missed": 1,
        "open": 1,
        "overdue": 1,
    }
    assert row["worst_seconds"] == 40 * 86_400
    assert 3600 <= row["p50_seconds"] <= 3600 * 1.0905
    assert row["p99_seconds"] == 40 * 86_400


async def test_reads_decide_at_the_time_of_the_request(acme: Served) -> None:
    # The subject's only event predates the change, so the worker has emitted nothing since the
    # allow; a read made after the effective date already says the consent no longer counts.
    store(acme, "old", granted("old", BEFORE))
    api = acme.api(READ_KEY)
    decision = await api.get("/v1/controllers/acme/subjects/old/decisions/offers?channel=email")
    body = decision.json()
    assert (body["reason"], body["allowed"], body["state"]) == (
        "reconsent_required",
        False,
        "not_allowed",
    )
    assert (body["since"], body["caused_by_event_id"]) == ("2026-06-01T00:00:00Z", "g-old-offers")
    preferences = (await api.get("/v1/controllers/acme/subjects/old/preferences")).json()
    reasons = {(d["purpose"], d["channel"]): d["reason"] for d in preferences["decisions"]}
    assert reasons[("offers", "sms")] == "reconsent_required"
    assert reasons[("tips", "email")] == "no_consent"


async def test_a_page_stops_after_reading_its_share_of_states(
    acme: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("streams.web.views_clocks.SCAN_LIMIT", 3)
    for n in range(8):
        store(acme, f"fresh-{n}", granted(f"fresh-{n}", AFTER))  # nobody to ask again
    store(acme, "old", granted("old", BEFORE))
    found, cursor, pages = [], None, 0
    while True:
        query = f"?cursor={cursor}" if cursor else ""
        body = (await acme.api(READ_KEY).get(f"/v1/controllers/acme/reconsent{query}")).json()
        found += [s["subject_id"] for s in body["subjects"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert found == ["old"] and pages >= 3
