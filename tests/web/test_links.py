"""Minting links against the policy, RFC 8058 header values, and the events a click publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from schemas.codec import decode_event
from schemas.vocabulary import Channel, EventType
from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.security.tokens import Claims, Signer, TokenKind, link_event_id
from streams.web.links import (
    InsecureLinks,
    check_base_url,
    link_event,
    list_unsubscribe_headers,
    mint,
    opted_out_since,
    undo_claims,
)
from streams.web.models import MintedToken, TokenRequest

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BASE = "https://prefs.example.org/consent"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy())


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.from_config("k" * 40)


def minted(engine: Engine, signer: Signer, **fields: object) -> MintedToken:
    result = mint(signer, engine, TokenRequest.model_validate(fields), BASE, NOW)
    assert isinstance(result, MintedToken), result
    return result


def test_unsubscribe_link_with_headers_never_expires_by_default(
    engine: Engine, signer: Signer
) -> None:
    link = minted(engine, signer, kind="unsubscribe", controller="kms-uk", subject_id="s-1")
    assert link.url == f"{BASE}/v1/unsubscribe/{link.token}"
    assert link.headers == {
        "List-Unsubscribe": f"<{link.url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert link.expires_at is None
    assert list_unsubscribe_headers("https://x/y") == {
        "List-Unsubscribe": "<https://x/y>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_confirm_link_expires_after_a_week(engine: Engine, signer: Signer) -> None:
    link = minted(
        engine, signer, kind="confirm", controller="hms-se", subject_id="s", purpose="newsletter"
    )
    assert link.expires_at == NOW + timedelta(days=7)
    assert link.headers == {}
    custom = minted(
        engine,
        signer,
        kind="confirm",
        controller="hms-se",
        subject_id="s",
        purpose="newsletter",
        ttl_seconds=3600,
    )
    assert custom.expires_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("fields", "loc", "text"),
    [
        ({"kind": "unsubscribe", "controller": "nope"}, "controller", "unknown controller"),
        ({"kind": "confirm", "controller": "hms-se"}, "", "purpose is required"),
        (
            {
                "kind": "unsubscribe",
                "controller": "kms-uk",
                "purpose": "marketing-email",
                "channel": "phone",
            },
            "channel",
            "has no channel 'phone'",
        ),
        (
            # kms-uk's only direct-marketing purpose on post: none.
            {"kind": "unsubscribe", "controller": "kms-uk", "channel": "post"},
            "channel",
            "would change nothing",
        ),
    ],
)
def test_links_are_checked_like_the_event_they_publish(
    engine: Engine, signer: Signer, fields: dict[str, str], loc: str, text: str
) -> None:
    result = mint(
        signer, engine, TokenRequest.model_validate({"subject_id": "s", **fields}), BASE, NOW
    )
    assert isinstance(result, list)
    assert result[0].loc == loc and text in result[0].msg


def test_each_click_is_a_statement_at_click_time(engine: Engine, signer: Signer) -> None:
    link = minted(
        engine, signer, kind="unsubscribe", controller="kms-uk", subject_id="s-1", channel="email"
    )
    claims = signer.verify(link.token, NOW)
    first = link_event(engine, claims, link.token, NOW)
    again = link_event(engine, claims, link.token, NOW + timedelta(minutes=3))
    retried = link_event(engine, claims, link.token, NOW)
    assert not isinstance(first, list) and not isinstance(again, list)
    assert first.event_id == link_event_id(TokenKind.UNSUBSCRIBE, link.token, NOW)
    assert again.event_id != first.event_id and again.occurred_at == NOW + timedelta(minutes=3)
    assert retried == first  # the same click retried: the same event
    assert (first.type, first.controller, first.subject_id) == (
        EventType.UNSUBSCRIBED,
        "kms-uk",
        "s-1",
    )
    assert first.channel is Channel.EMAIL and first.purpose is None
    assert first.source == "one-click-unsubscribe"


def test_confirm_click_is_a_confirmation(engine: Engine, signer: Signer) -> None:
    link = minted(
        engine, signer, kind="confirm", controller="hms-se", subject_id="s", purpose="newsletter"
    )
    event = link_event(engine, signer.verify(link.token, NOW), link.token, NOW)
    assert not isinstance(event, list)
    assert (event.type, event.purpose) == (EventType.CONSENT_CONFIRMED, "newsletter")


@pytest.mark.parametrize(
    ("base", "allowed", "ok"),
    [
        ("https://prefs.example.org", False, True),
        ("http://prefs.example.org", False, False),
        ("http://127.0.0.1:6066", False, False),
        ("http://127.0.0.1:6066", True, True),
    ],
)
def test_links_must_be_https_unless_allowed(base: str, allowed: bool, ok: bool) -> None:
    if ok:
        check_base_url(base, allowed)
    else:
        with pytest.raises(InsecureLinks, match="CONSENT_ALLOW_INSECURE_LINKS"):
            check_base_url(base, allowed)


@pytest.mark.parametrize(
    ("kind", "controller", "purpose", "basis"),
    [
        ("unsubscribe", "kms-uk", "billing", "contract"),
        ("unsubscribe", "hms-se", "bookkeeping", "legal_obligation"),
        ("confirm", "sms-tech", "service-messages", "contract"),
    ],
)
def test_no_links_for_contract_or_legal_obligation(
    engine: Engine, signer: Signer, kind: str, controller: str, purpose: str, basis: str
) -> None:
    request = TokenRequest.model_validate(
        {"kind": kind, "controller": controller, "subject_id": "s", "purpose": purpose}
    )
    result = mint(signer, engine, request, BASE, NOW)
    assert isinstance(result, list)
    assert result[0].loc == "purpose" and basis in result[0].msg
    # A link made before this rule publishes nothing either.
    old = Claims(TokenKind(kind), controller, "s", purpose, None, 0, None)
    assert isinstance(link_event(engine, old, "token", NOW), list)


def test_longest_subject_id_gives_a_header_line_within_rfc_5322(
    engine: Engine, signer: Signer
) -> None:
    subject = "s" * 256
    link = minted(
        engine,
        signer,
        kind="unsubscribe",
        controller="hms-contact-nl",
        subject_id=subject,
        purpose="newsletter",
    )
    line = f"List-Unsubscribe: {link.headers['List-Unsubscribe']}"
    assert len(line) <= 998 and subject not in line and "s" * 20 not in line
    # Non-ASCII ids take more bytes: refused clearly rather than breaking the header.
    wide = TokenRequest.model_validate(
        {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "\U0001f600" * 256}
    )
    refused = mint(signer, engine, wide, BASE, NOW)
    assert isinstance(refused, list) and "998" in refused[0].msg


def _state(*events: dict[str, object]) -> SubjectState:
    state = EMPTY
    for n, fields in enumerate(events):
        body = {"event_id": f"e{n}", "controller": "hms-se", "subject_id": "s", **fields}
        state = state.fold(decode_event(orjson.dumps(body)))
    return state


def _confirm_claims(issued: datetime) -> Claims:
    return Claims(
        TokenKind.CONFIRM, "hms-se", "s", "newsletter", None, int(issued.timestamp()), None
    )


def _at(moment: datetime) -> str:
    return moment.isoformat()


def test_confirmation_is_refused_after_a_later_opt_out(engine: Engine) -> None:
    issued = NOW
    grant = {"type": "consent.granted", "purpose": "newsletter", "occurred_at": _at(NOW)}
    state = _state(grant)
    assert opted_out_since(engine, state, _confirm_claims(issued)) is None
    for opt_out in (
        {"type": "consent.withdrawn", "purpose": "newsletter"},
        {"type": "unsubscribed", "purpose": "newsletter"},
        {"type": "unsubscribed"},
        {"type": "objection.raised", "objection": "direct_marketing"},
    ):
        later = _state(grant, {**opt_out, "occurred_at": _at(NOW + timedelta(minutes=5))})
        assert opted_out_since(engine, later, _confirm_claims(issued)) is not None, opt_out
        # The same opt-out before the link was made does not block it (a fresh "yes").
        earlier = _state(grant, {**opt_out, "occurred_at": _at(NOW - timedelta(minutes=5))})
        assert opted_out_since(engine, earlier, _confirm_claims(issued)) is None, opt_out


def test_undo_is_a_short_confirmation_of_the_same_pair() -> None:
    claims = Claims(TokenKind.UNSUBSCRIBE, "kms-uk", "s", "marketing-email", None, 0, None)
    undo = undo_claims(claims, NOW)
    assert undo is not None and undo.kind is TokenKind.CONFIRM
    assert (undo.purpose, undo.channel) == ("marketing-email", "email")
    assert undo.expires_at == int((NOW + timedelta(hours=1)).timestamp())
    everything = Claims(TokenKind.UNSUBSCRIBE, "kms-uk", "s", None, None, 0, None)
    assert undo_claims(everything, NOW) is None
