"""The systems under test: how each is started and where it writes."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.peers.plain import OUTPUT_TOPIC
from bench.processes import Child, python_env
from streams.broker import free_port
from streams.pipeline.batches import FIRST_FETCH
from streams.topology import DEFAULT_PARTITIONS

#: Faust's aiokafka driver passes this to its consumer; no Faust setting changes it (the
#: worker's own driver, streams/transport.py, takes CONSENT_FETCH_WAIT_MS instead).
FAUST_FETCH_WAIT_MS = 1500
DESTINATIONS = ("email", "crm", "analytics")


@dataclass(frozen=True, slots=True)
class Run:
    """Names and places of one measurement: unique topics, group and data directory."""

    bootstrap: str
    workdir: Path
    partitions: int = DEFAULT_PARTITIONS
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    web_port: int = field(default_factory=free_port)

    @property
    def app_id(self) -> str:
        return f"bench-{self.tag}"

    @property
    def prefix(self) -> str:
        return f"{self.app_id}."

    @property
    def events_topic(self) -> str:
        return f"{self.prefix}consent.events"

    @property
    def suppression_topics(self) -> dict[str, str]:
        return {d: f"{self.prefix}consent.suppressions.{d}" for d in DESTINATIONS}

    @property
    def deadletter_topic(self) -> str:
        return f"{self.prefix}consent.deadletter"

    @property
    def transport_topic(self) -> str:
        return self.prefix + OUTPUT_TOPIC

    @property
    def public_topics(self) -> list[str]:
        return [self.events_topic, *self.suppression_topics.values(), self.deadletter_topic]

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-subjects-changelog"

    @property
    def data_dir(self) -> Path:
        # Per run: a kept --workdir used again must not hand a new broker's topics the stores
        # of an earlier run (the worker would stop on their offsets).
        return self.workdir / "data" / self.tag


@dataclass(frozen=True, slots=True)
class System:
    key: str
    label: str
    stateful: bool
    #: None: the consumer's fetch wait is ours to set; else what the system always uses.
    fixed_fetch_wait_ms: int | None
    module: str
    #: Environment the worker gets on top of the run's (a variant of the worker's settings).
    settings: tuple[tuple[str, str], ...] = ()

    @property
    def is_worker(self) -> bool:
        """This project's worker (in any variant), not a peer."""
        return self.module == "streams.cli"

    def outputs(self, run: Run) -> list[str]:
        if not self.stateful:
            return [run.transport_topic]
        return [*run.suppression_topics.values(), run.deadletter_topic]

    def fetch_wait(self, wanted: int) -> int:
        return self.fixed_fetch_wait_ms if self.fixed_fetch_wait_ms is not None else wanted

    def launch(
        self,
        run: Run,
        fetch_wait_ms: int,
        *,
        log_name: str,
        watch: tuple[str, ...] = (),
        extra_env: dict[str, str] | None = None,
    ) -> Child:
        run.data_dir.mkdir(parents=True, exist_ok=True)
        if self.is_worker:
            watch = (*watch, FIRST_FETCH)
            argv = [sys.executable, "-m", "streams.cli", "worker"]
            env = python_env(
                {
                    "KAFKA_BOOTSTRAP_SERVERS": run.bootstrap,
                    "CONSENT_APP_ID": run.app_id,
                    "CONSENT_TOPIC_PREFIX": run.prefix,
                    "CONSENT_DATA_DIR": str(run.data_dir),
                    "CONSENT_WEB_PORT": str(run.web_port),
                    "CONSENT_SESSION_TIMEOUT": "6",
                    "CONSENT_LOG_LEVEL": "INFO",
                    "CONSENT_FETCH_WAIT_MS": str(fetch_wait_ms),
                    **dict(self.settings),
                    **(extra_env or {}),
                }
            )
        else:
            argv = [
                sys.executable,
                "-m",
                self.module,
                "--bootstrap",
                run.bootstrap,
                "--prefix",
                run.prefix,
                "--group",
                run.app_id,
                "--state-dir",
                str(run.data_dir),
                "--fetch-wait-ms",
                str(self.fetch_wait(fetch_wait_ms)),
                "--partitions",
                str(run.partitions),
            ]
            env = python_env(extra_env or {})
        child = Child(argv, env, run.workdir / log_name, run.workdir, watch)
        return child.start()

    async def first_consume(self, run: Run, child: Child) -> float | None:
        """Wall time the system consumed its first input record, if it can say."""
        if self.is_worker:
            return child.seen.get(FIRST_FETCH)  # when the worker's line reached us
        found = child.marks.get("first_consume")
        return float(found) if found else None


TRANSPORT = System("transport", "transport limit (aiokafka loop)", False, None, "bench.peers.plain")
CONSENT_STREAMS = System("consent-streams", "consent-streams worker", True, None, "streams.cli")
#: The same worker without the consent ledger: what the ledger costs, in the same run.
NO_LEDGER = System(
    "consent-streams-no-ledger",
    "consent-streams worker, ledger off",
    True,
    None,
    "streams.cli",
    (("CONSENT_LEDGER", "false"),),
)
FAUST_NAIVE = System(
    "faust-naive", "naive Faust agent", True, FAUST_FETCH_WAIT_MS, "bench.peers.faust_naive"
)
QUIX = System("quix", "Quix Streams", True, None, "bench.peers.quix")
SYSTEMS: dict[str, System] = {
    s.key: s for s in (TRANSPORT, CONSENT_STREAMS, NO_LEDGER, FAUST_NAIVE, QUIX)
}
