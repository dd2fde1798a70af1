"""Link tokens for one-click unsubscribe and double opt-in confirmation.

Hand-written on PyCA's AES-GCM rather than JWT/Fernet: a compact binary claim set keeps links
short and the subject id unreadable, and old (v1) links must keep working.

A token is ``2`` followed by URL-safe base64 of ``nonce | ciphertext | tag``: the claims in a
compact binary form, encrypted and authenticated with AES-256-GCM under a key derived from the
configured secret. The subject id is therefore not readable from a link, and a 256-character
subject id still gives a ``List-Unsubscribe`` line well under the 998 characters RFC 5322 allows.

Several secrets may be configured: the first one mints, every one is tried when reading, so a
secret can be rotated without breaking links already sent. Tokens of the first format
(``v1.<base64 JSON claims>.<HMAC tag>``, signed but readable) are still accepted, because
unsubscribe links are meant to work for as long as old messages are read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "2"
MIN_SECRET_LENGTH = 32
MAX_TOKEN_LENGTH = 2048
_V1_DOMAIN = b"consent-streams/link-token/v1\x00"
_V2_KEY_LABEL = b"consent-streams/link-token/v2 key"
_NONCE = 12
_TAG = 16
#: kind, channel, issued_at, expires_at (0 = never)
_HEAD = struct.Struct(">BBII")


class TokenKind(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    CONFIRM = "confirm"


_KIND_CODE = {TokenKind.UNSUBSCRIBE: "u", TokenKind.CONFIRM: "c"}
_CODE_KIND = {code: kind for kind, code in _KIND_CODE.items()}
# Fixed wire codes: never renumber, only append.
_KIND_BYTE = {TokenKind.UNSUBSCRIBE: 1, TokenKind.CONFIRM: 2}
_BYTE_KIND = {code: kind for kind, code in _KIND_BYTE.items()}
_CHANNEL_BYTE = {None: 0, "email": 1, "sms": 2, "phone": 3, "post": 4, "web": 5}
_BYTE_CHANNEL = {code: channel for channel, code in _CHANNEL_BYTE.items()}


class TokenError(ValueError):
    """Not a token this deployment made (malformed, forged, or made with another secret)."""


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

    def packed(self) -> bytes:
        controller, purpose = self.controller.encode(), (self.purpose or "").encode()
        if len(controller) > 255 or len(purpose) > 255 or self.channel not in _CHANNEL_BYTE:
            raise ValueError("claims do not fit a token")
        head = _HEAD.pack(
            _KIND_BYTE[self.kind],
            _CHANNEL_BYTE[self.channel],
            self.issued_at,
            self.expires_at or 0,
        )
        return (
            head
            + bytes([len(controller)])
            + controller
            + bytes([len(purpose)])
            + purpose
            + self.subject_id.encode()
        )


def _unpacked(data: bytes) -> Claims:
    try:
        kind, channel, issued, expires = _HEAD.unpack_from(data)
        at = _HEAD.size
        controller = data[at + 1 : at + 1 + data[at]].decode()
        at += 1 + data[at]
        purpose = data[at + 1 : at + 1 + data[at]].decode()
        at += 1 + data[at]
        subject = data[at:].decode()
        claims = Claims(
            _BYTE_KIND[kind],
            controller,
            subject,
            purpose or None,
            _BYTE_CHANNEL[channel],
            issued,
            expires or None,
        )
    except (struct.error, IndexError, KeyError, UnicodeDecodeError):
        raise TokenError("bad payload") from None
    if not controller or not subject:
        raise TokenError("bad payload")
    return claims


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not base64") from None
    if _b64encode(data) != text:  # one spelling per token (no stray padding bits)
        raise TokenError("not base64")
    return data


def split_secrets(configured: str) -> tuple[bytes, ...]:
    """``CONSENT_TOKEN_SECRET``: one secret, or several separated by commas (first mints)."""
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
        self._ciphers = tuple(
            AESGCM(hmac.new(key, _V2_KEY_LABEL, hashlib.sha256).digest()) for key in keys
        )

    @classmethod
    def from_config(cls, configured: str) -> Signer:
        return cls(split_secrets(configured))

    def mint(self, claims: Claims) -> str:
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._ciphers[0].encrypt(nonce, claims.packed(), VERSION.encode())
        return VERSION + _b64encode(nonce + sealed)

    def verify(self, token: str, now: datetime | None = None) -> Claims:
        """The claims of an authentic token. Raises :class:`TokenError` / :class:`TokenExpired`."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("too long")
        try:
            token.encode("ascii")
        except UnicodeEncodeError:
            raise TokenError("malformed") from None
        if token.startswith("v1."):
            claims = self._verify_v1(token)
        elif token.startswith(VERSION):
            claims = self._open(_b64decode(token[len(VERSION) :]))
        else:
            raise TokenError("malformed")
        if claims.expired(now or datetime.now(UTC)):
            raise TokenExpired("expired")
        return claims

    def _open(self, data: bytes) -> Claims:
        if len(data) < _NONCE + _TAG + _HEAD.size:
            raise TokenError("malformed")
        nonce, sealed = data[:_NONCE], data[_NONCE:]
        for cipher in self._ciphers:
            try:
                return _unpacked(cipher.decrypt(nonce, sealed, VERSION.encode()))
            except InvalidTag:
                continue
        raise TokenError("bad signature")

    def _verify_v1(self, token: str) -> Claims:
        payload, _, tag_text = token[3:].partition(".")
        if not payload or not tag_text:
            raise TokenError("malformed")
        tag = _b64decode(tag_text)
        authentic = False
        for key in self._keys:  # every key, no early exit
            expected = hmac.new(key, _V1_DOMAIN + payload.encode(), hashlib.sha256).digest()
            authentic |= hmac.compare_digest(tag, expected)
        if not authentic:
            raise TokenError("bad signature")
        return _v1_claims(_b64decode(payload))


def mint_v1(key: bytes, claims: Claims) -> str:
    """A token of the first format: only to test that links sent before stay valid."""
    raw: dict[str, Any] = {
        "k": _KIND_CODE[claims.kind],
        "c": claims.controller,
        "s": claims.subject_id,
        "p": claims.purpose,
        "h": claims.channel,
        "i": claims.issued_at,
        "e": claims.expires_at,
        "n": secrets.token_hex(4),
    }
    payload = _b64encode(orjson.dumps(raw))
    tag = hmac.new(key, _V1_DOMAIN + payload.encode(), hashlib.sha256).digest()
    return f"v1.{payload}.{_b64encode(tag)}"


def _v1_claims(payload: bytes) -> Claims:
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


def link_event_id(kind: TokenKind, token: str, clicked_at: datetime) -> str:
    """The event id of one click: the token and the click's millisecond.

    Every click is its own statement at click time, so an old unsubscribe link unsubscribes
    again after a re-subscription; the same request retried within its millisecond (or a mail
    client and a person acting at once) stays one event.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()[:24]
    return f"link-{kind.value}-{digest}-{click_millis(clicked_at)}"


def click_millis(clicked_at: datetime) -> int:
    return int(clicked_at.timestamp() * 1000)
