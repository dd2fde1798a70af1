"""Links over HTTP: one-click unsubscribe (RFC 8058) and double opt-in pages change decisions.
Minting and refusals are tested in process (test_api_links.py)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import orjson
import pytest

from schemas.vocabulary import Destination
from tests.support.http import ONE_CLICK, Reply, decision_path, event
from tests.support.kafka import TopicReader, unique
from tests.support.keys import READ_KEY, TOKENS_KEY, WRITE_KEY
from tests.support.waiting import eventually
from tests.support.worker import Worker

pytestmark = pytest.mark.integration


async def mint(worker: Worker, **request: Any) -> dict[str, Any]:
    reply = await worker.api(TOKENS_KEY).post("/v1/tokens", json=request)
    assert reply.status == 201, reply.text
    minted: dict[str, Any] = reply.json()
    return minted


async def events_for(
    worker: Worker, subject: str, count: int = 1, settle: float = 0.0
) -> list[dict[str, Any]]:
    """The subject's records on the input topic, once there are ``count`` (then ``settle`` s).

    A wait, not a marker: a marker the test publishes orders nothing the API might still
    publish on its own (for instance after it has replied).
    """
    key = subject.encode()
    async with TopicReader(worker.bootstrap, worker.topics.events) as reader:
        await reader.until(
            lambda r: sum(1 for x in r.records if x.key == key) >= count, settle=settle
        )
    return [orjson.loads(r.value) for r in reader.records if r.key == key]


async def test_one_click_unsubscribe(worker: Worker) -> None:
    subject = unique("reader")
    link = await mint(worker, kind="unsubscribe", controller="kms-uk", subject_id=subject)
    assert link["url"] == f"{worker.url}/v1/unsubscribe/{link['token']}"
    assert link["headers"]["List-Unsubscribe"] == f"<{link['url']}>"
    assert link["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = await worker.api(None).get(link["url"])
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<form method="post"' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert "KMS" in page.text and subject not in page.text and subject not in link["url"]
    assert 'lang="en"' in page.text and "Marketing email" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in page.headers
    # Following the link (as a scanner would) published nothing.
    assert await events_for(worker, subject, 0, settle=1.0) == []

    done = await worker.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert done.status == 200 and "You are unsubscribed" in done.text
    again = await worker.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert again.status == 200
    published = await events_for(worker, subject, 2)
    assert len(published) == 2
    # Each click is its own statement at click time; a repeat changes no decision.
    assert len({e["event_id"] for e in published}) == 2
    assert all(e["event_id"].startswith("link-unsubscribe-") for e in published)
    assert published[0]["type"] == "unsubscribed" and "purpose" not in published[0]
    assert link["token"] not in published[0]["event_id"]
    last = max(published, key=lambda e: str(e["occurred_at"]))
    decision: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(
            decision_path("kms-uk", subject, "marketing-email", "email")
        ),
        lambda r: r.json().get("caused_by_event_id") == last["event_id"],
    )
    assert decision.json()["reason"] == "unsubscribed"


async def test_one_click_accepts_multipart(worker: Worker) -> None:
    import aiohttp

    subject = unique("reader")
    link = await mint(
        worker, kind="unsubscribe", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    form = aiohttp.FormData()
    form.add_field("List-Unsubscribe", "One-Click")
    async with aiohttp.ClientSession() as session, session.post(link["url"], data=form()) as r:
        assert r.status == 200
    [published] = await events_for(worker, subject)
    assert published["purpose"] == "newsletter"


async def test_double_opt_in_link(worker: Worker) -> None:
    subject = unique("subscriber")
    grant = event(
        "consent.granted",
        "hms-se",
        subject,
        purpose="newsletter",
        occurred_at=(datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
    )
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=grant)).status == 202
    path = decision_path("hms-se", subject, "newsletter", "email")
    pending: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path),
        lambda r: r.json().get("caused_by_event_id") is not None,
    )
    assert pending.json()["reason"] == "pending_confirmation"
    link = await mint(
        worker, kind="confirm", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    assert link["url"] == f"{worker.url}/v1/confirm/{link['token']}" and link["headers"] == {}
    page = await worker.api(None).get(link["url"])
    assert page.status == 200 and '<form method="post"' in page.text
    # In the controller's language, naming the purpose by its title.
    assert "HMS Industrial Networks AB" in page.text and 'lang="sv"' in page.text
    assert "Bekräfta din prenumeration" in page.text and "Nyhetsbrev" in page.text
    assert page.headers["Content-Language"] == "sv"
    assert len(await events_for(worker, subject, 1, settle=0.5)) == 1  # only the grant
    done = await worker.api(None).post(link["url"], data="confirm=yes", headers=ONE_CLICK)
    assert done.status == 200
    confirmed: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json().get("allowed") is True
    )
    assert confirmed.json()["caused_by_event_id"].startswith("link-confirm-")


def now_iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def last_action(worker: Worker, subject: str, purpose: str, count: int) -> str:
    """The action of the last message for (subject, purpose, email) on the email topic, once
    there are ``count`` of them."""
    topic = worker.topics.suppressions[Destination.EMAIL]

    def mine(reader: TopicReader) -> list[dict[str, Any]]:
        values = [orjson.loads(r.value) for r in reader.records if r.key == subject.encode()]
        return [v for v in values if v["purpose"] == purpose and v["channel"] == "email"]

    async with TopicReader(worker.bootstrap, topic) as reader:
        await reader.until(lambda r: len(mine(r)) >= count)
    return str(mine(reader)[-1]["action"])


async def test_old_unsubscribe_link_unsubscribes_again_after_a_resubscribe(
    worker: Worker,
) -> None:
    subject = unique("resubscriber")
    link = await mint(worker, kind="unsubscribe", controller="kms-uk", subject_id=subject)
    path = decision_path("kms-uk", subject, "marketing-email", "email")
    click = {"data": "List-Unsubscribe=One-Click", "headers": ONE_CLICK}
    assert (await worker.api(None).post(link["url"], **click)).status == 200
    await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["reason"] == "unsubscribed"
    )
    grant = event(
        "consent.granted", "kms-uk", subject, purpose="marketing-email", occurred_at=now_iso()
    )
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=grant)).status == 202
    await eventually(lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["allowed"])
    assert await last_action(worker, subject, "marketing-email", 2) == "allow"

    again = await worker.api(None).post(link["url"], **click)
    assert again.status == 200 and "You are unsubscribed" in again.text
    decision: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path),
        lambda r: r.json()["reason"] == "unsubscribed",
        timeout=15,
    )
    assert decision.json()["allowed"] is False
    assert await last_action(worker, subject, "marketing-email", 3) == "suppress"


async def test_old_confirmation_link_after_a_withdrawal_confirms_nothing(worker: Worker) -> None:
    subject = unique("withdrawn")
    grant = event("consent.granted", "hms-se", subject, purpose="newsletter", occurred_at=now_iso())
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=grant)).status == 202
    link = await mint(
        worker, kind="confirm", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    await asyncio.sleep(1.1)  # the withdrawal is made a second after the link
    withdrawal = event(
        "consent.withdrawn", "hms-se", subject, purpose="newsletter", occurred_at=now_iso()
    )
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=withdrawal)).status == 202
    path = decision_path("hms-se", subject, "newsletter", "email")
    await eventually(
        lambda: worker.api(READ_KEY).get(path),
        lambda r: r.json()["reason"] == "consent_withdrawn",
    )

    clicked = await worker.api(None).post(link["url"], data="confirm=yes", headers=ONE_CLICK)
    # Says what happened, in the controller's language; claims no confirmation.
    assert clicked.status == 409, clicked.text
    assert "Inte bekräftad" in clicked.text and "återkallade" in clicked.text
    assert "Tack" not in clicked.text
    published = await events_for(worker, subject, 2, settle=1.0)
    assert [e["type"] for e in published] == ["consent.granted", "consent.withdrawn"]
    assert (await worker.api(READ_KEY).get(path)).json()["reason"] == "consent_withdrawn"


async def test_confirmation_link_made_after_an_opt_out_still_confirms(worker: Worker) -> None:
    subject = unique("returning")
    withdrawal = event(
        "consent.withdrawn", "hms-se", subject, purpose="newsletter", occurred_at=now_iso(hours=-1)
    )
    assert (await worker.api(WRITE_KEY).post("/v1/events", json=withdrawal)).status == 202
    path = decision_path("hms-se", subject, "newsletter", "email")
    await eventually(
        lambda: worker.api(READ_KEY).get(path),
        lambda r: r.json()["reason"] == "consent_withdrawn",
    )
    link = await mint(
        worker, kind="confirm", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    clicked = await worker.api(None).post(link["url"], data="confirm=yes", headers=ONE_CLICK)
    assert clicked.status == 200 and "Din prenumeration är bekräftad" in clicked.text
    await eventually(lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["allowed"])


async def test_unsubscribed_page_offers_to_subscribe_again(worker: Worker) -> None:
    subject = unique("undo")
    link = await mint(
        worker,
        kind="unsubscribe",
        controller="hms-contact-nl",
        subject_id=subject,
        purpose="newsletter",
    )
    shown = await worker.api(None).get(link["url"])
    assert 'lang="nl"' in shown.text and "Nieuwsbrief" in shown.text and "Afmelden" in shown.text
    done = await worker.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert done.status == 200 and "U bent afgemeld" in done.text
    match = re.search(r'<form method="post" action="(\.\./confirm/[^"]+)">', done.text)
    assert match is not None, done.text
    undo = urljoin(link["url"], match.group(1))
    assert undo.startswith(f"{worker.url}/v1/confirm/")
    path = decision_path("hms-contact-nl", subject, "newsletter", "email")
    await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["reason"] == "unsubscribed"
    )
    again = await worker.api(None).post(undo, data="confirm=yes", headers=ONE_CLICK)
    assert again.status == 200 and "Uw aanmelding is bevestigd" in again.text
    await eventually(lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["allowed"])
