"""``consent-streams bench`` (and ``make bench``): the command line of the benchmark harness."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.config import MEASUREMENTS, BenchConfig
from bench.systems import SYSTEMS

DESCRIPTION = """\
Measure consent-streams side by side with the transport limit (a plain aiokafka loop) and two
peers doing the same fold with the same engine (a naive Faust agent, Quix Streams), on the same
broker and the same fixed-seed workload:

  throughput  events/s from first consume to last output, ratio to the transport limit,
              CPU seconds per 1k events, peak RSS, and whether the output is exactly the
              set of suppression messages and dead letters the engine computes; for the
              worker also its mean batch over the drain (from its /metrics), and with two
              processes (the scale-out row: % a second one adds)
  latency     end-to-end p50/p95/p99 from publish to destination message at a steady load,
              once per load (--rate) and consumer fetch wait (the naive Faust peer's is fixed
              at 1500 ms); for the worker also its mean batch under that load (records, and
              the time to fold, send and store it), read from its /metrics
  recovery    consent-streams only: table recovery time and records/s after a restart with
              an empty data directory, time to ready, and RSS before and after recovery
              with --subjects entries in the table (--subjects 1000000 for the 1M target)
  ledger      the worker's ledger path in-process (fold, append, RocksDB write): cost per
              event at the start and at the end of one subject's --ledger-entries entries
              (the ledger on/off comparison is part of throughput)
  timers      (on request: --only timers) --subjects subjects each holding a consent with a
              13-month lifetime, folded by the worker with timers off, then on: throughput,
              CPU and peak RSS side by side

The report ends with each target of issues 10 and 12, whether this run meets it and by how
much it misses it (1M-subject recovery time is estimated from a smaller table; memory is not).

Each measurement gets a fresh embedded broker (or uses KAFKA_BOOTSTRAP_SERVERS, with unique
topic names). Results go to bench/results/<date>.json and a PNG chart next to it.
"""

EPILOG = """\
examples:
  consent-streams bench                       the default run (~15-20 min on 2 cores)
  consent-streams bench --quick               every measurement at small sizes (~5 min)
  consent-streams bench --repeat 3            medians of three runs of everything
  consent-streams bench --subjects 1000000    recovery and RSS with 1M subjects in the table
  consent-streams bench --only throughput --systems consent-streams,quix
  consent-streams bench --only timers --subjects 1000000   the cost of timers, 1M lifetimes
  consent-streams bench --worker-env PRODUCER_LINGER=0.01   try a Faust setting on the worker
