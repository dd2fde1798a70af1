"""The fold's exact bytes: every instruction, dead letter reason and stored state of two fixed
workloads, as a digest.

Speed work on the engine, the state codec and the instruction encoding must not change a byte
of what the worker sends or stores (suppression ids, field order, time formats, state
versions). A change that is meant to change outputs updates the digests here, and says so in
the CHANGELOG. The workloads come from ``bench.workload``: a change to its generators changes
the digests too (pin them again from the code before the change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.workload import WorkloadSpec, contested, generate
from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import Record, fold, route

NOW = datetime(2026, 11, 30, tzinfo=UTC)

#: Pinned when the encoding was last changed on purpose (see the module docstring).
REALISTIC = "06c572e53110aa72"
CONTESTED = "cd3da37fb6ad4b15"


def _digest(records: Sequence[Record], *, repartitioned: bool, batch: int) -> str:
    engine = Engine(load_policy())
    stored: dict[bytes, bytes] = {}
    digest = hashlib.sha256()

    def load(key: bytes, partition: int) -> SubjectState:
        # Read back from bytes, as after a restart: the codec is part of what is pinned.
        return SubjectState.from_bytes(stored.get(key)) if key in stored else EMPTY

    for start in range(0, len(records), batch):
        now = NOW + timedelta(seconds=start)
        routed = route(
            records[start : start + batch],
            engine,
            lambda subject: 0,
            repartitioned=repartitioned,
            now=now,
        )
        folded = fold(routed.fold, load, engine, now, ledger=False)
        for message in folded.messages:
            digest.update(
                b"%s\0%s\0%s\n" % (message.destination.encode(), message.key, message.value)
            )
        for rejected in routed.reject + folded.reject:
            errors = [(e.loc, e.msg) for e in rejected.errors]
            digest.update(repr((rejected.record.offset, errors)).encode())
        for key, (_, state) in folded.states.items():
            stored[key] = state.to_bytes()
            digest.update(b"%s\0%s\n" % (key, stored[key]))
    return digest.hexdigest()[:16]


def test_the_realistic_workload_folds_to_the_same_bytes() -> None:
    work = generate(WorkloadSpec(events=4_000, subjects=800, seed=7), load_policy(), NOW)
    records = [Record("events", 0, n, key, value) for n, (key, value) in enumerate(work.records)]
    assert _digest(records, repartitioned=False, batch=250) == REALISTIC


def test_the_contested_workload_folds_to_the_same_bytes() -> None:
    work = contested(load_policy(), 11, events=3_000, subjects=60)
    records = [Record("events", 0, n, key, value) for n, (key, value) in enumerate(work.records)]
    assert _digest(records, repartitioned=True, batch=97) == CONTESTED
