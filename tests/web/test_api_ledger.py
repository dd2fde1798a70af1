"""Proof as of a time, consent receipts and the JWKS, in process over ledgers the fake holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import ConsentEvent
from streams.core.engine import subject_key
from streams.core.ledger import Arrival
from streams.core.periods import Period
from streams.security.receipts import (
    InvalidReceipt,
    ReceiptSigner,
    new_receipt_key,
    verify_receipt,
)
from streams.security.tokens import TokenKind
from streams.web.receipting import Receipts
from tests.support.fake_backend import Served, serve
from tests.support.http import ONE_CLICK, local_token
from tests.support.kafka import unique
from tests.support.keys import API_ENV, READ_KEY, WRITE_KEY

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EVIDENCE = {"form": "signup", "ip": "203.0.113.7"}


def statement(type_: str, subject: str, minutes: int, **fields: Any) -> ConsentEvent:
    data = {
        "event_id": fields.pop("event_id", unique("evt")),
        "type": type_,
        "occurred_at": T0 + timedelta(minutes=minutes),
        "controller": fields.pop("controller", "sms-tech"),
        "subject_id": subject,
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": data["occurred_at"]})


def record(served: Served, event: ConsentEvent, **kwargs: Any) -> None:
    received = event.occurred_at + timedelta(seconds=2)
    served.backend.record(served.engine, event, received, **kwargs)


def proof_path(subject: str, query: str) -> str:
    return f"/v1/controllers/sms-tech/subjects/{subject}/proof/marketing-offers?{query}"


def granted_then_withdrawn(served: Served) -> tuple[str, ConsentEvent, ConsentEvent]:
    subject = unique("proof")
    grant = statement(
        "consent.granted",
        subject,
        0,
        event_id="grant-1",
        purpose="marketing-offers",
        channel="email",
        notice_version="2026-01",
        source="signup-form",
        evidence=EVIDENCE,
        identifiers={"email": "anna@example.com"},
    )
    withdraw = statement(
        "consent.withdrawn", subject, 60, event_id="withdraw-1", purpose="marketing-offers"
    )
    record(served, grant, arrival=Arrival(api_key="crm"))
    record(served, withdraw, arrival=Arrival(topic="consent.events", partition=3, offset=41))
    return subject, grant, withdraw


def grant_entry(served: Served, subject: str) -> dict[str, Any]:
    """The grant of :func:`granted_then_withdrawn` as the API shows it."""
    stored = served.backend.ledgers[subject_key("sms-tech", subject).encode()].entries[0]
    return {
        "sequence": 1,
        "previous": "0" * 64,
        "digest": stored.digest,
        "event_id": "grant-1",
        "type": "consent.granted",
        "occurred_at": "2026-11-02T09:00:00Z",
        "received_at": "2026-11-02T09:00:02Z",
        "purpose": "marketing-offers",
        "channel": "email",
        "objection": None,
        "signal": None,
        "notice_version": "2026-01",
        "source": "signup-form",
        "jurisdiction": None,
        "request_id": None,
        "arrival": {
            "topic": None,
            "partition": None,
            "offset": None,
            "api_key": "crm",
            "link_kind": None,
        },
        "shredded": False,
        "identifiers": {"email": "anna@example.com"},
        "evidence": EVIDENCE,
        "effects": [
            {
                "purpose": "marketing-offers",
                "channel": "email",
                "action": "allow",
                "suppression_id": stored.record.effects[0].suppression_id,
                "destinations": ["email", "crm"],
            }
        ],
    }


async def test_proof_answers_the_decision_at_a_time_with_its_cause_and_evidence(
    served: Served,
) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    reply = await served.api(READ_KEY).get(
        proof_path(subject, "channel=email&at=2026-11-02T09:30:00Z")
    )
    assert reply.status == 200, reply.text
    entry = grant_entry(served, subject)
    assert reply.json() == {
        "controller": "sms-tech",
        "subject_id": subject,
        "purpose": "marketing-offers",
        "channel": "email",
        "at": "2026-11-02T09:30:00Z",
        "known_at": None,
        "decision": {
            "purpose": "marketing-offers",
            "channel": "email",
            "allowed": True,
            "state": "allowed",
            "reason": "consent",
            "legal_basis": "consent",
            "since": "2026-11-02T09:00:00Z",
            "caused_by_event_id": "grant-1",
        },
        "cause": entry,
        "basis": [entry],
        "chain": {"intact": True, "entries": 2, "head_sequence": 2, "problems": []},
    }


async def test_proof_defaults_to_now_and_names_the_withdrawal(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    before = datetime.now(UTC)
    body = (await served.api(READ_KEY).get(proof_path(subject, "channel=email"))).json()
    assert before <= datetime.fromisoformat(body["at"]) <= datetime.now(UTC)
    assert body["decision"]["reason"] == "consent_withdrawn"
    assert body["decision"]["allowed"] is False
    assert body["cause"]["event_id"] == "withdraw-1"
    assert body["cause"]["arrival"] == {
        "topic": "consent.events",
        "partition": 3,
        "offset": 41,
        "api_key": None,
        "link_kind": None,
    }
    assert [e["event_id"] for e in body["basis"]] == ["grant-1", "withdraw-1"]


async def test_known_at_leaves_out_statements_recorded_later(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    # Offsets must survive an unencoded "+" (which a query turns into a space).
    query = "channel=email&at=2026-11-02T12:00:00%2B02:00&known_at=2026-11-02T10:30:00+01:00"
    body = (await served.api(READ_KEY).get(proof_path(subject, query))).json()
    assert body["at"] == "2026-11-02T10:00:00Z"
    assert body["known_at"] == "2026-11-02T09:30:00Z"
    assert body["decision"]["reason"] == "consent"  # the withdrawal was recorded at 10:00:02


async def test_proof_of_an_unknown_subject_is_the_default(served: Served) -> None:
    reply = await served.api(READ_KEY).get(proof_path(unique("nobody"), "channel=phone"))
    body = reply.json()
    assert reply.status == 200
    assert body["decision"]["reason"] == "no_consent" and body["cause"] is None
    assert body["basis"] == []
    assert body["chain"] == {"intact": True, "entries": 0, "head_sequence": None, "problems": []}


async def test_a_tampered_ledger_is_reported_not_repaired(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    key = subject_key("sms-tech", subject).encode()
    view = served.backend.ledgers[key]
    first = view.entries[0]
    edited = first.with_record(replace(first.record, source="forged"))
    served.backend.ledgers[key] = replace(
        view, entries=(edited, *view.entries[1:]), records=(edited.record, *view.records[1:])
    )
    body = (await served.api(READ_KEY).get(proof_path(subject, "channel=email"))).json()
    assert body["chain"]["intact"] is False
    assert body["chain"]["problems"] == [
        {"sequence": 1, "problem": "altered", "detail": "content does not match its digest"}
    ]
    assert body["basis"][0]["source"] == "forged"  # shown as stored, flagged by the check


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("at=2026-11-02T09:00:00Z", "the channel query parameter is required"),
        ("channel=email&at=yesterday", "at must be an RFC 3339 time"),
        ("channel=email&at=2026-11-02T09:00:00", "at must be an RFC 3339 time"),
        ("channel=email&known_at=2026-13-01T00:00Z", "known_at must be an RFC 3339 time"),
    ],
)
async def test_bad_proof_requests(served: Served, query: str, error: str) -> None:
    reply = await served.api(READ_KEY).get(proof_path("s", query))
    assert reply.status == 400 and reply.json()["message"].startswith(error), reply.text


async def test_proof_is_answered_by_the_owner_or_not_at_all() -> None:
    async with serve() as owner, serve() as other:
        subject, _, _ = granted_then_withdrawn(owner)
        path = proof_path(subject, "channel=email&at=2026-11-02T09:30:00Z")
        other.backend.active = set()
        # Nobody known to own the partition: 503, never an answer from an empty ledger.
        reply = await other.api(READ_KEY).get(path)
        assert (reply.status, reply.json()["error"]) == (503, "rebalancing")
        assert reply.headers["Retry-After"] == "1"
        other.backend.owners = {p: owner.url for p in range(6)}
        forwarded = await other.api(READ_KEY).get(path)
        assert forwarded.status == 200
        assert forwarded.json() == (await owner.api(READ_KEY).get(path)).json()
        owner.backend.is_settled = False
        busy = await other.api(READ_KEY).get(path)
        assert (busy.status, busy.json()["error"]) == (503, "rebalancing")


# -- receipts ---------------------------------------------------------------------------------


def receipt_path(subject: str, event_id: str) -> str:
    return f"/v1/controllers/sms-tech/subjects/{subject}/receipts/{event_id}"


async def test_a_receipt_verifies_with_the_served_jwks(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    reply = await served.api(READ_KEY).get(receipt_path(subject, "grant-1"))
    assert reply.status == 200, reply.text
    body = reply.json()
    assert set(body) == {"event_id", "receipt", "claims"} and body["event_id"] == "grant-1"
    claims = body["claims"]
    receipt_id = claims["jti"]
    assert receipt_id.startswith("urn:uuid:")
    assert claims == {
        "iss": "sms-tech",
        "sub": subject,
        "jti": receipt_id,
        "iat": int((T0 + timedelta(seconds=2)).timestamp()),
        "receipt": {
            "@context": {"dpv": "https://w3id.org/dpv#", "cs": "urn:consent-streams:receipt:"},
            "cs:version": 1,
            "cs:recordId": receipt_id,
            "cs:eventId": "grant-1",
            "dpv:hasDataController": {
                "@id": "sms-tech",
                "cs:name": "Smart Manufacturing Solutions Technology (SMS Tech)",
            },
            "dpv:hasDataSubject": {"@id": subject},
            "dpv:hasPurpose": [{"@id": "marketing-offers", "dpv:hasLegalBasis": "dpv:Consent"}],
            "dpv:hasConsentStatus": {
                "@type": "dpv:ConsentGiven",
                "dpv:isIndicatedAtTime": "2026-11-02T09:00:00Z",
                "dpv:isIndicatedBy": "dpv:DataSubject",
                "dpv:hasIndicationMethod": "signup-form",
            },
            "cs:channel": "email",
            "dpv:hasNotice": {"cs:version": "2026-01"},
        },
    }
    jwks = await served.api(None).get("/.well-known/jwks.json")
    assert jwks.status == 200 and "no-store" not in jwks.headers.get("Cache-Control", "")
    assert verify_receipt(body["receipt"], jwks.json()) == claims
    # The same statement gives the same receipt (deterministic signature, recorded time).
    again = await served.api(READ_KEY).get(receipt_path(subject, "grant-1"))
    assert again.json()["receipt"] == body["receipt"]

    header, payload, signature = body["receipt"].split(".")
    altered = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{header}.{altered}.{signature}", jwks.json())
    with pytest.raises(InvalidReceipt, match="not published"):
        verify_receipt(body["receipt"], ReceiptSigner.parse(new_receipt_key()).jwks())


async def test_withdrawals_get_receipts_other_events_do_not(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    record(served, statement("unsubscribed", subject, 90, event_id="unsub-1"))
    withdrawn = (await served.api(READ_KEY).get(receipt_path(subject, "withdraw-1"))).json()
    status = withdrawn["claims"]["receipt"]["dpv:hasConsentStatus"]
    assert status["@type"] == "dpv:ConsentWithdrawn"
    assert "cs:expiresAt" not in withdrawn["claims"]["receipt"]
    for event_id in ("unsub-1", "no-such-event"):
        reply = await served.api(READ_KEY).get(receipt_path(subject, event_id))
        assert (reply.status, reply.json()["error"]) == (404, "unknown_statement")


def test_receipts_carry_the_consent_lifetime_as_expiry(served: Served) -> None:
    policy = served.engine.policy
    controller = policy.controllers["sms-tech"]
    purpose = controller.purposes["marketing-offers"].model_copy(
        update={"consent_lifetime": Period.parse("P1Y")}
    )
    changed = policy.model_copy(
        update={
            "controllers": {
                **policy.controllers,
                "sms-tech": controller.model_copy(
                    update={"purposes": {**controller.purposes, "marketing-offers": purpose}}
                ),
            }
        }
    )
    subject, _, _ = granted_then_withdrawn(served)
    view = served.backend.ledgers[subject_key("sms-tech", subject).encode()]
    receipts = Receipts(changed, None)
    assert receipts.statement(view.records[0]).expires_at == datetime(2027, 11, 2, 9, tzinfo=UTC)
    assert receipts.statement(view.records[1]).expires_at is None  # a withdrawal


async def test_without_receipt_keys_receipts_answer_503_and_the_jwks_is_empty() -> None:
    env = {k: v for k, v in API_ENV.items() if k != "CONSENT_RECEIPT_KEYS"}
    async with serve({**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}) as closed:
        subject, _, _ = granted_then_withdrawn(closed)
        reply = await closed.api(READ_KEY).get(receipt_path(subject, "grant-1"))
        assert (reply.status, reply.json()["error"]) == (503, "receipts_not_configured")
        assert "CONSENT_RECEIPT_KEYS" in reply.json()["message"]
        assert (await closed.api(None).get("/.well-known/jwks.json")).json() == {"keys": []}
    async with serve(env) as embedded:  # the embedded broker: a key made for the run
        subject, _, _ = granted_then_withdrawn(embedded)
        reply = await embedded.api(READ_KEY).get(receipt_path(subject, "grant-1"))
        jwks = (await embedded.api(None).get("/.well-known/jwks.json")).json()
        assert len(jwks["keys"]) == 1
        assert verify_receipt(reply.json()["receipt"], jwks)["jti"]


# -- provenance of what the API publishes -----------------------------------------------------


async def test_events_carry_the_publishing_key_name(served: Served) -> None:
    event = {
        "event_id": unique("evt"),
        "type": "unsubscribed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "controller": "kms-uk",
        "subject_id": unique("s"),
    }
    assert (
        await served.api().post("/v1/events", json=[event, {**event, "event_id": "b"}])
    ).status == 202
    assert [headers for _, _, headers in served.backend.published] == [
        (("consent-streams-api-key", b"admin"),)
    ] * 2
    served.backend.published.clear()
    await served.api(WRITE_KEY).post(
        f"/v1/controllers/kms-uk/subjects/{unique('v')}/signals", headers={"Sec-GPC": "1"}
    )
    [(_, _, headers)] = served.backend.published
    assert headers == (("consent-streams-api-key", b"writer"),)


async def test_link_clicks_carry_the_link_kind(served: Served) -> None:
    unsubscribe = local_token(TokenKind.UNSUBSCRIBE, None)
    confirm = local_token(TokenKind.CONFIRM, None, controller="hms-se", purpose="newsletter")
    api = served.api(None)
    reply = await api.post(
        f"/v1/unsubscribe/{unsubscribe}", data="List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert reply.status == 200, reply.text
    assert (
        await api.post(f"/v1/confirm/{confirm}", data="confirm=yes", headers=ONE_CLICK)
    ).status == 200
    assert [headers for _, _, headers in served.backend.published] == [
        (("consent-streams-link", b"unsubscribe"),),
        (("consent-streams-link", b"confirm"),),
    ]
