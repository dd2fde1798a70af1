"""``GET .../export``: everything held about a subject, as JSON or a page (scope ``export``).

For access (GDPR Art 15) and portability (Art 20) requests. Answered by the worker owning the
subject, like decisions. An unknown subject gets an empty export, never a 404.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from streams.core.engine import subject_key
from streams.core.ledger import LedgerView
from streams.core.state import SubjectState
from streams.web.context import context_of
from streams.web.errors import bad_request, json_response
from streams.web.export_page import export_page
from streams.web.exporting import build_export
from streams.web.paths import controller_of, subject_id_of
from streams.web.routing import owned_or_503

FORMATS = ("json", "html")


def wants_html(request: web.Request) -> bool:
    """``?format=html``, or a browser asking for HTML (``Accept: text/html``)."""
    chosen = request.query.get("format")
    if chosen is not None and chosen not in FORMATS:
        raise bad_request("format must be json or html")
    if chosen is not None:
        return chosen == "html"
    # The first of the two a client lists wins (browsers list text/html first; curl sends */*).
    for media in request.headers.get("Accept", "").split(","):
        kind = media.split(";", 1)[0].strip().lower()
        if kind in ("text/html", "application/json"):
            return kind == "text/html"
    return False


async def get_export(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    html = wants_html(request)
    ctx = context_of(request)
    key = subject_key(controller.id, subject_id).encode()

    def read() -> tuple[SubjectState, LedgerView]:
        return SubjectState.from_bytes(ctx.backend.state(key)), ctx.backend.ledger(key)

    found = await owned_or_503(ctx, request, key, read)
    if isinstance(found, web.Response):
        return found
    state, view = found

    def render() -> web.Response:
        export = build_export(
            ctx.engine, ctx.receipts, controller, subject_id, state, view, datetime.now(UTC)
        )
        return export_page(export, controller) if html else json_response(export)

    # Off the event loop: a long history takes seconds to sign and render (see docs/api.md),
    # and the worker's stream processing shares this loop.
    return await asyncio.to_thread(render)
