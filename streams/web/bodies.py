"""Reading request bodies with a size limit per endpoint, and batches of JSON items."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from streams.web.errors import ApiError, bad_request
from streams.web.models import MAX_BATCH

#: Body limits. Events: a full batch of typical events; a single record is capped at 64 KiB by
#: the contract anyway. Forms and empty-bodied calls need almost nothing.
EVENTS_BODY_LIMIT = 1024 * 1024
TOKENS_BODY_LIMIT = 256 * 1024
SMALL_BODY_LIMIT = 4 * 1024


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes")


def _limited(request: web.Request, limit: int) -> web.BaseRequest:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    # A clone with a smaller cap also covers chunked bodies that announce no length.
    return request.clone(client_max_size=limit)


async def read_bytes(request: web.Request, limit: int) -> bytes:
    try:
        return await _limited(request, limit).read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None


async def read_json(request: web.Request, limit: int) -> Any:
    body = await read_bytes(request, limit)
    if not body.strip():
        raise bad_request("the request body is empty; JSON expected", "invalid_json")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", "invalid_json") from None


async def read_batch(request: web.Request, limit: int, noun: str) -> tuple[list[Any], bool]:
    """The items of a body that is one JSON value or an array of 1 to MAX_BATCH of them, and
    whether it was an array (the answer then is one too)."""
    body = await read_json(request, limit)
    batch = isinstance(body, list)
    items: list[Any] = body if batch else [body]
    if not items:
        raise bad_request("the batch is empty", "empty_batch")
    if len(items) > MAX_BATCH:
        raise ApiError(
            413, "batch_too_large", f"{len(items)} {noun} in one request; the limit is {MAX_BATCH}"
        )
    return items, batch


async def read_form(request: web.Request, limit: int) -> dict[str, str]:
    """URL-encoded or multipart form fields (RFC 8058 allows both); files are ignored."""
    try:
        form = await _limited(request, limit).post()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except ValueError:
        raise bad_request("the form body cannot be parsed", "invalid_form") from None
    fields: dict[str, str] = {}
    for name, value in form.items():
        if isinstance(value, str):
            fields.setdefault(name, value)
    return fields
