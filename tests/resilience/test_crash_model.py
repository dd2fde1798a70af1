"""The worker's crash semantics, modelled on the pure engine: fast, exhaustive, reproducible.

A SIGKILL loses what the producer had not yet handed to the broker, and every record since the
last commit is redelivered. What else it loses depends on when the fold agent stores a
subject's state, relative to the broker acknowledging the messages the change caused:

* ``acknowledged-first``: a batch's messages are acknowledged before its states are stored
  (the worker's order: a kill loses the states of the batch in flight together with its
  unacknowledged messages);
* ``in-flight``: the state is stored while the messages may still be in flight (a kill can lose
  the messages of the last few records while their state is kept). Only the engine's
  redelivery rule (restate what a duplicate event still decides) can then repair the topics.

This replays either, many times, and judges the destination topics with the same oracle as the
end-to-end crash test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord

from schemas.codec import decode_event
from schemas.vocabulary import Destination
from streams.core.engine import Engine, subject_key
from streams.core.policy import Policy
from streams.core.state import EMPTY, SubjectState
from tests.resilience.cluster import Record
from tests.resilience.report import Mode, Report
from tests.resilience.workload import Verdict, generate, judge

pytestmark = pytest.mark.resilience

NOW = datetime(2025, 6, 1, tzinfo=UTC)
DESTINATIONS = {d.value: d for d in Destination}


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
    unsent: int = 3,
) -> Simulation:
    """One partition's worth of processing with ``crashes`` SIGKILLs at random records.

    Records go in batches of 1-20; a commit follows a batch with ``commit_probability``. With
    ``in-flight`` ordering, the messages of the last 0..``unsent`` records are the ones a kill
    can lose (per destination partition, a tail).
    """
    workload = generate(policy, seed, events=events, subjects=subjects)
    rng = random.Random(seed ^ 0x5EED)
    engine = Engine(policy)
    arrivals = [decode_event(value, key) for key, value in workload.records]
    table: dict[str, SubjectState] = {}  # what the state store holds
    batch_states: dict[str, SubjectState] = {}  # acknowledged-first: stored after the batch
    topics: dict[str, list[tuple[bytes, bytes]]] = {d: [] for d in DESTINATIONS}
    in_flight: list[tuple[int, str, bytes, bytes]] = []  # (step, destination, key, value)
    crash_at = sorted(rng.sample(range(1, len(arrivals)), min(crashes, len(arrivals) - 1)))
    committed = position = step = 0
    batch_left = rng.randint(1, 20)

    def deliver(older_than: int, destination: str | None = None) -> None:
        for sent_at, to, key, value in in_flight:
            if sent_at < older_than and destination in (None, to):
                topics[to].append((key, value))

    while position < len(arrivals):
        event = arrivals[position]
        key = subject_key(event.controller, event.subject_id)
        state = batch_states.get(key) or table.get(key, EMPTY)
        outcome = engine.apply(state, event, NOW)
        in_flight += [(step, m.destination.value, m.key, m.value) for m in outcome.messages]
        if ordering == "in-flight":
            if not outcome.duplicate:
                table[key] = outcome.state  # stored at once, messages maybe not yet sent
            deliver(step + 1 - unsent)  # the broker has everything older
            in_flight = [m for m in in_flight if m[0] >= step + 1 - unsent]
        else:
            batch_states[key] = outcome.state
        position += 1
        step += 1
        batch_left -= 1
        if crash_at and position == crash_at[0]:
            crash_at.pop(0)
            for destination in DESTINATIONS:  # each destination partition loses its own tail
                lose = rng.randint(0, unsent if ordering == "in-flight" else len(in_flight))
                deliver(step - lose, destination)
            in_flight, batch_states, position = [], {}, committed
            batch_left = rng.randint(1, 20)
            continue
        if batch_left == 0:  # end of a batch: messages acknowledged, then states stored
            deliver(step)
            table.update(batch_states)
            in_flight, batch_states = [], {}
            batch_left = rng.randint(1, 20)
            if rng.random() < commit_probability:
                committed = position
    deliver(step)
    table.update(batch_states)
    records: list[Record] = [
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
