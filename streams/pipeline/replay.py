"""The replay window: records an earlier owner of a partition may have folded and not committed.

A worker killed during a batch may have delivered part of the batch's messages, while the states
that caused them were never stored. The partition's next owner folds those records again from
the committed offsets, but a subject's keyed records (input topic) and keyless ones (the
repartition topic) may then come in another order than they did, so a message of the first fold
can be left with no later message for its pair. Folded again below the window, each event
restates the decisions it reaches (:meth:`streams.core.engine.Engine.replayed`), which supersedes
whatever the first fold said.

The window is a lease: before folding a record at or past its partition's lease, a worker raises
the lease ``step`` records past it, a marker in the data-keys table written as a batch writes
key changes (changelog acknowledged, then the store). So every record ever folded is below the
lease, and the next owner restates what it folds below the lease it finds when it is first
given the partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streams.pipeline.fold import Record
from streams.pipeline.personal import Changes, KeysTable

#: Records a lease reaches past the last one folded: one changelog write per this many records of
#: a partition. After a kill or a rebalance, what was folded since the last commit and up to this
#: many records more restate their decisions.
STEP = 1_000
#: Key of a partition's lease (then the partition number): no '/', so never a subject's key.
_LEASE = b"\x00folding\x00"


def lease_key(partition: int) -> bytes:
    return _LEASE + partition.to_bytes(4, "big")


class ReplayWindow:
    """Per partition: the lease found when it was assigned (what to restate), and the lease
    as stored now (what may be folded without raising it)."""

    def __init__(self, table: KeysTable, step: int = STEP) -> None:
        self.table = table
        self.step = step
        self._found: dict[int, dict[str, int]] = {}  # partition -> topic -> first offset past
        self._leased: dict[int, dict[str, int]] = {}

    def forget(self) -> None:
        """Partitions are moving: each lease is read again when its partition is assigned."""
        self._found.clear()
        self._leased.clear()

    def raised(self, batches: Mapping[Any, Sequence[Any]]) -> Changes:
        """The lease changes to store before folding ``batches`` ((topic, partition) -> records
        in offset order); empty while every record is below its lease."""
        changes: Changes = {}
        for tp, records in batches.items():
            if not records:
                continue
            partition = tp.partition
            leased = self._lease(partition)
            last = records[-1].offset
            if last >= leased.get(tp.topic, 0):
                leased[tp.topic] = last + 1 + self.step
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
