"""Consent receipts: signed with the newest key, verifiable with the published JWKS."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from streams.security.receipts import (
    MEDIA_TYPE,
    ConsentStatement,
    InvalidReceipt,
    ReceiptSigner,
    new_receipt_key,
    public_part,
    receipt_claims,
    thumbprint,
    verify_receipt,
)

AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ISSUED = datetime(2026, 11, 1, 9, 0, 2, tzinfo=UTC)
OLD, NEW = new_receipt_key(), new_receipt_key()

GRANT = ConsentStatement(
    receipt_id="r-1",
    controller="acme",
    controller_name="Acme AB",
    subject_id="subject-1",
    event_id="evt-1",
    type="consent.granted",
    purposes=[("newsletter", "consent")],
    occurred_at=AT,
    channel="email",
    notice_version="2026-10",
    method="signup-form",
    expires_at=datetime(2027, 11, 1, tzinfo=UTC),
)


def test_a_receipt_holds_the_27560_elements_in_dpv_terms() -> None:
    claims = receipt_claims(GRANT, ISSUED)
    body = claims["receipt"]
    assert claims["iss"] == "acme" and claims["sub"] == "subject-1" and claims["jti"] == "r-1"
    assert body["dpv:hasDataController"]["@id"] == "acme"
    assert body["dpv:hasDataSubject"] == {"@id": "subject-1"}
    assert body["dpv:hasPurpose"] == [{"@id": "newsletter", "dpv:hasLegalBasis": "dpv:Consent"}]
    assert body["dpv:hasNotice"] == {"cs:version": "2026-10"}
    assert body["dpv:hasConsentStatus"] == {
        "@type": "dpv:ConsentGiven",
        "dpv:isIndicatedAtTime": "2026-11-01T09:00:00Z",
        "dpv:isIndicatedBy": "dpv:DataSubject",
        "dpv:hasIndicationMethod": "signup-form",
    }
    assert body["cs:expiresAt"] == "2027-11-01T00:00:00Z"
    withdrawn = receipt_claims(
        replace(GRANT, type="consent.withdrawn", expires_at=None),
        ISSUED,
    )["receipt"]
    assert withdrawn["dpv:hasConsentStatus"]["@type"] == "dpv:ConsentWithdrawn"
    assert "cs:expiresAt" not in withdrawn


def test_only_consent_statements_get_receipts() -> None:
    with pytest.raises(ValueError, match="no consent receipt for a unsubscribed"):
        receipt_claims(replace(GRANT, type="unsubscribed"), ISSUED)


def test_a_receipt_verifies_with_the_published_jwks() -> None:
    signer = ReceiptSigner.parse(NEW)
    token = signer.sign(GRANT, ISSUED)
    jwks = orjson.loads(orjson.dumps(signer.jwks()))  # as a verifier would fetch it
    claims = verify_receipt(token, jwks)
    assert claims == receipt_claims(GRANT, ISSUED)
    [key] = jwks["keys"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert "d" not in key  # never the private part
    assert _header(token) == {"alg": "EdDSA", "kid": key["kid"], "typ": MEDIA_TYPE}


def test_a_tampered_receipt_fails() -> None:
    signer = ReceiptSigner.parse(NEW)
    header, payload, signature = signer.sign(GRANT, ISSUED).split(".")
    claims = orjson.loads(_unb64(payload))
    claims["receipt"]["dpv:hasConsentStatus"]["dpv:isIndicatedAtTime"] = "2026-10-01T09:00:00Z"
    forged = f"{header}.{_b64(orjson.dumps(claims))}.{signature}"
    with pytest.raises(InvalidReceipt, match="Signature verification failed"):
        verify_receipt(forged, signer.jwks())


def test_a_receipt_signed_by_another_key_fails() -> None:
    token = ReceiptSigner.parse(OLD).sign(GRANT, ISSUED)
    with pytest.raises(InvalidReceipt, match="not published"):
        verify_receipt(token, ReceiptSigner.parse(NEW).jwks())


def test_after_rotation_the_newest_signs_and_a_retired_key_still_verifies() -> None:
    before = ReceiptSigner.parse(OLD).sign(GRANT, ISSUED)
    rotated = ReceiptSigner.parse(f"{NEW},{public_part(OLD)}")
    after = rotated.sign(GRANT, ISSUED)
    kids = [key["kid"] for key in rotated.jwks()["keys"]]
    assert _header(after)["kid"] == kids[0] != kids[1] == _header(before)["kid"]
    assert verify_receipt(before, rotated.jwks())["jti"] == "r-1"
    assert verify_receipt(after, rotated.jwks())["jti"] == "r-1"
    # Once the retired key is no longer published, its receipts no longer verify.
    with pytest.raises(InvalidReceipt):
        verify_receipt(before, ReceiptSigner.parse(NEW).jwks())


def test_key_ids_are_rfc7638_thumbprints() -> None:
    signer = ReceiptSigner.parse(NEW)
    key = signer.keys[0]
    assert key.kid == thumbprint(key.public)
    assert len(_unb64(key.kid)) == 32


def test_bad_receipt_key_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="the first receipt key signs"):
        ReceiptSigner.parse(public_part(OLD))
    with pytest.raises(ValueError, match="distinct"):
        ReceiptSigner.parse(f"{OLD},{public_part(OLD)}")
    with pytest.raises(ValueError):
        ReceiptSigner.parse("c2hvcnQ")


def test_something_that_is_not_a_receipt_is_refused() -> None:
    with pytest.raises(InvalidReceipt):
        verify_receipt("not.a.token", ReceiptSigner.parse(NEW).jwks())


def _header(token: str) -> dict[str, object]:
    return dict(orjson.loads(_unb64(token.split(".")[0])))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
