"""streams/pipeline/ works below Faust's stream: these internals are what it relies on.

They fail when a release of faust-streaming or aiokafka changes them: run them before moving
the pins in pyproject.toml.
"""

from __future__ import annotations

import inspect

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from faust.sensors.monitor import Monitor
from faust.stores import rocksdb
from faust.transport import consumer as base
from faust.types import tuples

from streams import transport
from streams.pipeline.consumer import BatchConsumer, BatchTransport


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_batch_consumer_extends_the_workers_driver() -> None:
    assert issubclass(BatchConsumer, transport.Consumer)
    assert issubclass(BatchTransport, transport.Transport)
    assert BatchTransport.Consumer is BatchConsumer


def test_fetched_records_still_pass_through_wait_next_records() -> None:
    assert parameters(base.Consumer._wait_next_records) == ["self", "timeout"]
    getmany = inspect.getsource(base.Consumer.getmany)
    assert "records, active_partitions = await self._wait_next_records(timeout)" in getmany
    # Records for partitions outside ``active_partitions`` are skipped; ours are too.
    assert "tp in active_partitions" in getmany


def test_acknowledging_an_offset_is_still_the_bookkeeping_the_batch_repeats() -> None:
    ack = inspect.getsource(base.Consumer.ack)
    for step in (
        "with ack_lock:",
        "committed = self._committed_offset[tp]",
        "acked_index = self._acked_index[tp]",
        "acked_for_tp.append(offset)",
        "self._n_acked += 1",
    ):
        assert step in ack
    assert hasattr(tuples, "ack_lock")
    assert parameters(base.Consumer._add_gap) == ["self", "tp", "offset_from", "offset_to"]
    drain = inspect.getsource(base.Consumer._drain_messages)
    assert "await self._add_gap(tp, r_offset + 1, offset)" in drain
    assert "set_read_offset(tp, offset)" in drain
    assert inspect.iscoroutinefunction(base.Consumer.wait_empty)


def test_the_store_is_still_one_rocksdb_per_partition_with_its_offset() -> None:
    store = rocksdb.Store
    assert parameters(store._db_for_partition) == ["self", "partition"]
    assert parameters(store.set_persisted_offset) == ["self", "tp", "offset"]
    assert "self._key_index = LRUCache(" in inspect.getsource(store.__init__)
    assert "rocksdict.WriteBatch(raw_mode=True)" in inspect.getsource(store.apply_changelog_batch)
    assert "Options(raw_mode=True)" in inspect.getsource(rocksdb.RocksDBOptions.as_options)


def test_the_lag_figures_are_still_the_monitors() -> None:
    source = inspect.getsource(Monitor.on_message_in)
    assert "self.tp_read_offsets[tp] = offset" in source
    assert "self.messages_received_by_topic[tp.topic] += 1" in source
    assert parameters(Monitor.track_tp_end_offset) == ["self", "tp", "offset"]


def test_producer_batches_are_still_built_and_sent_by_hand() -> None:
    assert parameters(AIOKafkaProducer.create_batch) == ["self"]
    assert parameters(AIOKafkaProducer.send_batch) == ["self", "batch", "topic", "partition"]
    assert parameters(BatchBuilder.append) == ["self", "timestamp", "key", "value", "headers"]
    assert parameters(BatchBuilder.record_count) == ["self"]


def test_the_aiokafka_producer_is_still_reachable_from_faust() -> None:
    from faust.transport.drivers import aiokafka as driver

    assert parameters(driver.Producer._ensure_producer) == ["self"]
