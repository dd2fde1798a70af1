"""The cost of timers: every subject holds a consent with a lifetime; the worker with timers off,
then on, side by side.

The policy is the shipped one with a 13-month ``consent_lifetime`` and a one-month
``renewal_reminder`` on every consent purpose (its retention rules count too). The workload is
one ``consent.granted`` per subject, to a consent purpose of the subject's controller, event
times within the last day: nothing comes due during the run, so both runs must send the same
outputs, and the difference is what keeping the timer index costs (a due item per clock, written
beside the subject states, and the ticker's look every interval). ``consent-streams bench --only
timers --subjects 1000000`` is the issue's figure; each run is a throughput run
(:mod:`bench.throughput`: first consume to last output, CPU, peak RSS, verified outputs).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.reference import reference_fold
from bench.systems import CONSENT_STREAMS
from bench.throughput import Log
from bench.throughput import measure as throughput
from bench.workload import Record, Workload, WorkloadSpec, rfc3339
from schemas.vocabulary import LegalBasis
from streams.core.engine import Engine
from streams.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy
from streams.core.timers import TimerPlan

LIFETIME = "P13M"
REMINDER = "P1M"
MODES = {"off": "false", "on": "true"}


def lifetimes_policy() -> str:
    """The shipped policy, every consent purpose given a lifetime and a reminder."""
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    return re.sub(
        r'^legal_basis = "consent"$',
        f'legal_basis = "consent"\nconsent_lifetime = "{LIFETIME}"\n'
        f'renewal_reminder = "{REMINDER}"',
        text,
        flags=re.MULTILINE,
    )


def grants(policy: Policy, subjects: int, seed: int, now: datetime) -> Workload:
    """One consent per subject, round robin over the controllers' consent purposes."""
    rng = random.Random(seed)
    targets = [
        (controller.id, purpose.name)
        for controller in policy.controllers.values()
        for purpose in controller.purposes.values()
        if purpose.legal_basis is LegalBasis.CONSENT
    ]
    records: list[Record] = []
    for n in range(subjects):
        controller, purpose = targets[n % len(targets)]
        subject = f"t{seed}-{n:07d}"
        at = now - timedelta(seconds=rng.uniform(60, 86_400))
        event = {
            "event_id": f"grant-{seed}-{n}",
            "type": "consent.granted",
            "occurred_at": rfc3339(at),
            "controller": controller,
            "subject_id": subject,
            "purpose": purpose,
            "identifiers": {"email": f"{subject}@example.org"},
        }
        records.append((subject.encode(), orjson.dumps(event)))
    spec = WorkloadSpec(events=subjects, subjects=subjects, seed=seed)
    return Workload(spec, records)


@dataclass(frozen=True, slots=True)
class TimersRun:
    subjects: int
    clocks: int  # due items the index holds once every grant is folded
    off: dict[str, Any]
    on: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        slower = self.off["events_per_s"] / max(self.on["events_per_s"], 1e-9)
        return {
            "subjects": self.subjects,
            "clocks": self.clocks,
            "off": self.off,
            "on": self.on,
            "throughput_ratio_on_off": round(1 / slower, 3),
            "peak_rss_mb_on_minus_off": round(self.on["peak_rss_mb"] - self.off["peak_rss_mb"], 1),
        }


async def measure(
    subjects: int,
    *,
    seed: int,
    workdir: Path,
    fetch_wait_ms: int,
    partitions: int,
    bootstrap: str | None,
    log: Log,
    extra_env: dict[str, str] | None = None,
) -> TimersRun:
    text = lifetimes_policy()
    policy = parse_policy(text, "lifetimes policy")
    path = workdir / "lifetimes.toml"
    path.write_text(text, encoding="utf-8")
    engine = Engine(policy)
    workload = grants(policy, subjects, seed, datetime.now(UTC))
    expected = reference_fold(workload.records, engine)
    plan = TimerPlan(policy, engine.plans)
    clocks = 0
    for key, state in expected.states.items():
        controller, _, subject_id = key.partition("/")
        clocks += len(plan.due_work(controller, subject_id, state))
    runs: dict[str, dict[str, Any]] = {}
    for mode, switch in MODES.items():
        log(f"  timers {mode}: {subjects:,} grants")
        env = {**(extra_env or {}), "CONSENT_POLICY_FILE": str(path), "CONSENT_TIMERS": switch}
        found = await throughput(
            CONSENT_STREAMS,
            workload,
            expected,
            workdir=workdir / mode,
            fetch_wait_ms=fetch_wait_ms,
            partitions=partitions,
            bootstrap=bootstrap,
            log=log,
            extra_env=env,
        )
        runs[mode] = found.as_dict()
    return TimersRun(subjects, clocks, runs["off"], runs["on"])
