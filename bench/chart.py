"""One PNG: throughput bars against the transport limit, and latency CDFs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.systems import SYSTEMS


def draw(results: dict[str, Any], path: Path) -> Path | None:
    """Draws what ``results`` holds; None when there is nothing to draw."""
    throughput = results.get("throughput") or {}
    latency = results.get("latency") or []
    if not throughput and not latency:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, cdf) = plt.subplots(1, 2, figsize=(13, 5.2))
    _throughput(bars, throughput)
    _latency(cdf, latency)
    workload = results.get("workload") or {}
    size = (
        f"{workload['events']:,} events over {workload['subjects']:,} subjects, "
        if workload
        else ""
    )
    repeat = results.get("config", {}).get("repeat", 1)
    fig.suptitle(
        f"consent-streams bench {results.get('date', '')}: {size}median of {repeat}", fontsize=11
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput(ax: Any, throughput: dict[str, Any]) -> None:
    keys = list(throughput)
    values = [throughput[k]["median"]["events_per_s"] for k in keys]
    palette = {"transport": "#9e9e9e", "consent-streams": "#ff7f0e"}
    colours = [palette.get(k, "#1f77b4") for k in keys]
    positions = range(len(keys))
    ax.bar(positions, values, color=colours)
    ax.set_xticks(
        list(positions), [SYSTEMS[k].label.replace(" (", "\n(") for k in keys], fontsize=8
    )
    ax.set_yscale("log")
    ax.set_ylabel("events/s (log scale)")
    ax.set_title("Throughput, first consume to last output")
    for x, (key, value) in enumerate(zip(keys, values, strict=True)):
        mark = "" if throughput[key]["median"]["correct"] else "  (output differs!)"
        ax.annotate(f"{value:,.0f}{mark}", (x, value), ha="center", va="bottom", fontsize=8)
    limit = throughput.get("transport", {}).get("median", {}).get("events_per_s")
    if limit:
        ax.axhline(limit, color="#d62728", linestyle="--", linewidth=1)
        ax.annotate(
            "transport limit",
            (len(keys) - 0.5, limit),
            ha="right",
            va="bottom",
            color="#d62728",
            fontsize=8,
        )


def _latency(ax: Any, latency: list[dict[str, Any]]) -> None:
    rates = sorted({entry["median"]["rate"] for entry in latency})
    ax.set_title(f"End-to-end latency at {', '.join(f'{r:,}' for r in rates)} events/s (CDF)")
    ax.set_xlabel("publish to destination message, ms (log scale)")
    ax.set_ylabel("fraction of messages")
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    for entry in latency:
        m = entry["median"]
        values = m["cdf_ms"]
        if not values:
            continue
        n = len(values)
        fractions = [(i + 1) / n for i in range(n)]
        label = f"{SYSTEMS[m['system']].label}, {m['rate']:,}/s, fetch wait {m['fetch_wait_ms']} ms"
        if m["missing"]:
            label += " (fell behind; delivered only)"
        ax.plot([max(v, 0.1) for v in values], fractions, label=label, linewidth=1.4)
    if latency:
        ax.legend(fontsize=7, loc="lower right")
