"""Signed link tokens for one-click unsubscribe and double opt-in confirmation.

A token is ``v1.<payload>.<tag>``: the payload is URL-safe base64 of compact JSON claims, the
tag is HMAC-SHA256 over the payload with the configured secret. Tokens are signed, not
encrypted: opaque to their users, but they carry the subject id, so subject ids should not be
e-mail addresses. Several secrets may be configured: the first signs, every one verifies, so a
secret can be rotated without breaking links already sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

VERSION = "v1"
MIN_SECRET_LENGTH = 32
MAX_TOKEN_LENGTH = 2048
_DOMAIN = b"consent-streams/link-token/v1\x00"


class TokenKind(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    CONFIRM = "confirm"


_KIND_CODE = {TokenKind.UNSUBSCRIBE: "u", TokenKind.CONFIRM: "c"}
_CODE_KIND = {code: kind for kind, code in _KIND_CODE.items()}


class TokenError(ValueError):
    """Not a token this deployment signed (malformed, forged, or signed with another secret)."""


class TokenExpired(TokenError):
    """Authentic, but past its expiry."""


@dataclass(frozen=True, slots=True)
class Claims:
    kind: TokenKind
    controller: str
    subject_id: str
    purpose: str | None  # unsubscribe: None = every direct-marketing purpose on the channel
    channel: str | None
    issued_at: int  # unix seconds
    expires_at: int | None  # unix seconds; None = never

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now.timestamp() >= self.expires_at

    def payload(self) -> dict[str, Any]:
        return {
            "k": _KIND_CODE[self.kind],
            "c": self.controller,
            "s": self.subject_id,
            "p": self.purpose,
            "h": self.channel,
            "i": self.issued_at,
            "e": self.expires_at,
            # Two tokens minted in the same second for the same subject stay distinct.
            "n": secrets.token_hex(4),
        }


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not base64") from None


def split_secrets(configured: str) -> tuple[bytes, ...]:
    """``CONSENT_TOKEN_SECRET``: one secret, or several separated by commas (first signs)."""
    parts = tuple(part.strip() for part in configured.split(",") if part.strip())
    if not parts:
        raise ValueError("no secret given")
    short = [i for i, part in enumerate(parts, 1) if len(part) < MIN_SECRET_LENGTH]
    if short:
        raise ValueError(
            f"secret(s) {', '.join(map(str, short))} shorter than {MIN_SECRET_LENGTH} characters "
            "(make one with: consent-streams token new-secret)"
        )
    return tuple(part.encode() for part in parts)


def new_secret() -> str:
    return secrets.token_urlsafe(48)


class Signer:
    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys:
            raise ValueError("at least one secret is needed")
        self._keys = keys

    @classmethod
    def from_config(cls, configured: str) -> Signer:
        return cls(split_secrets(configured))

    def _tag(self, key: bytes, payload: str) -> bytes:
        return hmac.new(key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()

    def mint(self, claims: Claims) -> str:
        payload = _b64encode(orjson.dumps(claims.payload()))
        return f"{VERSION}.{payload}.{_b64encode(self._tag(self._keys[0], payload))}"

    def verify(self, token: str, now: datetime | None = None) -> Claims:
        """The claims of an authentic token. Raises :class:`TokenError` / :class:`TokenExpired`."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("too long")
        version, _, rest = token.partition(".")
        payload, _, tag_text = rest.partition(".")
        if version != VERSION or not payload or not tag_text:
            raise TokenError("malformed")
        try:
            payload.encode("ascii")
        except UnicodeEncodeError:
            raise TokenError("malformed") from None
        tag = _b64decode(tag_text)
        authentic = False
        for key in self._keys:  # every key, no early exit
            authentic |= hmac.compare_digest(tag, self._tag(key, payload))
        if not authentic:
            raise TokenError("bad signature")
        claims = _claims(_b64decode(payload))
        if claims.expired(now or datetime.now(UTC)):
            raise TokenExpired("expired")
        return claims


def _claims(payload: bytes) -> Claims:
    # Only reached for authentic payloads, which this module wrote; still checked defensively.
    try:
        raw = orjson.loads(payload)
        kind = _CODE_KIND[raw["k"]]
        fields = (raw["c"], raw["s"])
        purpose, channel = raw.get("p"), raw.get("h")
        issued, expires = raw["i"], raw.get("e")
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise TokenError("bad payload") from None
    if not all(isinstance(f, str) for f in fields) or not isinstance(issued, int):
        raise TokenError("bad payload")
    if not all(v is None or isinstance(v, str) for v in (purpose, channel)):
        raise TokenError("bad payload")
    if expires is not None and not isinstance(expires, int):
        raise TokenError("bad payload")
    return Claims(kind, fields[0], fields[1], purpose, channel, issued, expires)


def link_event_id(kind: TokenKind, token: str) -> str:
    """The event id of the event a link publishes: the same token always gives the same id,
    so a second click (or a mail client and a person both acting) is a duplicate."""
    return f"link-{kind.value}-{hashlib.sha256(token.encode()).hexdigest()[:40]}"
