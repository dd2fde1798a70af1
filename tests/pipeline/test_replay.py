"""The replay window without Kafka: a lease is raised (through the keys changelog) before any
record at or past it is folded, and the next owner restates what it folds below the lease it
finds."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
from faust.types import TP

from streams.pipeline.fold import Record
from streams.pipeline.personal import KeysTable
from streams.pipeline.replay import ReplayWindow, lease_key

EVENTS, HOP = "events", "events-by-subject"


def keys_table(data: dict[bytes, bytes]) -> KeysTable:
    return KeysTable(
        SimpleNamespace(
            data=SimpleNamespace(data=data),
            partitions=4,
            changelog_topic=SimpleNamespace(get_topic_name=lambda: "data-keys-changelog"),
        )
    )


def fetched(topic: str, partition: int, *offsets: int) -> dict[TP, list[Record]]:
    return {TP(topic, partition): [Record(topic, partition, n, b"s", b"{}") for n in offsets]}


def store(data: dict[bytes, bytes], changes: dict[bytes, tuple[int, bytes]]) -> None:
    data.update({key: value for key, (_, value) in changes.items()})


def test_a_first_owner_raises_the_lease_past_what_it_folds_and_restates_nothing() -> None:
    data: dict[bytes, bytes] = {}
    window = ReplayWindow(keys_table(data), step=100, floor=10)
    raised = window.raised({**fetched(EVENTS, 2, 0, 1, 2), **fetched(HOP, 2, 5)})
    # Four times the records past the last one, at least the floor.
    assert raised == {lease_key(2): (2, orjson.dumps({EVENTS: 15, HOP: 16}))}
    store(data, raised)
    assert window.raised(fetched(EVENTS, 2, 3, 14)) == {}  # below the lease: no write
    assert not window.replayed(Record(EVENTS, 2, 0, b"s", b"{}"))
    again = window.raised(fetched(EVENTS, 2, 15))
    assert again == {lease_key(2): (2, orjson.dumps({EVENTS: 26, HOP: 16}))}


def test_the_next_owner_restates_below_the_lease_it_found_and_only_there() -> None:
    data: dict[bytes, bytes] = {}
    first = ReplayWindow(keys_table(data), step=100, floor=10)
    store(data, first.raised({**fetched(EVENTS, 1, 7), **fetched(HOP, 1, 0)}))
    store(data, first.raised(fetched(EVENTS, 3, 0)))

    nxt = ReplayWindow(keys_table(data), step=100, floor=10)
    store(data, nxt.raised({**fetched(EVENTS, 1, 17, 18), **fetched(HOP, 1, 10)}))
    assert nxt.replayed(Record(EVENTS, 1, 17, b"s", b"{}"))
    assert not nxt.replayed(Record(EVENTS, 1, 18, b"s", b"{}"))
    assert nxt.replayed(Record(HOP, 1, 10, b"s", b"{}"))
    assert not nxt.replayed(Record(HOP, 1, 11, b"s", b"{}"))
    assert not nxt.replayed(Record(EVENTS, 3, 0, b"s", b"{}"))  # partition 3 not seen yet
    assert orjson.loads(data[lease_key(1)]) == {EVENTS: 29, HOP: 11}
    # Its own raise does not widen what it restates: that stays what the first owner left.
    assert not nxt.replayed(Record(EVENTS, 1, 25, b"s", b"{}"))


def test_a_partition_assigned_again_reads_its_lease_again() -> None:
    data: dict[bytes, bytes] = {}
    window = ReplayWindow(keys_table(data), step=10, floor=10)
    store(data, window.raised(fetched(EVENTS, 0, 4)))
    assert not window.replayed(Record(EVENTS, 0, 4, b"s", b"{}"))
    window.forget()
    assert window.raised(fetched(EVENTS, 0, 5)) == {}
    assert window.replayed(Record(EVENTS, 0, 5, b"s", b"{}"))


def test_a_batch_raises_the_lease_ahead_once_less_than_half_is_left() -> None:
    data: dict[bytes, bytes] = {}
    window = ReplayWindow(keys_table(data), step=1000, floor=10)
    first = fetched(EVENTS, 0, *range(50))
    store(data, window.raised(first))  # 50 + 4 x 50
    assert orjson.loads(data[lease_key(0)]) == {EVENTS: 250}
    assert window.ahead(first) == {}  # 200 left past offset 49: enough
    second = fetched(EVENTS, 0, *range(50, 150))
    assert window.raised(second) == {}
    ahead = window.ahead(second)  # 100 left, less than half of 4 x 100
    assert ahead == {lease_key(0): (0, orjson.dumps({EVENTS: 550}))}
    # Not taken as stored before it is: a batch past the stored lease still raises it first.
    assert window.raised(fetched(EVENTS, 0, 250)) != {}
    store(data, ahead)
    window.stored(ahead)
    assert window.raised(fetched(EVENTS, 0, *range(251, 550))) == {}


def test_at_a_low_rate_a_lease_stays_within_the_floor_of_what_was_folded() -> None:
    data: dict[bytes, bytes] = {}
    window = ReplayWindow(keys_table(data), step=1000, floor=64)
    for offset in range(500):  # one record per batch, raised before and ahead as the worker does
        batch = fetched(EVENTS, 0, offset)
        store(data, window.raised(batch))
        ahead = window.ahead(batch)
        store(data, ahead)
        window.stored(ahead)
    lease = orjson.loads(data[lease_key(0)])[EVENTS]
    assert 500 + 32 <= lease <= 500 + 64
    nxt = ReplayWindow(keys_table(data), step=1000, floor=64)
    nxt.raised(fetched(EVENTS, 0, 500))
    assert nxt.replayed(Record(EVENTS, 0, 500, b"s", b"{}"))
    assert not nxt.replayed(Record(EVENTS, 0, 500 + 64, b"s", b"{}"))
