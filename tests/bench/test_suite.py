"""How the suite orders repeated measurements, and how it sums them up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import latency, report
from bench.config import BenchConfig
from bench.suite import Suite


@dataclass
class Measured:
    events_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"events_per_s": self.events_per_s}


async def test_repeats_go_in_rounds_over_the_systems(tmp_path: Path) -> None:
    """A host that slows down during the run weighs on every system alike."""
    suite = Suite(BenchConfig(repeat=3, workdir=tmp_path), "bench", {})
    order: list[str] = []

    def measure(system: str, rate: float) -> Any:
        async def run(i: int) -> Measured:
            order.append(f"{system}{i}")
            if system == "b" and i == 2:
                raise RuntimeError("broker gone")
            return Measured(rate * i)

        return run

    found = await suite._rounds(
        "throughput",
        [("a", "a", "A", measure("a", 10.0)), ("b", "b", "B", measure("b", 1.0))],
        lambda r: str(r["events_per_s"]),
    )
    assert order == ["a1", "b1", "a2", "b2", "a3", "b3"]
    assert [r["events_per_s"] for r in found["a"]["runs"]] == [10.0, 20.0, 30.0]
    assert [r["events_per_s"] for r in found["b"]["runs"]] == [1.0, 3.0]  # the failed run left out
    assert found["a"]["median"]["events_per_s"] == 20.0
    assert suite.failures[0]["system"] == "b"


def test_the_median_of_runs_keeps_what_every_run_shares_as_given() -> None:
    runs = [
        {"fetch_wait_ms": 100, "p99_ms": 30.0, "messages": 1000, "correct": True},
        {"fetch_wait_ms": 100, "p99_ms": 40.0, "messages": 990, "correct": False},
    ]
    median = report.median_of(runs)
    assert median == {"fetch_wait_ms": 100, "p99_ms": 35.0, "messages": 995.0, "correct": False}
    assert type(median["fetch_wait_ms"]) is int
    # A figure one run could not read (the worker's /metrics did not answer): the others' median.
    partly = [{"send_ms": 8.0}, {"send_ms": None}, {"send_ms": 6.0}]
    assert report.median_of(partly) == {"send_ms": 7.0}
    assert report.median_of([{"send_ms": None}, {"send_ms": None}]) == {"send_ms": None}


async def test_worker_env_reaches_the_worker_in_latency_runs_too(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """``--worker-env`` changes the worker in every measurement, the peers in none."""
    given: dict[str, dict[str, str] | None] = {}

    class Probed:
        def as_dict(self) -> dict[str, Any]:
            return {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "messages": 10}

    async def measure(system: Any, engine: Any, **kwargs: Any) -> Probed:
        given[system.key] = kwargs["extra_env"]
        return Probed()

    monkeypatch.setattr(latency, "measure", measure)
    config = BenchConfig(
        repeat=1, workdir=tmp_path, latency_systems=("transport", "consent-streams")
    )
    suite = Suite(config, "bench", {"PRODUCER_LINGER": "0"})
    suite.results["latency"] = []
    await suite._latency()
    assert given == {"transport": None, "consent-streams": {"PRODUCER_LINGER": "0"}}
