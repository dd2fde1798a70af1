"""Key rotation without Kafka: every stored data key moves to the newest KEK once per
assignment, through the keys changelog, in steps; erased keys stay erased; a pass cut short goes
on from where the store is."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from streams.pipeline.personal import KeysTable, SubjectKeys
from streams.pipeline.rewrap import Rewrapper, marker_key, rewrap_metrics, wrapped_by
from streams.security.shredding import IdentifierHasher, Keyring, new_key
from streams.topology import partition_key, partition_of
from tests.support.outbox import FakeBroker

PARTITIONS = 4
CHANGELOG = "app-data-keys-changelog"
OLD, NEW = f"old:{new_key()}", f"new:{new_key()}"
HASHER = IdentifierHasher.parse(new_key())
SUBJECTS = [f"acme/s-{n}".encode() for n in range(40)]


def place(key: bytes) -> int:
    return partition_of(partition_key(key), PARTITIONS)


class World:
    """A worker's keys over a memory store (every partition in one mapping, as Faust's)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        table = SimpleNamespace(
            data=SimpleNamespace(data=self.data),
            partitions=PARTITIONS,
            changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
        )
        self.table = KeysTable(table)
        self.broker = FakeBroker()

    def keys(self, keyring: str) -> SubjectKeys:
        return SubjectKeys(Keyring.parse(keyring), HASHER, self.table.get, place)

    def rewrapper(self, keys: SubjectKeys, step: int = 3) -> Rewrapper:
        return Rewrapper(keys, self.table, asyncio.Lock(), lambda: self.broker, step)  # type: ignore[arg-type,return-value]

    def seal(self, keys: SubjectKeys, key: bytes) -> str:
        """A ciphertext of ``key``'s subject, its key stored as a batch stores it."""
        sealed = keys._bound(key, place(key)).seal(b"ann@example.com")
        changes = keys.take()
        self.data.update({k: v for k, (_, v) in changes.items()})
        return sealed

    def kids(self) -> dict[str | None, int]:
        found: dict[str | None, int] = {}
        for key, value in self.data.items():
            if b"/" in key:
                kid = wrapped_by(value)
                found[kid] = found.get(kid, 0) + 1
        return found


def always() -> bool:
    return True


async def test_every_key_moves_to_the_newest_kek_and_what_it_sealed_still_opens() -> None:
    world = World()
    before = world.keys(OLD)
    sealed = {key: world.seal(before, key) for key in SUBJECTS}
    assert before.shred(SUBJECTS[0], place(SUBJECTS[0]))  # an erasure: nothing to move
    world.data.update({k: v for k, (_, v) in before.take().items()})
    rotated = world.keys(f"{NEW},{OLD}")
    rewrapper = world.rewrapper(rotated)
    for partition in range(PARTITIONS):
        assert await rewrapper.ensure(partition, always)
    assert world.kids() == {"new": len(SUBJECTS) - 1, None: 1}
    assert rewrapper.rewrapped == len(SUBJECTS) - 1
    assert rewrapper.done == set(range(PARTITIONS))
    # Every moved key went through the changelog to its own partition; a pass ends in a marker.
    sent = [(key, partition) for _, key, _, partition in world.broker.acked if key]
    moved = sorted((key, partition) for key, partition in sent if b"/" in key)
    assert moved == sorted((k, place(k)) for k in SUBJECTS[1:])
    assert [key for key, _ in sent if b"/" not in key] == [marker_key(p) for p in range(4)]
    # The old KEK can go: the newest alone opens what was sealed under the old wrapping.
    only_new = world.keys(NEW)
    for key in SUBJECTS[1:]:
        controller, _, subject = key.decode().partition("/")
        cipher = only_new._cipher(key, place(key))
        assert cipher.open(controller, subject, "personal", sealed[key]) == b"ann@example.com"


