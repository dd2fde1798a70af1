"""``POST /v1/tokens``: mint unsubscribe / confirmation links (scope ``tokens``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from schemas.codec import field_errors
from schemas.deadletter import FieldError
from streams.web.bodies import TOKENS_BODY_LIMIT, read_batch
from streams.web.context import context_of
from streams.web.errors import ApiError, json_response, unavailable
from streams.web.links import InsecureLinks, check_base_url, mint
from streams.web.models import ItemErrors, MintedToken, TokenRequest


def _parse(item: Any) -> TokenRequest | list[FieldError]:
    try:
        return TokenRequest.model_validate(item)
    except ValidationError as exc:
        return field_errors(exc)


async def post_tokens(request: web.Request) -> web.Response:
    ctx = context_of(request)
    if ctx.signer is None:
        raise unavailable("no CONSENT_TOKEN_SECRET is configured", "tokens_not_configured")
    settings = ctx.settings
    try:
        check_base_url(settings.links_base_url, settings.allow_insecure_links)
    except InsecureLinks as exc:
        raise ApiError(503, "links_not_secure", str(exc)) from None
    items, batch = await read_batch(request, TOKENS_BODY_LIMIT, "tokens")
    now = datetime.now(UTC)
    minted: list[MintedToken] = []
    problems: list[ItemErrors] = []
    for index, item in enumerate(items):
        parsed = _parse(item)
        result = (
            parsed
            if isinstance(parsed, list)
            else mint(ctx.signer, ctx.engine, parsed, settings.links_base_url, now)
        )
        if isinstance(result, list):
            problems.append(ItemErrors(index=index, event_id=None, errors=result))
        else:
            minted.append(result)
    if problems:
        raise ApiError(
            422,
            "invalid_requests",
            f"{len(problems)} of {len(items)} request(s) are invalid",
            items=problems,
        )
    return json_response(minted if batch else minted[0], status=201)
