"""Timers in the worker: a per-partition index of due work, and a ticker that fires it.

The index is a changelogged table (``timers``) on the subjects' partitions, keyed by due time
then item id, so a scan from the start of a partition's store finds exactly what is due. A
batch writes it in the same flush as the subject states it follows from (both changelogs
acknowledged, then the states stored, then the index), before the batch's offsets may be
committed. An index record acknowledged without its state (a kill in the flush) is harmless:
the batch is redelivered and staged again, and an item fired meanwhile is checked against the
stored state and dropped as stale. Items the new states need are put,
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

Each partition's index also says what it was built from (:func:`streams.core.timers.fingerprint`:
the parts of the policy due work depends on, or that the timers were off). When the worker
becomes active for a partition whose index was built from something else, or says nothing, the
ticker first rebuilds it from the stored states (:class:`Reindexer`): each state's due work is
computed and the index is brought to match, through the same write path (changelog, then
store), in steps of :data:`REINDEX_STEP` states that each hold the batches' lock, so a batch
and a step never interleave. The new fingerprint is written last: a kill during a rebuild
leaves the old one, and the next owner rebuilds again. Before a new assignment's first batch,
a partition whose index matches, or that holds neither states nor items, is taken as it is
(:meth:`Ticker.before_batch`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
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
from streams.core.timers import OFF, Due, Kind, TimerPlan, due_event, notification
from streams.pipeline.caching import remember
from streams.pipeline.fold import Folded
from streams.pipeline.rewrap import Rewrapper
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
#: States (or index entries) a rebuild handles per step; a batch waits for one step at most.
REINDEX_STEP = 1000
#: Progress of a long rebuild is logged every so many states.
REINDEX_LOG_EVERY = 100_000
#: Key of a partition's fingerprint entry (then the partition number): shorter than an index
#: key, so scans for due items pass it by.
_BUILT_FROM = b"\x00built-from\x00"

Write = tuple[bytes, bytes | None]  # (index key, item or None to delete)


def index_key(item: Due) -> bytes:
    return (item.at + _SHIFT).to_bytes(8, "big") + bytes.fromhex(item.id)


def encode(item: Due) -> bytes:
    return orjson.dumps(tuple(item))


def decode(value: bytes) -> Due:
    return Due(*orjson.loads(value))


def diff(before: dict[bytes, Due], now: dict[bytes, Due]) -> list[Write]:
    """The index writes that turn ``before`` into ``now``: new items put, gone ones deleted."""
    out: list[Write] = [(k, encode(i)) for k, i in now.items() if k not in before]
    out += [(k, None) for k in before if k not in now]
    return out


def built_from_key(partition: int) -> bytes:
    return _BUILT_FROM + partition.to_bytes(4, "big")


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
        #: partition -> subject keys a batch staged while the partition is being rebuilt: the
        #: rebuild leaves their items alone (they are newer than what it computed).
        self.touched: dict[int, set[bytes]] = {}
        #: partition -> items per kind: counted from the whole index by the first census after
        #: an assignment, then kept by every write (a scrape must not read a million entries).
        #: Cleared when partitions move: recovery writes the store below this class.
        self.counts: dict[int, dict[str, int]] = {}

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
        memo, touched = self.memo, self.touched
        for key, (partition, after) in folded.states.items():
            if touched and partition in touched:
                touched[partition].add(key)
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
                remember(memo, key, (after, now), self.memo_max)
            writes[partition] += diff(before, now)
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
        await self.send(writes, outbox)
        self.store(writes, await outbox.sent())

    async def send(self, writes: dict[int, list[Write]], outbox: Outbox) -> None:
        """Add ``writes`` to the changelog records of ``outbox`` (a flush others share)."""
        topic = self.changelog
        for partition, items in writes.items():
            for key, value in items:
                await outbox.add(topic, key, value, partition=partition)

    def store(self, writes: dict[int, list[Write]], last: dict[tuple[str, int], int]) -> None:
        """Once the broker has them (``last``: offsets of the flush), into the store."""
        topic = self.changelog
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

    def entries(self, partition: int, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` entries of ``partition`` in key order, from the first after ``after``."""
        return list(itertools.islice(self._scan(partition, after), limit))

    def holds(self, partition: int, key: bytes) -> bool:
        return self._get(partition, key) is not None

    def built_from(self, partition: int) -> str | None:
        """The fingerprint the index of ``partition`` was built from (None: never recorded)."""
        value = self._get(partition, built_from_key(partition))
        return None if value is None else value.decode()

    def census(self, partition: int) -> tuple[dict[str, int], int | None]:
        """Items of ``partition`` per kind, and the earliest due time (microseconds). Only the
        first call after an assignment reads the whole index; writes keep the count."""
        counts = self.counts.get(partition)
        if counts is None:
            counts = self.counts[partition] = self.count(partition)
        first = next(self._scan(partition), None)
        due = None if first is None else int.from_bytes(first[0][:8], "big") - _SHIFT
        return dict(counts), due

    def count(self, partition: int) -> dict[str, int]:
        """Items of ``partition`` per kind, from a read of its whole index."""
        counts: dict[str, int] = defaultdict(int)
        for _, value in self._scan(partition):
            counts[_kind(value)] += 1
        return dict(counts)

    def forget_counts(self) -> None:
        """Partitions are moving: their next census counts again."""
        self.counts.clear()

    # -- the store under the table (RocksDB, or memory in small setups) -------------------

    def _get(self, partition: int, key: bytes) -> bytes | None:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            value: bytes | None = store._db_for_partition(partition).get(key)
            return value
        found: bytes | None = store.data.get(key)
        return found

    def _scan(self, partition: int, after: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Index entries of ``partition`` in key order (those after ``after``, if given); other
        entries (the persisted offset, the fingerprint) are passed by."""
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            db = store._db_for_partition(partition)
            for key, value in db.items(from_key=after or _FIRST):
                if len(key) == _KEY_SIZE and key != after:
                    yield key, value
            return
        # A memory store holds every partition in one mapping: the item says where it lives.
        for key, value in sorted(store.data.items()):
            if len(key) != _KEY_SIZE or (after is not None and key <= after):
                continue
            try:
                home = self._partition_of(decode(value))
            except (TypeError, ValueError):
                home = partition  # unreadable: whichever partition looks, removes it
            if home == partition:
                yield key, value

    def _partition_of(self, item: Due) -> int:
        from streams.topology import partition_of

        return partition_of(item.subject_id.encode(), int(self.table.partitions))

    def _recount(self, counts: dict[str, int], partition: int, items: list[Write]) -> None:
        """Keep ``counts`` true through ``items`` (read what each replaces: a put may overwrite
        an item, as a redelivered batch does, and a delete may find nothing)."""
        writes = [(key, value) for key, value in items if len(key) == _KEY_SIZE]
        if not writes:
            return
        now: dict[bytes, bytes | None] = {}  # a key written twice in one batch: the later wins
        found = self._get_many(partition, [key for key, _ in writes])
        for (key, value), stored in zip(writes, found, strict=True):
            old = now.get(key, stored)
            if old is not None:
                counts[_kind(old)] -= 1
            if value is not None:
                kind = _kind(value)
                counts[kind] = counts.get(kind, 0) + 1
            now[key] = value

    def _get_many(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            found: list[bytes | None] = store._db_for_partition(partition).get(keys)
            return found
        return [store.data.get(key) for key in keys]

    def _write(self, partition: int, items: list[Write], tp: TP, offset: int) -> None:
        counts = self.counts.get(partition)
        if counts is not None:
            self._recount(counts, partition, items)
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


class Reindexer:
    """Rebuilds a partition's index from its stored states when it was built from another
    fingerprint than ``fingerprint`` (another policy, the timers off, or none recorded).

    ``lock`` is the one each batch holds: a step of a rebuild (read states, compute, write) and
    a batch never interleave. A batch between two steps records the subjects it stages
    (:attr:`TimerIndex.touched`); their entries are newer than the rebuild's view and are kept.
    With the timers off (``fingerprint`` is :data:`~streams.core.timers.OFF`) the index is
    emptied instead: nothing keeps it current meanwhile.
    """

    def __init__(
        self,
        index: TimerIndex,
        states: SubjectStore,
        fingerprint: str,
        lock: asyncio.Lock,
        producer: Callable[[], Producer],
        step: int = REINDEX_STEP,
    ) -> None:
        self.index = index
        self.states = states
        self.fingerprint = fingerprint
        self.lock = lock
        self.producer = producer
        self.step = step
        self.subjects = 0  # states read by rebuilds since this worker started (the metric)

    async def ensure(self, partition: int, current: Callable[[], bool]) -> bool:
        """Make the index of ``partition`` the one ``fingerprint`` gives. False if ``current()``
        turned false before it was done (a rebalance): the fingerprint is then left as it
        was, and whoever owns the partition next rebuilds it."""
        async with self.lock:
            if not current():
                return False
            if await self.settled(partition):
                return True
        found = self.index.built_from(partition)
        index, started = self.index, time.perf_counter()
        counts = {"subjects": 0, "unreadable": 0, "added": 0, "removed": 0}
        touched: set[bytes] = set()
        index.touched[partition] = touched
        try:
            wanted = await self._add(partition, current, counts)
            if wanted is None or not await self._remove(
                partition, current, wanted, touched, counts
            ):
                return False
            async with self.lock:
                if not current():
                    return False
                await self._mark(partition)
        finally:
            del index.touched[partition]
        log.info(
            "timer index rebuilt",
            extra={
                "partition": partition,
                "cause": _cause(found, self.fingerprint),
                **counts,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return True

    async def settled(self, partition: int) -> bool:
        """Whether the index of ``partition`` needs no rebuild: it was built from
        ``fingerprint``, or the partition holds neither states nor index entries (then that
        is recorded at once). Call it with :attr:`lock` held."""
        found = self.index.built_from(partition)
        if found == self.fingerprint:
            log.info("timer index up to date", extra={"partition": partition})
            return True
        if self.states.stored_states(partition, None, 1) or self.index.entries(partition, None, 1):
            return False
        await self._mark(partition)
        log.info(
            "timer index recorded",
            extra={"partition": partition, "cause": _cause(found, self.fingerprint)},
        )
        return True

    async def _mark(self, partition: int) -> None:
        mark: list[Write] = [(built_from_key(partition), self.fingerprint.encode())]
        await self.index.write({partition: mark}, self.producer().outbox())

    async def _add(
        self, partition: int, current: Callable[[], bool], counts: dict[str, int]
    ) -> set[bytes] | None:
        """Put the items the stored states need and the index lacks; returns every item key
        they need (None: interrupted)."""
        wanted: set[bytes] = set()
        if self.fingerprint == OFF:
            return wanted
        index, after, started = self.index, None, time.perf_counter()
        while True:
            async with self.lock:
                if not current():
                    return None
                found = self.states.stored_states(partition, after, self.step)
                if not found:
                    return wanted
                writes: list[Write] = []
                for key, value in found:
                    if not index.plan.runs_clocks(key.partition(b"/")[0].decode()):
                        continue
                    try:
                        state = SubjectState.from_bytes(value)
                    except ValueError:  # written by a newer version: the fold refuses it too
                        counts["unreadable"] += 1
                        continue
                    for item in index.work(key, state):
                        item_key = index_key(item)
                        wanted.add(item_key)
                        if not index.holds(partition, item_key):
                            writes.append((item_key, encode(item)))
                if writes:
                    await index.write({partition: writes}, self.producer().outbox())
                after = found[-1][0]
            before = counts["subjects"]
            counts["subjects"] += len(found)
            counts["added"] += len(writes)
            self.subjects += len(found)
            if counts["subjects"] // REINDEX_LOG_EVERY > before // REINDEX_LOG_EVERY:
                log.info(
                    "timer index rebuilding",
                    extra={
                        "partition": partition,
                        "subjects": counts["subjects"],
                        "seconds": round(time.perf_counter() - started, 3),
                    },
                )
            await asyncio.sleep(0)  # let a waiting batch and everything else run

    async def _remove(
        self,
        partition: int,
        current: Callable[[], bool],
        wanted: set[bytes],
        touched: set[bytes],
        counts: dict[str, int],
    ) -> bool:
        """Delete the entries no stored state needs, but those of subjects a batch staged
        meanwhile (kept: a stale one is dropped unfired when it comes due)."""
        index, after = self.index, None
        while True:
            async with self.lock:
                if not current():
                    return False
                found = index.entries(partition, after, self.step)
                if not found:
                    return True
                removals: list[Write] = [
                    (key, None)
                    for key, value in found
                    if key not in wanted and _subject_of(value) not in touched
                ]
                if removals:
                    await index.write({partition: removals}, self.producer().outbox())
                after = found[-1][0]
            counts["removed"] += len(removals)
            await asyncio.sleep(0)


#: An item's kind as :func:`encode` writes it (the second element): read without decoding,
#: as the count is kept on every index write.
_KINDS = {orjson.dumps(kind.value): kind.value for kind in Kind}


def _kind(value: bytes) -> str:
    """The kind an index entry says it is; ``unreadable`` when it names none."""
    parts = value.split(b",", 2)
    return _KINDS.get(parts[1], "unreadable") if len(parts) == 3 else "unreadable"


def _subject_of(value: bytes) -> bytes | None:
    try:
        item = decode(value)
    except (TypeError, ValueError):
        return None  # unreadable: removed
    return subject_key(item.controller, item.subject_id).encode()


def _cause(found: str | None, fingerprint: str) -> str:
    if fingerprint == OFF:
        return "timers off"
    if found is None:
        return "none recorded"
    return "timers turned on" if found == OFF else "policy changed"


class Ticker:
    """Fires due items of the partitions this worker owns; see the module docstring.

    With a :class:`Reindexer`, each partition's index is first checked (and rebuilt if it was
    built from something else) once per assignment, before anything of it is fired; with a
    :class:`~streams.pipeline.rewrap.Rewrapper`, its data keys are then brought under the newest
    KEK. With ``firing`` false (the timers off) those checks are all a tick does.
    """

    def __init__(
        self,
        app: Any,  # faust.App
        index: TimerIndex,
        states: SubjectStore,
        names: TopicNames,
        producer: Callable[[], Producer],
        clock: Callable[[], datetime],
        *,
        reindex: Reindexer | None = None,
        rewrap: Rewrapper | None = None,
        firing: bool = True,
    ) -> None:
        self.app = app
        self.index = index
        self.states = states
        self.names = names
        self.producer = producer
        self.clock = clock
        self.reindex = reindex
        self.rewrap = rewrap
        self.firing = firing
        self.generation = 0  # moves on every revocation: a tick in flight stops writing
        self.checked: set[int] = set()  # partitions whose index matches, this assignment
        self.looked: set[int] = set()  # partitions :meth:`before_batch` has looked at
        self.fired: dict[str, int] = dict.fromkeys((k.value for k in Kind), 0)
        self.dropped = 0  # stale items removed unfired

    def revoked(self) -> None:
        self.generation += 1
        self.index.forget_counts()
        self.checked.clear()
        self.looked.clear()
        if self.rewrap is not None:
            self.rewrap.forget()

    async def before_batch(self) -> None:
        """Called with the batches' lock held, before each batch: on a new assignment, the
        partitions whose index needs no rebuild (:meth:`Reindexer.settled`) are taken as
        checked before their first batch. A new table is thus not rebuilt after its first
        batches, and a restart under the same policy reads no state."""
        if self.reindex is None or not self.settled():
            return
        generation = self.generation
        for partition in self.active():
            if partition in self.looked:
                continue
            self.looked.add(partition)
            if await self.reindex.settled(partition) and generation == self.generation:
                self.checked.add(partition)

    def settled(self) -> bool:
        app = self.app
        return not app.rebalancing and bool(app.tables.recovery.completed.is_set())

    def stopping(self) -> bool:
        """The worker is stopping: its producer may already be closed."""
        return bool(self.app.should_stop)

    def active(self) -> list[int]:
        topic = self.index.changelog
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic
        )

    async def tick(self) -> None:
        try:
            await self._tick()
        except Exception as exc:
            if not self.stopping():
                raise
            # A stop (SIGTERM) cut the pass short, its producer closed: like a revocation, what
            # was not acknowledged is done again by the next owner. Not a crash: exit code 0.
            log.info(
                "timers: pass cut short by the worker stopping", extra={"error": type(exc).__name__}
            )

    async def _tick(self) -> None:
        if not self.settled():
            return
        generation = self.generation

        def current() -> bool:
            return generation == self.generation and self.settled() and not self.stopping()

        for partition in self.active():
            if self.reindex is not None and partition not in self.checked:
                if not await self.reindex.ensure(partition, current):
                    return  # a rebalance: the next tick looks again
                if generation == self.generation:
                    self.checked.add(partition)
            if self.rewrap is not None and not await self.rewrap.ensure(partition, current):
                return
            if not self.firing:
                continue
            while generation == self.generation and not self.stopping():
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
    yield CounterMetricFamily(
        PREFIX + "timers_reindexed_subjects",
        "Stored states read to rebuild a partition's timer index (its policy's clocks changed, "
        "or the timers were off), since this worker started.",
        value=ticker.reindex.subjects if ticker.reindex is not None else 0,
    )


def _dumps(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z)
