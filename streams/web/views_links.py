"""Link pages: one-click unsubscribe (RFC 8058) and double opt-in confirmation.

No authentication and no cookies: the signed token is the authority. ``GET`` only ever shows a
page (link scanners fetch links); the change happens on ``POST``, which is what a mail client's
one-click button or the page's own button sends.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from streams.web.bodies import SMALL_BODY_LIMIT, read_form
from streams.web.context import WebContext, context_of
from streams.web.errors import RETRY_AFTER_SECONDS, ApiError
from streams.web.links import ONE_CLICK, link_event
from streams.web.pages import page
from streams.web.tokens import Claims, TokenError, TokenExpired, TokenKind

_INVALID = ("This link is not valid", "Please use the link from the most recent message you got.")


def _what(ctx: WebContext, claims: Claims) -> str:
    """What the link is about, for its page: "<messages> from <sender>"."""
    controller = ctx.engine.policy.controller(claims.controller)
    if controller is None:
        return "these messages"
    purpose = controller.purposes.get(claims.purpose or "")
    if purpose is None:
        what = f"marketing by {claims.channel or 'email'}"
    else:
        what = purpose.description.rstrip(".") or purpose.name
    return f"{what} from {controller.name}"


def _claims(request: web.Request, kind: TokenKind) -> Claims | web.Response:
    ctx = context_of(request)
    if ctx.signer is None:
        return page(
            "Temporarily unavailable",
            "This service cannot handle links right now. Please try again later.",
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    try:
        claims = ctx.signer.verify(request.match_info["token"], datetime.now(UTC))
    except TokenExpired:
        return page(
            "This link has expired",
            "Please use the link in a more recent message, or contact the sender.",
            status=410,
        )
    except TokenError:
        return page(*_INVALID, status=404)
    if claims.kind is not kind:
        return page(*_INVALID, status=404)
    return claims


async def _publish(request: web.Request, claims: Claims) -> web.Response | None:
    """Publish the click's event; a page if that failed, ``None`` when done."""
    ctx = context_of(request)
    event = link_event(ctx.engine, claims, request.match_info["token"], datetime.now(UTC))
    if isinstance(event, list):  # the policy changed since the link was made
        return page("This link can no longer be used", "Please contact the sender.", status=410)
    try:
        await ctx.publisher.publish_events([event])
    except ApiError:
        return page(
            "Please try again",
            "Your request could not be recorded just now. Please try again in a moment.",
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return None


async def get_unsubscribe(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.UNSUBSCRIBE)
    if isinstance(claims, web.Response):
        return claims
    return page(
        "Unsubscribe?",
        f"Stop receiving {_what(context_of(request), claims)}.",
        button="Unsubscribe",
        hidden={"List-Unsubscribe": "One-Click"},
    )


async def post_unsubscribe(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.UNSUBSCRIBE)
    if isinstance(claims, web.Response):
        return claims
    try:
        form = await read_form(request, SMALL_BODY_LIMIT)
    except ApiError as exc:
        return page("Request not understood", exc.message, status=exc.status)
    if form.get("List-Unsubscribe") != ONE_CLICK.split("=", 1)[1]:
        return page(
            "Request not understood",
            f"A one-click unsubscribe request carries the body {ONE_CLICK}.",
            status=400,
        )
    failed = await _publish(request, claims)
    if failed is not None:
        return failed
    return page("You are unsubscribed", "You will not receive these messages any more.")


async def get_confirm(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.CONFIRM)
    if isinstance(claims, web.Response):
        return claims
    return page(
        "Confirm your subscription",
        f"Confirm that you want to receive {_what(context_of(request), claims)}.",
        button="Confirm",
        hidden={"confirm": "yes"},
    )


async def post_confirm(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.CONFIRM)
    if isinstance(claims, web.Response):
        return claims
    try:
        await read_form(request, SMALL_BODY_LIMIT)
    except ApiError as exc:
        return page("Request not understood", exc.message, status=exc.status)
    failed = await _publish(request, claims)
    if failed is not None:
        return failed
    return page("Thank you", "Your subscription is confirmed.")
