"""``consent-streams reconsent`` and ``deadlines``: gathering the workers' answers, in process
over the in-memory backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams.core.clocks import Clock, Stop, Summary
from streams.web.clocks_cli import (
    Gathered,
    deadlines_main,
    duration,
    gather_reconsent,
    gather_report,
    reconsent_main,
)
from tests.support.fake_backend import Served, serve
from tests.support.keys import API_ENV, READ_KEY, WRITE_KEY
from tests.support.notices import AFTER, BEFORE, RECONSENT_POLICY, granted, store

START = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[Served, Served]]:
    """Two workers splitting the six partitions."""
    path = tmp_path / "policy.toml"
    path.write_text(RECONSENT_POLICY)
    env = {**API_ENV, "CONSENT_POLICY_FILE": str(path)}
    async with serve(env) as one, serve(env) as other:
        one.backend.active, other.backend.active = {0, 1, 2}, {3, 4, 5}
        yield one, other


def fill(workers: tuple[Served, Served]) -> set[str]:
    stale = set()
    for n in range(12):
        subject = f"s-{n}"
        at = BEFORE if n % 3 else AFTER
        for worker in workers:  # each lists only the subjects of its partitions
            store(worker, subject, granted(subject, at))
        if n % 3:
            stale.add(subject)
    return stale


async def test_reconsent_gathers_every_worker(two: tuple[Served, Served]) -> None:
    stale = fill(two)
    found = await gather_reconsent([w.url for w in two], READ_KEY, "acme", "offers")
    assert {s["subject_id"] for s in found["subjects"]} == stale
    assert found["partitions"] == list(range(6))


async def test_one_worker_leads_to_the_others(two: tuple[Served, Served]) -> None:
    one, other = two
    stale = fill(two)
    one.backend.owners = dict.fromkeys(other.backend.active, other.url)
    found = await gather_reconsent([one.url], READ_KEY, "acme", None)
    assert {s["subject_id"] for s in found["subjects"]} == stale
    assert found["partitions"] == list(range(6))
    report = await gather_report([one.url], READ_KEY)
    assert report["partitions"] == list(range(6))


async def test_partitions_nobody_answered_for_are_an_error(two: tuple[Served, Served]) -> None:
    with pytest.raises(Gathered, match="partitions 3, 4, 5 were not answered"):
        await gather_report([two[0].url], READ_KEY)


async def test_a_partition_answered_twice_is_refused(two: tuple[Served, Served]) -> None:
    two[1].backend.active = {2, 3, 4, 5}  # moving: both answer for partition 2
    with pytest.raises(Gathered, match="partition 2"):
        await gather_reconsent([w.url for w in two], READ_KEY, "acme", None)


async def test_errors_name_the_worker(two: tuple[Served, Served]) -> None:
    with pytest.raises(Gathered, match="HTTP 403"):
        await gather_report([two[0].url], WRITE_KEY)


def clock(event_id: str, allowed: timedelta) -> Clock:
    return Clock(
        "kms-uk", "s", event_id, "unsubscribed", "bulk_sender_unsubscribe", START, START + allowed
    )


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENT_API_KEY", READ_KEY)


@pytest.mark.usefixtures("key")
async def test_the_report_merges_workers_and_prints_a_table(
    two: tuple[Served, Served], capsys: pytest.CaptureFixture[str]
) -> None:
    one, other = two
    two_days = timedelta(days=2)
    one.backend.summaries = {
        0: [
            (
                "kms-uk",
                "bulk_sender_unsubscribe",
                Summary().record(clock("a", two_days), START + timedelta(minutes=1)),
            )
        ]
    }
    other.backend.summaries = {
        4: [
            (
                "kms-uk",
                "bulk_sender_unsubscribe",
                Summary().record(clock("b", two_days), START + timedelta(days=3)),
            )
        ]
    }
    report = await gather_report([one.url, other.url], READ_KEY)
    (row,) = report["rows"]
    assert (row["count"], row["met"], row["missed"]) == (2, 1, 1)
    assert row["p50_seconds"] <= 60 * 1.0905 and row["p99_seconds"] == 3 * 86_400

    argv = ["report", "--url", one.url, "--url", other.url]
    assert await asyncio.to_thread(deadlines_main, argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "controller",
        "rule",
        "closed",
        "met",
        "missed",
        "open",
        "overdue",
        "worst",
        "p50",
        "p99",
    ]
    assert table[1].split()[:7] == ["kms-uk", "bulk_sender_unsubscribe", "2", "1", "1", "0", "0"]
    assert "3d (150%)" in table[1]
    assert table[-1] == "partitions: 0,1,2,3,4,5"
    assert await asyncio.to_thread(deadlines_main, [*argv, "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["rows"][0]["missed"] == 1


@pytest.mark.usefixtures("key")
async def test_open_clocks_and_reconsent_from_the_command_line(
    two: tuple[Served, Served], capsys: pytest.CaptureFixture[str]
) -> None:
    one, _ = two
    stale = fill(two)
    one.backend.clocks = [
        Clock(
            "acme",
            "s-1",
            "e-1",
            "erasure.requested",
            "gdpr_request",
            START,
            START + timedelta(days=30),
            Stop.CONFIRMED,
        )
    ]
    urls = ["--url", one.url, "--url", two[1].url]
    assert await asyncio.to_thread(deadlines_main, ["open", *urls]) == 0
    out = capsys.readouterr().out
    assert "gdpr_request  erasure.requested  e-1  awaiting confirmed" in out
    assert await asyncio.to_thread(reconsent_main, ["acme", *urls, "--json"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert {s["subject_id"] for s in listed["subjects"]} == stale
    assert await asyncio.to_thread(reconsent_main, ["acme", *urls]) == 0
    assert f"{len(stale)} subject(s) to ask again" in capsys.readouterr().out


def test_without_a_key_it_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONSENT_API_KEY", raising=False)
    assert deadlines_main(["report"]) == 2
    assert "CONSENT_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.25, "250ms"), (42, "42s"), (192, "3m12s"), (3600, "1h"), (-97_200, "-1d3h")],
)
def test_durations_read_easily(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
