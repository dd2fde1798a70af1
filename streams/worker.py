"""Run one worker: resolve the broker (embedded unless configured), create topics, run Faust."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import logging.config
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.broker import EmbeddedBroker
from streams.core.policy import Policy, load_policy
from streams.settings import Settings
from streams.topology import DEFAULT_PARTITIONS, TopicNames

if TYPE_CHECKING:
    from streams.app import ConsentStreams

log = logging.getLogger("consent_streams")

#: Exit codes a supervisor sees (besides 0 for a requested stop, 1 for a crash, 2 for an
#: invalid configuration). Documented in docs/guarantees.md, "Broker trouble".
EXIT_BROKER_UNREACHABLE = 75  # EX_TEMPFAIL: the broker did not answer within CONSENT_BROKER_WAIT
EXIT_CLUSTER_CHANGED = 76  # the cluster lost this worker's topics or records
#: EX_DATAERR: a fetch could not be read (a compression codec this process lacks, a corrupt
#: batch, a fetch error the client does not retry). A restart reads the same fetch again, so
#: this needs an operator; the log names the topic, partition and offset.
EXIT_UNREADABLE_FETCH = 65
#: Consecutive looks that must agree before a cluster is taken to have lost the worker's data.
LOSS_LOOKS = 3


#: Allocations of container objects between the cyclic collector's young collections (Python's
#: default is 700), and how many young (middle) collections between middle (full) ones. The
#: fold allocates some hundred small objects per event and keeps the decoded states: with the
#: defaults the collector ran ~20 times per 1,000-event batch and re-scanned the surviving
#: states, about a fifth of the fold's CPU (docs/performance.md). Garbage here is freed by
#: reference counting; few cycles wait longer for the collector.
GC_THRESHOLDS = (50_000, 20, 10)


def quiet_collector(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect cycles less often, and never scan again what exists at start (modules, Faust,
    the policy): it lives as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


@contextlib.contextmanager
def bootstrap_servers(settings: Settings) -> Iterator[str]:
    """The configured cluster, or an embedded broker that lives as long as the context."""
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    with EmbeddedBroker() as broker:
        log.info("embedded broker started", extra={"bootstrap": broker.bootstrap})
        yield broker.bootstrap


async def ensure_topics(
    bootstrap: str,
    topics: tuple[str, ...],
    partitions: int = DEFAULT_PARTITIONS,
    configs: Mapping[str, dict[str, str]] | None = None,
    replication_factor: int = 1,
) -> list[str]:
    """Create the public topics that do not exist yet; returns the ones created.

    Existing topics are left as they are: their configs are the operator's.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="consent-streams-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        t,
                        num_partitions=partitions,
                        replication_factor=replication_factor,
                        topic_configs=(configs or {}).get(t, {}),
                    )
                    for t in missing
                ]
            )
        return missing
    finally:
        await admin.close()


def exit_now(code: int) -> None:
    """End the process at once with ``code``, committing nothing; the logs are flushed first.

    Whatever was not committed is redelivered after the restart (the at-least-once path).
    """
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)


