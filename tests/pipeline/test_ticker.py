"""The ticker without Kafka: an injected clock decides what is due; items go only once the
broker has acknowledged what they fired; stale items are dropped unfired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ProducerClosed
from faust.types import TP

from schemas.events import ConsentEvent
from streams.core.engine import Engine, subject_key
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, SubjectState
from streams.core.timers import TimerPlan
from streams.pipeline.fold import Folded
from streams.pipeline.timers import Ticker, TimerIndex, timer_metrics
from streams.settings import Settings
from streams.topology import TopicNames, partition_of
from tests.support.core import POLICY_TOML
from tests.support.outbox import FakeBroker, FakeOutbox

PARTITIONS = 6
CHANGELOG = "app-timers-changelog"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(parse_policy(POLICY_TOML))


class World:
    """A worker's timer parts around fakes: states in a dict, the index in memory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = T0
        self.states: dict[bytes, SubjectState] = {}
        table = SimpleNamespace(
            data=SimpleNamespace(data={}),
            partitions=PARTITIONS,
            changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
        )
        self.index = TimerIndex(table, TimerPlan(engine.policy, engine.plans))
        completed = asyncio.Event()
        completed.set()
        self.app = SimpleNamespace(
            rebalancing=False,
            should_stop=False,
            tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
            assignor=SimpleNamespace(
                assigned_actives=lambda: {TP(CHANGELOG, p) for p in range(PARTITIONS)}
            ),
        )
        self.broker = FakeBroker()
        store = SimpleNamespace(load=lambda key, partition: self.states.get(key, EMPTY))
        self.names = TopicNames.of(Settings())
        self.ticker = Ticker(
            self.app, self.index, store, self.names, lambda: self.broker, lambda: self.now
        )

    async def fold(self, **fields: Any) -> None:
        """Fold one event as a batch does: state, then its index writes."""
        event = ConsentEvent.model_validate(
            {"controller": "acme", "subject_id": "s-1", **fields}, context={"now": self.now}
        )
        key = subject_key(event.controller, event.subject_id).encode()
        partition = partition_of(b"s-1", PARTITIONS)
        outcome = self.engine.apply(self.states.get(key, EMPTY), event, self.now)
        folded = Folded(states={key: (partition, outcome.state)})
        writes = self.index.stage(folded, lambda k, _: self.states.get(k, EMPTY))
        self.states[key] = outcome.state
        await self.index.write(writes, self.broker.outbox())  # type: ignore[arg-type]

    def indexed(self) -> list[str]:
        partition = partition_of(b"s-1", PARTITIONS)
        far = self.now + timedelta(days=365)
        return sorted(item.kind for _, item in self.index.due(partition, far) if item)


def grant(n: int, minute: int) -> dict[str, Any]:
    return {
        "event_id": f"g-{n}",
        "type": "consent.granted",
        "occurred_at": (T0 + timedelta(minutes=minute)).isoformat(),
        "purpose": "offers",
        "channel": "email",
    }


@pytest.fixture
async def world(engine: Engine) -> World:
    """A worker whose one grant's reminder, expiry and retention are all due."""
    world = World(engine)
    await world.fold(**grant(1, 0))
    world.now = T0 + timedelta(minutes=10)
    return world


async def test_the_injected_clock_decides_what_fires(engine: Engine) -> None:
    world = World(engine)
    await world.fold(**grant(1, 0))
    assert world.indexed() == ["expiry", "reminder", "retention"]
    world.now = T0 + timedelta(minutes=1, seconds=59)
    await world.ticker.tick()
    assert world.broker.on(world.names.notifications) == []
    world.now = T0 + timedelta(minutes=2)  # the reminder (a minute before the expiry) is due
    await world.ticker.tick()
    [reminder] = world.broker.on(world.names.notifications)
    assert (
        reminder["consent_event_id"] == "g-1" and reminder["emitted_at"] == "2026-11-01T09:02:00Z"
    )
    assert world.indexed() == ["expiry", "retention"]  # fired, acknowledged, removed
    world.now = T0 + timedelta(minutes=10)
    await world.ticker.tick()
    fired = world.broker.on(world.names.events)
    assert [(e["type"], e["occurred_at"]) for e in fired] == [
        ("consent.expired", "2026-11-01T09:03:00Z"),  # event time is the due time
        ("retention.due", "2026-11-01T09:05:00Z"),
    ]
    assert world.indexed() == []


async def test_nothing_is_removed_unless_the_broker_has_it(world: World) -> None:
    world.broker.fail = True
    with pytest.raises(ConnectionError):
        await world.ticker.tick()
    assert world.indexed() == ["expiry", "reminder", "retention"]
    world.broker.fail = False
    await world.ticker.tick()  # fired again after the failure: the same ids
    assert world.indexed() == []
    ids = [e["event_id"] for e in world.broker.on(world.names.events)]
    assert len(ids) == 2 and len(set(ids)) == 2


