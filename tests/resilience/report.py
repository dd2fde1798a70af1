"""Run mode of the resilience suite and the figures it reports."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FULL = os.environ.get("CONSENT_RESILIENCE", "").strip().lower() == "full"
REPORT_PATH = Path(__file__).resolve().parents[2] / "resilience-report.json"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Mode:
    """How hard each part pushes: ``short`` in ``make test``, ``full`` in ``make resilience``."""

    name: str
    crash_runs: int
    crash_kills: int  # per run
    crash_events: int  # distinct events per run
    crash_subjects: int
    model_runs: int  # pure crash-model runs
    failover_events: int
    hostile_examples: int  # malformed records per run
    soak_seconds: float
    soak_rate: float  # events per second offered
    soak_subjects: int
    seed: int  # base seed; every run derives its own from it


SHORT = Mode(
    name="short",
    crash_runs=1,
    crash_kills=3,
    crash_events=500,
    crash_subjects=40,
    model_runs=40,
    failover_events=400,
    hostile_examples=150,
    soak_seconds=_env_number("CONSENT_SOAK_SECONDS", 45),
    soak_rate=_env_number("CONSENT_SOAK_RATE", 200),
    soak_subjects=2000,
    seed=int(_env_number("CONSENT_RESILIENCE_SEED", 20261122)),
)
FULL_MODE = Mode(
    name="full",
    crash_runs=4,
    crash_kills=6,
    crash_events=2000,
    crash_subjects=120,
    model_runs=600,
    failover_events=2000,
    hostile_examples=1000,
    soak_seconds=_env_number("CONSENT_SOAK_SECONDS", 600),
    soak_rate=_env_number("CONSENT_SOAK_RATE", 200),
    soak_subjects=20000,
    seed=int(_env_number("CONSENT_RESILIENCE_SEED", time.time_ns() % 1_000_000_007)),
)
MODE = FULL_MODE if FULL else SHORT


@dataclass
class Part:
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)  # JSON only, not printed


@dataclass
class Report:
    """Figures recorded by the tests, printed as a table and written to ``REPORT_PATH``."""

    mode: Mode
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    parts: dict[str, Part] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed/failed/skipped

    def part(self, key: str, title: str) -> Part:
        return self.parts.setdefault(key, Part(title))

    def add(self, key: str, title: str, /, **figures: Any) -> None:
        part = self.part(key, title)
        for name, value in figures.items():
            current = part.figures.get(name)
            if isinstance(value, int | float) and isinstance(current, int | float):
                part.figures[name] = current + value  # summed over runs
            else:
                part.figures[name] = value

    def note(self, key: str, title: str, /, text: str) -> None:
        self.part(key, title).notes.append(text)

    def series(self, key: str, title: str, name: str, points: list[Any]) -> None:
        self.part(key, title).series[name] = points

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.name,
            "base_seed": self.mode.seed,
            "started_at": self.started_at,
            "duration_s": round(time.monotonic() - self.started, 1),
            "environment": environment(),
            "settings": {
                "session_timeout_s": 6,
                "producer_max_batch_size_where_recovery_is_checked": 1,
                "soak_rate_per_s": self.mode.soak_rate,
                "soak_seconds": self.mode.soak_seconds,
            },
            "parts": {
                key: {
                    "title": part.title,
                    "figures": part.figures,
                    "notes": part.notes,
                    **({"series": part.series} if part.series else {}),
                }
                for key, part in self.parts.items()
            },
            "tests": self.outcomes,
            "passed": all(v in ("passed", "skipped") for v in self.outcomes.values()),
        }

    def write(self, path: Path = REPORT_PATH) -> None:
        path.write_bytes(orjson.dumps(self.as_json(), option=orjson.OPT_INDENT_2) + b"\n")

    def table(self) -> list[str]:
        rows: list[tuple[str, str, str]] = []
        for part in self.parts.values():
            first = True
            for name, value in part.figures.items():
                rows.append((part.title if first else "", name, _fmt(value)))
                first = False
        width = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(HEADER)]
        line = "  ".join("-" * w for w in width)
        out = [
            f"Resilience summary ({self.mode.name}; base seed {self.mode.seed}; "
            f"{time.monotonic() - self.started:.0f} s)",
            "  ".join(h.ljust(w) for h, w in zip(HEADER, width, strict=True)),
            line,
        ]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in rows]
        failed = [t for t, o in self.outcomes.items() if o == "failed"]
        skipped = [t for t, o in self.outcomes.items() if o == "skipped"]
        passed = sum(1 for o in self.outcomes.values() if o == "passed")
        out.append(line)
        out.append(f"tests: {passed} passed, {len(failed)} failed, {len(skipped)} skipped")
        out += [f"  FAILED  {t}" for t in failed]
        out += [f"  skipped {t}" for t in skipped]
        for part in self.parts.values():
            out += [f"  note ({part.title}): {n}" for n in part.notes]
        return out


HEADER = ("part", "figure", "value")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def environment() -> dict[str, Any]:
    import aiokafka
    import faust

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "faust": faust.__version__,
        "aiokafka": aiokafka.__version__,
        "broker": os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "embedded (Tansu, memory storage)",
    }