async def wait_for_broker(bootstrap: str, timeout: float) -> bool:
    """Retry until the cluster answers (True) or ``timeout`` seconds have passed (False).

    Every failed attempt is logged with the time left, so an operator sees why a worker is not
    ready yet instead of a stack trace.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.errors import KafkaError

    started = time.monotonic()
    pause = 0.5
    attempt = 0
    while True:
        attempt += 1
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap, client_id="consent-streams-probe", request_timeout_ms=5000
        )
        try:
            await client.bootstrap()
        except KafkaError as exc:
            error = str(exc)
        else:
            if attempt > 1:
                waited = round(time.monotonic() - started, 1)
                log.info("broker reachable", extra={"bootstrap": bootstrap, "waited_s": waited})
            return True
        finally:
            await client.close()
        left = timeout - (time.monotonic() - started)
        details = {"bootstrap": bootstrap, "attempt": attempt, "error": error}
        if left <= 0:
            log.error(
                "broker not reachable; giving up",
                extra={**details, "waited_s": timeout, "exit_code": EXIT_BROKER_UNREACHABLE},
            )
            return False
        pause = min(pause, left)
        log.warning(
            "broker not reachable; retrying",
            extra={**details, "retry_in_s": round(pause, 1), "gives_up_in_s": round(left, 1)},
        )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 5.0)


class BrokerWatch:
    """Ends the worker when the cluster stays unreachable, or comes back without its data.

    While the broker is away, the Kafka client retries for ever and the worker looks alive
    without doing anything. A cluster that returns without the worker's topics, with other
    partition counts, or with end offsets lower than before, no longer holds the offsets and
    changelog the tables rely on, and the worker cannot tell what was lost. In both cases it
    exits without committing (the second once :data:`LOSS_LOOKS` consecutive looks agree):
    after a restart by its supervisor, redelivery of what was not committed is the ordinary
    at-least-once path.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        grace: float,
        exit: Callable[[int], object] = exit_now,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.grace = grace
        self.interval = max(1.0, min(5.0, grace / 4))
        self._exit = exit
        self._client: Any = None  # metadata
        self._consumer: Any = None  # end offsets
        self._partitions: dict[str, int] = {}
        self._ends: dict[tuple[str, int], int] = {}
        self._unreachable_since: float | None = None
        self._strikes = 0

    async def check(self) -> None:
        """One look at the cluster; called every :attr:`interval` seconds."""
        try:
            partitions, ends = await asyncio.wait_for(self._observe(), self.interval * 2)
        except Exception as exc:  # unreachable, timed out, or the client gave up
            self._unreachable(f"{type(exc).__name__}: {exc}")
            return
        if self._unreachable_since is not None:
            away = round(time.monotonic() - self._unreachable_since, 1)
            log.warning("broker reachable again", extra={"unreachable_s": away})
            self._unreachable_since = None
        problem = self._lost(partitions, ends)
        if problem:
            # Confirmed over consecutive looks: metadata can briefly leave out a topic whose
            # leader is being elected (a broker restarting with its data).
            self._strikes += 1
            log.warning(
                "cluster does not match what this worker saw before",
                extra={"reason": problem, "look": self._strikes, "exits_after": LOSS_LOOKS},
            )
            if self._strikes >= LOSS_LOOKS:
                self._stop(EXIT_CLUSTER_CHANGED, "the cluster lost this worker's data", problem)
            return
        self._strikes = 0
        self._partitions.update(partitions)
        self._ends.update(ends)

    async def _observe(self) -> tuple[dict[str, int], dict[tuple[str, int], int]]:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.client import AIOKafkaClient

        timeout_ms = int(self.interval * 2000)
        if self._client is None:
            client = AIOKafkaClient(
                bootstrap_servers=self.bootstrap,
                client_id="consent-streams-watch",
                request_timeout_ms=timeout_ms,
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                client_id="consent-streams-watch",
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=timeout_ms,
            )
            try:
                await client.bootstrap()
                await consumer.start()
            except BaseException:
                await consumer.stop()
                await client.close()
                raise
            self._client, self._consumer = client, consumer
        cluster = await self._client.fetch_all_metadata()
        partitions = {
            topic: len(cluster.partitions_for_topic(topic) or ())
            for topic in self.topics
            if topic in cluster.topics()
        }
        tps = [TopicPartition(t, p) for t, count in partitions.items() for p in range(count)]
        ends = await self._consumer.end_offsets(tps) if tps else {}
        return partitions, {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    def _lost(
        self, partitions: Mapping[str, int], ends: Mapping[tuple[str, int], int]
    ) -> str | None:
        for topic, count in self._partitions.items():
            if topic not in partitions:
                return f"topic {topic} no longer exists"
            if partitions[topic] != count:
                return f"topic {topic} has {partitions[topic]} partitions, not {count}"
        for (topic, partition), before in self._ends.items():
            now = ends.get((topic, partition))
            if now is not None and now < before:
                return f"end offset of {topic}[{partition}] went back from {before} to {now}"
        return None

    def _unreachable(self, error: str) -> None:
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
            log.warning(
                "broker unreachable",
                extra={"bootstrap": self.bootstrap, "error": error, "gives_up_in_s": self.grace},
            )
        elif now - self._unreachable_since >= self.grace:
            self._stop(EXIT_BROKER_UNREACHABLE, "broker unreachable; giving up", error)

    def _stop(self, code: int, message: str, reason: str) -> None:
        log.error(message, extra={"reason": reason, "exit_code": code, "bootstrap": self.bootstrap})
        self._exit(code)


def run_worker(
    settings: Settings,
    policy: Policy | None = None,
    *,
    attach: Callable[[ConsentStreams, Settings], None] | None = None,
) -> int:
    """Blocks until the worker is stopped (SIGINT/SIGTERM); returns the exit code.

    ``attach`` adds to the app before it starts (the CLI passes the HTTP API, which sits above
    the pipeline and so is not imported here).
    """
    import faust

    from streams.app import create_app
    from streams.logs import logging_config

    policy = policy or load_policy(settings.policy_file)
    wait = settings.broker_wait
    logging.config.dictConfig(logging_config(settings.log_level))
    if not settings.bootstrap_servers:
        # The embedded broker keeps nothing across runs; neither may the tables.
        fresh = Path(tempfile.mkdtemp(prefix="consent-data-"))
        settings = settings.model_copy(update={"data_dir": fresh})
    with bootstrap_servers(settings) as bootstrap:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        if not loop.run_until_complete(wait_for_broker(bootstrap, wait)):
            return EXIT_BROKER_UNREACHABLE
        topics = TopicNames.of(settings)
        loop.run_until_complete(
            ensure_topics(
                bootstrap,
                topics.public,
                configs=topics.public_configs,
                replication_factor=settings.replication_factor,
            )
        )
        streams = create_app(settings, policy, bootstrap=bootstrap)
        if attach is not None:
            attach(streams, settings)
        watch = BrokerWatch(
            bootstrap,
            (
                topics.events,
                topics.by_subject,
                streams.subjects.changelog_topic.get_topic_name(),
            ),
            grace=wait,
        )
        streams.app.timer(interval=watch.interval, name="broker-watch")(watch.check)
        worker = faust.Worker(
            streams.app,
            loop=loop,
            loglevel=settings.log_level,
            logging_config=logging_config(settings.log_level),
            redirect_stdouts=False,
        )
        quiet_collector()
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0
