"""The worker's cyclic garbage collector settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streams.worker import GC_THRESHOLDS, quiet_collector


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_the_worker_collects_less_often_and_leaves_what_it_started_with_alone() -> None:
    gc.unfreeze()
    quiet_collector()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # Python's default
    assert gc.get_freeze_count() > 1_000  # modules, functions and classes loaded so far
