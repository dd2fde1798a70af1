"""Workers with the HTTP API on the session's broker, and a small HTTP client for the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDictProxy

from streams.security.apikeys import hash_key
from streams.settings import Settings
from streams.topology import Topology
from streams.web.demo_credentials import DEMO_API_KEY
from tests.support.kafka import unique
from tests.support.worker import WorkerProcess

if TYPE_CHECKING:
    from tests.web.fake import Served

READ_KEY = "cs_test-read-0123456789"
WRITE_KEY = "cs_test-write-0123456789"
TOKENS_KEY = "cs_test-tokens-0123456789"
ALL_KEY = "cs_test-all-0123456789"
SECRET = "test-secret-" + "0" * 32

API_ENV = {
    "CONSENT_API_KEYS": ",".join(
        f"{name}:{scopes}:{hash_key(key)}"
        for name, scopes, key in (
            ("reader", "read", READ_KEY),
            ("writer", "write", WRITE_KEY),
            ("mailer", "tokens", TOKENS_KEY),
            ("admin", "read+write+tokens", ALL_KEY),
            ("demo", "read+write+tokens", DEMO_API_KEY),  # docs/api.md examples
        )
    ),
    "CONSENT_TOKEN_SECRET": SECRET,
    # Links point at the worker's own http:// address in tests.
    "CONSENT_ALLOW_INSECURE_LINKS": "1",
}


@dataclass
class Worker:
    process: WorkerProcess
    topics: Topology
    bootstrap: str

    @property
    def url(self) -> str:
        return self.process.url

    def api(self, key: str | None = ALL_KEY) -> Api:
        return Api(self.url, key)


def make_worker(bootstrap: str, tmp: Path, app_id: str | None = None, **env: str) -> Worker:
    app_id = app_id or unique("web")
    prefix = f"{app_id}."
    process = WorkerProcess(
        bootstrap,
        app_id,
        tmp / "data",
        tmp / "worker.log",
        extra_env={"CONSENT_TOPIC_PREFIX": prefix, **env},
    )
    topics = Topology.of(Settings(app_id=app_id, topic_prefix=prefix))
    return Worker(process, topics, bootstrap)


@pytest.fixture(scope="package")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker with keys of every scope and a token secret, shared by tests/web."""
    running = make_worker(bootstrap, tmp_path_factory.mktemp("api-worker"), **API_ENV)
    running.process.start()
    yield running
    running.process.stop()


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Api:
    def __init__(self, base: str, key: str | None = ALL_KEY) -> None:
        self.base = base
        self.key = key

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        if json is not None:
            data = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else self.base + path
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, data=data, headers=sent, allow_redirects=False) as r,
        ):
            return Reply(r.status, r.headers, await r.read())

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.call("POST", path, **kwargs)


def decision_path(controller: str, subject: str, purpose: str, channel: str) -> str:
    return f"/v1/controllers/{controller}/subjects/{subject}/decisions/{purpose}?channel={channel}"


def event(type_: str, controller: str, subject: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": unique("evt"),
        "type": type_,
        "occurred_at": fields.pop("occurred_at", "2026-11-20T10:00:00Z"),
        "controller": controller,
        "subject_id": subject,
        **fields,
    }


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    accept: Callable[[Any], bool],
    timeout: float = 30.0,
) -> Any:
    """Call ``probe`` until ``accept`` holds for its result; returns that result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if accept(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s; last result: {result!r}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The API in this process over an in-memory backend, with keys of every scope."""
    from tests.web.fake import serve

    async with serve() as running:
        yield running
