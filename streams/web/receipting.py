"""Consent receipts for ledger entries: which key signs, what a receipt says, the JWKS.

A receipt is issued at the time the statement was recorded (``received_at``) and Ed25519
signatures are deterministic, so fetching a receipt twice gives the same token while the key
is unchanged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from schemas.vocabulary import LegalBasis
from streams.core.ledger import Record
from streams.core.lifetimes import consent_expires
from streams.core.policy import Policy
from streams.security.receipts import (
    STATUS,
    ConsentStatement,
    ReceiptSigner,
    new_receipt_key,
    receipt_claims,
)
from streams.settings import Settings
from streams.web.models import ReceiptOut

log = logging.getLogger("consent_streams.http")

#: Receipt ids are UUIDs derived from (controller, subject, event): stable per statement.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:consent-streams:receipt")
NOT_CONFIGURED = (
    "receipt signing is not configured: set CONSENT_RECEIPT_KEYS (consent-streams receipt new-key)"
)


def is_consent_statement(record: Record) -> bool:
    return record.type in STATUS


@dataclass(frozen=True)
class Receipts:
    policy: Policy
    signer: ReceiptSigner | None  # None: receipts answer 503, the JWKS is empty

    @classmethod
    def configured(cls, settings: Settings, policy: Policy) -> Receipts:
        """From CONSENT_RECEIPT_KEYS; unset, an ephemeral key when the worker runs its own
        embedded broker (a development setup), else none."""
        if settings.receipt_keys is not None:
            return cls(policy, ReceiptSigner.parse(settings.receipt_keys.get_secret_value()))
        if settings.bootstrap_servers is None:
            log.warning(
                "no CONSENT_RECEIPT_KEYS: consent receipts are signed with a key made for this "
                "run only (embedded broker); they stop verifying when the worker restarts"
            )
            return cls(policy, ReceiptSigner.parse(new_receipt_key()))
        log.warning("no CONSENT_RECEIPT_KEYS: receipt endpoints answer 503, the JWKS is empty")
        return cls(policy, None)

    def jwks(self) -> dict[str, Any]:
        return self.signer.jwks() if self.signer else {"keys": []}

    def statement(self, record: Record) -> ConsentStatement:
        """What the receipt of a consent statement attests, with the policy's names, legal
        basis and consent lifetime."""
        controller = self.policy.controller(record.controller)
        purpose = controller.purposes.get(record.purpose or "") if controller else None
        basis = purpose.legal_basis if purpose else LegalBasis.CONSENT
        expires = None
        if purpose is not None and record.type != "consent.withdrawn":
            expires = consent_expires(purpose, record.occurred_at)
        material = f"{record.controller}\x1f{record.subject_id}\x1f{record.event_id}"
        return ConsentStatement(
            receipt_id=f"urn:uuid:{uuid.uuid5(_NAMESPACE, material)}",
            controller=record.controller,
            controller_name=controller.name if controller else record.controller,
            subject_id=record.subject_id,
            event_id=record.event_id,
            type=record.type,
            purposes=[(record.purpose or "", basis.value)],
            occurred_at=record.occurred_at,
            channel=record.channel,
            notice_version=record.notice_version,
            method=record.source,
            expires_at=expires,
        )

    def issue(self, record: Record) -> ReceiptOut:
        """The signed receipt of a consent statement (the signer must be configured)."""
        if self.signer is None:
            raise RuntimeError(NOT_CONFIGURED)
        statement = self.statement(record)
        token = self.signer.sign(statement, record.received_at)
        return ReceiptOut(
            event_id=record.event_id,
            receipt=token,
            claims=receipt_claims(statement, record.received_at),
        )
