"""The worker's Kafka driver: Faust's aiokafka driver with the consumer settings it needs.

Faust's driver hard-codes the worker consumer's fetch wait (1500 ms) and reads uncommitted
records; no Faust setting reaches either. The three subclasses here are the only place that
changes the driver:

- :class:`ConsumerThread` sets ``fetch_max_wait_ms`` from the broker URL,
  ``isolation_level=read_committed`` (aborted transactions of a publisher are never applied)
  and a prefetch backoff no longer than the fetch wait (see :func:`prefetch_backoff`),
  and ends the process with :data:`~streams.worker.EXIT_UNREADABLE_FETCH` and a log line naming
  the partition when a fetch cannot be read (a codec this process lacks, a corrupt batch),
  where Faust would exit 1 like any crash;
- :class:`Consumer` creates that thread;
- :class:`Transport` uses that consumer. It is registered as the ``consent-kafka`` URL scheme
  (entry point ``faust.transports`` in pyproject.toml); :func:`broker_url` builds the URL.

The overridden internals are pinned with faust-streaming's version; tests/streams/
test_transport_shape.py fails when their shape changes.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from faust.transport.drivers import aiokafka as driver

from streams.settings import DEFAULT_FETCH_WAIT_MS
from streams.worker import EXIT_UNREADABLE_FETCH, exit_now

log = logging.getLogger("consent_streams")

SCHEME = "consent-kafka"
#: Query parameter of the broker URL that carries the fetch wait to the consumer thread.
FETCH_WAIT_PARAM = "fetch_wait_ms"
READ_COMMITTED = "read_committed"


def broker_url(bootstrap: str, fetch_wait_ms: int) -> str:
    """The Faust broker URL selecting this driver, e.g. ``consent-kafka://h:9092?fetch_wait_ms=20``."""
    return f"{SCHEME}://{bootstrap}?{FETCH_WAIT_PARAM}={fetch_wait_ms}"


#: aiokafka's prefetch backoff (seconds): how long fetched records not yet taken hold back the
#: next fetch from their broker, for every partition it leads.
AIOKAFKA_PREFETCH_BACKOFF = 0.1


def prefetch_backoff(fetch_wait_ms: int) -> float:
    """The fetcher's prefetch backoff for a fetch wait: the wait itself, at most aiokafka's.

    While fetched records of a partition wait to be taken, aiokafka sends no fetch to that
    partition's broker for up to the backoff, so new records of its other partitions wait too.
    With aiokafka's 100 ms this was most of the worker's p99 at a light load on one broker
    (docs/performance.md); no record should wait longer for it than for the fetch itself.
    """
    return min(fetch_wait_ms / 1000, AIOKAFKA_PREFETCH_BACKOFF)


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """The consumer thread; builds the worker's aiokafka consumer and reads its fetches."""

    def _create_worker_consumer(self, transport: driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The consumer hands both to its fetcher when it starts, which happens after this.
        consumer._fetch_max_wait_ms = fetch_wait_ms(transport)
        consumer._isolation_level = READ_COMMITTED
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        # The consumer makes its fetcher when it starts, and hands it no prefetch backoff.
        consumer = self._consumer
        assert consumer is not None  # Faust's on_start has just made and started it
        consumer._fetcher._prefetch_backoff = prefetch_backoff(consumer._fetch_max_wait_ms)

    async def _fetch_records(
        self,
        consumer: AIOKafkaConsumer,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        try:
            return await super()._fetch_records(
                consumer, active_partitions, timeout=timeout, max_records=max_records
            )
        except ConsumerStoppedError:
            raise
        except Exception as exc:
            tp = failed_partition(exc.__traceback__)
            if tp is None:  # not about one partition's records: Faust's own handling
                raise
            # Faust would crash the worker with exit 1 and, after a restart, read the same fetch
            # again: say which partition is stuck, then exit with a code of its own.
            await self._unreadable(consumer, tp, exc)
            raise

    async def _unreadable(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, exc: Exception
    ) -> None:
        try:  # the first offset not handed to the worker: where it is stuck
            offset = await asyncio.wait_for(consumer.position(tp), 1.0)
        except Exception:
            offset = None
        log.critical(
            "cannot read a fetch; exiting",
            extra={
                "topic": tp.topic,
                "partition": tp.partition,
                "offset": offset,
                "error": type(exc).__name__,
                # The client's own messages name codecs and partitions; other errors may quote
                # record bytes, so only their type is logged.
                "reason": str(exc)[:200] if isinstance(exc, KafkaError) else None,
                "exit_code": EXIT_UNREADABLE_FETCH,
            },
        )
        exit_now(EXIT_UNREADABLE_FETCH)


#: Where aiokafka's ``Fetcher.fetched_records`` reads the result of one partition (in its local
#: ``tp``): the records (``FetchResult.getall``) or the error its fetch got
#: (``FetchError.check_raise``).
_PARTITION_READS = frozenset({"getall", "check_raise"})


def failed_partition(tb: TracebackType | None) -> TopicPartition | None:
    """The partition whose fetched result raised, or None if the error is not about one."""
    partition = None
    while tb is not None:
        code = tb.tb_frame.f_code.co_name
        if code == "fetched_records":
            partition = tb.tb_frame.f_locals.get("tp")
        elif code in _PARTITION_READS and isinstance(partition, TopicPartition):
            return partition
        tb = tb.tb_next
    return None


class Consumer(driver.Consumer):
    """Faust's aiokafka consumer, reading through :class:`ConsumerThread`."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    """Faust's aiokafka transport with :class:`Consumer`; selected by ``consent-kafka://``."""

    Consumer = Consumer


def fetch_wait_ms(transport: driver.Transport) -> int:
    """The fetch wait :func:`broker_url` put in the transport's URL (else the default)."""
    raw = transport.url[0].query.get(FETCH_WAIT_PARAM)
    return int(raw) if raw else DEFAULT_FETCH_WAIT_MS
