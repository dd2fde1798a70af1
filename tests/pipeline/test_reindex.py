"""Rebuilding the timer index without Kafka: a partition's index says what it was built from;
under another policy (or after the timers were off) it is rebuilt from the stored states, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from schemas.events import ConsentEvent
from streams.core.engine import Engine, subject_key
from streams.core.policy import parse_policy
from streams.core.timers import OFF, Due, TimerPlan, fingerprint
from streams.pipeline.fold import Folded
from streams.pipeline.store import SubjectStore
from streams.pipeline.timers import Reindexer, Ticker, TimerIndex
from streams.settings import Settings
from streams.topology import TopicNames, partition_of
from tests.pipeline.test_ticker import FakeBroker
from tests.support.core import POLICY_TOML

PARTITIONS = 6
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
FAR = T0 + timedelta(days=3650)
#: offers without a lifetime (and so without a reminder): a grant has no clock but retention.
NO_LIFETIME = POLICY_TOML.replace('consent_lifetime = "PT3M"\nrenewal_reminder = "PT1M"\n', "")
#: offers' consents last longer.
LONGER = POLICY_TOML.replace('consent_lifetime = "PT3M"', 'consent_lifetime = "PT30M"')


def table(name: str) -> Any:
    """A raw Faust table over a memory store (one mapping for every partition)."""
    return SimpleNamespace(
        data=SimpleNamespace(data={}),
        partitions=PARTITIONS,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: f"app-{name}-changelog"),
    )


class Worker:
    """One policy's view of shared stores: states and the timer index outlive the worker."""

    def __init__(self, stores: Stores, policy: str, *, running: bool = True, step: int = 2):
        self.stores = stores
        self.engine = Engine(parse_policy(policy))
        self.index = TimerIndex(stores.timers, TimerPlan(self.engine.policy, self.engine.plans))
        self.fingerprint = fingerprint(self.engine.policy, running)
        self.reindex = Reindexer(
            self.index, stores.states, self.fingerprint, stores.lock, lambda: stores.broker, step
        )
        self.running = running

    async def fold(self, subject: str, **fields: Any) -> None:
        """Fold one event as a batch does: the state, then its index writes (timers on)."""
        event = ConsentEvent.model_validate(
            {"controller": "acme", "subject_id": subject, **fields}, context={"now": T0}
        )
        key = subject_key("acme", subject).encode()
        partition = partition_of(subject.encode(), PARTITIONS)
        states = self.stores.states
        outcome = self.engine.apply(states.load(key, partition), event, T0)
        folded = Folded(states={key: (partition, outcome.state)})
        writes = self.index.stage(folded, states.load) if self.running else {}
        await states.save(folded.states, self.stores.broker.outbox())  # type: ignore[arg-type]
        await self.index.write(writes, self.stores.broker.outbox())  # type: ignore[arg-type]

    async def start(self) -> None:
        """Become active for every partition: each index is checked (and rebuilt) first."""
        for partition in range(PARTITIONS):
            assert await self.reindex.ensure(partition, lambda: True)

    def indexed(self, subject: str) -> list[Due]:
        partition = partition_of(subject.encode(), PARTITIONS)
        found = [item for _, item in self.index.due(partition, FAR) if item]
        return sorted((i for i in found if i.subject_id == subject), key=lambda i: i.kind)

    def needs(self, subject: str) -> list[Due]:
        """What a fresh computation over the stored state gives."""
        key = subject_key("acme", subject).encode()
        state = self.stores.states.load(key, partition_of(subject.encode(), PARTITIONS))
        return sorted(self.index.work(key, state), key=lambda i: i.kind)


class Stores:
    def __init__(self) -> None:
        self.states = SubjectStore(None, table("subjects"))
        self.timers = table("timers")
        self.broker = FakeBroker()
        self.lock = asyncio.Lock()


def grant(n: int, purpose: str = "offers") -> dict[str, Any]:
    return {
        "event_id": f"g-{n}",
        "type": "consent.granted",
        "occurred_at": (T0 + timedelta(seconds=n)).isoformat(),
        "purpose": purpose,
        "channel": "email",
    }


def kinds(items: list[Due]) -> list[str]:
    return [i.kind for i in items]


async def test_a_lifetime_added_to_the_policy_gives_existing_subjects_their_expiry() -> None:
    stores = Stores()
    before = Worker(stores, NO_LIFETIME)
    await before.start()
    await before.fold("s-1", **grant(1))
    assert kinds(before.indexed("s-1")) == ["retention"]

    after = Worker(stores, POLICY_TOML)  # restarted with offers lasting 3 minutes
    await after.start()
    assert kinds(after.indexed("s-1")) == ["expiry", "reminder", "retention"]
    assert after.indexed("s-1") == after.needs("s-1")
    assert after.reindex.subjects == 1
    assert {after.index.built_from(p) for p in range(PARTITIONS)} == {after.fingerprint}

    again = Worker(stores, POLICY_TOML)  # the same policy: nothing is read again
    await again.start()
    assert again.reindex.subjects == 0
    assert again.indexed("s-1") == after.indexed("s-1")


async def test_a_changed_lifetime_replaces_the_old_clocks() -> None:
    stores = Stores()
    first = Worker(stores, POLICY_TOML)
    await first.start()
    for n in range(1, 6):
        await first.fold(f"s-{n}", **grant(n))
    old = {s: first.indexed(f"s-{s}") for s in range(1, 6)}

    longer = Worker(stores, LONGER)
    await longer.start()
    for s in range(1, 6):
        items = longer.indexed(f"s-{s}")
        assert items == longer.needs(f"s-{s}")  # exactly: nothing stale left
        [expiry] = [i for i in items if i.kind == "expiry"]
        assert expiry.at - old[s][0].at == 27 * 60 * 1_000_000  # PT30M instead of PT3M
    assert longer.reindex.subjects == 5


