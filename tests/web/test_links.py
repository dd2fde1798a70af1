"""Minting links against the policy, RFC 8058 header values, and the events a click publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.vocabulary import Channel, EventType
from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.web.links import link_event, list_unsubscribe_headers, mint
from streams.web.models import MintedToken, TokenRequest
from streams.web.tokens import Signer, TokenKind, link_event_id

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


def test_click_event_is_deterministic_per_token(engine: Engine, signer: Signer) -> None:
    link = minted(
        engine, signer, kind="unsubscribe", controller="kms-uk", subject_id="s-1", channel="email"
    )
    claims = signer.verify(link.token, NOW)
    first = link_event(engine, claims, link.token, NOW)
    again = link_event(engine, claims, link.token, NOW + timedelta(minutes=3))
    assert not isinstance(first, list) and not isinstance(again, list)
    assert first.event_id == again.event_id == link_event_id(TokenKind.UNSUBSCRIBE, link.token)
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
