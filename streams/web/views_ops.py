"""Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import orjson
from aiohttp import web

from streams.web.context import WebContext, context_of
from streams.web.errors import RETRY_AFTER_SECONDS, json_response
from streams.web.metrics import CONTENT_TYPE, Exposition
from streams.web.models import Health, Readiness


async def get_health(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


def is_ready(ctx: WebContext) -> bool:
    consumer = ctx.app.consumer
    return bool(consumer and consumer.assignment()) and ctx.router.settled()


async def get_ready(request: web.Request) -> web.Response:
    """200 once partitions are assigned and tables recovered; 503 during a rebalance."""
    ctx = context_of(request)
    if is_ready(ctx):
        return json_response(Readiness(status="ready", partitions=ctx.router.active_partitions()))
    return json_response(
        Readiness(status="not ready", partitions=[]),
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def consumer_lag(ctx: WebContext) -> Iterator[tuple[str, int, int]]:
    """(topic, partition, records not yet committed) for the input partitions this worker owns."""
    app: Any = ctx.app
    consumer = app.consumer
    if not consumer:
        return
    sources = {ctx.topology.events, ctx.topology.by_subject}
    monitor = app.monitor
    for tp in sorted(consumer.assignment()):
        if tp.topic not in sources:
            continue
        end = consumer.highwater(tp)
        done = monitor.tp_committed_offsets.get(tp)
        if done is None and tp in monitor.tp_read_offsets:
            done = monitor.tp_read_offsets[tp] + 1
        if end is not None and done is not None:
            yield tp.topic, tp.partition, max(int(end) - int(done), 0)


def exposition(ctx: WebContext) -> str:
    counters = ctx.streams.counters
    stats = counters.events
    out = Exposition()
    out.family(
        "events_processed_total",
        "counter",
        "Events folded into subject state (redeliveries included), by event type.",
        (({"type": t}, n) for t, n in sorted(stats.processed.items())),
    )
    out.family(
        "events_rejected_total",
        "counter",
        "Records sent to the dead-letter topic, by the event type they name (unknown if none).",
        (({"type": t}, n) for t, n in sorted(stats.rejected.items())),
    )
    out.family(
        "events_duplicate_total",
        "counter",
        "Redelivered events recognised by their event id.",
        [({}, counters.duplicates)],
    )
    out.family(
        "suppressions_emitted_total",
        "counter",
        "Suppress/allow messages sent, by destination.",
        (({"destination": d.value}, n) for d, n in counters.emitted.items()),
    )
    out.histogram(
        "processing_latency_seconds",
        "From an input record's Kafka timestamp to the end of its processing.",
        stats.latency,
    )
    out.family(
        "consumer_lag",
        "gauge",
        "Records in an owned input partition not yet processed and committed.",
        (({"topic": t, "partition": p}, lag) for t, p, lag in consumer_lag(ctx)),
    )
    out.family(
        "ready", "gauge", "1 when this worker answers reads (see /ready).", [({}, is_ready(ctx))]
    )
    out.family(
        "http_requests_total",
        "counter",
        "HTTP requests by method, route template and status.",
        (
            ({"method": m, "route": r, "status": s}, n)
            for (m, r, s), n in sorted(ctx.http.requests.items())
        ),
    )
    out.family(
        "http_reads_forwarded_total",
        "counter",
        "Reads forwarded to the worker owning the subject.",
        [({}, ctx.http.forwarded)],
    )
    out.family(
        "http_reads_unavailable_total",
        "counter",
        "Reads answered 503 because ownership was moving or the owner was unreachable.",
        [({}, ctx.http.unavailable)],
    )
    return out.text()


async def get_metrics(request: web.Request) -> web.Response:
    body = exposition(context_of(request)).encode()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@cache
def _openapi() -> bytes:
    from streams.web.openapi import document  # the document lists this module's views

    return orjson.dumps(document(), option=orjson.OPT_SORT_KEYS)


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi(), content_type="application/json")
