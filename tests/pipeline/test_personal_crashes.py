"""Data keys under SIGKILLs, modelled on the batch steps: no kill leaves a ledger entry sealed
under a key that was not kept, and no erasure is undone.

One partition: random batches of grants and erasures for a few subjects; each batch seals one
ledger entry per new event (a stand-in for the ledger's fold, with the core's own ``append``),
then sends the key changes and the entries (step 3), stores the keys (step 4) and then the
subjects' chain heads, and sometimes commits. A kill delivers a prefix of each topic's records
of the batch in flight, recovery rebuilds the keys store from its changelog, and every record
since the last commit is redelivered. At the end each subject's chain, read as a compacted
topic holds it, must verify, every entry not followed by an erasure must open, and every entry
an erasure followed must not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bench.workload import Profile, WorkloadSpec, generate
from schemas.events import ConsentEvent
from schemas.vocabulary import EventType
from streams.core.ledger import Arrival, ChainHead, Entry, Personal, Record, append, verify_stored
from streams.core.policy import parse_policy
from streams.pipeline.personal import SubjectKeys
from streams.security.shredding import IdentifierHasher, Keyring, new_key
from tests.support.core import POLICY_TOML

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEYRING = Keyring.parse(f"k1:{new_key()}")
HASHER = IdentifierHasher.parse(new_key())
POLICY = parse_policy(POLICY_TOML, "test-policy.toml")


#: Grants and erasures of a few subjects of acme, in event-time order, each exactly once.
GRANTS_AND_ERASURES = Profile(
    controllers=(("acme", 1.0),),
    hot_traffic=0.0,
    mix=((EventType.CONSENT_GRANTED, 0.85), (EventType.ERASURE_REQUESTED, 0.15)),
    start=T0,
    spread=timedelta(hours=1),
    late_rate=0.0,
    duplicate_rate=0.0,
    malformed_rate=0.0,
)


def workload(rng: random.Random, events: int, subjects: int) -> list[ConsentEvent]:
    drawn = generate(
        WorkloadSpec(events, subjects, rng.getrandbits(32), GRANTS_AND_ERASURES), POLICY
    )
    now = T0 + timedelta(days=1)
    return [ConsentEvent.model_validate(e, context={"now": now}) for e in drawn.events]


@dataclass
class Subject:
    """What the subject state keeps: the chain head and the events already folded."""

    head: ChainHead = field(default_factory=ChainHead)
    seen: frozenset[str] = frozenset()


def keys_over(store: dict[bytes, bytes]) -> SubjectKeys:
    return SubjectKeys(KEYRING, HASHER, lambda key, partition: store.get(key), lambda key: 0)


def latest(log: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    return dict(log)  # later records of a key win, as compaction and recovery keep them


def simulate(
    seed: int, *, keys_with_outputs: bool, events: int = 150, kills: int = 10
) -> list[str]:
    """Problems found after one run (empty: every entry is as erasure left it)."""
    rng = random.Random(seed)
    inputs = workload(rng, events, subjects=4)
    keys_log: list[tuple[bytes, bytes]] = []  # the keys changelog
    ledger_log: list[tuple[bytes, bytes]] = []  # (subject key + sequence) -> stored entry
    keys_store: dict[bytes, bytes] = {}  # RocksDB beneath the keys table
    states: dict[bytes, Subject] = {}  # the subject table
    kill_at = sorted(rng.sample(range(1, events), kills))
    committed = position = processed = 0

    while position < len(inputs):
        batch = inputs[position : position + rng.randint(1, 15)]
        keys = keys_over(keys_store)
        current = dict(states)
        entries: list[tuple[bytes, bytes]] = []
        for evt in batch:
            key = f"acme/{evt.subject_id}".encode()
            subject = current.get(key, Subject())
            if evt.event_id in subject.seen:
                continue  # a redelivery: nothing appended, nothing shredded
            record = Record.of(evt, received_at=evt.occurred_at, arrival=Arrival(partition=0))
            entry = append(subject.head, keys.seal(key, 0, record))
            entries.append((key + b"#%d" % entry.sequence, entry.to_bytes()))
            if evt.type == "erasure.requested":
                keys.shred(key, 0)
            current[key] = Subject(entry.head, subject.seen | {evt.event_id})
        changes = [(k, v) for k, (_, v) in keys.take().items()]
        processed += len(batch)
        kill = None
        if kill_at and processed >= kill_at[0]:
            while kill_at and processed >= kill_at[0]:
                kill_at.pop(0)
            kill = rng.choice(["in step 3", "before the stores", "after the states"])
        # Step 3: the outputs (here the ledger entries), with the keys in the worker's order.
        sent = changes if keys_with_outputs else []
        if kill == "in step 3":  # each topic keeps a prefix of what was in flight
            keys_log += sent[: rng.randint(0, len(sent))]
            ledger_log += entries[: rng.randint(0, len(entries))]
        else:
            keys_log += sent
            ledger_log += entries
        if kill is None or kill == "after the states":
            # Step 4: the keys' store, then the states.
            keys_store.update(sent)
            states = current
            if not keys_with_outputs and kill is None:  # the other order: keys after the states
                keys_log += changes
                keys_store.update(changes)
        if kill is None:
            position += len(batch)
            if rng.random() < 0.2:
                committed = position
            continue
        keys_store = latest(keys_log)  # restart: the keys table recovered from its changelog
        position = committed
    return problems(states, latest(ledger_log), latest(keys_log))


def problems(
    states: dict[bytes, Subject], ledger: dict[bytes, bytes], keys_store: dict[bytes, bytes]
) -> list[str]:
    reader = keys_over(keys_store)
    found = []
    for key, subject in states.items():
        stored = [ledger[key + b"#%d" % n] for n in range(1, subject.head.sequence + 1)]
        if verify_stored(stored, subject.head):
            found.append(f"{key!r}: chain does not verify")
            continue
        records = [Entry.from_bytes(data).record for data in stored]
        erased_up_to = max(
            (n for n, r in enumerate(records) if r.type == "erasure.requested"), default=-1
        )
        for n, record in enumerate(records):
            if record.personal == Personal():
                continue  # nothing personal in it: kept in the clear, nothing to shred
            if isinstance(record.personal, Personal):
                found.append(f"{key!r} entry {n + 1}: personal data not sealed")
                continue
            readable = isinstance(reader.open(key, record).personal, Personal)
            if readable == (n <= erased_up_to):
                state = "readable after its erasure" if readable else "unreadable, never erased"
                found.append(f"{key!r} entry {n + 1}: {state}")
    return found


@pytest.mark.parametrize("seed", range(20))
def test_no_kill_leaves_an_entry_under_a_lost_key_or_undoes_an_erasure(seed: int) -> None:
    assert simulate(seed, keys_with_outputs=True) == []


def test_the_model_finds_lost_keys_when_keys_are_stored_after_the_states() -> None:
    assert any(simulate(seed, keys_with_outputs=False) for seed in range(20))
