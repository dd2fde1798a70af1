"""Counters kept by the agents and the web layer, and their Prometheus text exposition.

Written by hand (text format 0.0.4): a handful of counters, one histogram and a gauge do not
justify a client library. Label values are closed vocabularies (event types, destinations,
route templates), never identifiers.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from schemas.vocabulary import EventType

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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
class HttpStats:
    """Requests by (method, route template, status), and reads forwarded to another worker."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    forwarded: int = 0
    unavailable: int = 0

    def on_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1


# -- exposition ------------------------------------------------------------------------------


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{int(value)}.0"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Mapping[str, object]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items()) + "}"


class Exposition:
    """Builds one scrape: HELP and TYPE once per family, then its samples."""

    def __init__(self, prefix: str = "consent_streams_") -> None:
        self.prefix = prefix
        self.lines: list[str] = []

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Mapping[str, object], float]],
    ) -> None:
        full = self.prefix + name
        self.lines += [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"]
        for labels, value in samples:
            self.lines.append(f"{full}{_labels(labels)} {_format(value)}")

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        full = self.prefix + name
        self.lines += [f"# HELP {full} {help_text}", f"# TYPE {full} histogram"]
        for bound, count in histogram.cumulative():
            self.lines.append(f'{full}_bucket{{le="{bound}"}} {count}')
        self.lines.append(f"{full}_sum {_format(histogram.total)}")
        self.lines.append(f"{full}_count {histogram.count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _format(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))
