"""Links over HTTP: minting, one-click unsubscribe (RFC 8058) and double opt-in pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streams.web.tokens import Claims, Signer, TokenKind, link_event_id
from tests.support.kafka import TopicReader, unique
from tests.web.conftest import (
    READ_KEY,
    SECRET,
    TOKENS_KEY,
    WRITE_KEY,
    Reply,
    Worker,
    decision_path,
    event,
    eventually,
)

pytestmark = pytest.mark.integration

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


async def mint(worker: Worker, **request: Any) -> dict[str, Any]:
    reply = await worker.api(TOKENS_KEY).post("/v1/tokens", json=request)
    assert reply.status == 201, reply.text
    minted: dict[str, Any] = reply.json()
    return minted


async def events_for(
    worker: Worker, subject: str, count: int = 1, settle: float = 0.0
) -> list[dict[str, Any]]:
    """The subject's records on the input topic, once there are ``count`` (then ``settle`` s)."""
    key = subject.encode()
    async with TopicReader(worker.bootstrap, worker.topics.events) as reader:
        await reader.until(
            lambda r: sum(1 for x in r.records if x.key == key) >= count, settle=settle
        )
    return [orjson.loads(r.value) for r in reader.records if r.key == key]


def local_token(kind: TokenKind, expires: datetime | None, **fields: str | None) -> str:
    now = datetime.now(UTC)
    claims = Claims(
        kind=kind,
        controller=fields.get("controller") or "kms-uk",
        subject_id=fields.get("subject_id") or unique("s"),
        purpose=fields.get("purpose"),
        channel=fields.get("channel"),
        issued_at=int(now.timestamp()),
        expires_at=int(expires.timestamp()) if expires else None,
    )
    return Signer.from_config(SECRET).mint(claims)


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
    assert "KMS" in page.text and subject not in page.text
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
    expected_id = link_event_id(TokenKind.UNSUBSCRIBE, link["token"])
    assert {e["event_id"] for e in published} == {expected_id}  # a repeat is a duplicate
    assert published[0]["type"] == "unsubscribed" and "purpose" not in published[0]
    decision: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(
            decision_path("kms-uk", subject, "marketing-email", "email")
        ),
        lambda r: r.json().get("reason") == "unsubscribed",
    )
    assert decision.json()["caused_by_event_id"] == expected_id


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


@pytest.mark.parametrize("body", ["", "List-Unsubscribe=Yes", "x=1"])
async def test_one_click_needs_the_rfc_8058_body(worker: Worker, body: str) -> None:
    subject = unique("reader")
    link = await mint(worker, kind="unsubscribe", controller="kms-uk", subject_id=subject)
    reply = await worker.api(None).post(link["url"], data=body, headers=ONE_CLICK)
    assert reply.status == 400
    assert await events_for(worker, subject, 0, settle=0.5) == []


async def test_forged_expired_and_misused_tokens(worker: Worker) -> None:
    subject = unique("victim")
    good = await mint(worker, kind="unsubscribe", controller="kms-uk", subject_id=subject)
    version, payload, tag = good["token"].split(".")
    other_secret = Signer.from_config("z" * 40).mint(
        Signer.from_config(SECRET).verify(good["token"])
    )
    expired = local_token(
        TokenKind.UNSUBSCRIBE, datetime.now(UTC) - timedelta(seconds=1), subject_id=subject
    )
    confirm = await mint(
        worker, kind="confirm", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    cases = {
        f"{version}.{payload}.{tag[:-2]}AA": 404,
        f"{version}.{payload[:-3]}xyz.{tag}": 404,
        other_secret: 404,
        "not-a-token": 404,
        expired: 410,
        confirm["token"]: 404,  # a confirmation token is not an unsubscribe token
    }
    api = worker.api(None)
    for token, status in cases.items():
        for method in ("GET", "POST"):
            reply = await api.call(
                method,
                f"/v1/unsubscribe/{token}",
                data="List-Unsubscribe=One-Click",
                headers=ONE_CLICK,
            )
            assert (token, reply.status) == (token, status)
            assert reply.headers["Content-Type"].startswith("text/html")
    expired_confirm = local_token(
        TokenKind.CONFIRM,
        datetime.now(UTC) - timedelta(seconds=1),
        controller="hms-se",
        subject_id=subject,
        purpose="newsletter",
    )
    assert (await api.post(f"/v1/confirm/{expired_confirm}")).status == 410
    assert (await api.get(f"/v1/confirm/{good['token']}")).status == 404
    assert await events_for(worker, subject, 0, settle=0.5) == []


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
    assert "HMS Industrial Networks AB" in page.text
    assert len(await events_for(worker, subject, 1, settle=0.5)) == 1  # only the grant
    done = await worker.api(None).post(link["url"], data="confirm=yes", headers=ONE_CLICK)
    assert done.status == 200
    confirmed: Reply = await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json().get("allowed") is True
    )
    assert confirmed.json()["caused_by_event_id"] == link_event_id(TokenKind.CONFIRM, link["token"])


async def test_minting_over_the_api(worker: Worker) -> None:
    api = worker.api(TOKENS_KEY)
    batch = await api.post(
        "/v1/tokens",
        json=[
            {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a", "ttl_seconds": 3600},
            {"kind": "confirm", "controller": "hms-se", "subject_id": "b", "purpose": "newsletter"},
        ],
    )
    assert batch.status == 201
    first, second = batch.json()
    assert first["kind"] == "unsubscribe" and first["expires_at"] is not None
    assert second["kind"] == "confirm" and second["headers"] == {}
    bad = await api.post(
        "/v1/tokens",
        json=[
            {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a"},
            {"kind": "confirm", "controller": "hms-se", "subject_id": "b"},
            {"kind": "refund", "controller": "hms-se", "subject_id": "b"},
            {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a", "ttl_seconds": 1},
        ],
    )
    assert bad.status == 422
    assert [item["index"] for item in bad.json()["items"]] == [1, 2, 3]
    assert (
        await api.post("/v1/tokens", data=b"[", headers={"Content-Type": "application/json"})
    ).status == 400
    for key, status in ((None, 401), (READ_KEY, 403), (WRITE_KEY, 403)):
        reply = await worker.api(key).post(
            "/v1/tokens", json={"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a"}
        )
        assert reply.status == status


async def test_link_bodies_are_small(worker: Worker) -> None:
    link = await mint(worker, kind="unsubscribe", controller="kms-uk", subject_id=unique("s"))
    reply = await worker.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click&pad=" + "x" * 5000, headers=ONE_CLICK
    )
    assert reply.status == 413
