"""Link tokens put to use: minting links (with RFC 8058 headers) and the events a click publishes.

Shared by the mint API, the ``consent-streams token`` command and the link pages, so a link is
checked against the policy exactly as the event it will publish.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.codec import RejectedRecord, decode_event
from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from schemas.vocabulary import Category, Channel, EventType
from streams.core.engine import Engine
from streams.web.models import MintedToken, TokenRequest
from streams.web.tokens import Claims, Signer, TokenKind, link_event_id

ONE_CLICK = "List-Unsubscribe=One-Click"
DEFAULT_TTL: dict[TokenKind, timedelta | None] = {
    # An opt-out must keep working for as long as old messages are read.
    TokenKind.UNSUBSCRIBE: None,
    TokenKind.CONFIRM: timedelta(days=7),
}
_EVENT_TYPE = {
    TokenKind.UNSUBSCRIBE: EventType.UNSUBSCRIBED,
    TokenKind.CONFIRM: EventType.CONSENT_CONFIRMED,
}
_SOURCE = {
    TokenKind.UNSUBSCRIBE: "one-click-unsubscribe",
    TokenKind.CONFIRM: "double-opt-in-link",
}


def link_path(kind: TokenKind, token: str) -> str:
    return f"/v1/{kind.value}/{token}"


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 header values for a message carrying the link."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def _event_fields(claims: Claims, event_id: str, now: datetime) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": event_id,
        "type": _EVENT_TYPE[claims.kind].value,
        "occurred_at": now.isoformat(),
        "controller": claims.controller,
        "subject_id": claims.subject_id,
        "source": _SOURCE[claims.kind],
        "evidence": {"method": _SOURCE[claims.kind]},
    }
    if claims.purpose is not None:
        fields["purpose"] = claims.purpose
    if claims.channel is not None:
        fields["channel"] = claims.channel
    return fields


def _checked(engine: Engine, fields: dict[str, Any]) -> ConsentEvent | list[FieldError]:
    try:
        event = decode_event(orjson.dumps(fields))
        errors = engine.admit(event)
    except RejectedRecord as exc:
        return exc.errors
    if errors:
        return errors
    if not _reaches_anything(engine, event):
        return [
            FieldError(
                loc="channel",
                msg="the link would change nothing: no purpose it names uses that channel",
            )
        ]
    return event


def _reaches_anything(engine: Engine, event: ConsentEvent) -> bool:
    """An unsubscribe names a channel (default email) and a purpose or all direct marketing;
    a link that matches no purpose on that channel would record an opt-out from nothing."""
    if event.type is not EventType.UNSUBSCRIBED:
        return True
    controller = engine.policy.controller(event.controller)
    assert controller is not None  # admitted
    channel = event.channel or Channel.EMAIL
    purposes = (
        [controller.purposes[event.purpose]]
        if event.purpose
        else [p for p in controller.purposes.values() if p.has_category(Category.DIRECT_MARKETING)]
    )
    return any(channel in p.channels for p in purposes)


def link_event(
    engine: Engine, claims: Claims, token: str, now: datetime
) -> ConsentEvent | list[FieldError]:
    """The event a click on ``token`` publishes; the same token always gives the same id."""
    return _checked(engine, _event_fields(claims, link_event_id(claims.kind, token), now))


def mint(
    signer: Signer, engine: Engine, request: TokenRequest, base_url: str, now: datetime
) -> MintedToken | list[FieldError]:
    ttl = (
        timedelta(seconds=request.ttl_seconds)
        if request.ttl_seconds is not None
        else DEFAULT_TTL[request.kind]
    )
    expires = now + ttl if ttl is not None else None
    claims = Claims(
        kind=request.kind,
        controller=request.controller,
        subject_id=request.subject_id,
        purpose=request.purpose,
        channel=request.channel.value if request.channel else None,
        issued_at=int(now.timestamp()),
        expires_at=int(expires.timestamp()) if expires else None,
    )
    problems = _checked(engine, _event_fields(claims, "mint-check", now))
    if isinstance(problems, list):
        return problems
    token = signer.mint(claims)
    url = base_url.rstrip("/") + link_path(request.kind, token)
    headers = list_unsubscribe_headers(url) if request.kind is TokenKind.UNSUBSCRIBE else {}
    return MintedToken(
        kind=request.kind,
        token=token,
        url=url,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC) if claims.expires_at else None,
        headers=headers,
    )
