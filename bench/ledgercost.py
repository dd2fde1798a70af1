"""What the ledger adds to the fold: CPU per event with the ledger off, on, and on and sealed.

Runs the production fold (:func:`streams.pipeline.fold.fold`) in this process on the realistic
workload, fetch-sized batches over a dict of states, with the worker's erasure rules and, when
sealed, its sealer (:class:`streams.pipeline.personal.SubjectKeys`, keys changelogged per batch
as the worker takes them). CPU time (``time.process_time``), min of several runs: the machine
may be shared. ``--digest`` prints a digest of everything the fold stores and sends (entries,
data-key records, messages, states) with a fixed random source, to show that a change keeps
the stored bytes as they were.

    python -m bench.ledgercost [--events N] [--subjects N] [--runs N] [--only off,on,sealed]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.workload import WorkloadSpec, generate
from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import Admitted, Record, fold, keep, route
from streams.pipeline.personal import SubjectKeys
from streams.security.shredding import IdentifierHasher, Keyring

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
FETCH = 1000  # records per fetch, as the worker's consumer hands them over
KEK = "bench:" + "A" * 43  # fixed keys: the digest must not change from run to run
IDENTIFIER_KEY = "B" * 43
MODES = ("off", "on", "sealed")


def batches(events: int, subjects: int, engine: Engine) -> list[list[Admitted]]:
    workload = generate(WorkloadSpec(events=events, subjects=subjects), now=NOW)
    records = [
        Record("consent.events", 0, offset, key, value)
        for offset, (key, value) in enumerate(workload.records)
    ]
    return [
        route(records[start : start + FETCH], engine, lambda subject: 0, now=NOW).fold
        for start in range(0, len(records), FETCH)
    ]


def keys(
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> tuple[SubjectKeys, dict[bytes, bytes]]:
    """The worker's data keys over a dict (the keys table's store)."""
    store: dict[bytes, bytes] = {}
    made = SubjectKeys(
        Keyring.parse(KEK),
        IdentifierHasher.parse(IDENTIFIER_KEY),
        lambda key, partition: store.get(key),
        lambda key: 0,
        random=random_bytes,
    )
    return made, store


def run(
    mode: str,
    work: list[list[Admitted]],
    engine: Engine,
    digest: hashlib._Hash | None = None,
    collect: bool = True,
) -> float:
    """CPU seconds of one pass of ``work`` in ``mode``; ``collect``: garbage collection on."""
    states: dict[bytes, SubjectState] = {}
    erasure, store = keys(random.Random(7).randbytes if digest is not None else os.urandom)
    seal = erasure.seal_personal if mode == "sealed" else keep
    gc.collect()
    if not collect:
        gc.disable()
    started = time.process_time()
    for batch in work:
        folded = fold(
            batch,
            lambda key, partition: states.get(key, EMPTY),
            engine,
            NOW,
            erasure=erasure,
            ledger=mode != "off",
            seal=seal,
        )
        for key, (_, value) in erasure.take().items():
            store[key] = value
        for key, (_, state) in folded.states.items():
            states[key] = state
        if digest is not None:
            for _, key, data in folded.stored:
                digest.update(key + data)
            for message in folded.messages:
                digest.update(message.key + message.value)
    elapsed = time.process_time() - started
    gc.enable()
    if digest is not None:
        for key in sorted(store):
            digest.update(key + store[key])
        for key in sorted(states):
            digest.update(key + states[key].to_bytes())
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(MODES))
    parser.add_argument("--digest", action="store_true", help="digest of the outputs and exit")
    parser.add_argument(
        "--no-gc", action="store_true", help="garbage collection off while folding (less noise)"
    )
    args = parser.parse_args()
    engine = Engine(load_policy())
    work = batches(args.events, args.subjects, engine)
    count = sum(len(batch) for batch in work)
    modes = args.only.split(",")
    if args.digest:
        for mode in modes:
            digest = hashlib.sha256()
            run(mode, work, engine, digest)
            print(f"{mode:7} {digest.hexdigest()}")
        return
    best = {mode: float("inf") for mode in modes}
    for _ in range(args.runs):
        for mode in modes:  # interleaved: a busy spell on the machine hits every mode
            best[mode] = min(best[mode], run(mode, work, engine, collect=not args.no_gc))
    for mode in modes:
        print(f"{mode:7} {best[mode] / count * 1e6:7.1f} us CPU per event ({count} folded)")
    if "off" in best:
        for mode in modes[1:]:
            print(f"{mode:7} +{(best[mode] - best['off']) / count * 1e6:.1f} us over off")


if __name__ == "__main__":
    main()
