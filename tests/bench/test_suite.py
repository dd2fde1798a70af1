"""How the suite orders repeated measurements."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        [("a", "A", measure("a", 10.0)), ("b", "B", measure("b", 1.0))],
        lambda r: str(r["events_per_s"]),
    )
    assert order == ["a1", "b1", "a2", "b2", "a3", "b3"]
    assert [r["events_per_s"] for r in found["a"]["runs"]] == [10.0, 20.0, 30.0]
    assert [r["events_per_s"] for r in found["b"]["runs"]] == [1.0, 3.0]  # the failed run left out
    assert found["a"]["median"]["events_per_s"] == 20.0
    assert suite.failures[0]["system"] == "b"