async def test_a_stale_item_is_dropped_unfired(engine: Engine) -> None:
    world = World(engine)
    await world.fold(**grant(1, 0))
    partition = partition_of(b"s-1", PARTITIONS)
    stale = world.index.due(partition, T0 + timedelta(days=1))
    # A renewal whose index write was lost (a kill): the old items are still indexed.
    key = subject_key("acme", "s-1").encode()
    renewal = ConsentEvent.model_validate(
        {"controller": "acme", "subject_id": "s-1", **grant(2, 1)}, context={"now": T0}
    )
    world.states[key] = engine.apply(world.states[key], renewal, T0).state
    world.now = T0 + timedelta(minutes=3, seconds=30)  # g-1's expiry is due, g-2's is not
    await world.ticker.tick()
    assert [e["type"] for e in world.broker.on(world.names.events)] == []
    assert world.broker.on(world.names.notifications) == []
    assert world.ticker.dropped == 2  # g-1's reminder and expiry
    left = {key for key, _ in world.index.due(partition, T0 + timedelta(days=1))}
    gone = {key for key, item in stale if item and item.cause == "g-1" and item.kind != "retention"}
    assert len(gone) == 2 and not left & gone


async def test_no_ticks_while_rebalancing(world: World) -> None:
    world.app.rebalancing = True
    await world.ticker.tick()
    assert world.broker.on(world.names.events) == []
    assert world.indexed() == ["expiry", "reminder", "retention"]


async def test_a_revocation_while_firing_leaves_the_items_to_the_new_owner(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    acknowledge = FakeOutbox.sent

    async def revoked_meanwhile(outbox: FakeOutbox) -> dict[tuple[str, int], int]:
        world.ticker.revoked()  # a rebalance while the broker acknowledges
        return await acknowledge(outbox)

    monkeypatch.setattr(FakeOutbox, "sent", revoked_meanwhile)
    await world.ticker.tick()
    assert len(world.broker.on(world.names.events)) == 2  # published once
    assert world.indexed() == ["expiry", "reminder", "retention"]  # not removed: fired again


async def test_a_stop_cuts_a_pass_short_without_crashing_the_worker(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def closed_meanwhile(outbox: FakeOutbox) -> dict[tuple[str, int], int]:
        world.app.should_stop = True  # SIGTERM: the worker closes its producer under the pass
        raise ProducerClosed()

    monkeypatch.setattr(FakeOutbox, "sent", closed_meanwhile)
    await world.ticker.tick()  # no exception reaches Faust, which would exit non-zero
    assert world.indexed() == ["expiry", "reminder", "retention"]  # left for the next owner

    async def closed(outbox: FakeOutbox) -> dict[tuple[str, int], int]:
        raise ProducerClosed()

    world.app.should_stop = False
    monkeypatch.setattr(FakeOutbox, "sent", closed)
    with pytest.raises(ProducerClosed):  # the same failure while running is no stop
        await world.ticker.tick()


async def test_a_stopping_worker_starts_no_more_firing(world: World) -> None:
    world.app.should_stop = True
    await world.ticker.tick()
    assert world.broker.on(world.names.events) == world.broker.on(world.names.notifications) == []
    assert world.indexed() == ["expiry", "reminder", "retention"]


def samples(world: World) -> dict[tuple[str, str], float]:
    families = timer_metrics(world.ticker, world.ticker.active(), world.now)
    return {
        (s.name, s.labels.get("kind", "")): s.value for family in families for s in family.samples
    }


async def test_metrics_count_indexed_and_fired_clocks_and_the_oldest_overdue(
    engine: Engine,
) -> None:
    world = World(engine)
    await world.fold(**grant(1, 0))
    found = samples(world)
    indexed = {kind: n for (name, kind), n in found.items() if name.endswith("timers_indexed")}
    assert indexed == {"expiry": 1, "reminder": 1, "retention": 1, "lapse": 0, "notice": 0}
    assert found[("consent_streams_timers_oldest_overdue_seconds", "")] == 0  # nothing due
    world.now = T0 + timedelta(minutes=3, seconds=30)  # reminder 90 s late, expiry 30 s
    assert samples(world)[("consent_streams_timers_oldest_overdue_seconds", "")] == 90
    await world.ticker.tick()
    found = samples(world)
    assert found[("consent_streams_timers_fired_total", "reminder")] == 1
    assert found[("consent_streams_timers_fired_total", "expiry")] == 1
    assert found[("consent_streams_timers_indexed", "expiry")] == 0
    assert found[("consent_streams_timers_indexed", "retention")] == 1
    assert found[("consent_streams_timers_oldest_overdue_seconds", "")] == 0  # retention at 09:05
    assert found[("consent_streams_timers_dropped_total", "")] == 0


async def test_a_revocation_makes_the_next_census_read_the_index_again(engine: Engine) -> None:
    """Recovery writes a partition's store below the index: a count kept from before a
    rebalance could be wrong after it."""
    world = World(engine)
    await world.fold(**grant(1, 0))
    samples(world)
    assert world.index.counts  # kept from the first census on
    world.ticker.revoked()
    assert not world.index.counts
