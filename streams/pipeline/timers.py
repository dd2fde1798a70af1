"""Timers in the worker: a per-partition index of due work, and a ticker that fires it.

The index is a changelogged table (``timers``) on the subjects' partitions, keyed by due time
then item id, so a scan from the start of a partition's store finds exactly what is due. A
batch writes it right after the subject states it follows from (changelog acknowledged, then
the store), before the batch's offsets may be committed: items the new states need are put,
items the old states needed and the new ones do not are deleted (the old state's items are
remembered from the batch that staged it, if that state is the one stored). A redelivered event
(a duplicate) puts its subject's items again: a kill between the states and the index loses
nothing.

The ticker runs every ``timer_interval`` seconds on the partitions this worker owns (never
during a rebalance or recovery): it reads what is due by the worker's clock, checks each item
against the subject's current state (an item a renewal made stale is dropped, not fired),
publishes events onto the input topic keyed by subject id (and reminders onto the
notification topic), waits for the broker, and only then deletes the fired items. A kill in
between fires them again with the same ids: duplicates, which the engine recognises.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from faust.types import TP
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from streams.core.engine import subject_key
from streams.core.state import SubjectState
from streams.core.statements import to_micros
from streams.core.timers import Due, Kind, TimerPlan, due_event, notification
from streams.pipeline.fold import Folded
from streams.pipeline.sending import Outbox, Producer
from streams.pipeline.stats import PREFIX
from streams.pipeline.store import CACHE_MAX, SubjectStore
from streams.topology import TopicNames

log = logging.getLogger("consent_streams")

TIMERS_TABLE = "timers"
#: Index keys start with the due time as 8 unsigned big-endian bytes: shifted so that times
#: before 1970 sort first too.
_SHIFT = 2**63
#: Items fired per partition per round (the ticker yields to the event loop between rounds).
FIRE_MAX = 1000
_KEY_SIZE = 8 + 16  # due time, item id
_FIRST = b"\x00"  # below every index key; Faust's offset entry is not one (its size differs)
#: Subjects whose due work the index remembers between batches (as many as the state cache).
MEMO_MAX = CACHE_MAX

Write = tuple[bytes, bytes | None]  # (index key, item or None to delete)


def index_key(item: Due) -> bytes:
    return (item.at + _SHIFT).to_bytes(8, "big") + bytes.fromhex(item.id)


def encode(item: Due) -> bytes:
    return orjson.dumps(tuple(item))


def decode(value: bytes) -> Due:
    return Due(*orjson.loads(value))


class TimerIndex:
    """The ``timers`` table, written below Faust as the subject store writes its table."""

    def __init__(self, table: Any, plan: TimerPlan, memo_max: int = MEMO_MAX) -> None:
        self.table = table  # faust Table[bytes, bytes], raw keys and values
        self.plan = plan
        #: subject key -> (the state last staged, its index keys and items): the next batch
        #: of the subject finds its old state's due work here instead of computing it again
        #: (only if the old state it loads is that very object).
        self.memo: dict[bytes, tuple[SubjectState, dict[bytes, Due]]] = {}
        self.memo_max = memo_max

    @property
    def changelog(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def work(self, key: bytes, state: SubjectState) -> list[Due]:
        controller, _, subject_id = key.decode().partition("/")
        return self.plan.due_work(controller, subject_id, state)

    def stage(
        self, folded: Folded, load: Callable[[bytes, int], SubjectState]
    ) -> dict[int, list[Write]]:
        """Index writes a batch calls for, per partition; ``load`` must still give the states
        as they were before the batch (call this before the states are stored)."""
        writes: dict[int, list[Write]] = defaultdict(list)
        memo = self.memo
        for key, (partition, after) in folded.states.items():
            if not self.plan.runs_clocks(key.partition(b"/")[0].decode()):
                continue  # nothing ever due: not even the old state needs reading
            old = load(key, partition)
            known = memo.pop(key, None)
            if known is not None and known[0] is old:
                before = known[1]
            else:
                before = {index_key(i): i for i in self.work(key, old)}
            now = {index_key(i): i for i in self.work(key, after)}
            if self.memo_max:
                if len(memo) >= self.memo_max:
                    del memo[next(iter(memo))]  # oldest first, as the state cache
                memo[key] = (after, now)
            out = writes[partition]
            out += [(k, encode(i)) for k, i in now.items() if k not in before]
            out += [(k, None) for k in before if k not in now]
        for key, _, record in folded.folded:
            if key not in folded.states and self.plan.runs_clocks(key.partition(b"/")[0].decode()):
                # A redelivery: its items may not have been written (a kill in between).
                items = self.work(key, load(key, record.partition))
                writes[record.partition] += [(index_key(i), encode(i)) for i in items]
        return {partition: items for partition, items in writes.items() if items}

    async def write(self, writes: dict[int, list[Write]], outbox: Outbox) -> None:
        """Changelog first (acknowledged), then the store, one write batch per partition."""
        if not writes:
            return
        topic = self.changelog
        for partition, items in writes.items():
            for key, value in items:
                await outbox.add(topic, key, value, partition=partition)
        last = await outbox.sent()
        for partition, items in writes.items():
            self._write(partition, items, TP(topic, partition), last[(topic, partition)])

    def due(
        self, partition: int, now: datetime, limit: int = FIRE_MAX
    ) -> list[tuple[bytes, Due | None]]:
        """Up to ``limit`` items of ``partition`` due at ``now``, earliest first; ``None`` for an
        entry that cannot be read (written by another version): the ticker removes it."""
        bound = (to_micros(now) + _SHIFT + 1).to_bytes(8, "big")
        found: list[tuple[bytes, Due | None]] = []
        for key, value in self._scan(partition):
            if key >= bound or len(found) >= limit:
                break
            try:
                item: Due | None = decode(value)
            except (TypeError, ValueError):
                log.warning("unreadable timer entry dropped", extra={"partition": partition})
                item = None
            found.append((key, item))
        return found

    def size(self, partition: int) -> int:
        return sum(1 for _ in self._scan(partition))

    def census(self, partition: int) -> tuple[dict[str, int], int | None]:
        """Items of ``partition`` per kind, and the earliest due time (microseconds): a scan
        of the partition's index (what a scrape costs)."""
        counts: dict[str, int] = defaultdict(int)
        first: int | None = None
        for key, value in self._scan(partition):
            if first is None:
                first = int.from_bytes(key[:8], "big") - _SHIFT
            try:
                counts[decode(value).kind] += 1
            except (TypeError, ValueError):
                counts["unreadable"] += 1
        return counts, first

    # -- the store under the table (RocksDB, or memory in small setups) -------------------

    def _scan(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            # Index keys begin with a byte >= 0x80 (a time after 1970): start there, past the
            # store's own entry for the persisted offset.
            db = store._db_for_partition(partition)
            for key, value in db.items(from_key=_FIRST):
                if len(key) == _KEY_SIZE:
                    yield key, value
            return
        # A memory store holds every partition in one mapping: the item says where it lives.
        for key, value in sorted(store.data.items()):
            try:
                home = self._partition_of(decode(value))
            except (TypeError, ValueError):
                home = partition  # unreadable: whichever partition looks, removes it
            if home == partition:
                yield key, value

    def _partition_of(self, item: Due) -> int:
        from streams.topology import partition_of

        return partition_of(item.subject_id.encode(), int(self.table.partitions))

    def _write(self, partition: int, items: list[Write], tp: TP, offset: int) -> None:
        store = self.table.data
        if not hasattr(store, "_db_for_partition"):
            for key, value in items:
                if value is None:
                    store.data.pop(key, None)
                else:
                    store.data[key] = value
            return
        import rocksdict

        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in items:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        store._db_for_partition(partition).write(batch)
        store.set_persisted_offset(tp, offset)


class Ticker:
    """Fires due items of the partitions this worker owns; see the module docstring."""

    def __init__(
        self,
        app: Any,  # faust.App
        index: TimerIndex,
        states: SubjectStore,
        names: TopicNames,
        producer: Callable[[], Producer],
        clock: Callable[[], datetime],
    ) -> None:
        self.app = app
        self.index = index
        self.states = states
        self.names = names
        self.producer = producer
        self.clock = clock
        self.generation = 0  # moves on every revocation: a tick in flight stops writing
        self.fired: dict[str, int] = dict.fromkeys((k.value for k in Kind), 0)
        self.dropped = 0  # stale items removed unfired

    def revoked(self) -> None:
        self.generation += 1

    def settled(self) -> bool:
        app = self.app
        return not app.rebalancing and bool(app.tables.recovery.completed.is_set())

    def active(self) -> list[int]:
        topic = self.index.changelog
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic
        )

    async def tick(self) -> None:
        if not self.settled():
            return
        generation = self.generation
        for partition in self.active():
            while generation == self.generation:
                due = self.index.due(partition, self.clock())
                if not due:
                    break
                await self.fire(partition, due, generation)
                if len(due) < FIRE_MAX:
                    break

    async def fire(
        self, partition: int, due: list[tuple[bytes, Due | None]], generation: int
    ) -> None:
        now = self.clock()
        outbox = self.producer().outbox()
        current: dict[bytes, tuple[SubjectState, list[Due]]] = {}
        for _, item in due:
            if item is None:
                self.dropped += 1
                continue
            key = subject_key(item.controller, item.subject_id).encode()
            found = current.get(key)
            if found is None:
                state = self.states.load(key, partition)
                found = current[key] = (state, self.index.work(key, state))
            state, running = found
            if item not in running:
                self.dropped += 1  # a renewal, a confirmation or a newer anchor moved it
                continue
            subject = item.subject_id.encode()
            if item.kind == Kind.REMINDER.value:
                value = notification(item, state, now)
                await outbox.add(self.names.notifications, subject, _dumps(value))
            else:
                await outbox.add(self.names.events, subject, _dumps(due_event(item)))
            self.fired[item.kind] += 1
        await outbox.sent()  # the broker has every fired item: now they may go
        if generation != self.generation:
            return  # revoked meanwhile: the new owner fires what is left (duplicates at most)
        removals: list[Write] = [(key, None) for key, _ in due]
        await self.index.write({partition: removals}, self.producer().outbox())


