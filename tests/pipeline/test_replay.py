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
    window = ReplayWindow(keys_table(data), step=100)
    raised = window.raised({**fetched(EVENTS, 2, 0, 1, 2), **fetched(HOP, 2, 5)})
    assert raised == {lease_key(2): (2, orjson.dumps({EVENTS: 103, HOP: 106}))}
    store(data, raised)
    assert window.raised(fetched(EVENTS, 2, 3, 102)) == {}  # below the lease: no write
    assert not window.replayed(Record(EVENTS, 2, 0, b"s", b"{}"))
    again = window.raised(fetched(EVENTS, 2, 103))
    assert again == {lease_key(2): (2, orjson.dumps({EVENTS: 204, HOP: 106}))}


def test_the_next_owner_restates_below_the_lease_it_found_and_only_there() -> None:
    data: dict[bytes, bytes] = {}
    first = ReplayWindow(keys_table(data), step=100)
    store(data, first.raised({**fetched(EVENTS, 1, 7), **fetched(HOP, 1, 0)}))
    store(data, first.raised(fetched(EVENTS, 3, 0)))

    nxt = ReplayWindow(keys_table(data), step=100)
    store(data, nxt.raised({**fetched(EVENTS, 1, 107, 108), **fetched(HOP, 1, 100)}))
    assert nxt.replayed(Record(EVENTS, 1, 107, b"s", b"{}"))
    assert not nxt.replayed(Record(EVENTS, 1, 108, b"s", b"{}"))
    assert nxt.replayed(Record(HOP, 1, 100, b"s", b"{}"))
    assert not nxt.replayed(Record(HOP, 1, 101, b"s", b"{}"))
    assert not nxt.replayed(Record(EVENTS, 3, 0, b"s", b"{}"))  # partition 3 not seen yet
    assert orjson.loads(data[lease_key(1)]) == {EVENTS: 209, HOP: 101}
    # Its own raise does not widen what it restates: that stays what the first owner left.
    assert not nxt.replayed(Record(EVENTS, 1, 150, b"s", b"{}"))


def test_a_partition_assigned_again_reads_its_lease_again() -> None:
    data: dict[bytes, bytes] = {}
    window = ReplayWindow(keys_table(data), step=10)
    store(data, window.raised(fetched(EVENTS, 0, 4)))
    assert not window.replayed(Record(EVENTS, 0, 4, b"s", b"{}"))
    window.forget()
    assert window.raised(fetched(EVENTS, 0, 5)) == {}
    assert window.replayed(Record(EVENTS, 0, 5, b"s", b"{}"))
