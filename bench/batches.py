"""The worker's own account of its fetched batches, read from its ``/metrics``.

Records per batch and the mean time of each step in the worker's crash order: ``fold`` (route,
decode, fold, hand the outputs to the producer), ``send`` (until the broker has acknowledged
them), ``store`` (index, clocks and states to their changelogs, acknowledged, then RocksDB). Read
before and after a measured stretch, they say whether the worker's time went to its own work or to
waiting for the broker.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

#: (sum, count) of the records and of each step.
BatchTotals = dict[str, tuple[float, float]]
BATCH_FAMILIES = frozenset(("consent_streams_batch_records", "consent_streams_batch_step_seconds"))
#: The reading of a worker that has just started: nothing yet.
SINCE_START: BatchTotals = {"records": (0.0, 0.0)}
STEPS = ("fold", "send", "store")


def batch_totals(port: int) -> BatchTotals | None:
    """The worker's batch histograms' sums and counts, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return read_batch_totals(response.read().decode())
    except OSError:
        return None


def read_batch_totals(text: str) -> BatchTotals:
    """The sums and counts of the batch histograms in a Prometheus text exposition."""
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in BATCH_FAMILIES:
            continue
        for sample in family.samples:
            series = sample.labels.get("step", "records")
            if sample.name.endswith("_sum"):
                found.setdefault(series, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_count"):
                found.setdefault(series, [0.0, 0.0])[1] = sample.value
    return {series: (total, count) for series, (total, count) in found.items()}


def batch_means(before: BatchTotals | None, after: BatchTotals | None) -> dict[str, Any]:
    """Batches between two readings, their mean records and mean step times in ms; nothing when
    either reading is missing or no batch came in between."""
    if not before or not after or "records" not in after:
        return {}
    batches = after["records"][1] - before.get("records", (0.0, 0.0))[1]
    if batches <= 0:
        return {}

    def mean(series: str) -> float:
        total = after.get(series, (0.0, 0.0))[0] - before.get(series, (0.0, 0.0))[0]
        return total / batches

    return {
        "batches": int(batches),
        "batch_records": round(mean("records"), 1),
        **{f"{step}_ms": round(mean(step) * 1000, 2) for step in STEPS},
    }
