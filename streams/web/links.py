"""Link tokens put to use: minting links (with RFC 8058 headers), the events a click publishes,
and whether a confirmation click may still confirm.

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
from schemas.vocabulary import Category, Channel, EventType, LegalBasis, Reason
from streams.core.decisions import PairState
from streams.core.engine import Engine
from streams.core.policy import Purpose
from streams.core.state import SubjectState
from streams.security.tokens import Claims, Signer, TokenKind, click_millis, link_event_id
from streams.web.models import MintedToken, TokenRequest

ONE_CLICK = "List-Unsubscribe=One-Click"
#: RFC 5322: a header line is at most 998 characters.
MAX_HEADER_LINE = 998
DEFAULT_TTL: dict[TokenKind, timedelta | None] = {
    # An opt-out must keep working for as long as old messages are read.
    TokenKind.UNSUBSCRIBE: None,
    TokenKind.CONFIRM: timedelta(days=7),
}
#: How long the "subscribe again" button shown after an unsubscribe stays usable.
UNDO_TTL = timedelta(hours=1)
_EVENT_TYPE = {
    TokenKind.UNSUBSCRIBE: EventType.UNSUBSCRIBED,
    TokenKind.CONFIRM: EventType.CONSENT_CONFIRMED,
}
_SOURCE = {
    TokenKind.UNSUBSCRIBE: "one-click-unsubscribe",
    TokenKind.CONFIRM: "double-opt-in-link",
}
#: Processing an unsubscribe (or a confirmation) has no say over.
_NOT_BY_LINK = (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION)


class InsecureLinks(ValueError):
    """Links would not be HTTPS, and insecure links were not explicitly allowed."""


def link_path(kind: TokenKind, token: str) -> str:
    return f"/v1/{kind.value}/{token}"


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 header values for a message carrying the link."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": ONE_CLICK}


def check_base_url(base_url: str, allow_insecure: bool) -> None:
    """RFC 8058: a one-click unsubscribe URI must be HTTPS. Raises :class:`InsecureLinks`."""
    if not base_url.startswith("https://") and not allow_insecure:
        raise InsecureLinks(
            f"links would point at {base_url}, which is not HTTPS (RFC 8058 requires HTTPS for "
            "one-click unsubscribe): set CONSENT_PUBLIC_URL to the https:// address recipients "
            "reach, or CONSENT_ALLOW_INSECURE_LINKS=1 for development only"
        )


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
    purpose = _purpose(engine, event)
    if purpose is not None and purpose.legal_basis in _NOT_BY_LINK:
        return [
            FieldError(
                loc="purpose",
                msg=f"purpose {purpose.name!r} is processed on the legal basis "
                f"{purpose.legal_basis.value!r}: neither an unsubscribe nor a confirmation "
                "applies to it, so no link is made for it",
            )
        ]
    if not _reaches_anything(engine, event):
        return [
            FieldError(
                loc="channel",
                msg="the link would change nothing: no purpose it names uses that channel",
            )
        ]
    return event


def _purpose(engine: Engine, event: ConsentEvent) -> Purpose | None:
    controller = engine.policy.controller(event.controller)
    if controller is None or event.purpose is None:
        return None
    return controller.purposes.get(event.purpose)


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
    """The event one click on ``token`` at ``now`` publishes: a statement made at click time."""
    clicked = datetime.fromtimestamp(click_millis(now) / 1000, UTC)
    return _checked(engine, _event_fields(claims, link_event_id(claims.kind, token, now), clicked))


def opted_out_since(engine: Engine, state: SubjectState, claims: Claims) -> Reason | None:
    """Whether an opt-out bars a click on a confirmation link, read from the subject's state.

    The rule: a confirmation link confirms only if no opt-out (withdrawal, unsubscribe,
    objection, signal, erasure, restriction) in force for its pairs was recorded after the link
    was made: an old link must not undo a later "no". An opt-out older than the link does not
    block it: the link was sent afterwards, and clicking it is a fresh "yes". Returns the reason
    of such an opt-out, or None when the click may confirm.
    """
    controller = engine.policy.controller(claims.controller)
    purpose = controller.purposes.get(claims.purpose or "") if controller else None
    if controller is None or purpose is None:
        return None  # the event check refuses the click
    channels = [c for c in purpose.channels if claims.channel in (None, c.value)]
    issued_micros = (claims.issued_at + 1) * 1_000_000  # the link's own second counts as before
    for channel in channels:
        decision = engine.decide(state, controller.id, purpose.name, channel)
        cause = decision.cause
        if decision.state is PairState.SUPPRESSED and cause and cause.at >= issued_micros:
            return decision.reason
    return None


def undo_claims(claims: Claims, now: datetime) -> Claims | None:
    """After an unsubscribe from one purpose: a short-lived confirmation of the same pair, for the
    page's "subscribe again" button. None for "all direct marketing" links: undoing those would
    grant consents that were never given."""
    if claims.kind is not TokenKind.UNSUBSCRIBE or claims.purpose is None:
        return None
    issued = int(now.timestamp())
    return Claims(
        kind=TokenKind.CONFIRM,
        controller=claims.controller,
        subject_id=claims.subject_id,
        purpose=claims.purpose,
        channel=claims.channel or Channel.EMAIL.value,
        issued_at=issued,
        expires_at=issued + int(UNDO_TTL.total_seconds()),
    )


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
    longest = max((len(f"{name}: {value}") for name, value in headers.items()), default=0)
    if longest > MAX_HEADER_LINE:
        return [
            FieldError(
                loc="subject_id",
                msg=f"the List-Unsubscribe line would be {longest} characters, over the "
                f"{MAX_HEADER_LINE} RFC 5322 allows: use a shorter subject id or public URL",
            )
        ]
    return MintedToken(
        kind=request.kind,
        token=token,
        url=url,
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC) if claims.expires_at else None,
        headers=headers,
    )
