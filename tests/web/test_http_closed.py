"""A worker with no API keys and no token secret: the API stays closed, never open."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import unique
from tests.web.conftest import ALL_KEY, Worker, decision_path, event, make_worker

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
