"""``POST /v1/events``: one event or a batch, validated like the stream does (scope ``write``).

A batch is all or nothing: if any item is invalid nothing is published and the 422 lists the
problems item by item, so a client fixes and resends the whole batch (event ids make resending
events that were already published harmless).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from schemas.codec import RejectedRecord, decode_event
from schemas.deadletter import FieldError
from streams.core.engine import Engine
from streams.web.auth import client_headers
from streams.web.backend import Outgoing
from streams.web.bodies import EVENTS_BODY_LIMIT, read_batch
from streams.web.context import context_of
from streams.web.errors import ApiError, json_response
from streams.web.models import EventsAccepted, ItemErrors


def validate(engine: Engine, item: Any) -> tuple[bytes, bytes] | list[FieldError]:
    """The (key, value) of a valid item's record, or what is wrong with it."""
    if not isinstance(item, dict):
        return [FieldError(loc="", msg="each event must be a JSON object")]
    try:
        value = orjson.dumps(item)
    except orjson.JSONEncodeError:  # nesting deeper than the encoder's recursion limit
        return [FieldError(loc="", msg="event is nested too deeply")]
    try:
        event = decode_event(value)
        errors = engine.admit(event)
    except RejectedRecord as exc:
        errors = exc.errors
    if errors:
        return errors
    return event.subject_id.encode(), value


def _event_id(item: Any) -> str | None:
    found = item.get("event_id") if isinstance(item, dict) else None
    return found if isinstance(found, str) and len(found) <= 128 else None


async def post_events(request: web.Request) -> web.Response:
    ctx = context_of(request)
    items, _ = await read_batch(request, EVENTS_BODY_LIMIT, "events")
    records: list[Outgoing] = []
    headers = client_headers(request)
    problems: list[ItemErrors] = []
    for index, item in enumerate(items):
        checked = validate(ctx.engine, item)
        if isinstance(checked, list):
            problems.append(ItemErrors(index=index, event_id=_event_id(item), errors=checked))
        else:
            records.append((*checked, headers))
    if problems:
        raise ApiError(
            422,
            "invalid_events",
            f"{len(problems)} of {len(items)} event(s) are invalid; nothing was published",
            items=problems,
        )
    await ctx.publisher.publish(records)
    ids = [str(item["event_id"]) for item in items]
    return json_response(EventsAccepted(accepted=len(records), event_ids=ids), status=202)
