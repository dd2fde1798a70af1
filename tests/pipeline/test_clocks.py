"""The worker's clock book without Kafka: which clocks a batch starts, what stopping them
stores, and the metric families /metrics gets from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from streams.core.clocks import Clock, Stop
from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.state import EMPTY
from streams.pipeline.clocks import ClockBook
from streams.pipeline.fold import Folded, Record, fold, route

START = datetime(2026, 11, 2, 9, tzinfo=UTC)  # a Monday
HOME = 3


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy())


def record(n: int, type_: str, subject: str = "s-1", **fields: object) -> Record:
    value = orjson.dumps(
        {
            "event_id": f"e-{n}",
            "type": type_,
            "occurred_at": (START + timedelta(minutes=n)).isoformat(),
            "controller": "kms-uk",
            "subject_id": subject,
            **fields,
        }
    )
    return Record("events", HOME, n, subject.encode(), value)


def started_by(engine: Engine, book: ClockBook, *records: Record) -> list[str]:
    routed = route(records, engine, lambda subject: HOME)
    folded = fold(routed.fold, lambda key, partition: EMPTY, engine, START)
    return [clock.event_id for _, clock in book.start(folded.fresh)]


def test_opt_outs_and_requests_start_clocks_grants_and_redeliveries_do_not(
    engine: Engine,
) -> None:
    book = ClockBook(engine.policy)
    batch = [
        record(1, "consent.granted", purpose="marketing-email"),
        record(2, "unsubscribed"),
        record(2, "unsubscribed"),  # the same event again in the batch: a redelivery
        record(3, "erasure.requested", subject="s-2"),
        record(4, "objection.raised", objection="profiling"),
    ]
    assert started_by(engine, book, *batch) == ["e-2", "e-3", "e-4"]


def test_stopping_records_met_and_missed(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    routed = route(
        [record(1, "unsubscribed"), record(2, "erasure.requested", subject="s-2")],
        engine,
        lambda subject: HOME,
    )
    folded = fold(routed.fold, lambda key, partition: EMPTY, engine, START)
    started = book.start(folded.fresh)
    book.written(book.stop(started, START + timedelta(days=3)), {})  # past the 2-day rule
    found = {r: s for c, r, s in book.summaries(HOME)}
    bulk, gdpr = found["bulk_sender_unsubscribe"], found["gdpr_request"]
    assert (bulk.count, bulk.met, bulk.missed) == (1, 0, 1)
    assert (gdpr.count, gdpr.met, gdpr.missed) == (1, 1, 0)  # the erasure, within its month
    assert list(book.open_clocks(HOME)) == []


def test_a_clock_waiting_for_outside_work_stays_open_until_confirmed(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    waiting = Clock(
        "kms-uk",
        "s-2",
        "e-2",
        "erasure.requested",
        "gdpr_request",
        START,
        START + timedelta(days=30),
        Stop.CONFIRMED,
    )
    book.written(book.stop([(HOME, waiting)], START + timedelta(minutes=1)), {})
    assert list(book.open_clocks(HOME)) == [waiting]
    assert list(book.open_clocks(HOME + 1)) == []
    assert list(book.summaries(HOME)) == []
    book.written(book.complete(HOME, "kms-uk", "e-2", START + timedelta(days=5)), {})
    assert list(book.open_clocks(HOME)) == []
    ((_, rule, summary),) = list(book.summaries(HOME))
    assert (rule, summary.count, summary.met) == ("gdpr_request", 1, 1)
    assert book.complete(HOME, "kms-uk", "e-2", START) == []  # not open any more


def folded_batch(engine: Engine, *records: Record) -> Folded:
    routed = route(records, engine, lambda subject: HOME)
    return fold(routed.fold, lambda key, partition: EMPTY, engine, START)


def settle(book: ClockBook, folded: Folded, honoured_at: datetime) -> None:
    started = book.start(folded.fresh)
    book.written(book.stop(started, honoured_at, book.fulfilments(folded.folded)), {})


def test_an_access_request_stays_open_until_a_fulfilment_names_it(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    requested = folded_batch(engine, record(1, "access.requested"))
    assert requested.messages == []  # decides nothing, sends nothing
    settle(book, requested, START + timedelta(minutes=2))
    (clock,) = book.open_clocks(HOME)
    assert (clock.event_id, clock.rule, clock.stop) == ("e-1", "gdpr_request", Stop.CONFIRMED)
    assert list(book.summaries(HOME)) == []
    # An unknown request, and one of another subject, close nothing.
    other = folded_batch(
        engine,
        record(2, "access.fulfilled", request_id="e-9"),
        record(3, "access.fulfilled", subject="s-2", request_id="e-1"),
    )
    assert other.messages == [] and len(other.fresh) == 2  # accepted and recorded
    settle(book, other, START + timedelta(minutes=3))
    assert [c.event_id for c in book.open_clocks(HOME)] == ["e-1"]
    done = folded_batch(engine, record(4, "access.fulfilled", request_id="e-1"))
    settle(book, done, START + timedelta(days=40))  # folded late: honoured when handed over
    assert list(book.open_clocks(HOME)) == []
    ((_, rule, summary),) = list(book.summaries(HOME))
    assert (rule, summary.count, summary.met, summary.missed) == ("gdpr_request", 1, 1, 0)
    assert summary.worst_seconds == 3 * 60  # from the request's to the fulfilment's time
    # The fulfilment again (a redelivery, or another one): nothing more is counted.
    settle(book, done, START + timedelta(days=41))
    ((_, _, again),) = list(book.summaries(HOME))
    assert again == summary


def test_a_request_and_its_fulfilment_in_one_batch_close_the_clock(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    batch = folded_batch(
        engine,
        record(1, "access.requested"),
        record(2, "access.requested", subject="s-2"),
        record(3, "access.fulfilled", request_id="e-1"),
        record(4, "access.fulfilled", subject="s-2", request_id="e-2"),
    )
    settle(book, batch, START + timedelta(minutes=5))
    assert list(book.open_clocks(HOME)) == []
    ((_, _, summary),) = list(book.summaries(HOME))
    assert (summary.count, summary.met) == (2, 2)  # one summary record, both counted


def test_a_redelivered_fulfilment_closes_a_clock_whose_closing_was_lost(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    settle(book, folded_batch(engine, record(1, "access.requested")), START)
    done = folded_batch(engine, record(2, "access.fulfilled", request_id="e-1"))
    book.stop([], START, book.fulfilments(done.folded))  # computed, never stored: a crash
    assert len(list(book.open_clocks(HOME))) == 1
    # Redelivered, the event is a duplicate of the stored state: it still completes.
    seen = done.states[next(iter(done.states))][1]
    routed = route([record(2, "access.fulfilled", request_id="e-1")], engine, lambda s: HOME)
    again = fold(routed.fold, lambda key, partition: seen, engine, START)
    assert again.duplicates == 1 and again.fresh == []
    settle(book, again, START + timedelta(hours=1))
    assert list(book.open_clocks(HOME)) == []
    ((_, _, summary),) = list(book.summaries(HOME))
    assert summary.count == 1


def scrape(metrics: list[Metric]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    class Collector:
        def collect(self) -> list[Metric]:
            return metrics

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_show_time_to_honour_misses_and_the_open_clocks(engine: Engine) -> None:
    book = ClockBook(engine.policy)
    routed = route(
        [record(1, "unsubscribed"), record(2, "erasure.requested", subject="s-2")],
        engine,
        lambda subject: HOME,
    )
    folded = fold(routed.fold, lambda key, partition: EMPTY, engine, START)
    # The erasure's clock as one waiting for outside work: it stays open.
    started = [
        (p, replace(c, stop=Stop.CONFIRMED) if c.type == "erasure.requested" else c)
        for p, c in book.start(folded.fresh)
    ]
    book.written(book.stop(started, START + timedelta(days=1)), {})
    samples = scrape(list(book.metrics([HOME], START + timedelta(days=28))))
    bulk = (("controller", "kms-uk"), ("rule", "bulk_sender_unsubscribe"))
    gdpr = (("controller", "kms-uk"), ("rule", "gdpr_request"))
    assert samples["consent_streams_deadline_honoured_fraction_count"][bulk] == 1
    fraction = samples["consent_streams_deadline_honoured_fraction_bucket"]
    # Honoured a minute short of one day of the two allowed: just under half.
    assert fraction[(*bulk[:1], ("le", "0.25"), *bulk[1:])] == 0
    assert fraction[(*bulk[:1], ("le", "0.5"), *bulk[1:])] == 1
    assert samples["consent_streams_deadline_missed_total"][bulk] == 0
    assert samples["consent_streams_deadline_open_clocks"][gdpr] == 1
    # A month from 2 Nov runs to midnight after 2 Dec in London; 30 Nov 09:00 leaves 2 d 15 h.
    left = samples["consent_streams_deadline_least_remaining_seconds"][gdpr]
    assert left == 2 * 86_400 + 15 * 3600
    assert 0 < samples["consent_streams_deadline_least_remaining_ratio"][gdpr] < 0.2
    assert samples["consent_streams_deadline_overdue_clocks"][gdpr] == 0


def test_a_clock_that_cannot_be_started_never_stops_the_batch(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise ArithmeticError("a rule nobody foresaw")

    monkeypatch.setattr("streams.core.clocks.ClockRules.clock_for", broken)
    book = ClockBook(engine.policy)
    assert started_by(engine, book, record(1, "unsubscribed", subject="someone@example.com")) == []
    assert "deadline clock not started" in caplog.text
    assert "someone@example.com" not in caplog.text  # no personal data in logs


def test_an_unsubscribe_dated_in_year_one_is_decided_without_a_clock_it_cannot_count(
    engine: Engine,
) -> None:
    value = orjson.dumps(
        {
            "event_id": "ancient",
            "type": "privacy.signal",
            "signal": "gpc",
            "occurred_at": "0001-01-01T00:00:00Z",
            "controller": "kms-uk",
            "subject_id": "s-1",
            "jurisdiction": "US-CA",
        }
    )
    routed = route([Record("events", HOME, 0, b"s-1", value)], engine, lambda subject: HOME)
    folded = fold(routed.fold, lambda key, partition: EMPTY, engine, START)
    assert folded.messages  # decided and told
    assert [c.event_id for _, c in ClockBook(engine.policy).start(folded.fresh)] in (
        [],
        ["ancient"],
    )
