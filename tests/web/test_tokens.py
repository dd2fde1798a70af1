"""Link tokens: signed, tamper-evident, expiring, rotatable, and with stable event ids."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from streams.settings import Settings, SettingsError
from streams.web.tokens import (
    Claims,
    Signer,
    TokenError,
    TokenExpired,
    TokenKind,
    link_event_id,
    new_secret,
    split_secrets,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "s" * 40


def claims(expires: datetime | None = None, kind: TokenKind = TokenKind.UNSUBSCRIBE) -> Claims:
    return Claims(
        kind=kind,
        controller="kms-uk",
        subject_id="subject-1",
        purpose=None,
        channel="email",
        issued_at=int(NOW.timestamp()),
        expires_at=int(expires.timestamp()) if expires else None,
    )


def test_round_trip_is_url_safe() -> None:
    signer = Signer.from_config(SECRET)
    token = signer.mint(claims())
    assert token.startswith("v1.") and all(c.isalnum() or c in "-_." for c in token)
    assert signer.verify(token, NOW) == claims()


def test_same_claims_give_distinct_tokens() -> None:
    signer = Signer.from_config(SECRET)
    assert signer.mint(claims()) != signer.mint(claims())


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_any_change_is_detected() -> None:
    signer = Signer.from_config(SECRET)
    token = signer.mint(claims())
    version, payload, tag = token.split(".")
    forged_payload = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(payload + "==").replace(b"subject-1", b"subject-2")
    ).decode()
    for forged in (
        f"{version}.{forged_payload.rstrip('=')}.{tag}",
        f"{version}.{payload}.{_flip(tag, 3)}",
        f"{version}.{_flip(payload, 5)}.{tag}",
        f"v2.{payload}.{tag}",
        f"{version}.{payload}",
        "",
        "v1..",
        "v1.ü.x",
        "x" * 5000,
    ):
        with pytest.raises(TokenError):
            signer.verify(forged, NOW)


def test_another_secret_does_not_verify() -> None:
    token = Signer.from_config(SECRET).mint(claims())
    with pytest.raises(TokenError, match="signature"):
        Signer.from_config("t" * 40).verify(token, NOW)


def test_rotation_first_signs_all_verify() -> None:
    old = Signer.from_config(SECRET).mint(claims())
    rotated = Signer.from_config(f"{'n' * 40},{SECRET}")
    assert rotated.verify(old, NOW) == claims()
    fresh = rotated.mint(claims())
    with pytest.raises(TokenError):
        Signer.from_config(SECRET).verify(fresh, NOW)


def test_expiry() -> None:
    signer = Signer.from_config(SECRET)
    token = signer.mint(claims(expires=NOW + timedelta(hours=1)))
    assert signer.verify(token, NOW + timedelta(minutes=59)).expires_at is not None
    with pytest.raises(TokenExpired):
        signer.verify(token, NOW + timedelta(hours=1))


def test_secrets_must_be_long() -> None:
    assert split_secrets(f" {SECRET} , {'x' * 32}") == (SECRET.encode(), b"x" * 32)
    with pytest.raises(ValueError, match="shorter than 32"):
        split_secrets("short")
    with pytest.raises(SettingsError, match="CONSENT_TOKEN_SECRET"):
        Settings.from_env({"CONSENT_TOKEN_SECRET": "short"})
    assert len(new_secret()) >= 32


def test_secret_is_not_printed_with_the_settings() -> None:
    settings = Settings.from_env({"CONSENT_TOKEN_SECRET": SECRET})
    assert SECRET not in repr(settings)


def test_event_id_is_stable_per_token() -> None:
    signer = Signer.from_config(SECRET)
    a, b = signer.mint(claims()), signer.mint(claims())
    assert link_event_id(TokenKind.UNSUBSCRIBE, a) == link_event_id(TokenKind.UNSUBSCRIBE, a)
    assert link_event_id(TokenKind.UNSUBSCRIBE, a) != link_event_id(TokenKind.UNSUBSCRIBE, b)
    assert len(link_event_id(TokenKind.CONFIRM, a)) <= 128
