"""Routing decisions over the backend interface: answer here, forward once, or 503."""

from __future__ import annotations

import pytest
from yarl import URL

from streams.web.routing import Local, Remote, Router, Unavailable
from tests.support.fake_backend import FakeBackend

PEER = "http://127.0.0.1:7002"


def key_in(backend: FakeBackend, partition: int) -> bytes:
    return next(
        k for k in (f"c/s{n}".encode() for n in range(1000)) if backend.partition_of(k) == partition
    )


def test_active_partitions_are_answered_here_others_by_their_owner() -> None:
    backend = FakeBackend(active={0, 1, 2}, owners={p: PEER for p in (3, 4, 5)})
    router = Router(backend)
    assert router.locate(key_in(backend, 1)) == Local(1)
    assert router.locate(key_in(backend, 4)) == Remote(4, URL(PEER))


def test_nothing_is_answered_while_ownership_moves() -> None:
    backend = FakeBackend(is_settled=False)
    with pytest.raises(Unavailable):
        Router(backend).locate(key_in(backend, 1))


def test_a_partition_nobody_owns_is_unavailable() -> None:
    backend = FakeBackend(active={0})
    with pytest.raises(Unavailable):
        Router(backend).locate(key_in(backend, 5))