"""


def _csv(choices: tuple[str, ...] | None = None) -> type:
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in text.split(",") if item.strip())
        bad = [item for item in items if choices is not None and item not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(choices or ())}"
            )
        return items

    return parse  # type: ignore[return-value]


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError("expected comma-separated integers >= 0")
    return values


def _rates(text: str) -> tuple[int, ...]:
    values = _ints(text)
    if min(values) < 1:
        raise argparse.ArgumentTypeError("expected comma-separated rates >= 1")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def _label(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", text):
        raise argparse.ArgumentTypeError("letters, digits, '.', '_' or '-' (at most 40)")
    return text


def parser() -> argparse.ArgumentParser:
    d = BenchConfig()
    p = argparse.ArgumentParser(
        prog="consent-streams bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = p.add_argument_group("size")
    size.add_argument("--quick", action="store_true", help="small sizes for a fast look")
    size.add_argument(
        "--events", type=_positive, default=d.events, help=f"workload events (default {d.events:,})"
    )
    size.add_argument(
        "--event-subjects",
        type=_positive,
        default=d.event_subjects,
        help=f"subjects the workload's events are spread over (default {d.event_subjects:,})",
    )
    size.add_argument(
        "--subjects",
        "--table-subjects",
        dest="table_subjects",
        type=_positive,
        default=d.table_subjects,
        help=f"subjects in the table for recovery and RSS, and holding lifetimes for the timers "
        f"measurement (default {d.table_subjects:,})",
    )
    size.add_argument(
        "--ledger-entries",
        type=_positive,
        default=d.ledger_entries,
        help=f"entries of the subject in the ledger measurement (default {d.ledger_entries:,})",
    )
    size.add_argument("--seed", type=int, default=d.seed, help="workload seed")
    size.add_argument(
        "--repeat",
        type=_positive,
        default=d.repeat,
        help="runs per measurement, medians reported (throughput, latency: in rounds)",
    )
    what = p.add_argument_group("what to measure")
    what.add_argument(
        "--systems",
        type=_csv(tuple(SYSTEMS)),
        default=d.systems,
        help=f"comma-separated, from: {','.join(SYSTEMS)} (default: all)",
    )
    what.add_argument(
        "--only",
        type=_csv(MEASUREMENTS),
        default=d.measurements,
        help=f"comma-separated, from: {','.join(MEASUREMENTS)} (default: all)",
    )
    what.add_argument(
        "--no-scale-out",
        action="store_true",
        help="skip the worker's two-process throughput run (the scale-out row)",
    )
    what.add_argument(
        "--latency-systems",
        type=_csv(tuple(SYSTEMS)),
        default=None,
        help="systems for the latency runs (default: those of --systems)",
    )
    what.add_argument(
        "--worker-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the consent-streams worker in every measurement (repeatable)",
    )
    kafka = p.add_argument_group("consumer settings and load")
    kafka.add_argument(
        "--throughput-fetch-wait-ms",
        type=int,
        default=d.throughput_fetch_wait_ms,
        help="fetch wait of consumers that can be set, in throughput runs "
        f"(default {d.throughput_fetch_wait_ms})",
    )
    kafka.add_argument(
        "--fetch-wait-ms",
        type=_ints,
        default=d.latency_fetch_waits_ms,
        help="latency runs: one per value for consumers that can be set "
        f"(default {','.join(map(str, d.latency_fetch_waits_ms))})",
    )
    kafka.add_argument(
        "--rate",
        type=_rates,
        default=d.latency_rates,
        help="latency runs: one per load, events/s "
        f"(default {','.join(map(str, d.latency_rates))})",
    )
    kafka.add_argument(
        "--latency-seconds",
        type=float,
        default=d.latency_seconds,
        help=f"latency load duration (default {d.latency_seconds:g})",
    )
    kafka.add_argument(
        "--reader-fetch-wait-ms",
        type=int,
        default=d.reader_fetch_wait_ms,
        help="fetch wait of the harness's own reader of destination topics",
    )
    kafka.add_argument(
        "--partitions", type=_positive, default=d.partitions, help="input partitions"
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--results-dir", type=Path, default=d.results_dir, help="where <date>.json/.png go"
    )
    out.add_argument(
        "--label",
        type=_label,
        default=None,
        help="results go to <date>-<label>.json (default: <date>.json; --quick adds 'quick')",
    )
    out.add_argument("--workdir", type=Path, default=None, help="keep logs and data here")
    out.add_argument("--no-chart", action="store_true", help="skip the PNG")
    return p


def config_from(ns: argparse.Namespace) -> BenchConfig:
    config = BenchConfig(
        events=ns.events,
        event_subjects=ns.event_subjects,
        seed=ns.seed,
        table_subjects=ns.table_subjects,
        ledger_entries=ns.ledger_entries,
        repeat=ns.repeat,
        systems=ns.systems,
        measurements=ns.only,
        scale_out=not ns.no_scale_out,
        latency_systems=ns.latency_systems,
        throughput_fetch_wait_ms=ns.throughput_fetch_wait_ms,
        latency_fetch_waits_ms=ns.fetch_wait_ms,
        latency_rates=ns.rate,
        latency_seconds=ns.latency_seconds,
        reader_fetch_wait_ms=ns.reader_fetch_wait_ms,
        partitions=ns.partitions,
        bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None,
        results_dir=ns.results_dir,
        workdir=ns.workdir,
        chart=not ns.no_chart,
        label=ns.label or "",
    )
    if ns.quick:
        config = config.quick_sizes()
        # Explicit sizes win over --quick.
        config = replace(config, **_explicit_sizes(ns))
    return config


def _explicit_sizes(ns: argparse.Namespace) -> dict[str, Any]:
    d = BenchConfig()
    chosen: dict[str, Any] = {}
    for name in ("events", "event_subjects", "table_subjects", "latency_seconds"):
        if getattr(ns, name) != getattr(d, name):
            chosen[name] = getattr(ns, name)
    return chosen


def main(argv: list[str]) -> int:
    from bench.suite import Suite

    if argv[:1] == ["--"]:  # `consent-streams bench -- ARGS`
        argv = argv[1:]
    ns = parser().parse_args(argv)
    config = config_from(ns)
    command = shlex.join(["consent-streams", "bench", *argv])
    return asyncio.run(Suite(config, command, dict(ns.worker_env)).run())
