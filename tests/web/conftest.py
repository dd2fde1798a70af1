"""Workers with the HTTP API on the session's broker, and the API over an in-memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.fake_backend import Served, serve
from tests.support.keys import API_ENV
from tests.support.worker import Worker, make_worker


@pytest.fixture(scope="package")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker with keys of every scope and a token secret, shared by tests/web."""
    running = make_worker(bootstrap, tmp_path_factory.mktemp("api-worker"), **API_ENV)
    try:
        running.process.start()
        yield running
    finally:
        running.process.stop()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The API in this process over an in-memory backend, with keys of every scope."""
    async with serve() as running:
        yield running
