"""Link pages: one-click unsubscribe (RFC 8058) and double opt-in confirmation.

No authentication and no cookies: the token is the authority. ``GET`` only ever shows a page
(link scanners fetch links); the change happens on ``POST``, which is what a mail client's
one-click button or the page's own button sends. Pages speak the controller's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from schemas.vocabulary import Category, Channel
from streams.core.engine import subject_key
from streams.core.state import SubjectState
from streams.security.tokens import Claims, TokenError, TokenExpired, TokenKind
from streams.web.backend import LINK_HEADER
from streams.web.bodies import SMALL_BODY_LIMIT, read_form
from streams.web.context import WebContext, context_of
from streams.web.errors import RETRY_AFTER_SECONDS, ApiError
from streams.web.links import ONE_CLICK, link_event, link_path, opted_out_since, undo_claims
from streams.web.pages import Form, page
from streams.web.routing import Unavailable, state_or_answer
from streams.web.wording import language_of, words

_INVALID = ("This link is not valid", "Please use the link from the most recent message you got.")
_BUSY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@dataclass(frozen=True, slots=True)
class _Audience:
    """Who a link's pages speak to, and about what."""

    language: str
    words: Mapping[str, str]
    sender: str
    what: tuple[str, ...]  # the purposes the link is about, by their titles

    def page(
        self,
        title: str,
        *lines: str,
        status: int = 200,
        forms: tuple[Form, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """A page whose title and lines are keys of the wording (or already words)."""
        text = [self.words.get(line, line) for line in lines]
        return page(
            self.words[title],
            *text,
            status=status,
            forms=forms,
            language=self.language,
            headers=headers,
        )

    def about(self) -> tuple[str, ...]:
        sender = self.words["sender"].format(sender=self.sender) if self.sender else ""
        return (*self.what, sender)


def _audience(ctx: WebContext, claims: Claims) -> _Audience:
    controller = ctx.engine.policy.controller(claims.controller)
    language = language_of(controller.language if controller else None)
    w = words(language)
    if controller is None:
        return _Audience(language, w, "", ())
    channel = claims.channel or Channel.EMAIL.value
    purpose = controller.purposes.get(claims.purpose or "")
    if purpose is not None:
        what: tuple[str, ...] = (purpose.title or purpose.description or purpose.name,)
    elif claims.kind is TokenKind.UNSUBSCRIBE and f"channel.{channel}" in w:
        titled = [
            p.title or p.description or p.name
            for p in controller.purposes.values()
            if p.has_category(Category.DIRECT_MARKETING) and Channel(channel) in p.channels
        ]
        what = (w["all_marketing"].format(channel=w[f"channel.{channel}"]), *titled)
    else:
        what = ()
    return _Audience(language, w, controller.name, what)


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


async def _publish(request: web.Request, claims: Claims, who: _Audience) -> web.Response | None:
    """Publish the click's event; a page if that failed, ``None`` when done."""
    ctx = context_of(request)
    event = link_event(ctx.engine, claims, request.match_info["token"], datetime.now(UTC))
    if isinstance(event, list):  # the policy changed since the link was made
        return who.page("gone.title", "gone.text", status=410)
    try:
        await ctx.publisher.publish_events([event], ((LINK_HEADER, claims.kind.value.encode()),))
    except ApiError:
        return who.page("retry.title", "retry.text", status=503, headers=_BUSY)
    return None


async def _state(
    request: web.Request, claims: Claims, who: _Audience
) -> SubjectState | web.Response:
    """The subject's state from this worker, or the owner's answer to the request."""
    key = subject_key(claims.controller, claims.subject_id).encode()
    try:
        return await state_or_answer(context_of(request), request, key)
    except Unavailable:
        return who.page("retry.title", "retry.text", status=503, headers=_BUSY)


def _not_understood(message: str, status: int) -> web.Response:
    return page("Request not understood", message, status=status)


async def get_unsubscribe(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.UNSUBSCRIBE)
    if isinstance(claims, web.Response):
        return claims
    who = _audience(context_of(request), claims)
    button = Form(who.words["unsubscribe.button"], {"List-Unsubscribe": "One-Click"})
    return who.page("unsubscribe.title", "unsubscribe.lead", *who.about(), forms=(button,))


async def post_unsubscribe(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.UNSUBSCRIBE)
    if isinstance(claims, web.Response):
        return claims
    try:
        form = await read_form(request, SMALL_BODY_LIMIT)
    except ApiError as exc:
        return _not_understood(exc.message, exc.status)
    if form.get("List-Unsubscribe") != ONE_CLICK.split("=", 1)[1]:
        return _not_understood(
            f"A one-click unsubscribe request carries the body {ONE_CLICK}.", 400
        )
    ctx = context_of(request)
    who = _audience(ctx, claims)
    failed = await _publish(request, claims, who)
    if failed is not None:
        return failed
    undo = undo_claims(claims, datetime.now(UTC))
    if undo is None or ctx.signer is None:
        other = who.words["other.text"].format(sender=who.sender or "")
        return who.page("unsubscribed.title", "unsubscribed.text", other)
    # Relative to /v1/unsubscribe/<token>, so it also works behind a proxy's path prefix.
    action = ".." + link_path(TokenKind.CONFIRM, ctx.signer.mint(undo)).removeprefix("/v1")
    again = Form(who.words["undo.button"], {"confirm": "yes"}, action, who.words["undo.text"])
    return who.page("unsubscribed.title", "unsubscribed.text", *who.about(), forms=(again,))


async def get_confirm(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.CONFIRM)
    if isinstance(claims, web.Response):
        return claims
    who = _audience(context_of(request), claims)
    button = Form(who.words["confirm.button"], {"confirm": "yes"})
    return who.page("confirm.title", "confirm.lead", *who.about(), forms=(button,))


async def post_confirm(request: web.Request) -> web.Response:
    claims = _claims(request, TokenKind.CONFIRM)
    if isinstance(claims, web.Response):
        return claims
    try:
        await read_form(request, SMALL_BODY_LIMIT)
    except ApiError as exc:
        return _not_understood(exc.message, exc.status)
    ctx = context_of(request)
    who = _audience(ctx, claims)
    state = await _state(request, claims, who)
    if isinstance(state, web.Response):
        return state  # the owner's answer, or busy
    if opted_out_since(ctx.engine, state, claims) is not None:
        # Neither claim a confirmation nor override the later "no": say what happened.
        return who.page("refused.title", "refused.text", *who.about(), status=409)
    failed = await _publish(request, claims, who)
    if failed is not None:
        return failed
    return who.page("confirmed.title", "confirmed.text", *who.about())
