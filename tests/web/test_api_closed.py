"""An API with no API keys and no token secret stays closed, never open. And one whose links
would not be HTTPS mints none. In process, over the in-memory backend."""

from __future__ import annotations

import logging

import pytest

from tests.support.fake_backend import serve
from tests.support.http import decision_path, event
from tests.support.kafka import unique
from tests.support.keys import ALL_KEY, API_ENV, TOKENS_KEY


async def test_without_keys_everything_personal_is_401() -> None:
    subject = unique("s")
    async with serve({}) as closed:
        for key in (None, ALL_KEY):
            api = closed.api(key)
            for reply in (
                await api.get(decision_path("kms-uk", subject, "marketing-email", "email")),
                await api.get(f"/v1/controllers/kms-uk/subjects/{subject}/preferences"),
                await api.post("/v1/events", json=event("unsubscribed", "kms-uk", subject)),
                await api.post(f"/v1/controllers/kms-uk/subjects/{subject}/signals"),
                await api.post(
                    "/v1/tokens",
                    json={"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "s"},
                ),
            ):
                assert reply.status == 401
        assert closed.backend.published == []


async def test_without_a_secret_links_are_unavailable() -> None:
    async with serve({}) as closed:
        for method in ("GET", "POST"):
            reply = await closed.api(None).call(method, "/v1/unsubscribe/v1.abc.def")
            assert reply.status == 503 and reply.headers["Retry-After"] == "1"
            assert reply.headers["Content-Type"].startswith("text/html")


async def test_operations_stay_open(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="consent_streams.http"):
        async with serve({}) as closed:
            assert (await closed.api(None).get("/health")).status == 200
            assert (await closed.api(None).get("/ready")).status == 200
            assert (await closed.api(None).get("/metrics")).status == 200
    assert "no API keys configured" in caplog.text


async def test_no_http_links_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """Keys and a secret, but links would be http:// and that was not explicitly allowed."""
    env = {k: v for k, v in API_ENV.items() if k != "CONSENT_ALLOW_INSECURE_LINKS"}
    with caplog.at_level(logging.WARNING, logger="consent_streams.http"):
        async with serve(env) as plain_http:
            reply = await plain_http.api(TOKENS_KEY).post(
                "/v1/tokens",
                json={"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "s"},
            )
    assert reply.status == 503 and reply.json()["error"] == "links_not_secure"
    assert "RFC 8058" in reply.json()["message"]
    assert "CONSENT_PUBLIC_URL" in caplog.text
