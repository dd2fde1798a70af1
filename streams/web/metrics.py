"""The worker's ``/metrics`` scrape: the pipeline's families, readiness and the HTTP counters,
plus the standard process metrics, in Prometheus text format 0.0.4 (prometheus_client).

HTTP counters are plain numbers, turned into families at scrape time like the pipeline's.
Label values are closed vocabularies (route templates, methods, statuses), never identifiers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from streams.web.backend import Backend

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PREFIX = "consent_streams_"


@dataclass
class HttpStats:
    """Requests by (method, route template, status), and reads forwarded to another worker."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    forwarded: int = 0
    unavailable: int = 0

    def on_request(self, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1


class Scrape:
    """A prometheus_client collector reading the backend and the HTTP counters when scraped."""

    def __init__(self, backend: Backend, http: HttpStats) -> None:
        self.backend = backend
        self.http = http

    def collect(self) -> Iterator[Metric]:
        yield from self.backend.metrics()
        yield GaugeMetricFamily(
            PREFIX + "ready",
            "1 when this worker answers reads (see /ready).",
            value=int(self.backend.ready()),
        )
        requests = CounterMetricFamily(
            PREFIX + "http_requests",
            "HTTP requests by method, route template and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(self.http.requests.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests
        yield CounterMetricFamily(
            PREFIX + "http_reads_forwarded",
            "Reads forwarded to the worker owning the subject.",
            value=self.http.forwarded,
        )
        yield CounterMetricFamily(
            PREFIX + "http_reads_unavailable",
            "Reads answered 503 because ownership was moving or the owner was unreachable.",
            value=self.http.unavailable,
        )


def registry_for(backend: Backend, http: HttpStats) -> CollectorRegistry:
    """One registry per web server (not the global one), with the standard process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Scrape(backend, http))
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(standard)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