def timer_metrics(ticker: Ticker, partitions: Iterable[int], now: datetime) -> Iterator[Metric]:
    """The timers on /metrics: indexed clocks per kind and the oldest overdue one's age (read
    from the index of ``partitions``), fired and dropped items (since this worker started)."""
    indexed = GaugeMetricFamily(
        PREFIX + "timers_indexed",
        "Clocks in the timer index of this worker's active partitions, by kind.",
        labels=["kind"],
    )
    counts: dict[str, int] = dict.fromkeys((k.value for k in Kind), 0)
    oldest: int | None = None
    for partition in partitions:
        found, first = ticker.index.census(partition)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + n
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    for kind, n in sorted(counts.items()):
        indexed.add_metric([kind], n)
    yield indexed
    late = 0.0 if oldest is None else max((to_micros(now) - oldest) / 1e6, 0.0)
    yield GaugeMetricFamily(
        PREFIX + "timers_oldest_overdue_seconds",
        "How long the earliest clock in the index has been past due and not fired (0: none is "
        "due). Normally under CONSENT_TIMER_INTERVAL plus a publish.",
        value=late,
    )
    fired = CounterMetricFamily(
        PREFIX + "timers_fired",
        "Due items published (events onto the input topic, reminders onto the notification "
        "topic), by kind, since this worker started.",
        labels=["kind"],
    )
    for kind, n in sorted(ticker.fired.items()):
        fired.add_metric([kind], n)
    yield fired
    yield CounterMetricFamily(
        PREFIX + "timers_dropped",
        "Due items removed unfired (stale: a renewal, a confirmation or a newer contact moved "
        "them; or unreadable), since this worker started.",
        value=ticker.dropped,
    )


def _dumps(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)
