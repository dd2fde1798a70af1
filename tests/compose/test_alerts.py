"""The shipped Prometheus alerting rules: well formed, and every metric they name is one a
worker's /metrics exports (promtool is not a Python package, so the expressions are read here:
strings, label matchers, ranges and grouping lists are dropped, and the identifiers left that
are neither functions nor keywords must be exported sample names)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client.metrics_core import Metric

from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.timers import TimerPlan
from streams.pipeline.clocks import ClockBook
from streams.pipeline.timers import Ticker, TimerIndex
from streams.pipeline.web_backend import FaustBackend
from streams.settings import Settings
from streams.topology import TopicNames
from streams.web.metrics import HttpStats, registry_for

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "compose" / "prometheus" / "alerts.yml"

FUNCTIONS = {"histogram_quantile", "rate", "increase", "min_over_time", "max_over_time"}
AGGREGATIONS = {"sum", "min", "max", "avg", "count"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "bool", "offset"}
_DURATION = re.compile(r"^\d+[smhdwy]$")
_FOR = re.compile(r"^(\d+[smh])+$")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def exported() -> set[str]:
    """Sample names a worker exposes: every family of the /metrics registry, with the
    suffixes the text format gives counters and histograms."""
    app = SimpleNamespace(consumer=None, assignor=SimpleNamespace(assigned_actives=lambda: set()))
    table = SimpleNamespace(changelog_topic=SimpleNamespace(get_topic_name=lambda: "changelog"))
    from streams.app import Counters

    policy = load_policy()
    timers = SimpleNamespace(
        data=SimpleNamespace(data={}),
        partitions=1,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "timers"),
    )
    engine = Engine(policy)
    index = TimerIndex(timers, TimerPlan(policy, engine.plans))
    names = TopicNames.of(Settings.from_env({}))
    ticker = Ticker(app, index, None, names, lambda: None, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    backend = FaustBackend(app, table, Counters(), names, ClockBook(policy), ticker=ticker)
    backend.ready = lambda: False  # type: ignore[method-assign]
    backend.settled = lambda: False  # type: ignore[method-assign]
    names: set[str] = set()
    family: Metric
    for family in registry_for(backend, HttpStats()).collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping lists
    found = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        called = text[match.end() :].lstrip().startswith("(")
        if word in KEYWORDS or _DURATION.match(word):
            continue
        if called:
            assert word in FUNCTIONS | AGGREGATIONS, f"unknown function {word} in {expr!r}"
            continue
        found.add(word)
    return found


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_is_complete(rule: dict[str, Any]) -> None:
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
    assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert "for" not in rule or _FOR.match(rule["for"])
    assert rule["expr"].count("(") == rule["expr"].count(")")


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_expression_names_exported_metrics(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, rule["expr"]
    assert names <= exported(), names - exported()


def test_the_rules_cover_risk_and_misses() -> None:
    named = {name for rule in rules() for name in metric_names(rule["expr"])}
    assert {
        "consent_streams_deadline_least_remaining_ratio",
        "consent_streams_deadline_overdue_clocks",
        "consent_streams_deadline_missed_total",
    } <= named
    assert "consent_streams_timers_oldest_overdue_seconds" in named
    at_risk = next(r for r in rules() if r["alert"] == "ConsentDeadlineAtRisk")
    assert at_risk["expr"].rstrip().endswith("< 0.2")


def test_a_misspelt_metric_would_be_caught() -> None:
    assert metric_names("sum by (rule) (consent_streams_deadline_misssed_total) > 0") == {
        "consent_streams_deadline_misssed_total"
    }
    assert "consent_streams_deadline_misssed_total" not in exported()


def test_the_compose_readme_points_at_the_rules() -> None:
    assert "prometheus/alerts.yml" in (ROOT / "compose" / "README.md").read_text()
