"""Key rotation in the worker: every stored data key moves to the newest key-encryption key.

A data key moves to the newest KEK lazily, when its subject's data is next sealed; a subject
never written to again would keep an older wrapping for ever, and that KEK could never be
retired. So, once per assignment, each active partition's data keys are read in steps of
:data:`STEP` and those wrapped by an older KEK are wrapped again, through the path a batch's key
changes take (keys changelog acknowledged, then the store). Each step holds the batches' lock,
so a step and a batch never interleave. A kill part way leaves some keys moved and the rest
where they were; the next owner goes on.

When a pass ends, the partition records which KEK every key it holds is wrapped by (a marker in
the keys table, sent through its changelog like a key): as new keys are always wrapped by the
newest KEK, the next assignment under the same keyring reads nothing. Destroyed keys (erasure)
hold no wrapping and are left as they are. Keys wrapped by a KEK this worker is not given (a
rotation rolled out out of order) stay as they are: the pass writes no marker, and the
partition stays pending until its next assignment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator

import orjson
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from streams.pipeline.personal import Changes, KeysTable, SubjectKeys
from streams.pipeline.sending import Producer
from streams.pipeline.stats import PREFIX
from streams.security.shredding import KeyMaterialError

log = logging.getLogger("consent_streams")

#: Data keys read per step (a batch waits for one step at most).
STEP = 1000
#: Key of a partition's marker (then the partition number): no '/', so never a subject's key.
_WRAPPED_BY = b"\x00wrapped-by\x00"


def marker_key(partition: int) -> bytes:
    return _WRAPPED_BY + partition.to_bytes(4, "big")


def wrapped_by(value: bytes) -> str | None:
    """The id of the KEK a stored data key is wrapped by; None once destroyed or unreadable."""
    try:
        wrapped = orjson.loads(value).get("w")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return wrapped.partition(":")[0] if isinstance(wrapped, str) else None


class Rewrapper:
    """Brings the data keys of a partition under the newest KEK; see the module docstring."""

    def __init__(
        self,
        keys: SubjectKeys,
        table: KeysTable,
        lock: asyncio.Lock,
        producer: Callable[[], Producer],
        step: int = STEP,
    ) -> None:
        self.keys = keys
        self.table = table
        self.lock = lock
        self.producer = producer
        self.step = step
        self.rewrapped = 0  # data keys moved since this worker started (the metric)
        #: active partitions whose keys are all under the newest KEK (this assignment)
        self.done: set[int] = set()
        #: active partitions holding keys this worker cannot open: not tried again until the
        #: next assignment, and still pending
        self.stuck: set[int] = set()

    def forget(self) -> None:
        """Partitions are moving: each is looked at again when assigned."""
        self.done.clear()
        self.stuck.clear()

    @property
    def newest(self) -> str:
        return self.keys.keyring.current

    def settled(self, partition: int) -> bool:
        """Whether every data key of ``partition`` is known to be wrapped by the newest KEK."""
        marker = self.table.get(marker_key(partition), partition)
        return marker is not None and marker.decode() == self.newest

    async def ensure(self, partition: int, current: Callable[[], bool]) -> bool:
        """Move every data key of ``partition`` to the newest KEK. False if ``current()``
        turned false first (a rebalance): whoever owns the partition next goes on."""
        if partition in self.done or partition in self.stuck:
            return True
        async with self.lock:
            if not current():
                return False
            if self.settled(partition):
                self.done.add(partition)
                return True
        newest, after, started = self.newest, None, time.perf_counter()
        read = moved = unopened = 0
        while True:
            async with self.lock:
                if not current():
                    return False
                found = self.table.entries(partition, after, self.step)
                self.keys.forget_pending()  # a failed batch's changes: it is delivered again
                if not found:
                    break
                step = 0
                for key, value in found:
                    kid = wrapped_by(value)
                    if kid is None or kid == newest:
                        continue
                    try:
                        step += self.keys.rewrap(key, partition)
                    except KeyMaterialError:  # wrapped by a KEK this worker is not given
                        unopened += 1
                await self._write(self.keys.take())
                after = found[-1][0]
            read += len(found)
            moved += step
            self.rewrapped += step
            await asyncio.sleep(0)  # let a waiting batch and everything else run
        if unopened:
            # No marker: the keys stay where they are until a worker with that KEK owns them.
            self.stuck.add(partition)
            log.warning(
                "data keys wrapped by a key-encryption key this worker is not given",
                extra={"partition": partition, "keys": unopened, "kek": newest},
            )
            return True
        async with self.lock:
            if not current():
                return False
            await self._write({marker_key(partition): (partition, newest.encode())})
            if current():  # not revoked while the broker acknowledged
                self.done.add(partition)
        log.info(
            "data keys under the newest key-encryption key",
            extra={
                "partition": partition,
                "kek": newest,
                "read": read,
                "rewrapped": moved,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return True

    async def _write(self, changes: Changes) -> None:
        """As a batch writes its key changes: the changelog acknowledges, then the store."""
        if not changes:
            return
        try:
            await self.table.save(changes, self.producer().outbox())
        except BaseException:
            self.keys.forget()  # values taken but never stored: read them again
            raise


def rewrap_metrics(rewrapper: Rewrapper, partitions: Iterable[int] | None) -> Iterator[Metric]:
    """Key rotation on /metrics: partitions of ``partitions`` (this worker's active ones; None
    while they move, and the gauge is left out rather than read as 0) whose data keys are not
    yet known to be under the newest KEK, and keys moved since the start."""
    if partitions is not None:
        yield GaugeMetricFamily(
            PREFIX + "data_keys_rewrap_pending_partitions",
            "Active partitions whose data keys are not yet all wrapped by the newest "
            "key-encryption key. An older key may be retired once every worker reports 0.",
            value=len(set(partitions) - rewrapper.done),
        )
    yield CounterMetricFamily(
        PREFIX + "data_keys_rewrapped",
        "Stored data keys wrapped again by the newest key-encryption key, since this worker "
        "started.",
        value=rewrapper.rewrapped,
    )
