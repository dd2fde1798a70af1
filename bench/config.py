"""What one benchmark run measures, and how big it is."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

MEASUREMENTS = ("throughput", "latency", "recovery", "ledger", "timers")
#: What a run measures unless told (``--only``); the timers' cost runs on request.
DEFAULT_MEASUREMENTS = MEASUREMENTS[:4]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class BenchConfig:
    events: int = 100_000
    event_subjects: int = 10_000
    seed: int = 20261122
    #: Subjects in the table for the recovery and memory measurement, and holding a consent
    #: with a lifetime in the timers measurement.
    table_subjects: int = 200_000
    #: Entries of the one subject whose ledger appends are timed at its start and its end.
    ledger_entries: int = 10_000
    repeat: int = 1
    systems: tuple[str, ...] = (
        "transport",
        "consent-streams",
        "consent-streams-no-ledger",
        "faust-naive",
        "quix",
    )
    measurements: tuple[str, ...] = DEFAULT_MEASUREMENTS
    #: With the worker's throughput run: the same workload on two worker processes.
    scale_out: bool = True
    #: Systems for the latency runs; None: the same as ``systems``.
    latency_systems: tuple[str, ...] | None = None
    #: Consumer fetch wait for systems where it can be set, in the throughput runs.
    throughput_fetch_wait_ms: int = 100
    #: One latency run per value for systems where it can be set (Faust's is fixed).
    latency_fetch_waits_ms: tuple[int, ...] = (1500, 10)
    #: One latency run per load, events/s (the targets of issue 10 name 200 and 1,000).
    latency_rates: tuple[int, ...] = (200, 1000)
    latency_seconds: float = 10.0
    #: Fetch wait of the harness's own reader of destination topics (adds up to this much).
    reader_fetch_wait_ms: int = 5
    partitions: int = 6
    bootstrap: str | None = None
    results_dir: Path = RESULTS_DIR
    workdir: Path | None = None
    chart: bool = True
    quick: bool = False
    #: Appended to the results file name: <date>-<label>.json
    label: str = ""

    def quick_sizes(self) -> BenchConfig:
        """Small sizes: every measurement once, in a few minutes."""
        return replace(
            self,
            quick=True,
            events=min(self.events, 30_000),
            event_subjects=min(self.event_subjects, 5_000),
            table_subjects=min(self.table_subjects, 100_000),
            latency_seconds=min(self.latency_seconds, 5.0),
        )
