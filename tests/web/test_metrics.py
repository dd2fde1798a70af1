"""The pipeline's counters and their Prometheus text exposition (prometheus_client)."""

from __future__ import annotations

import re

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from streams.pipeline.stats import (
    BatchStats,
    EventStats,
    Histogram,
    batch_metrics,
    counter,
    histogram,
    type_label,
)
from streams.web.metrics import exposition


def test_histogram_is_cumulative_with_inf() -> None:
    histogram = Histogram(bounds=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0, -1.0):
        histogram.observe(value)
    assert histogram.cumulative() == [("0.1", 3), ("1.0", 4), ("+Inf", 5)]
    assert histogram.count == 5 and abs(histogram.total - 7.65) < 1e-9


def test_rejected_records_are_labelled_by_known_types_only() -> None:
    assert type_label(orjson.dumps({"type": "unsubscribed"})) == "unsubscribed"
    assert type_label(orjson.dumps({"type": "made-up"})) == "unknown"
    assert type_label(b"\xff not json") == "unknown"
    assert type_label(orjson.dumps([1])) == "unknown"
    assert type_label(None) == "unknown"
    stats = EventStats()
    stats.on_rejected(b"{}")
    stats.on_processed("consent.granted", 0.2)
    stats.on_processed("consent.granted", None)
    assert stats.rejected == {"unknown": 1} and stats.processed == {"consent.granted": 2}
    assert stats.latency.count == 1


class _Collect:
    """Families as a registry collects them."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def test_exposition_format() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Collect(
            [
                counter("things", "Things.", {'a"b\\c': 3, "plain": 1.5}, "kind"),
                counter("others", "Others.", 2),
                histogram("wait_seconds", "Waiting.", Histogram(bounds=(1.0,))),
            ]
        )
    )
    text = exposition(registry).decode()
    assert text.endswith("\n")
    assert "# TYPE consent_streams_things_total counter" in text
    assert 'consent_streams_things_total{kind="a\\"b\\\\c"} 3.0' in text
    assert 'consent_streams_things_total{kind="plain"} 1.5' in text
    assert "consent_streams_others_total 2.0" in text
    assert 'consent_streams_wait_seconds_bucket{le="1.0"} 0.0' in text
    assert 'consent_streams_wait_seconds_bucket{le="+Inf"} 0.0' in text
    assert "consent_streams_wait_seconds_count 0.0" in text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


def test_batch_steps_are_one_labelled_histogram_family() -> None:
    stats = BatchStats()
    stats.on_batch(12, fold=0.003, send=0.02, store=0.004)
    stats.on_batch(1, fold=0.0005, send=0.002, store=0.001)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collect(batch_metrics(stats)))
    text = exposition(registry).decode()
    assert 'consent_streams_batch_records_bucket{le="10.0"} 1.0' in text
    assert "consent_streams_batch_records_sum 13.0" in text
    assert 'consent_streams_batch_step_seconds_bucket{le="0.001",step="fold"} 1.0' in text
    assert 'consent_streams_batch_step_seconds_bucket{le="0.025",step="send"} 2.0' in text
    assert 'consent_streams_batch_step_seconds_count{step="store"} 2.0' in text
    assert 'consent_streams_batch_step_seconds_sum{step="send"} 0.022' in text