async def test_timers_off_then_on_index_the_subjects_folded_meanwhile() -> None:
    stores = Stores()
    on = Worker(stores, POLICY_TOML)
    await on.start()
    await on.fold("s-1", **grant(1))

    off = Worker(stores, POLICY_TOML, running=False)
    await off.start()
    assert off.fingerprint == OFF
    assert off.indexed("s-1") == []  # nothing keeps it current while off: emptied
    assert off.reindex.subjects == 0  # no state is read for that
    await off.fold("s-2", **grant(2))  # not indexed: the timers are off

    back = Worker(stores, POLICY_TOML)
    await back.start()
    for subject in ("s-1", "s-2"):
        assert kinds(back.indexed(subject)) == ["expiry", "reminder", "retention"]
    assert back.reindex.subjects == 2


async def test_a_batch_between_two_steps_keeps_its_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    stores = Stores()
    first = Worker(stores, POLICY_TOML)
    await first.start()
    await first.fold("s-1", **grant(1))
    longer = Worker(stores, LONGER)
    remove = Reindexer._remove

    async def renewed_meanwhile(self: Reindexer, partition: int, *args: Any) -> bool:
        # The new owner's first batch, between the two passes over s-1's partition: a renewal.
        if partition == partition_of(b"s-1", PARTITIONS):
            async with stores.lock:
                await longer.fold("s-1", **grant(2))
        return await remove(self, partition, *args)

    monkeypatch.setattr(Reindexer, "_remove", renewed_meanwhile)
    await longer.start()
    items = longer.indexed("s-1")
    needed = longer.needs("s-1")
    assert [i.cause for i in needed if i.kind == "expiry"] == ["g-2"]
    assert set(needed) <= set(items)  # the renewal's clocks were not taken for stale
    # What the rebuild could not tell from the renewal (the old policy's clocks for g-1) stays:
    # it is dropped unfired when it comes due.
    assert {i.cause for i in items if i not in needed} <= {"g-1"}


async def test_a_rebalance_during_a_rebuild_leaves_it_to_the_next_owner() -> None:
    stores = Stores()
    first = Worker(stores, NO_LIFETIME)
    await first.start()
    subjects = [f"s-{n}" for n in range(1, 40)]
    for n, subject in enumerate(subjects, 1):
        await first.fold(subject, **grant(n))
    partition = partition_of(b"s-1", PARTITIONS)
    before = first.index.built_from(partition)

    second = Worker(stores, POLICY_TOML, step=1)
    looks = 0

    def current() -> bool:
        nonlocal looks
        looks += 1
        return looks < 3  # revoked after two steps

    assert not await second.reindex.ensure(partition, current)
    assert second.index.built_from(partition) == before  # not marked: rebuilt again
    third = Worker(stores, POLICY_TOML)
    await third.start()
    for subject in subjects:
        assert third.indexed(subject) == third.needs(subject)


def ticker_for(worker: Worker) -> Ticker:
    """The worker's ticker over a settled app that owns every partition (timers off: it only
    checks the index)."""
    stores = worker.stores
    changelog = stores.timers.changelog_topic.get_topic_name()
    completed = asyncio.Event()
    completed.set()
    app = SimpleNamespace(
        rebalancing=False,
        should_stop=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
        assignor=SimpleNamespace(
            assigned_actives=lambda: {TP(changelog, p) for p in range(PARTITIONS)}
        ),
    )
    return Ticker(
        app,
        worker.index,
        stores.states,
        TopicNames.of(Settings()),
        lambda: stores.broker,  # type: ignore[arg-type, return-value]
        lambda: T0,
        reindex=worker.reindex,
        firing=False,
    )


async def test_the_ticker_checks_each_partition_once_per_assignment() -> None:
    worker = Worker(Stores(), POLICY_TOML)
    checked: list[int] = []
    ensure = worker.reindex.ensure

    async def counted(partition: int, current: Any) -> bool:
        checked.append(partition)
        return await ensure(partition, current)

    worker.reindex.ensure = counted  # type: ignore[method-assign]
    ticker = ticker_for(worker)
    await ticker.tick()
    await ticker.tick()
    assert checked == list(range(PARTITIONS))
    ticker.revoked()
    await ticker.tick()
    assert checked == list(range(PARTITIONS)) * 2
    ticker.app.rebalancing = True
    ticker.revoked()
    await ticker.tick()
    assert len(checked) == 2 * PARTITIONS  # not while the partitions move


async def test_a_new_table_is_recorded_before_its_first_batch() -> None:
    """Folded before the ticker's first look, a new table's states are not read again."""
    stores = Stores()
    worker = Worker(stores, POLICY_TOML)
    ticker = ticker_for(worker)
    async with stores.lock:
        await ticker.before_batch()
        await worker.fold("s-1", **grant(1))
    await ticker.tick()
    assert worker.reindex.subjects == 0
    assert {worker.index.built_from(p) for p in range(PARTITIONS)} == {worker.fingerprint}

    # Under another policy the partition holding s-1 waits for the ticker; the others, empty,
    # are recorded at once.
    other = Worker(stores, LONGER)
    ticker = ticker_for(other)
    async with stores.lock:
        await ticker.before_batch()
    home = partition_of(b"s-1", PARTITIONS)
    assert ticker.checked == set(range(PARTITIONS)) - {home}
    assert other.index.built_from(home) == worker.fingerprint
    await ticker.tick()
    assert other.reindex.subjects == 1
    assert other.index.built_from(home) == other.fingerprint
    assert other.indexed("s-1") == other.needs("s-1")
