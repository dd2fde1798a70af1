"""Workers for the tests: the process helper from the package, and a worker with the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streams.process import WorkerProcess
from streams.settings import Settings
from streams.topology import TopicNames
from tests.support.http import Api
from tests.support.kafka import unique
from tests.support.keys import ALL_KEY

__all__ = ["TIMERS_OFF", "Worker", "WorkerProcess", "make_worker"]

#: The suites that judge outputs against the decision over the events they publish keep the
#: worker's timers off: their events carry fixed past times, so the shipped policy's retention
#: clocks would come due and add erase instructions and events of the worker's own (a date
#: bomb, too). The timers have their own suites (tests/integration/test_timers.py,
#: tests/resilience/test_timer_crash.py), which pass CONSENT_TIMERS=true.
TIMERS_OFF = {"CONSENT_TIMERS": "false"}


@dataclass
class Worker:
    process: WorkerProcess
    topics: TopicNames
    bootstrap: str

    @property
    def url(self) -> str:
        return self.process.url

    def api(self, key: str | None = ALL_KEY) -> Api:
        return Api(self.url, key)


def make_worker(bootstrap: str, tmp: Path, app_id: str | None = None, **env: str) -> Worker:
    """A worker not started yet: whoever starts its process stops it."""
    app_id = app_id or unique("web")
    prefix = f"{app_id}."
    process = WorkerProcess(
        bootstrap,
        app_id,
        tmp / "data",
        tmp / "worker.log",
        extra_env={"CONSENT_TOPIC_PREFIX": prefix, **TIMERS_OFF, **env},
    )
    topics = TopicNames.of(Settings(app_id=app_id, topic_prefix=prefix))
    return Worker(process, topics, bootstrap)
