"""Consent receipts: a signed record of one consent statement, checkable by anyone with the JWKS.

The receipt carries the elements of ISO/IEC TS 27560 (controller, subject, purposes and legal
basis, notice version, time, method, status, expiry where known), named with W3C Data Privacy
Vocabulary (DPV) terms where one exists and ``cs:`` terms of this product otherwise. It is a
JWS (compact, EdDSA over Ed25519) whose header names the signing key (``kid``, the key's
RFC 7638 thumbprint). Several keys can be configured, newest first: the first signs, and every
one is published in the JWKS, so receipts signed before a rotation keep verifying for as long as
their key stays configured.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import OKPAlgorithm

ALGORITHM: Final = "EdDSA"
MEDIA_TYPE: Final = "consent-receipt+jwt"
RECEIPT_VERSION: Final = 1
#: The well-known path the worker publishes the JWKS at.
JWKS_PATH: Final = "/.well-known/jwks.json"

CONTEXT: Final = {"dpv": "https://w3id.org/dpv#", "cs": "urn:consent-streams:receipt:"}

#: Consent status (DPV) of each statement type a receipt is issued for.
STATUS: Final = {
    "consent.granted": "dpv:ConsentGiven",
    "consent.confirmed": "dpv:ConsentGiven",
    "consent.withdrawn": "dpv:ConsentWithdrawn",
}
LEGAL_BASIS: Final = {
    "consent": "dpv:Consent",
    "legitimate_interest": "dpv:LegitimateInterest",
    "contract": "dpv:Contract",
    "legal_obligation": "dpv:LegalObligation",
}
_PUBLIC = "public:"


class InvalidReceipt(ValueError):
    """A receipt that does not verify: altered, unknown key, or not a receipt."""


@dataclass(frozen=True, slots=True)
class ConsentStatement:
    """What a receipt attests: one consent statement, in plain values (this layer knows no
    events or policy)."""

    receipt_id: str  # stable per statement, e.g. derived from the event id
    controller: str
    controller_name: str
    subject_id: str
    event_id: str
    type: str  # consent.granted / consent.confirmed / consent.withdrawn
    purposes: Sequence[tuple[str, str]]  # (purpose, its legal basis)
    occurred_at: datetime
    channel: str | None = None
    notice_version: str | None = None
    method: str | None = None  # how it was expressed: the source, a link click, a form...
    expires_at: datetime | None = None


def receipt_claims(statement: ConsentStatement, issued_at: datetime) -> dict[str, Any]:
    """The receipt's claims: JWT registered claims plus the receipt body."""
    status = STATUS.get(statement.type)
    if status is None:
        raise ValueError(f"no consent receipt for a {statement.type} statement")
    indicated: dict[str, Any] = {
        "@type": status,
        "dpv:isIndicatedAtTime": _iso(statement.occurred_at),
        "dpv:isIndicatedBy": "dpv:DataSubject",
    }
    if statement.method is not None:
        indicated["dpv:hasIndicationMethod"] = statement.method
    body: dict[str, Any] = {
        "@context": CONTEXT,
        "cs:version": RECEIPT_VERSION,
        "cs:recordId": statement.receipt_id,
        "cs:eventId": statement.event_id,
        "dpv:hasDataController": {
            "@id": statement.controller,
            "cs:name": statement.controller_name,
        },
        "dpv:hasDataSubject": {"@id": statement.subject_id},
        "dpv:hasPurpose": [
            {"@id": purpose, "dpv:hasLegalBasis": LEGAL_BASIS[basis]}
            for purpose, basis in statement.purposes
        ],
        "dpv:hasConsentStatus": indicated,
    }
    if statement.channel is not None:
        body["cs:channel"] = statement.channel
    if statement.notice_version is not None:
        body["dpv:hasNotice"] = {"cs:version": statement.notice_version}
    if statement.expires_at is not None:
        body["cs:expiresAt"] = _iso(statement.expires_at)
    return {
        "iss": statement.controller,
        "sub": statement.subject_id,
        "jti": statement.receipt_id,
        "iat": int(issued_at.timestamp()),
        "receipt": body,
    }


@dataclass(frozen=True, slots=True)
class ReceiptKey:
    kid: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None  # None: retired, published only to verify old receipts

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> ReceiptKey:
        return cls(thumbprint(private.public_key()), private.public_key(), private)

    @classmethod
    def retired(cls, public: Ed25519PublicKey) -> ReceiptKey:
        return cls(thumbprint(public), public, None)

    def jwk(self) -> dict[str, Any]:
        found: dict[str, Any] = OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {**found, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


class ReceiptSigner:
    """Signs receipts with the newest key; publishes every configured key."""

    def __init__(self, keys: Sequence[ReceiptKey]) -> None:
        if not keys or keys[0].private is None:
            raise ValueError("the first receipt key signs: it must be a private key")
        if len({k.kid for k in keys}) != len(keys):
            raise ValueError("receipt keys must be distinct")
        self.keys = tuple(keys)

    @classmethod
    def parse(cls, configured: str) -> ReceiptSigner:
        """Comma-separated, newest first: base64url private keys (32-byte seeds), or
        ``public:<base64url>`` for a retired key kept only so its receipts verify."""
        keys = []
        for part in filter(None, (p.strip() for p in configured.split(","))):
            if part.startswith(_PUBLIC):
                raw = _unb64(part.removeprefix(_PUBLIC))
                keys.append(ReceiptKey.retired(Ed25519PublicKey.from_public_bytes(raw)))
            else:
                keys.append(ReceiptKey.of(Ed25519PrivateKey.from_private_bytes(_unb64(part))))
        return cls(keys)

    def sign(self, statement: ConsentStatement, issued_at: datetime) -> str:
        key = self.keys[0]
        assert key.private is not None  # checked in __init__
        return jwt.encode(
            receipt_claims(statement, issued_at),
            key.private,
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": MEDIA_TYPE},
        )

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517) with every configured key's public part."""
        return {"keys": [key.jwk() for key in self.keys]}


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The receipt's claims if ``token`` was signed by a key in ``jwks``; else InvalidReceipt."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != MEDIA_TYPE:
            raise InvalidReceipt("not a consent receipt")
        keys = jwt.PyJWKSet.from_dict(dict(jwks))
        kid = header.get("kid")
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise InvalidReceipt(f"signed by a key that is not published: {kid!r}")
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[ALGORITHM])
    except jwt.PyJWTError as exc:
        raise InvalidReceipt(str(exc)) from None
    if "receipt" not in claims:
        raise InvalidReceipt("no receipt in the token")
    return claims


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a key id anyone can recompute from the public key."""
    x = _b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw))
    canonical = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, option=orjson.OPT_SORT_KEYS)
    return _b64(hashlib.sha256(canonical).digest())


def new_receipt_key() -> str:
    """A fresh private key for configuration (base64url seed)."""
    return _b64(os.urandom(32))


def public_part(configured_key: str) -> str:
    """The ``public:`` form of a configured private key, to keep it after retiring it."""
    private = Ed25519PrivateKey.from_private_bytes(_unb64(configured_key))
    return _PUBLIC + _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("receipt key is not base64url") from None
