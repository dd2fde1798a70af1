"""The foundations together: a sealed ledger proves, verifies and matches identifiers after its
data key is destroyed, and a receipt made from an entry verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, Reason
from streams.core.engine import Engine
from streams.core.ledger import (
    Arrival,
    ChainHead,
    Entry,
    Personal,
    Record,
    append,
    seal,
    unseal,
    verify_stored,
)
from streams.core.policy import parse_policy
from streams.core.proof import prove
from streams.security.receipts import (
    ConsentStatement,
    ReceiptSigner,
    new_receipt_key,
    verify_receipt,
)
from streams.security.shredding import (
    DataKeys,
    FieldCipher,
    IdentifierHasher,
    Keyring,
    Shredded,
    new_key,
)
from tests.support.core import POLICY_TOML

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
ENGINE = Engine(parse_policy(POLICY_TOML, "test-policy.toml"))
CONTROLLER = "acme"
PAIR = ENGINE.plans[CONTROLLER].by_pair[("offers", Channel.EMAIL)]


def event(type_: str, minute: int, **fields: Any) -> ConsentEvent:
    data = {
        "event_id": f"{type_}-{minute}",
        "type": type_,
        "occurred_at": T0 + timedelta(minutes=minute),
        "controller": CONTROLLER,
        "subject_id": "subject-1",
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": T0 + timedelta(days=1)})


@pytest.fixture
def sealed_ledger() -> tuple[list[Entry], FieldCipher, IdentifierHasher]:
    cipher = FieldCipher(DataKeys(Keyring.parse(f"k1:{new_key()}"), {}))
    hasher = IdentifierHasher.parse(new_key())
    encrypt = partial(cipher.seal, CONTROLLER, "subject-1", "personal")
    head, entries = ChainHead(), []
    for evt in (
        event(
            "consent.granted",
            0,
            purpose=PAIR.name,
            channel=PAIR.channel_name,
            identifiers={"email": "Ann@Example.com"},
            evidence={"form": "signup", "wording": "Yes, send me offers"},
        ),
        event("erasure.requested", 30),
    ):
        record = Record.of(
            evt,
            received_at=evt.occurred_at,
            arrival=Arrival(api_key="shop-backend"),
            identifier_hashes=hasher.digests(
                evt.identifiers.model_dump(exclude_none=True) if evt.identifiers else {}
            ),
        )
        entries.append(append(head, seal(record, encrypt)))
        head = entries[-1].head
    return entries, cipher, hasher


def test_sealed_entries_open_until_erasure_and_the_skeleton_outlives_it(
    sealed_ledger: tuple[list[Entry], FieldCipher, IdentifierHasher],
) -> None:
    entries, cipher, hasher = sealed_ledger
    decrypt = partial(cipher.open, CONTROLLER, "subject-1", "personal")
    stored = [e.to_bytes() for e in entries]
    assert b"Ann@Example.com" not in b"".join(stored) and b"signup" not in b"".join(stored)
    assert unseal(entries[0].record, decrypt).personal == Personal(
        {"email": "Ann@Example.com"}, {"form": "signup", "wording": "Yes, send me offers"}
    )

    cipher.keys.destroy(CONTROLLER, "subject-1")

    with pytest.raises(Shredded):
        unseal(entries[0].record, decrypt)
    assert verify_stored(stored, head=entries[-1].head) == []
    before = prove(entries, PAIR, T0 + timedelta(minutes=10))
    after = prove(entries, PAIR, T0 + timedelta(minutes=30))
    assert before.decision.reason is Reason.CONSENT and before.cause is entries[0]
    assert after.decision.reason is Reason.ERASURE and after.cause is entries[1]
    kept = entries[0].record.identifier_hashes["email"]
    assert hasher.matches("email", "ann@example.com", kept)


def test_a_receipt_for_a_ledger_entry_verifies(
    sealed_ledger: tuple[list[Entry], FieldCipher, IdentifierHasher],
) -> None:
    record = sealed_ledger[0][0].record
    assert record.purpose is not None
    signer = ReceiptSigner.parse(new_receipt_key())
    statement = ConsentStatement(
        receipt_id=record.event_id,
        controller=record.controller,
        controller_name=CONTROLLER,
        subject_id=record.subject_id,
        event_id=record.event_id,
        type=record.type,
        purposes=[(record.purpose, PAIR.legal_basis)],
        occurred_at=record.occurred_at,
        channel=record.channel,
        method=record.arrival.api_key,
    )
    claims = verify_receipt(signer.sign(statement, record.received_at), signer.jwks())
    assert claims["receipt"]["dpv:hasPurpose"] == [
        {"@id": PAIR.name, "dpv:hasLegalBasis": "dpv:Consent"}
    ]
