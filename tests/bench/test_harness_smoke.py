"""A short run of the benchmark harness, end to end, so that it cannot rot.

Tiny sizes: the point is that every system runs on the broker, emits exactly what the engine
computes for the same input, and that the report, JSON and chart come out with sane numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

for module in ("quixstreams", "matplotlib", "psutil"):
    pytest.importorskip(module, reason="needs the bench extra: pip install -e '.[dev,bench]'")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SYSTEMS = ("transport", "consent-streams", "consent-streams-no-ledger", "faust-naive", "quix")


def test_harness_measures_every_system_and_checks_their_output(tmp_path: Path) -> None:
    from bench.harness import main
    from bench.reference import reference_fold
    from bench.workload import WorkloadSpec, generate
    from streams.core.engine import Engine
    from streams.core.policy import load_policy

    results = tmp_path / "results"
    started = time.monotonic()
    code = main(
        [
            "--events=600",
            "--event-subjects=60",
            "--subjects=3000",
            "--latency-systems=consent-streams",
            "--fetch-wait-ms=10",
            "--rate=200",
            "--latency-seconds=1",
            "--no-scale-out",  # two more workers: over the time budget
            "--ledger-entries=1000",
            f"--results-dir={results}",
            f"--workdir={tmp_path / 'work'}",
        ]
    )
    elapsed = time.monotonic() - started
    assert code == 0, "the harness reported a failure or an output that differs from the engine"

    (found,) = results.glob("*.json")
    data = json.loads(found.read_text())
    assert not data["failures"]
    assert (results / f"{found.stem}.png").stat().st_size > 10_000

    # The reference the harness compared against is the engine's own fold of the same input.
    workload = generate(WorkloadSpec(events=600, subjects=60))
    expected = reference_fold(workload.records, Engine(load_policy()))
    assert expected.messages > 0 and expected.rejected > 0
    assert data["workload"]["expected_distinct_suppressions"] == len(expected.suppressions)
    assert data["workload"]["events"] == 600

    throughput = data["throughput"]
    assert set(throughput) == set(SYSTEMS)
    for key, entry in throughput.items():
        run = entry["median"]
        assert run["correct"], f"{key}: {run['verdict']}"
        assert run["events_per_s"] > 0 and run["peak_rss_mb"] > 0, key
        assert run["seconds"] > 0, key
        if key == "transport":
            assert run["outputs"] >= 600
        else:
            # Every suppression message and dead letter the engine computes, nothing else.
            assert run["verdict"].startswith(f"identical: {len(expected.suppressions)} distinct")
            assert run["outputs"] >= expected.outputs
            assert run["cpu_s_per_1k"] > 0, key
        if key.startswith("consent-streams"):
            # The worker's own account of the drain: every input record in some batch.
            assert run["batches"] >= 1 and run["batch_records"] * run["batches"] >= 600, key
        else:
            assert run["batches"] is None, key

    (latency,) = data["latency"]
    lat = latency["median"]
    assert lat["system"] == "consent-streams" and lat["fetch_wait_ms"] == 10
    assert lat["rate"] == 200
    assert lat["missing"] == 0 and lat["messages"] > 0
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    # The worker's own account of its batches under that load, from its /metrics.
    assert lat["batches"] >= 1 and lat["batch_records"] >= 1
    assert lat["fold_ms"] > 0 and lat["send_ms"] > 0 and lat["store_ms"] > 0

    recovery = data["recovery"]["median"]
    assert recovery["probes_ok"], recovery["verdict"]
    assert recovery["probes"] > 0
    assert recovery["changelog_records"] >= 3000
    assert recovery["records_per_s"] > 0 and recovery["rss_mb"] > 0
    assert 0 < recovery["rss_before_mb"] <= recovery["rss_mb"] * 1.5
    assert recovery["write_s"] is not None, "the worker's bulk recovery line was not found"

    ledger = data["ledger"]["median"]
    assert ledger["chain_ok"] and ledger["entries"] == 1000
    assert ledger["first_us"] > 0 and ledger["last_us"] > 0

    assert data["scaleout"] is None
    verdicts = {c["target"]: c["met"] for c in data["targets"]}
    assert verdicts[">= 100k changelog records/s"] is not None
    assert verdicts["a 2nd worker process adds >= 60%"] is None  # not run

    assert elapsed < 120, f"the smoke run took {elapsed:.0f} s"
