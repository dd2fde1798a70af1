"""Reading the worker's batch metrics: mean records and step times, per run and in the report."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from bench.batches import SINCE_START, batch_means, read_batch_totals
from bench.report import latency_steps, throughput_steps
from streams.pipeline.stats import BatchStats, batch_metrics, histogram
from streams.web.metrics import exposition


def scrape(stats: BatchStats) -> str:
    class Families:
        def collect(self) -> list[Metric]:
            other = histogram("processing_latency_seconds", "Not a batch family.", stats.records)
            return [*batch_metrics(stats), other]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())
    return exposition(registry).decode()


def test_means_cover_only_the_batches_between_two_readings() -> None:
    stats = BatchStats()
    stats.on_batch(400, fold=0.5, send=0.2, store=0.3)  # warm-up: not part of the steady load
    before = read_batch_totals(scrape(stats))
    stats.on_batch(10, fold=0.002, send=0.006, store=0.004)
    stats.on_batch(30, fold=0.004, send=0.010, store=0.006)
    after = read_batch_totals(scrape(stats))
    assert set(after) == {"records", "fold", "send", "store"}
    means = batch_means(before, after)
    assert means == {
        "batches": 2,
        "batch_records": 20.0,
        "fold_ms": 3.0,
        "send_ms": 8.0,
        "store_ms": 5.0,
    }
    run = {"system": "consent-streams", "rate": 1000, "fetch_wait_ms": 10, **means}
    assert latency_steps([{"median": run}]).splitlines()[1] == (
        "  consent-streams worker, 1,000/s, fetch wait 10 ms: "
        "20.0 records; fold 3.0 ms, send 8.0 ms, store 5.0 ms"
    )


def test_no_reading_or_no_batches_gives_no_means() -> None:
    stats = BatchStats()
    reading = read_batch_totals(scrape(stats))
    assert batch_means(None, reading) == {} and batch_means(reading, None) == {}
    assert batch_means(reading, reading) == {}  # no batch in between
    assert read_batch_totals("") == {}
    assert latency_steps([{"median": {"system": "quix", "rate": 200, "fetch_wait_ms": 10}}]) == ""


def test_a_drain_is_read_from_the_start_and_reported_for_the_worker_only() -> None:
    stats = BatchStats()
    stats.on_batch(1000, fold=0.120, send=0.010, store=0.060)
    stats.on_batch(500, fold=0.060, send=0.006, store=0.030)
    means = batch_means(SINCE_START, read_batch_totals(scrape(stats)))
    assert means == {
        "batches": 2,
        "batch_records": 750.0,
        "fold_ms": 90.0,
        "send_ms": 8.0,
        "store_ms": 45.0,
    }
    results = {
        "transport": {"median": {"system": "transport", "batches": None}},
        "consent-streams": {"median": {"system": "consent-streams", **means}},
    }
    assert throughput_steps(results).splitlines() == [
        "The worker's mean batch while draining (its /metrics):",
        "  consent-streams worker: 750.0 records; fold 90.0 ms, send 8.0 ms, store 45.0 ms",
    ]
    assert throughput_steps({"transport": results["transport"]}) == ""
    # A worker that does not answer its /metrics: no figures rather than zeros.
    assert batch_means(SINCE_START, None) == {}
