"""Shared fixtures of the resilience suite, and the summary it prints and writes.

``make test`` runs the short version; ``CONSENT_RESILIENCE=full`` (``make resilience``) runs
every part longer and harder. Figures go to ``resilience-report.json`` at the repository root.
"""

from __future__ import annotations

import pytest

from streams.core.policy import Policy, load_policy
from tests.resilience.report import MODE, REPORT_PATH, Mode, Report

_REPORT = Report(MODE)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "resilience: crash, failover, hostile input, soak and broker-trouble checks"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/resilience/" not in report.nodeid:
        return
    if report.when == "call" or report.outcome != "passed":
        current = _REPORT.outcomes.get(report.nodeid)
        if current != "failed":
            _REPORT.outcomes[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _REPORT.outcomes:
        return
    terminalreporter.write_line("")
    for line in _REPORT.table():
        terminalreporter.write_line(line)
    _REPORT.write()
    terminalreporter.write_line(f"figures written to {REPORT_PATH}")


@pytest.fixture(scope="session")
def report() -> Report:
    return _REPORT


@pytest.fixture(scope="session")
def mode() -> Mode:
    return MODE


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()
