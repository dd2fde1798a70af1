"""Ledger entries below a Faust table: written per batch, read back by prefix.

The ``ledger`` table (raw bytes) keeps its store, changelog, recovery and standbys, as the
``subjects`` table does; entries are written directly, as :mod:`streams.pipeline.store` writes
states: a changelog record to the subject's own partition (the partition of its state), then one
RocksDB write batch per partition. The changelog records travel with the batch's outputs, so
they are acknowledged before the states that carry the new chain heads are stored (see
docs/guarantees.md, "The consent ledger").

Key: ``controller/subject_id``, a NUL byte, the sequence as 8 bytes big-endian, so a subject's
entries are adjacent and in sequence order in the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the fold uses the key helpers, and stays free of Kafka
    from streams.pipeline.sending import Outbox

#: (partition, entry key, stored entry) for each entry a batch appends
Stored = list[tuple[int, bytes, bytes]]

LEDGER_TABLE = "ledger"
SEPARATOR = b"\x00"
_SEQUENCE_BYTES = 8
#: The ledger is evidence kept for the policy's retention, not Kafka's: compacted (one record
#: per entry key survives), never deleted by time. Deleting at the end of retention is a later
#: change (it needs tombstones per entry).
LEDGER_TOPIC_CONFIG = {"cleanup.policy": "compact", "retention.ms": "-1"}


def entry_key(key: bytes, sequence: int) -> bytes:
    """Where entry ``sequence`` of the subject ``key`` (controller/subject_id) is stored."""
    return key + SEPARATOR + sequence.to_bytes(_SEQUENCE_BYTES, "big")


def split_key(stored: bytes) -> tuple[bytes, int] | None:
    """(subject key, sequence) of a stored entry key; None if it is not one."""
    if len(stored) <= _SEQUENCE_BYTES + 1 or stored[-_SEQUENCE_BYTES - 1] != SEPARATOR[0]:
        return None
    return stored[: -_SEQUENCE_BYTES - 1], int.from_bytes(stored[-_SEQUENCE_BYTES:], "big")


class LedgerStore:
    def __init__(self, table: Any) -> None:
        self.table = table  # faust Table[bytes, bytes], raw keys and values

    @property
    def topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    async def add(self, entries: Stored, outbox: Outbox) -> None:
        """Append the changelog records of ``entries`` to ``outbox``, each to its partition."""
        topic = self.topic
        for partition, key, value in entries:
            await outbox.add(topic, key, value, partition=partition)

    def write(self, entries: Stored, last: dict[tuple[str, int], int]) -> None:
        """Store ``entries`` once their changelog records are acknowledged (``last``: the
        acknowledged offsets per (topic, partition)): one write batch per partition."""
        if not entries:
            return
        by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
        for partition, key, value in entries:
            by_partition[partition].append((key, value))
        store = self.table.data
        if not hasattr(store, "_db_for_partition"):
            for items in by_partition.values():
                store.data.update(items)
            return
        import rocksdict

        topic = self.topic
        for partition, items in by_partition.items():
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in items:
                batch.put(key, value)
            # The persisted offset in the same batch: recovery starts after what is stored.
            batch.put(store.offset_key, str(last[(topic, partition)]).encode())
            store._db_for_partition(partition).write(batch)

    def read(self, key: bytes, partition: int) -> Iterator[bytes]:
        """The stored entries of ``key`` in sequence order, as stored bytes."""
        prefix = key + SEPARATOR
        size = len(prefix) + _SEQUENCE_BYTES
        store = self.table.data
        if not hasattr(store, "_db_for_partition"):
            found = sorted(
                (k, v) for k, v in store.data.items() if len(k) == size and k.startswith(prefix)
            )
            for _, value in found:
                yield value
            return
        for k, value in store._db_for_partition(partition).items(from_key=prefix):
            if not k.startswith(prefix):
                return
            if len(k) == size:  # not the entry of a subject whose id extends this one
                yield value
