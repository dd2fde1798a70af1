"""Run one worker: resolve the broker (embedded unless configured), create topics, run Faust."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

from streams.broker import EmbeddedBroker
from streams.core.policy import Policy, load_policy
from streams.settings import Settings
from streams.topology import DEFAULT_PARTITIONS, Topology

log = logging.getLogger("consent_streams")


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
    bootstrap: str, topics: tuple[str, ...], partitions: int = DEFAULT_PARTITIONS
) -> list[str]:
    """Create the public topics that do not exist yet; returns the ones created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="consent-streams-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
            )
        return missing
    finally:
        await admin.close()


def run_worker(settings: Settings, policy: Policy | None = None) -> int:
    """Blocks until the worker is stopped (SIGINT/SIGTERM); returns the exit code."""
    import faust

    from streams.app import create_app
    from streams.logs import logging_config

    policy = policy or load_policy(settings.policy_file)
    if not settings.bootstrap_servers:
        # The embedded broker keeps nothing across runs; neither may the tables.
        fresh = Path(tempfile.mkdtemp(prefix="consent-data-"))
        settings = settings.model_copy(update={"data_dir": fresh})
    with bootstrap_servers(settings) as bootstrap:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(ensure_topics(bootstrap, Topology.of(settings).public))
        streams = create_app(settings, policy, bootstrap=bootstrap)
        worker = faust.Worker(
            streams.app,
            loop=loop,
            loglevel=settings.log_level,
            logging_config=logging_config(settings.log_level),
            redirect_stdouts=False,
        )
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0
