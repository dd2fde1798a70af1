"""The access export in process: the JSON document in full, an unknown subject, shredded
entries, and the page a person is given (escaped, in the controller's language)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from streams.core.engine import subject_key
from streams.core.ledger import Arrival, LedgerView
from streams.core.state import EMPTY
from streams.security.receipts import verify_receipt
from streams.web.models import ExportOut
from tests.support.fake_backend import Served, serve
from tests.support.kafka import unique
from tests.support.keys import EXPORT_KEY
from tests.web.test_api_ledger import T0, granted_then_withdrawn, record, statement


def export_path(controller: str, subject: str, query: str = "") -> str:
    return f"/v1/controllers/{controller}/subjects/{subject}/export{query}"


def decisions_of(served: Served, controller: str, **changed: dict[str, Any]) -> list[Any]:
    """The policy's default decisions for every pair, with ``changed`` ones (by purpose)."""
    out = []
    for ruling in served.engine.decide_all(EMPTY, controller):
        body = {
            "purpose": ruling.purpose.name,
            "channel": ruling.channel.value,
            "allowed": ruling.allowed,
            "state": ruling.state.value,
            "reason": ruling.reason.value,
            "legal_basis": ruling.purpose.legal_basis.value,
            "since": None,
            "caused_by_event_id": None,
        }
        out.append({**body, **changed.get(f"{ruling.purpose.name}/{ruling.channel.value}", {})})
    return out


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_export_holds_everything_recorded(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    record(
        served,
        statement(
            "consent.granted",
            subject,
            120,
            event_id="grant-2",
            purpose="marketing-offers",
            channel="phone",
            identifiers={"email": "anna@example.com", "phone": "+46701234567"},
        ),
    )
    reply = await served.api(EXPORT_KEY).get(export_path("sms-tech", subject))
    assert reply.status == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    ExportOut.model_validate(body)  # the documented schema
    generated = datetime.fromisoformat(body.pop("generated_at"))
    assert abs(generated - datetime.now(UTC)) < timedelta(seconds=5)
    view = served.backend.ledgers[subject_key("sms-tech", subject).encode()]
    ledger = body.pop("ledger")
    assert [(e["sequence"], e["event_id"], e["digest"]) for e in ledger] == [
        (entry.sequence, entry.record.event_id, entry.digest) for entry in view.entries
    ]
    assert ledger[0]["evidence"] == {"form": "signup", "ip": "203.0.113.7"}
    assert ledger[0]["arrival"]["api_key"] == "crm"
    receipts = body.pop("receipts")
    assert [r["event_id"] for r in receipts] == ["grant-1", "withdraw-1", "grant-2"]
    jwks = (await served.api(None).get("/.well-known/jwks.json")).json()
    assert all(verify_receipt(r["receipt"], jwks) == r["claims"] for r in receipts)
    statements = body.pop("statements")
    assert {s["event_id"] for s in statements} == {"grant-1", "withdraw-1", "grant-2"}
    sid = {
        (e.sequence, fx.channel): fx.suppression_id for e in view.entries for fx in e.record.effects
    }
    at = [
        (T0 + timedelta(minutes=m, seconds=2)).isoformat().replace("+00:00", "Z")
        for m in (0, 60, 120)
    ]
    assert body == {
        "format": "consent-streams.export",
        "version": 1,
        "controller": {
            "id": "sms-tech",
            "name": "Smart Manufacturing Solutions Technology (SMS Tech)",
        },
        "subject_id": subject,
        "decisions": decisions_of(
            served,
            "sms-tech",
            **{
                "marketing-offers/email": {
                    "reason": "consent_withdrawn",
                    "state": "suppressed",
                    "since": "2026-11-02T10:00:00Z",
                    "caused_by_event_id": "withdraw-1",
                },
                "marketing-offers/phone": {
                    "allowed": True,
                    "state": "allowed",
                    "reason": "consent",
                    "since": "2026-11-02T11:00:00Z",
                    "caused_by_event_id": "grant-2",
                },
            },
        ),
        "identifiers": [
            {
                "kind": "email",
                "value": "anna@example.com",
                "first_recorded": at[0],
                "last_recorded": at[2],
            },
            {
                "kind": "phone",
                "value": "+46701234567",
                "first_recorded": at[2],
                "last_recorded": at[2],
            },
        ],
        "notifications": [
            {
                "purpose": "marketing-offers",
                "channel": channel,
                "action": action,
                "suppression_id": sid[sequence, channel],
                "destinations": ["email", "crm"],
                "sequence": sequence,
                "event_id": event_id,
                "at": at[sequence - 1],
            }
            for sequence, event_id, channel, action in (
                (1, "grant-1", "email", "allow"),
                (2, "withdraw-1", "email", "suppress"),
                (2, "withdraw-1", "phone", "suppress"),  # a withdrawal reaches every channel
                # A new identifier: the suppressed pair is sent again, with the phone number.
                (3, "grant-2", "email", "suppress"),
                (3, "grant-2", "phone", "allow"),
            )
        ],
        "receipts_unavailable": None,
        "chain": {"intact": True, "entries": 3, "head_sequence": 3, "problems": []},
    }


async def test_an_unknown_subject_gets_an_empty_export(served: Served) -> None:
    subject = unique("nobody")
    reply = await served.api(EXPORT_KEY).get(export_path("kms-uk", subject))
    assert reply.status == 200
    body = reply.json()
    body.pop("generated_at")
    assert body == {
        "format": "consent-streams.export",
        "version": 1,
        "controller": {"id": "kms-uk", "name": "KMS (Nordic Consulting & Trading Ltd)"},
        "subject_id": subject,
        "decisions": decisions_of(served, "kms-uk"),
        "statements": [],
        "identifiers": [],
        "ledger": [],
        "notifications": [],
        "receipts": [],
        "receipts_unavailable": None,
        "chain": {"intact": True, "entries": 0, "head_sequence": None, "problems": []},
    }


async def test_shredded_entries_are_marked_and_keep_their_skeleton(served: Served) -> None:
    subject = unique("erased")
    grant = statement(
        "consent.granted",
        subject,
        0,
        purpose="marketing-offers",
        evidence={"ip": "198.51.100.1"},
        identifiers={"email": "gone@example.com"},
    )
    record(served, grant, shredded=True)
    body = (await served.api(EXPORT_KEY).get(export_path("sms-tech", subject))).json()
    [entry] = body["ledger"]
    assert entry["shredded"] is True
    assert entry["identifiers"] is None and entry["evidence"] is None
    assert (entry["type"], entry["purpose"]) == ("consent.granted", "marketing-offers")
    assert body["identifiers"] == []
    assert body["chain"]["intact"] is True
    assert "gone@example.com" not in str(body) and "198.51.100.1" not in str(body)


MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>"


@pytest.mark.parametrize(
    ("query", "headers"), [("?format=html", {}), ("", {"Accept": "text/html,*/*;q=0.8"})]
)
async def test_the_page_shows_untrusted_values_as_text(
    served: Served, query: str, headers: dict[str, str]
) -> None:
    subject = unique("<b>s</b>")
    event = statement(
        "consent.granted",
        subject,
        0,
        purpose="marketing-offers",
        source="<i>form</i>",
        evidence={"note": MARKUP},
        identifiers={"email": "x<y@example.com"},
    )
    record(served, event, arrival=Arrival(api_key="crm"))
    path = export_path("sms-tech", quote(subject, safe=""), query)
    reply = await served.api(EXPORT_KEY).get(path, headers=headers)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    page = reply.text
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "<b>s</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;s&lt;/b&gt;" in page and "x&lt;y@example.com" in page
    assert "&lt;i&gt;form&lt;/i&gt;" in page
    assert reply.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "<h1>Your data at Smart Manufacturing Solutions Technology (SMS Tech)</h1>" in page
    assert "The record is intact" in page


async def test_the_page_speaks_the_controllers_language(served: Served) -> None:
    reply = await served.api(EXPORT_KEY).get(export_path("hms-se", "s-1", "?format=html"))
    assert reply.headers["Content-Language"] == "sv"
    assert "<h1>Dina uppgifter hos HMS Industrial Networks AB</h1>" in reply.text
    assert "Inget registrerat." in reply.text  # no history


async def test_bad_export_requests(served: Served) -> None:
    reply = await served.api(EXPORT_KEY).get(export_path("kms-uk", "s", "?format=xml"))
    assert (reply.status, reply.json()["message"]) == (400, "format must be json or html")
    reply = await served.api(EXPORT_KEY).get(export_path("acme", "s"))
    assert (reply.status, reply.json()["error"]) == (404, "unknown_controller")


async def test_the_export_is_answered_by_the_owner_or_not_at_all(served: Served) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    path = export_path("sms-tech", subject)
    async with serve() as other:
        other.backend.active = set()
        reply = await other.api(EXPORT_KEY).get(path)
        assert (reply.status, reply.json()["error"]) == (503, "rebalancing")
        other.backend.owners = {p: served.url for p in range(6)}
        forwarded = await other.api(EXPORT_KEY).get(path + "?format=html")
        assert forwarded.status == 200 and "grant-1" in forwarded.text
        assert forwarded.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", "text/html"),
        ("application/json, text/html", "application/json"),
        ("*/*", "application/json"),
    ],
)
async def test_the_format_follows_accept(served: Served, accept: str, media: str) -> None:
    reply = await served.api(EXPORT_KEY).get(export_path("kms-uk", "s"), headers={"Accept": accept})
    assert reply.headers["Content-Type"].split(";")[0] == media


async def test_a_long_export_does_not_stall_the_worker(served: Served) -> None:
    subject = unique("long")
    for n in range(1000):
        record(served, statement("consent.granted", subject, n, purpose="marketing-offers"))
    backend = served.backend
    reading = asyncio.Event()
    read = backend.ledger
    started: list[float] = []

    def ledger(key: bytes) -> LedgerView:
        started.append(time.perf_counter())
        reading.set()
        return read(key)

    backend.ledger = ledger  # type: ignore[method-assign]
    export = asyncio.create_task(served.api(EXPORT_KEY).get(export_path("sms-tech", subject)))
    await reading.wait()  # the export is being built now
    assert (await served.api(None).get("/health")).status == 200
    health = time.perf_counter() - started[0]
    assert (await export).status == 200
    whole = time.perf_counter() - started[0]
    # Built off the event loop: other requests (and the worker's stream) go on meanwhile.
    assert health < whole / 2, (health, whole)
