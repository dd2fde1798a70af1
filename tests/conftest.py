"""Session-wide fixtures: one Kafka-protocol broker per test session.

With KAFKA_BOOTSTRAP_SERVERS set the suite runs against that cluster instead of the embedded
broker; every test uses its own application id, so topics and groups never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    logs: Path = tmp_path_factory.mktemp("broker")
    with EmbeddedBroker(log_dir=logs) as broker:
        yield broker.bootstrap
