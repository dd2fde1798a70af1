"""One RocksDB memory budget for the whole worker.

Faust opens a RocksDB database per partition of each table, each with its own block cache and
memtables, sized by the store's options alone: Faust has no app-wide setting for them, and its
defaults are a 2 GB block cache and three 64 MB memtables per database. The worker has five
tables, so with 6 partitions that is 30 databases. Here every database of a worker gets
memtables of :data:`WRITE_BUFFER_BYTES` (at most :data:`WRITE_BUFFERS` of them) and shares one
block cache and one write buffer manager with the others: RocksDB's memory stays near
:data:`BLOCK_CACHE_BYTES` + :data:`MEMTABLE_BYTES` however many tables and partitions the worker
holds. When the memtables of all its databases together near the budget, RocksDB flushes one of
them to disk; writes are never stalled for it (a soft limit).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import CollectionT

#: Memtables of one partition database: the size of each, and how many it may hold at once.
WRITE_BUFFER_BYTES = 16 * 2**20
WRITE_BUFFERS = 2
#: Read cache shared by every partition database of the worker.
BLOCK_CACHE_BYTES = 64 * 2**20
#: Memtables of every partition database of the worker together (a soft limit: flushes, no stalls).
MEMTABLE_BYTES = 128 * 2**20


class SharedMemory:
    """The block cache and the write buffer manager the databases of one worker share."""

    def __init__(
        self,
        block_cache_bytes: int = BLOCK_CACHE_BYTES,
        memtable_bytes: int = MEMTABLE_BYTES,
        write_buffer_bytes: int = WRITE_BUFFER_BYTES,
    ) -> None:
        self.block_cache_bytes = block_cache_bytes
        self.write_buffer_bytes = write_buffer_bytes
        self.cache = rocksdict.Cache(block_cache_bytes)
        self.buffers = rocksdict.WriteBufferManager(memtable_bytes, False)

    @property
    def memtable_usage(self) -> int:
        """Bytes the memtables of all the worker's databases hold now."""
        return int(self.buffers.get_usage())

    @property
    def block_cache_usage(self) -> int:
        """Bytes the shared block cache holds now (at most its capacity)."""
        return int(self.cache.get_usage())


class SharedMemoryOptions(RocksDBOptions):
    """A store's options with the worker's sizes, shared cache and shared budget."""

    def __init__(self, base: RocksDBOptions, shared: SharedMemory) -> None:
        super().__init__(
            max_open_files=base.max_open_files,
            write_buffer_size=shared.write_buffer_bytes,
            max_write_buffer_number=WRITE_BUFFERS,
            target_file_size_base=base.target_file_size_base,
            block_cache_size=shared.block_cache_bytes,
            block_cache_compressed_size=base.block_cache_compressed_size,
            bloom_filter_size=base.bloom_filter_size,
            use_rocksdict=True,
            ttl=base.ttl,
            **base.extra_options,
        )
        self.shared = shared

    def as_options(self) -> Any:
        options = super().as_options()
        # Faust's table options again (bloom filter, index), with the shared cache.
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.shared.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.shared.buffers)
        return options


def share_memory(tables: Iterable[CollectionT], shared: SharedMemory) -> int:
    """Give the RocksDB stores of ``tables`` the shared cache and budget (before any partition
    database opens); stores of another kind (memory, in tests) are left alone. Returns how many
    stores now share it."""
    count = 0
    for table in tables:
        store = table.data  # type: ignore[attr-defined]  # on Collection, not CollectionT
        if isinstance(store, RocksDBStore) and store.use_rocksdict:
            store.rocksdb_options = SharedMemoryOptions(store.rocksdb_options, shared)
            count += 1
    return count
