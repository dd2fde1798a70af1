"""A pipeline for the integration tests: a real worker on the given broker, unique topics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streams.settings import Settings
from streams.topology import TopicNames
from tests.support.kafka import unique
from tests.support.worker import TIMERS_OFF, WorkerProcess


@dataclass
class Pipeline:
    bootstrap: str
    topics: TopicNames
    worker: WorkerProcess


def pipeline_for(bootstrap: str, tmp: Path, **extra_env: str) -> Pipeline:
    """A pipeline not started yet: whoever starts its worker stops it."""
    app_id = unique("it")
    prefix = f"{app_id}."
    settings = Settings(app_id=app_id, topic_prefix=prefix)
    worker = WorkerProcess(
        bootstrap,
        app_id,
        tmp / "data",
        tmp / "worker.log",
        extra_env={"CONSENT_TOPIC_PREFIX": prefix, **TIMERS_OFF, **extra_env},
    )
    return Pipeline(bootstrap, TopicNames.of(settings), worker)
