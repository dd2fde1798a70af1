"""Writes refused before anything is published: bodies, limits, scopes and signals, in process
over the in-memory backend. What reaches the topic is tested against a worker
(test_http_writes.py)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from streams.web.models import MAX_BATCH
from tests.support.fake_backend import Served
from tests.support.http import event
from tests.support.kafka import unique
from tests.support.keys import READ_KEY, TOKENS_KEY, WRITE_KEY


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"[]", 400, "empty_batch"),
        (b"x" * (1024 * 1024 + 1), 413, "body_too_large"),
    ],
)
async def test_bad_bodies(served: Served, body: bytes, status: int, error: str) -> None:
    reply = await served.api(WRITE_KEY).post(
        "/v1/events", data=body, headers={"Content-Type": "application/json"}
    )
    assert (reply.status, reply.json()["error"]) == (status, error)
    assert served.backend.published == []


async def test_batch_limit(served: Served) -> None:
    subject = unique("big")
    batch = [event("unsubscribed", "kms-uk", subject) for _ in range(MAX_BATCH + 1)]
    reply = await served.api(WRITE_KEY).post("/v1/events", json=batch)
    assert (reply.status, reply.json()["error"]) == (413, "batch_too_large")


async def test_chunked_body_over_the_limit(served: Served) -> None:
    async def chunks() -> Any:
        for _ in range(300):
            yield b"x" * 4096

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{served.url}/v1/events",
            data=chunks(),
            headers={"Authorization": f"Bearer {WRITE_KEY}"},
        ) as reply,
    ):
        assert reply.status == 413
        assert (await reply.json())["error"] == "body_too_large"


@pytest.mark.parametrize(("key", "status"), [(None, 401), (READ_KEY, 403), (TOKENS_KEY, 403)])
async def test_writes_need_write_scope(served: Served, key: str | None, status: int) -> None:
    subject = unique("s")
    for path, body in (
        ("/v1/events", event("unsubscribed", "kms-uk", subject)),
        (f"/v1/controllers/kms-uk/subjects/{subject}/signals", None),
    ):
        reply = await served.api(key).post(path, json=body, headers={"Sec-GPC": "1"})
        assert reply.status == status
    assert served.backend.published == []


async def test_publish_failure_is_503_with_retry_after(served: Served) -> None:
    served.backend.fail_publishing = True
    reply = await served.api(WRITE_KEY).post(
        "/v1/events", json=event("unsubscribed", "kms-uk", unique("s"))
    )
    assert (reply.status, reply.json()["error"]) == (503, "publish_failed")
    assert reply.headers["Retry-After"] == "1"


async def test_dnt_is_ignored_where_the_policy_does_not_honour_it(served: Served) -> None:
    subject = unique("visitor")
    reply = await served.api(WRITE_KEY).post(
        f"/v1/controllers/sms-tech/subjects/{subject}/signals", headers={"DNT": "1"}
    )
    assert reply.status == 200
    assert reply.json()["published"] == []
    assert reply.json()["ignored"][0]["signal"] == "dnt"
    assert served.backend.published == []


async def test_signals_take_no_body(served: Served) -> None:
    reply = await served.api(WRITE_KEY).post(
        f"/v1/controllers/kms-uk/subjects/{unique('s')}/signals",
        data=b"x" * 5000,
        headers={"Sec-GPC": "1"},
    )
    assert (reply.status, reply.json()["error"]) == (413, "body_too_large")


async def test_signals_for_unknown_controller(served: Served) -> None:
    reply = await served.api(WRITE_KEY).post(
        "/v1/controllers/acme/subjects/s/signals", headers={"Sec-GPC": "1"}
    )
    assert (reply.status, reply.json()["error"]) == (404, "unknown_controller")
