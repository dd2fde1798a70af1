"""A running pipeline per test module: a real worker on the session broker, unique topics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.settings import Settings
from streams.topology import Topology
from tests.support.kafka import unique
from tests.support.worker import WorkerProcess


@dataclass
class Pipeline:
    bootstrap: str
    topics: Topology
    worker: WorkerProcess


def pipeline_for(bootstrap: str, tmp: Path, **extra_env: str) -> Pipeline:
    app_id = unique("it")
    prefix = f"{app_id}."
    settings = Settings(app_id=app_id, topic_prefix=prefix)
    worker = WorkerProcess(
        bootstrap,
        app_id,
        tmp / "data",
        tmp / "worker.log",
        extra_env={"CONSENT_TOPIC_PREFIX": prefix, **extra_env},
    )
    return Pipeline(bootstrap, Topology.of(settings), worker)


@pytest.fixture(scope="module")
def pipeline(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    running = pipeline_for(bootstrap, tmp_path_factory.mktemp("pipeline"))
    running.worker.start()
    yield running
    running.worker.stop()
