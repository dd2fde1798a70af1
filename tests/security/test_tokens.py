"""Link tokens: encrypted, tamper-evident, expiring, rotatable, short; click event ids."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from streams.security.tokens import (
    Claims,
    Signer,
    TokenError,
    TokenExpired,
    TokenKind,
    link_event_id,
    mint_v1,
    new_secret,
    split_secrets,
)
from streams.settings import Settings, SettingsError

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
    assert token.startswith("2") and all(c.isalnum() or c in "-_" for c in token)
    assert signer.verify(token, NOW) == claims()


def test_subject_id_is_not_readable_and_tokens_stay_short() -> None:
    signer = Signer.from_config(SECRET)
    subject = "subject-" + "x" * 248
    longest = Claims(TokenKind.UNSUBSCRIBE, "c" * 64, subject, "p" * 64, "email", 0, None)
    token = signer.mint(longest)
    assert signer.verify(token, NOW).subject_id == subject
    raw = base64.urlsafe_b64decode(token[1:] + "==")
    assert b"subject-" not in raw and b"xxxx" not in raw and "subject" not in token
    # The longest names (256 + 64 + 64): under 600 characters, a List-Unsubscribe line of ~650.
    assert len(token) < 600
    assert len(signer.mint(claims())) <= 80  # a typical link: v1 tokens were ~190


def test_links_sent_before_keep_working() -> None:
    """Tokens of the first (signed, readable) format still verify, with rotation."""
    old = mint_v1(SECRET.encode(), claims())
    assert old.startswith("v1.")
    assert Signer.from_config(SECRET).verify(old, NOW) == claims()
    assert Signer.from_config(f"{'n' * 40},{SECRET}").verify(old, NOW) == claims()
    version, payload, tag = old.split(".")
    with pytest.raises(TokenError):
        Signer.from_config(SECRET).verify(f"{version}.{payload}.{_flip(tag, 3)}", NOW)


def test_same_claims_give_distinct_tokens() -> None:
    signer = Signer.from_config(SECRET)
    assert signer.mint(claims()) != signer.mint(claims())


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_any_change_is_detected() -> None:
    signer = Signer.from_config(SECRET)
    token = signer.mint(claims())
    body = token[1:]
    for forged in (
        *(token[:at] + _flip(token, at)[at] + token[at + 1 :] for at in range(1, len(token))),
        token[:-1],
        token + "A",
        "3" + body,
        "2",
        "2" + body[:20],
        "",
        "v1..",
        "v1.ü.x",
        "2ü" + body,
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


def test_each_click_has_its_own_event_id() -> None:
    signer = Signer.from_config(SECRET)
    a, b = signer.mint(claims()), signer.mint(claims())
    later = NOW + timedelta(seconds=5)
    kind = TokenKind.UNSUBSCRIBE
    # The same request retried within its millisecond is one event; any other click is new.
    assert link_event_id(kind, a, NOW) == link_event_id(kind, a, NOW)
    assert link_event_id(kind, a, NOW) != link_event_id(kind, a, later)
    assert link_event_id(kind, a, NOW) != link_event_id(kind, b, NOW)
    assert a not in link_event_id(kind, a, NOW)
    assert len(link_event_id(TokenKind.CONFIRM, a, later)) <= 128