async def test_a_partition_already_under_the_newest_kek_is_not_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    keys = world.keys(OLD)
    for key in SUBJECTS:
        world.seal(keys, key)
    rotated = world.keys(f"{NEW},{OLD}")
    await world.rewrapper(rotated).ensure(0, always)
    again = world.rewrapper(rotated)  # the next owner, or the next assignment
    reads: list[Any] = []
    entries = world.table.entries
    monkeypatch.setattr(world.table, "entries", lambda *a: reads.append(a) or entries(*a))
    assert await again.ensure(0, always) and reads == [] and 0 in again.done
    # Another newest KEK: the marker no longer says so, and the keys move again.
    newer = world.keys(f"newer:{new_key()},{NEW}")
    moved = world.rewrapper(newer)
    assert await moved.ensure(0, always)
    assert reads and moved.rewrapped == sum(place(k) == 0 for k in SUBJECTS)


async def test_a_pass_cut_short_leaves_no_marker_and_the_next_goes_on() -> None:
    world = World()
    keys = world.keys(OLD)
    for key in SUBJECTS:
        world.seal(keys, key)
    rotated = world.keys(f"{NEW},{OLD}")
    steps = iter([True, True, False])  # a rebalance after the first step
    first = world.rewrapper(rotated, step=2)
    assert not await first.ensure(1, lambda: next(steps))
    assert marker_key(1) not in world.data and 1 not in first.done
    assert world.kids()["new"] == 2  # one step's keys, stored after the broker had them
    world.broker.fail = True  # a failed flush: nothing stored, the cache dropped
    with pytest.raises(ConnectionError):
        await world.rewrapper(rotated, step=2).ensure(1, always)
    assert world.kids()["new"] == 2
    world.broker.fail = False
    assert await world.rewrapper(rotated, step=2).ensure(1, always)
    on_one = [k for k in SUBJECTS if place(k) == 1]
    assert all(wrapped_by(world.data[k]) == "new" for k in on_one)
    assert world.data[marker_key(1)] == b"new"


async def test_metrics_say_which_partitions_still_wait() -> None:
    world = World()
    rewrapper = world.rewrapper(world.keys(f"{NEW},{OLD}"))
    await rewrapper.ensure(2, always)

    def samples() -> dict[str, float]:
        families = rewrap_metrics(rewrapper, range(PARTITIONS))
        return {s.name: s.value for family in families for s in family.samples}

    assert samples()["consent_streams_data_keys_rewrap_pending_partitions"] == 3
    for partition in range(PARTITIONS):
        await rewrapper.ensure(partition, always)
    assert samples()["consent_streams_data_keys_rewrap_pending_partitions"] == 0
    assert samples()["consent_streams_data_keys_rewrapped_total"] == 0  # nothing was stored
    moving = {s.name for f in rewrap_metrics(rewrapper, None) for s in f.samples}
    assert moving == {"consent_streams_data_keys_rewrapped_total"}  # pending: not known, not 0


def test_a_stored_value_names_its_kek() -> None:
    assert wrapped_by(orjson.dumps({"g": 2, "w": "k1:abc"})) == "k1"
    assert wrapped_by(orjson.dumps({"g": 2})) is None  # destroyed
    assert wrapped_by(b"not json") is None


async def test_keys_under_a_kek_this_worker_lacks_are_reported_and_stay_pending() -> None:
    """A rolling restart may leave a worker without a KEK another one already uses: it moves
    what it can, writes no marker, and does not read the partition again until reassigned."""
    world = World()
    elsewhere = world.keys(f"other:{new_key()}")
    mine = world.keys(OLD)
    on_zero = [k for k in SUBJECTS if place(k) == 0]
    world.seal(elsewhere, on_zero[0])
    for key in on_zero[1:]:
        world.seal(mine, key)
    rewrapper = world.rewrapper(world.keys(f"{NEW},{OLD}"))
    assert await rewrapper.ensure(0, always)
    assert rewrapper.rewrapped == len(on_zero) - 1 and wrapped_by(world.data[on_zero[0]]) == "other"
    assert marker_key(0) not in world.data and 0 in rewrapper.stuck
    families = rewrap_metrics(rewrapper, [0])
    pending = next(iter(families)).samples[0].value
    assert pending == 1
    rewrapper.forget()
    assert not rewrapper.stuck and not rewrapper.done
