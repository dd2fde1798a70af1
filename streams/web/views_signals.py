"""``POST .../signals``: a website backend passes on its visitor's privacy headers (``write``)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.web.auth import client_headers
from streams.web.bodies import SMALL_BODY_LIMIT, read_bytes
from streams.web.context import context_of
from streams.web.errors import json_response
from streams.web.models import SignalIgnored, SignalPublished, SignalsResult
from streams.web.paths import controller_of, subject_id_of
from streams.web.signals import honoured, signal_event, signals_in


async def post_signals(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    await read_bytes(request, SMALL_BODY_LIMIT)  # no body expected; refuse large ones
    ctx = context_of(request)
    now = datetime.now(UTC)
    events, ignored = [], []
    for signal in signals_in(request.headers):
        if honoured(ctx.engine.policy, controller.id, signal):
            events.append(signal_event(controller.id, subject_id, signal, now))
        else:
            reason = f"the policy of {controller.id!r} does not honour {signal.value}"
            ignored.append(SignalIgnored(signal=signal, reason=reason))
    if events:
        await ctx.publisher.publish_events(events, client_headers(request))
    published = [SignalPublished(signal=e.signal, event_id=e.event_id) for e in events if e.signal]
    body = SignalsResult(published=published, ignored=ignored)
    return json_response(body, status=202 if published else 200)
