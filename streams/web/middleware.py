"""Access log, request counters, error rendering and response headers for every request.

The access log names the route template, never the path: paths carry subject ids and tokens.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from streams.web.auth import CLIENT
from streams.web.context import context_of
from streams.web.errors import ApiError, from_http_exception, json_response
from streams.web.models import ErrorBody
from streams.web.routing import FORWARDED

log = logging.getLogger("consent_streams.http")
UNMATCHED = "(unmatched)"
#: Longest URL (path and query) answered; longer ones get 414 in the API's error shape.
MAX_URL_LENGTH = 8192
#: Longest request line the HTTP parser reads, so that over-long URLs reach the check above.
MAX_REQUEST_LINE = 64 * 1024
# Polled by orchestrators and scrapers every few seconds: logged at debug level only.
_QUIET = frozenset({"/health", "/ready", "/metrics"})


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        if len(request.raw_path) > MAX_URL_LENGTH:
            raise ApiError(414, "uri_too_long", f"the URL is longer than {MAX_URL_LENGTH} bytes")
        response = await handler(request)
    except ApiError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        response = from_http_exception(exc)
    except Exception as exc:  # a bug: answer 500 without details, log the type only
        log.error("request failed", extra={"error": type(exc).__name__})
        response = json_response(
            ErrorBody(error="internal_error", message="internal error"), status=500
        )
    route = route_template(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if route.startswith("/v1/"):
        response.headers.setdefault("Cache-Control", "no-store")
    context_of(request).http.on_request(request.method, route, response.status)
    log.log(
        logging.DEBUG if route in _QUIET else logging.INFO,
        "http request",
        extra={
            "method": request.method,
            "route": route,
            "status": response.status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "client": request.get(CLIENT),
            "forwarded": FORWARDED in request.headers,
        },
    )
    return response
