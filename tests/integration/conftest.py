"""A running pipeline per test module: a real worker on the session broker, unique topics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.pipeline import Pipeline, pipeline_for


@pytest.fixture(scope="module")
def pipeline(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    running = pipeline_for(bootstrap, tmp_path_factory.mktemp("pipeline"))
    try:
        running.worker.start()
        yield running
    finally:
        running.worker.stop()
