"""Operations endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from functools import cache

import orjson
from aiohttp import web

from streams.web.context import context_of
from streams.web.errors import RETRY_AFTER_SECONDS, json_response
from streams.web.metrics import CONTENT_TYPE, exposition
from streams.web.models import Health, Readiness


async def get_health(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


async def get_ready(request: web.Request) -> web.Response:
    """200 once partitions are assigned and tables recovered; 503 during a rebalance."""
    backend = context_of(request).backend
    if backend.ready():
        return json_response(Readiness(status="ready", partitions=backend.active_partitions()))
    return json_response(
        Readiness(status="not ready", partitions=[]),
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def get_metrics(request: web.Request) -> web.Response:
    body = exposition(context_of(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@cache
def _openapi() -> bytes:
    from streams.web.openapi import document  # the document lists this module's views

    return orjson.dumps(document(), option=orjson.OPT_SORT_KEYS)


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=_openapi(), content_type="application/json")
