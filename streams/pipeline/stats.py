"""Per-type event totals and processing latency kept by the pipeline, and their metric families.

Kept as plain numbers on the hot path (no locks, no label lookups per event); turned into
prometheus_client families only when /metrics is scraped. Label values are closed vocabularies
(event types, destinations), never identifiers.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily

from schemas.vocabulary import EventType

PREFIX = "consent_streams_"
UNKNOWN_TYPE = "unknown"

#: Seconds from a record's Kafka timestamp to the end of its processing. The embedded broker
#: and Faust's consumer hold fetches up to 1.5 s, so the interesting range is wide.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
#: Seconds of one step of a fetched batch: the broker's acknowledgements take milliseconds to
#: tens of milliseconds, a whole batch of a backlog seconds.
STEP_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
#: Records per fetched batch.
BATCH_BUCKETS: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0, 10000.0)
#: The steps of a batch, in the worker's order (streams/pipeline/batches.py): fold it and hand
#: its outputs to the producer; wait until the broker has the outputs; store what they came from.
STEPS = ("fold", "send", "store")
_KNOWN_TYPES = frozenset(t.value for t in EventType)


@dataclass
class Histogram:
    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; last = +Inf
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        value = max(value, 0.0)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*map(_number, self.bounds), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


def type_label(value: bytes | None) -> str:
    """The event type named by a raw record, if it is a known one (rejected records included)."""
    try:
        raw = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return UNKNOWN_TYPE
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and kind in _KNOWN_TYPES else UNKNOWN_TYPE


@dataclass
class EventStats:
    """Per-type totals and processing latency, kept by the worker's agents."""

    processed: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)

    def on_processed(self, event_type: str, latency: float | None) -> None:
        self.processed[event_type] = self.processed.get(event_type, 0) + 1
        if latency is not None:
            self.latency.observe(latency)

    def on_rejected(self, value: bytes | None) -> None:
        label = type_label(value)
        self.rejected[label] = self.rejected.get(label, 0) + 1


@dataclass
class BatchStats:
    """Records per fetched batch and the seconds of each of its steps: where a batch's time
    goes, the worker's own work or waiting for the broker."""

    records: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    steps: dict[str, Histogram] = field(
        default_factory=lambda: {step: Histogram(STEP_BUCKETS) for step in STEPS}
    )

    def on_batch(self, records: int, fold: float, send: float, store: float) -> None:
        self.records.observe(records)
        steps = self.steps
        steps["fold"].observe(fold)
        steps["send"].observe(send)
        steps["store"].observe(store)


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}.0"


def counter(
    name: str, help_text: str, values: float | Mapping[str, float], label: str = ""
) -> CounterMetricFamily:
    """A counter family: one value, or one sample per entry of ``values`` labelled ``label``."""
    if not isinstance(values, Mapping):
        return CounterMetricFamily(PREFIX + name, help_text, value=values)
    family = CounterMetricFamily(PREFIX + name, help_text, labels=[label])
    for key, n in values.items():
        family.add_metric([str(key)], n)
    return family


def histogram(
    name: str,
    help_text: str,
    observed: Histogram | Mapping[tuple[str, ...], Histogram],
    labels: Sequence[str] = (),
) -> HistogramMetricFamily:
    """A histogram family: one histogram, or one per entry of ``observed``, keyed by the values
    of ``labels``."""
    if not isinstance(observed, Mapping):
        observed = {(): observed}
    family = HistogramMetricFamily(PREFIX + name, help_text, labels=list(labels))
    for values, each in observed.items():
        family.add_metric(
            list(values),
            [(bound, float(n)) for bound, n in each.cumulative()],
            sum_value=each.total,
        )
    return family


def batch_metrics(stats: BatchStats) -> list[HistogramMetricFamily]:
    """The families of :class:`BatchStats`: records per batch, and seconds per step."""
    return [
        histogram("batch_records", "Records per fetched batch of input.", stats.records),
        histogram(
            "batch_step_seconds",
            "Seconds of each step of a fetched batch: fold (and hand the outputs to the "
            "producer), send (until the broker has the outputs), store (the states they came "
            "from, changelog acknowledged).",
            {(step,): each for step, each in stats.steps.items()},
            ("step",),
        ),
    ]
