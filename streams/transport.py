"""The worker's Kafka driver: Faust's aiokafka driver with the consumer settings it needs.

Faust's driver hard-codes the worker consumer's fetch wait (1500 ms) and reads uncommitted
records; no Faust setting reaches either. The three subclasses here are the only place that
changes the driver:

- :class:`ConsumerThread` sets ``fetch_max_wait_ms`` from the broker URL and
  ``isolation_level=read_committed`` (aborted transactions of a publisher are never applied),
  and ends the process with :data:`~streams.worker.EXIT_UNREADABLE_FETCH` when a fetch cannot
  be read (a codec this process lacks, a corrupt batch), instead of Faust's silent crash loop;
- :class:`Consumer` creates that thread;
- :class:`Transport` uses that consumer. It is registered as the ``consent-kafka`` URL scheme
  (entry point ``faust.transports`` in pyproject.toml); :func:`broker_url` builds the URL.

The overridden internals are pinned with faust-streaming's version; tests/streams/
test_transport_shape.py fails when their shape changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
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
    """The Faust broker URL selecting this driver, e.g. ``consent-kafka://h:9092?fetch_wait_ms=10``."""
    return f"{SCHEME}://{bootstrap}?{FETCH_WAIT_PARAM}={fetch_wait_ms}"


class ConsumerThread(driver.AIOKafkaConsumerThread):
    """The consumer thread; builds the worker's aiokafka consumer and reads its fetches."""

    #: Called with the exit code when a fetch cannot be read (tests replace it).
    exit: Callable[[int], object] = staticmethod(exit_now)

    def _create_worker_consumer(self, transport: driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # The consumer hands both to its fetcher when it starts, which happens after this.
        consumer._fetch_max_wait_ms = fetch_wait_ms(transport)
        consumer._isolation_level = READ_COMMITTED
        return consumer

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
            # Faust would crash the worker with exit 1 and, after a restart, read the same fetch
            # again: say which partition is stuck, then exit with a code of its own.
            await self._unreadable(consumer, exc)
            raise

    async def _unreadable(self, consumer: AIOKafkaConsumer, exc: Exception) -> None:
        tp = failed_partition(exc.__traceback__)
        offset = None
        if tp is not None:
            try:  # the first offset not handed to the worker: where it is stuck
                offset = await asyncio.wait_for(consumer.position(tp), 1.0)
            except Exception:
                offset = None
        log.critical(
            "cannot read a fetch; exiting",
            extra={
                "topic": tp.topic if tp else None,
                "partition": tp.partition if tp else None,
                "offset": offset,
                "error": type(exc).__name__,
                # The client's own messages name codecs and partitions; other errors may quote
                # record bytes, so only their type is logged.
                "reason": str(exc)[:200] if isinstance(exc, KafkaError) else None,
                "exit_code": EXIT_UNREADABLE_FETCH,
            },
        )
        self.exit(EXIT_UNREADABLE_FETCH)


def failed_partition(tb: TracebackType | None) -> TopicPartition | None:
    """The partition whose records were being read when the fetcher raised.

    The aiokafka fetcher reads a partition at a time with the partition in a local ``tp``
    (``Fetcher.fetched_records``, ``PartitionRecords._unpack_records``); the deepest one wins.
    """
    found = None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("tp")
        if isinstance(candidate, TopicPartition):
            found = candidate
        tb = tb.tb_next
    return found


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
