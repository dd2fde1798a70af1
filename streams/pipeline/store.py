"""Subject states below the Faust table: read once, cached decoded, written once per batch.

The ``subjects`` table keeps its store, changelog, recovery and standbys; this writes to them
directly, so that each key costs one changelog record and one RocksDB put per batch, each to
the key's own partition (the partition its events arrive on), instead of one Faust table write
per event whose changelog partition is that of the stream's current event.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from faust.types import TP

from streams.core.state import SubjectState
from streams.pipeline.caching import remember
from streams.pipeline.sending import Outbox
from streams.topology import partition_key, partition_of

#: Decoded states kept in memory by default (``CONSENT_STATE_CACHE``; oldest dropped first).
#: Measured on the bench workload: ~4.5 KB of Python objects for a mean state, ~14 KB for the
#: largest, so the default keeps the cache to ~45-140 MB. Empty after a start or a rebalance.
CACHE_MAX = 10_000


class SubjectStore:
    def __init__(self, app: Any, table: Any, cache_max: int = CACHE_MAX) -> None:
        self.app = app  # faust.App
        self.table = table  # faust Table[bytes, bytes], raw keys and values
        self.cache_max = cache_max
        self._cache: dict[bytes, SubjectState] = {}

    def load(self, key: bytes, partition: int) -> SubjectState:
        """The stored state of ``key``, which lives in ``partition``."""
        state = self._cache.get(key)
        if state is None:
            state = SubjectState.from_bytes(self._get(key, partition))
        return state

    async def save(
        self, states: dict[bytes, tuple[int, SubjectState]], outbox: Outbox
    ) -> dict[tuple[str, int], int]:
        """Changelog first (acknowledged), then the store, one write batch per partition.

        A kill in between leaves the changelog ahead of the store, which recovery repairs;
        the offsets of the events are committed only after this returns. Returns the last
        offset per (topic, partition) of the flush (records others added to ``outbox`` too).
        """
        if not states:
            return await outbox.sent()  # what others added still goes
        topic = self.table.changelog_topic.get_topic_name()
        encoded: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for key, (partition, state) in states.items():
            value = state.to_bytes()
            encoded[partition].append((key, value))
            await outbox.add(topic, key, value, partition=partition)  # the key's own partition
        last = await outbox.sent()
        for partition, items in encoded.items():
            self._write(partition, items, TP(topic, partition), last[(topic, partition)])
        for key, (_, state) in states.items():
            self._remember(key, state)
        return last

    def stored_states(
        self, partition: int, after: bytes | None, limit: int
    ) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` stored (key, state bytes) of ``partition`` in key order, from the
        first key after ``after``."""
        return subjects_after(self.table, partition, after, limit)

    def forget(self) -> None:
        """Drop every cached state (partitions are being revoked: they may come back changed)."""
        self._cache.clear()

    def _remember(self, key: bytes, state: SubjectState) -> None:
        remember(self._cache, key, state, self.cache_max)

    # -- the store under the table (RocksDB, or memory in small setups) -------------------

    def _get(self, key: bytes, partition: int) -> bytes | None:
        return stored(self.table, key, partition)

    def _write(self, partition: int, items: list[tuple[bytes, bytes]], tp: TP, offset: int) -> None:
        write_stored(self.table, partition, items, tp, offset)


def stored(table: Any, key: bytes, partition: int) -> bytes | None:
    """The value of ``key`` in the store of ``partition`` beneath a raw Faust table."""
    store = table.data
    if hasattr(store, "_db_for_partition"):
        value: bytes | None = store._db_for_partition(partition).get(key)
        return value
    found: bytes | None = store.data.get(key)
    return found


def scan_stored(table: Any, partition: int, start: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Entries of the store of ``partition`` beneath a raw Faust table whose key is ``start``
    or after, in key order."""
    store = table.data
    if hasattr(store, "_db_for_partition"):
        yield from store._db_for_partition(partition).items(from_key=start)
        return
    count = int(table.partitions)  # a memory store holds every partition in one mapping
    yield from sorted(
        (key, value)
        for key, value in store.data.items()
        if key >= start and partition_of(partition_key(key), count) == partition
    )


def subjects_after(
    table: Any, partition: int, after: bytes | None, limit: int
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` (subject key, value) of the store of ``partition`` beneath a raw Faust
    table keyed by subject, in key order, from the first key after ``after``."""
    found = (
        (key, value)
        for key, value in scan_stored(table, partition, after or b"")
        if key != after and b"/" in key  # a subject's key: not the offset entry, nor a marker
    )
    return list(itertools.islice(found, limit))


def write_stored(
    table: Any, partition: int, items: list[tuple[bytes, bytes]], tp: TP, offset: int
) -> None:
    """Write ``items`` to the store of ``partition``, with the changelog offset they reach."""
    store = table.data
    if not hasattr(store, "_db_for_partition"):
        store.data.update(items)
        return
    import rocksdict

    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in items:
        batch.put(key, value)
    store._db_for_partition(partition).write(batch)
    index = store._key_index  # lets reads outside a stream find the partition at once
    for key, _ in items:
        index[key] = partition
    store.set_persisted_offset(tp, offset)
