"""Session-wide fixtures: one Kafka-protocol broker per test session.

With KAFKA_BOOTSTRAP_SERVERS set the suite runs against that cluster instead of the embedded
broker; every test uses its own application id, so topics and groups never collide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.support.examples  # noqa: F401  (registers the quick Hypothesis profile)
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make quick` runs `-m "not integration"`: a test that needs the broker must say so."""
    unmarked = [
        item.nodeid
        for item in items
        if "bootstrap" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("integration") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use the broker without the integration marker: " + ", ".join(unmarked)
        )
