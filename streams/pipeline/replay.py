"""The replay window: records an earlier owner of a partition may have folded and not committed.

A worker killed during a batch may have delivered part of the batch's messages, while the states
that caused them were never stored. The partition's next owner folds those records again from
the committed offsets, but a subject's keyed records (input topic) and keyless ones (the
repartition topic) may then come in another order than they did, so a message of the first fold
can be left with no later message for its pair. Folded again below the window, each event
restates the decisions it reaches (:meth:`streams.core.engine.Engine.replayed`), which supersedes
whatever the first fold said.

The window is a lease: a marker per partition in the data-keys table, written as a batch writes
key changes (changelog acknowledged, then the store). Before folding a record at or past its
partition's lease, a worker raises the lease past it and waits for the broker. So every record
ever folded is below the lease, and the next owner restates what it folds below the lease it
finds when it is first given the partition.

How far past: :func:`ahead`, four times the partition's records in the batch, at least
``floor`` and at most ``step``. A batch also raises the lease with its states (the same flush,
no wait of its own) once less than half of that is left, so a next batch of the same size folds
without waiting for a raise, and a lease stays close to what was folded: at a low rate, the
next owner restates at most ``floor`` records per partition that were never folded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from streams.pipeline.fold import Record
from streams.pipeline.personal import Changes, KeysTable

#: The most and the least a lease reaches past the last record folded. After a kill or a
#: rebalance, what was folded since the last commit and up to this many records more restate
#: their decisions.
STEP = 1_000
FLOOR = 64
#: Key of a partition's lease (then the partition number): no '/', so never a subject's key.
_LEASE = b"\x00folding\x00"


def lease_key(partition: int) -> bytes:
    return _LEASE + partition.to_bytes(4, "big")


def ahead(count: int, floor: int = FLOOR, step: int = STEP) -> int:
    """Records a lease is raised past the last of ``count`` records of a partition's batch."""
    return min(step, max(floor, 4 * count))


def raised_before(bound: int, last: int, count: int, floor: int = FLOOR, step: int = STEP) -> int:
    """The lease to store before folding ``count`` records up to offset ``last``; ``bound``
    (the lease stored) when they are all below it."""
    return last + 1 + ahead(count, floor, step) if last >= bound else bound


def raised_after(bound: int, last: int, count: int, floor: int = FLOOR, step: int = STEP) -> int:
    """The lease to store with the states of a batch that folded ``count`` records up to
    ``last``: raised once less than half of :func:`ahead` is left past them, else ``bound``."""
    reach = ahead(count, floor, step)
    return last + 1 + reach if bound - (last + 1) < reach // 2 else bound


class ReplayWindow:
    """Per partition: the lease found when it was assigned (what to restate), and the lease
    as stored now (what may be folded without raising it)."""

    def __init__(self, table: KeysTable, step: int = STEP, floor: int = FLOOR) -> None:
        self.table = table
        self.step = step
        self.floor = floor
        self._found: dict[int, dict[str, int]] = {}  # partition -> topic -> first offset past
        self._leased: dict[int, dict[str, int]] = {}

    def forget(self) -> None:
        """Partitions are moving: each lease is read again when its partition is assigned."""
        self._found.clear()
        self._leased.clear()

    def raised(self, batches: Mapping[Any, Sequence[Any]]) -> Changes:
        """The lease changes to store, and wait for, before folding ``batches`` ((topic,
        partition) -> records in offset order); empty while every record is below its lease.
        Taken as stored at once: if storing fails, :meth:`forget`."""
        return self._changes(batches, raised_before, self._lease)

    def ahead(self, batches: Mapping[Any, Sequence[Any]]) -> Changes:
        """The lease changes to store with the states of folded ``batches``, so that a next
        batch like them folds without a raise of its own; :meth:`stored` once stored."""
        return self._changes(batches, raised_after, self._held)

    def stored(self, changes: Changes) -> None:
        """:meth:`ahead`'s changes are stored: fold up to them without raising."""
        for key, (partition, value) in changes.items():
            leased = self._leased.get(partition)
            if leased is not None and key == lease_key(partition):
                leased.update(orjson.loads(value))

    def _held(self, partition: int) -> dict[str, int] | None:
        """A copy of the lease of a partition still held since its batch began, else None
        (a lease is only ever raised ahead from what this worker read and raised itself)."""
        leased = self._leased.get(partition)
        return None if leased is None else dict(leased)

    def _changes(
        self,
        batches: Mapping[Any, Sequence[Any]],
        policy: Callable[[int, int, int, int, int], int],
        lease: Callable[[int], dict[str, int] | None],
    ) -> Changes:
        changes: Changes = {}
        leases: dict[int, dict[str, int] | None] = {}
        for tp, records in batches.items():
            if not records:
                continue
            partition = tp.partition
            if partition not in leases:
                leases[partition] = lease(partition)
            leased = leases[partition]
            if leased is None:
                continue
            last = records[-1].offset
            bound = leased.get(tp.topic, 0)
            span = last - records[0].offset + 1  # offsets, as leases count them
            new = policy(bound, last, span, self.floor, self.step)
            if new != bound:
                leased[tp.topic] = new
                changes[lease_key(partition)] = (partition, orjson.dumps(leased))
        return changes

    def replayed(self, record: Record) -> bool:
        """Whether an earlier owner may have folded ``record`` (it is below the lease found)."""
        found = self._found.get(record.partition)
        return found is not None and record.offset < found.get(record.topic, 0)

    def _lease(self, partition: int) -> dict[str, int]:
        leased = self._leased.get(partition)
        if leased is None:
            stored = self.table.get(lease_key(partition), partition)
            found: dict[str, int] = orjson.loads(stored) if stored is not None else {}
            self._found[partition] = found
            leased = self._leased[partition] = dict(found)
        return leased
