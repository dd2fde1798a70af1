"""A worker with no API keys and no token secret: the API stays closed, never open. And one
whose links would not be HTTPS: it mints none."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import unique
from tests.web.conftest import (
    ALL_KEY,
    API_ENV,
    TOKENS_KEY,
    Worker,
    decision_path,
    event,
    make_worker,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def closed(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    running = make_worker(bootstrap, tmp_path_factory.mktemp("closed-worker"))
    running.process.start()
    yield running
    running.process.stop()


async def test_without_keys_everything_personal_is_401(closed: Worker) -> None:
    subject = unique("s")
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


async def test_without_a_secret_links_are_unavailable(closed: Worker) -> None:
    for method in ("GET", "POST"):
        reply = await closed.api(None).call(method, "/v1/unsubscribe/v1.abc.def")
        assert reply.status == 503 and reply.headers["Retry-After"] == "1"
        assert reply.headers["Content-Type"].startswith("text/html")


async def test_operations_stay_open(closed: Worker) -> None:
    assert (await closed.api(None).get("/health")).status == 200
    assert (await closed.api(None).get("/ready")).status == 200
    assert (await closed.api(None).get("/metrics")).status == 200
    assert "no API keys configured" in closed.process.log_path.read_text()


@pytest.fixture(scope="module")
def plain_http(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """Keys and a secret, but links would be http:// and that was not explicitly allowed."""
    env = {k: v for k, v in API_ENV.items() if k != "CONSENT_ALLOW_INSECURE_LINKS"}
    running = make_worker(bootstrap, tmp_path_factory.mktemp("http-links-worker"), **env)
    running.process.start()
    yield running
    running.process.stop()


async def test_no_http_links_unless_allowed(plain_http: Worker) -> None:
    reply = await plain_http.api(TOKENS_KEY).post(
        "/v1/tokens", json={"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "s"}
    )
    assert reply.status == 503 and reply.json()["error"] == "links_not_secure"
    assert "RFC 8058" in reply.json()["message"]
    assert "CONSENT_PUBLIC_URL" in plain_http.process.log_path.read_text()
