"""The worker's crash semantics, modelled on its own batch steps: fast, exhaustive, reproducible.

A SIGKILL loses what the producer had not yet handed to the broker, and every record since the
last commit is redelivered. What else it loses depends on when the worker stores a subject's
state, relative to the broker acknowledging the messages the change caused:

* ``acknowledged-first``: a batch's messages are acknowledged before its states are stored
  (the worker's order: a kill loses the states of the batch in flight together with its
  unacknowledged messages);
* ``in-flight``: the state is stored while the messages may still be in flight (a kill can lose
  the messages of the last few records while their state is kept). Only the engine's
  redelivery rule (restate what a duplicate event still decides) can then repair the topics.

Each batch goes through the production steps (:func:`streams.pipeline.fold.route` and
:func:`streams.pipeline.fold.fold`): keyed records fold at once, keyless ones take the
repartition hop (a log of its own, with its own committed offset) and fold when read back.
This replays either order many times and judges the destination topics with the same oracle
as the end-to-end crash test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord

from schemas.vocabulary import Destination
from streams.core.engine import Engine
from streams.core.policy import Policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import Record, fold, route
from tests.resilience.cluster import Record as Output
from tests.resilience.report import Mode, Report
from tests.resilience.workload import Verdict, generate, judge

pytestmark = pytest.mark.resilience

NOW = datetime(2025, 6, 1, tzinfo=UTC)
DESTINATIONS = {d.value: d for d in Destination}
INPUT, HOP = "events", "events-by-subject"


@dataclass
class Simulation:
    verdict: Verdict
    crashes: int
    events: int
    records: int


def simulate(
    policy: Policy,
    seed: int,
    *,
    events: int,
    subjects: int,
    crashes: int,
    ordering: str = "acknowledged-first",
    commit_probability: float = 0.1,
) -> Simulation:
    """One partition's worth of processing with ``crashes`` SIGKILLs in random batches.

    Each fetch takes 0-20 input records and 0-5 repartitioned ones; a commit of both offsets
    follows a batch with ``commit_probability``. A kill during a batch delivers a prefix of its
    messages to each destination partition (and of its forwarded records to the hop).
    """
    workload = generate(policy, seed, events=events, subjects=subjects)
    rng = random.Random(seed ^ 0x5EED)
    engine = Engine(policy)
    logs: dict[str, list[Record]] = {
        INPUT: [Record(INPUT, 0, n, key, value) for n, (key, value) in enumerate(workload.records)],
        HOP: [],
    }
    table: dict[bytes, SubjectState] = {}  # what the state store holds
    topics: dict[str, list[tuple[bytes, bytes]]] = {d: [] for d in DESTINATIONS}
    kills = sorted(rng.sample(range(1, len(logs[INPUT])), min(crashes, len(logs[INPUT]) - 1)))
    committed = {INPUT: 0, HOP: 0}
    position = dict(committed)
    processed = 0

    def load(key: bytes, partition: int) -> SubjectState:
        return table.get(key, EMPTY)

    def forward(records: list[tuple[bytes, Record]]) -> None:
        hop = logs[HOP]
        for subject, record in records:
            hop.append(Record(HOP, 0, len(hop), subject, record.value))

    while any(position[name] < len(log) for name, log in logs.items()):
        taken = {INPUT: rng.randint(0, 20), HOP: rng.randint(0, 5)}
        batch = {name: logs[name][position[name] : position[name] + n] for name, n in taken.items()}
        if not any(batch.values()):
            continue
        fresh = route(batch[INPUT], engine, lambda subject: 0)
        again = route(batch[HOP], engine, lambda subject: 0, repartitioned=True)
        folded = fold(fresh.fold + again.fold, load, engine, NOW)
        messages = [(m.destination.value, m.key, m.value) for m in folded.messages]
        states = {key: state for key, (_, state) in folded.states.items()}
        if ordering == "in-flight":
            table.update(states)  # stored at once, messages maybe not yet sent
        processed += sum(len(records) for records in batch.values())
        if kills and processed >= kills[0]:
            while kills and processed >= kills[0]:
                kills.pop(0)
            for destination in DESTINATIONS:  # each destination partition loses its own tail
                sent = [m for m in messages if m[0] == destination]
                topics[destination] += [(k, v) for _, k, v in sent[: rng.randint(0, len(sent))]]
            forward(fresh.forward[: rng.randint(0, len(fresh.forward))])
            position = dict(committed)
            continue
        for destination, key, value in messages:  # acknowledged by the broker ...
            topics[destination].append((key, value))
        forward(fresh.forward)
        table.update(states)  # ... then the states stored
        for name, records in batch.items():
            position[name] += len(records)
        if rng.random() < commit_probability:
            committed = dict(position)
    records: list[Output] = [
        ConsumerRecord(destination, 0, offset, 0, 0, key, value, None, 0, 0, ())
        for destination, messages in topics.items()
        for offset, (key, value) in enumerate(messages)
    ]
    verdict = judge(policy, workload.events, records, DESTINATIONS)
    return Simulation(verdict, crashes, len(workload.events), len(workload.records))


# "in-flight" (state stored before the broker acknowledged) is modelled too, to show why the
# worker must not do that; only the worker's own order has to be right.
@pytest.mark.parametrize("ordering", ["acknowledged-first"])
def test_crash_model_keeps_every_last_message_right(
    ordering: str, policy: Policy, mode: Mode, report: Report
) -> None:
    failures: list[tuple[int, Verdict]] = []
    totals = Verdict()
    crashes = events = 0
    for run in range(mode.model_runs):
        seed = mode.seed + 7919 * run
        if run % 4 == 3:  # two hot subjects, long stretches between commits
            result = simulate(
                policy,
                seed,
                events=400,
                subjects=2,
                crashes=6,
                ordering=ordering,
                commit_probability=0.02,
            )
        else:
            result = simulate(policy, seed, events=300, subjects=20, crashes=15, ordering=ordering)
        crashes += result.crashes
        events += result.events
        totals.pairs += result.verdict.pairs
        totals.duplicates += result.verdict.duplicates
        totals.mismatches += result.verdict.mismatches
        totals.missing += result.verdict.missing
        totals.invalid += result.verdict.invalid
        if not result.verdict.ok:
            failures.append((seed, result.verdict))
    part = (f"model-{ordering}", f"crash model ({ordering})")
    report.add(
        *part,
        runs=mode.model_runs,
        simulated_kills=crashes,
        events=events,
        pairs_checked=totals.pairs,
        mismatches=len(totals.mismatches),
        required_missing=len(totals.missing),
        duplicate_deliveries=totals.duplicates,
        failing_runs=len(failures),
    )
    if failures:
        report.note(*part, f"first failing seed {failures[0][0]}")
    assert not failures, (
        f"{len(failures)}/{mode.model_runs} runs wrong; first seed {failures[0][0]}:\n"
        f"{failures[0][1].explain(5)}\n"
        f"reproduce: simulate(load_policy(), {failures[0][0]}, ordering={ordering!r}, ...) "
        "with the arguments of that run above"
    )
