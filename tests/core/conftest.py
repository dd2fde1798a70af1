"""Fixtures for the pure core: a compact policy covering every legal basis and category."""

from __future__ import annotations

import pytest

from streams.core.engine import Engine
from streams.core.policy import Policy, parse_policy
from tests.support.core import POLICY_TOML, MakeEvent, make_event


@pytest.fixture(scope="session")
def policy() -> Policy:
    return parse_policy(POLICY_TOML, "test-policy.toml")


@pytest.fixture(scope="session")
def engine(policy: Policy) -> Engine:
    return Engine(policy)


@pytest.fixture
def event() -> MakeEvent:
    return make_event
