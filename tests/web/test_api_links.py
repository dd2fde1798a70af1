"""Links in process over the in-memory backend: minting, refusals and pages that publish
nothing. Clicks that change decisions are tested against a worker (test_http_links.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.security.tokens import Signer, TokenKind
from tests.support.fake_backend import Served
from tests.support.http import ONE_CLICK, local_token
from tests.support.kafka import unique
from tests.support.keys import READ_KEY, SECRET, TOKENS_KEY, WRITE_KEY


async def mint(served: Served, **request: Any) -> dict[str, Any]:
    reply = await served.api(TOKENS_KEY).post("/v1/tokens", json=request)
    assert reply.status == 201, reply.text
    minted: dict[str, Any] = reply.json()
    return minted


@pytest.mark.parametrize("body", ["", "List-Unsubscribe=Yes", "x=1"])
async def test_one_click_needs_the_rfc_8058_body(served: Served, body: str) -> None:
    link = await mint(served, kind="unsubscribe", controller="kms-uk", subject_id=unique("r"))
    reply = await served.api(None).post(link["url"], data=body, headers=ONE_CLICK)
    assert reply.status == 400
    assert served.backend.published == []


async def test_forged_expired_and_misused_tokens(served: Served) -> None:
    subject = unique("victim")
    good = await mint(served, kind="unsubscribe", controller="kms-uk", subject_id=subject)
    token = good["token"]
    other_secret = Signer.from_config("z" * 40).mint(
        Signer.from_config(SECRET).verify(good["token"])
    )
    expired = local_token(
        TokenKind.UNSUBSCRIBE, datetime.now(UTC) - timedelta(seconds=1), subject_id=subject
    )
    confirm = await mint(
        served, kind="confirm", controller="hms-se", subject_id=subject, purpose="newsletter"
    )
    cases = {
        f"{token[:-2]}{'AA' if token[-2:] != 'AA' else 'BB'}": 404,
        f"{token[:10]}xyz{token[13:]}": 404,
        other_secret: 404,
        "not-a-token": 404,
        expired: 410,
        confirm["token"]: 404,  # a confirmation token is not an unsubscribe token
    }
    api = served.api(None)
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
    assert served.backend.published == []


async def test_minting_over_the_api(served: Served) -> None:
    api = served.api(TOKENS_KEY)
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
        reply = await served.api(key).post(
            "/v1/tokens", json={"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a"}
        )
        assert reply.status == status


async def test_link_bodies_are_small(served: Served) -> None:
    link = await mint(served, kind="unsubscribe", controller="kms-uk", subject_id=unique("s"))
    reply = await served.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click&pad=" + "x" * 5000, headers=ONE_CLICK
    )
    assert reply.status == 413
    assert served.backend.published == []


async def test_unsubscribe_from_all_marketing_offers_no_blanket_resubscribe(
    served: Served,
) -> None:
    link = await mint(served, kind="unsubscribe", controller="sms-tech", subject_id=unique("s"))
    done = await served.api(None).post(
        link["url"], data="List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert done.status == 200 and "/confirm/" not in done.text
    assert "contact Smart Manufacturing Solutions Technology" in done.text


async def test_no_links_for_contract_or_legal_obligation(served: Served) -> None:
    reply = await served.api(TOKENS_KEY).post(
        "/v1/tokens",
        json=[
            {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "a", "purpose": p}
            for p in ("billing", "legal-compliance", "marketing-email")
        ],
    )
    assert reply.status == 422
    items = reply.json()["items"]
    assert [item["index"] for item in items] == [0, 1]
    assert "contract" in items[0]["errors"][0]["msg"]
    assert "legal_obligation" in items[1]["errors"][0]["msg"]
