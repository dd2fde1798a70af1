"""One RocksDB memory budget for every table and partition of a worker (streams/storage.py).

Real RocksDB stores in a temporary directory, no Kafka: what is measured is the shared write
buffer manager's own count of the memtables' bytes.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.stores import rocksdb

from streams.storage import (
    WRITE_BUFFER_BYTES,
    WRITE_BUFFERS,
    SharedMemory,
    SharedMemoryOptions,
    share_memory,
)

MB = 2**20
VALUE = os.urandom(1000)


def tables(tmp_path: Path, store: str = "rocksdb://") -> tuple[Any, Any]:
    app = faust.App(
        "storage",
        broker="kafka://127.0.0.1:1",
        store=store,
        datadir=str(tmp_path),
    )
    return (
        app.Table("states", partitions=4, key_type=bytes, value_type=bytes),
        app.Table("entries", partitions=4, key_type=bytes, value_type=bytes),
    )


def fill(table: Any, partition: int, megabytes: int, prefix: bytes = b"k") -> None:
    db = table.data._db_for_partition(partition)
    for i in range(megabytes * 1000):
        db.put(prefix + str(i).encode(), VALUE)


def test_every_rocksdb_store_of_the_worker_gets_the_one_budget(tmp_path: Path) -> None:
    shared = SharedMemory()
    states, entries = tables(tmp_path)
    assert share_memory([states, entries], shared) == 2
    for table in (states, entries):
        options = table.data.rocksdb_options
        assert isinstance(options, SharedMemoryOptions) and options.shared is shared
        # Faust's own defaults are 3 x 64 MB memtables and a 2 GB block cache per database.
        assert options.write_buffer_size == WRITE_BUFFER_BYTES == 16 * MB
        assert options.max_write_buffer_number == WRITE_BUFFERS == 2


def test_other_stores_are_left_alone(tmp_path: Path) -> None:
    assert share_memory(tables(tmp_path, "memory://"), SharedMemory()) == 0


def test_memtables_of_all_tables_count_against_one_budget(tmp_path: Path) -> None:
    budget = 16 * MB
    shared = SharedMemory(block_cache_bytes=8 * MB, memtable_bytes=budget)
    states, entries = tables(tmp_path)
    share_memory([states, entries], shared)

    fill(states, 0, 1)
    one = shared.memtable_usage
    fill(entries, 1, 1)
    assert one >= 1 * MB and shared.memtable_usage >= one + 1 * MB  # both on the one count

    peak, written = 0, 0
    for partition in range(4):
        for table in (states, entries):
            fill(table, partition, 6, b"x")
            written += 6 * MB
            peak = max(peak, shared.memtable_usage)
    # 48 MB went into 8 databases whose memtables could each hold 32 MB: all of it would
    # still be in memory. The budget holds them near 16 MB (a soft limit: RocksDB flushes as
    # the total nears it).
    assert written == 48 * MB
    assert peak <= 1.5 * budget
    assert states.data._db_for_partition(3)[b"x5999"] == VALUE  # flushed, not lost


def test_reads_fill_the_one_block_cache_up_to_its_capacity(tmp_path: Path) -> None:
    shared = SharedMemory(block_cache_bytes=2 * MB)
    states, entries = tables(tmp_path)
    share_memory([states, entries], shared)
    for table in (states, entries):
        fill(table, 0, 2)
        db = table.data._db_for_partition(0)
        db.flush()  # to table files: reads now go through the block cache
        for i in range(0, 2000, 7):
            assert db[b"k" + str(i).encode()] == VALUE
    assert 1 * MB <= shared.block_cache_usage <= 2 * MB  # both databases, one bounded cache


@pytest.mark.parametrize("name", ["max_open_files", "write_buffer_size", "bloom_filter_size"])
def test_faust_still_opens_each_database_with_the_stores_options(name: str) -> None:
    """streams/storage.py swaps a store's ``rocksdb_options`` before any database opens."""
    assert "self.rocksdb_options = RocksDBOptions(" in inspect.getsource(rocksdb.Store.__init__)
    assert "self.rocksdb_options.open(" in inspect.getsource(rocksdb.Store._open_for_partition)
    assert name in inspect.signature(rocksdb.RocksDBOptions.__init__).parameters
    assert "set_block_based_table_factory" in inspect.getsource(rocksdb.RocksDBOptions.as_options)
