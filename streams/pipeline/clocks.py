"""Deadline clocks in the worker: started when an opt-out or a request folds, stopped when the
broker has acknowledged every instruction the batch caused (an access request: when an
``access.fulfilled`` naming it folds), kept in the ``clocks`` table.

The table is co-partitioned with the subjects: partition ``p`` holds, under keys that start
with ``p``, one :class:`~streams.core.clocks.Summary` per (controller, rule) of the clocks
closed there and one record per clock still open (one that waits for work outside the worker).
Its records go to the changelog in the same flush as the subject states of the batch (see
:mod:`streams.pipeline.batches`), so the auditor's report survives restarts and rebalances.

/metrics also gets what this process observed since it started: time to honour as histograms,
missed deadlines as a counter; and, read at scrape time from the table, the open clocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from faust.types import TP
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from schemas.events import ConsentEvent
from schemas.vocabulary import EventType
from streams.core.clocks import Clock, ClockRules, Stop, Summary, fulfils
from streams.core.policy import Policy
from streams.pipeline.fold import Admitted
from streams.pipeline.sending import Outbox
from streams.pipeline.stats import PREFIX, Histogram, histogram

log = logging.getLogger("consent_streams")

CLOCKS_TABLE = "clocks"
_SEP = "\x1f"
_SUMMARY, _OPEN = "s", "o"

#: Time to honour as a fraction of the time the rule allows (1.0 = at the deadline).
FRACTION_BUCKETS: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.0, 5.0)
#: Time to honour in seconds: a second to two months.
SECONDS_BUCKETS: tuple[float, ...] = (
    1.0,
    10.0,
    60.0,
    600.0,
    3600.0,
    6 * 3600.0,
    86_400.0,
    2 * 86_400.0,
    7 * 86_400.0,
    14 * 86_400.0,
    31 * 86_400.0,
    62 * 86_400.0,
)

Labels = tuple[str, str]  # (controller, rule): closed vocabularies from the policy and the law
#: A record for the clocks table: (partition, key, value; None deletes)
Write = tuple[int, bytes, bytes | None]


def summary_key(partition: int, controller: str, rule: str) -> bytes:
    return _SEP.join((str(partition), _SUMMARY, controller, rule)).encode()


def open_key(partition: int, controller: str, event_id: str) -> bytes:
    return _SEP.join((str(partition), _OPEN, controller, event_id)).encode()


@dataclass
class ClockStats:
    """What this process observed as clocks closed (for /metrics; not the auditor's report)."""

    fraction: dict[Labels, Histogram] = field(default_factory=dict)
    seconds: dict[Labels, Histogram] = field(default_factory=dict)
    missed: dict[Labels, int] = field(default_factory=dict)

    def observe(self, clock: Clock, honoured_at: datetime) -> None:
        labels = (clock.controller, clock.rule)
        taken = max((honoured_at - clock.started).total_seconds(), 0.0)
        allowed = max(clock.allowed.total_seconds(), 1.0)
        if labels not in self.fraction:
            self.fraction[labels] = Histogram(FRACTION_BUCKETS)
            self.seconds[labels] = Histogram(SECONDS_BUCKETS)
            self.missed[labels] = 0
        self.fraction[labels].observe(taken / allowed)
        self.seconds[labels].observe(taken)
        self.missed[labels] += honoured_at > clock.deadline


class ClockBook:
    """The worker's clocks: pure decisions from :mod:`streams.core.clocks`, kept in a table."""

    def __init__(self, policy: Policy, table: Any = None) -> None:
        self.policy = policy
        self.rules = ClockRules(policy)
        self.table = table  # faust Table[bytes, bytes] (raw); None in the steps' tests
        self.stats = ClockStats()
        self.memory: dict[bytes, bytes] = {}  # the store when there is no table

    # -- the batch -------------------------------------------------------------------------

    def start(self, fresh: Iterable[Admitted]) -> list[tuple[int, Clock]]:
        """The clocks the batch's new events start, with the partition each is kept in."""
        started = []
        for _, event, record in fresh:
            try:
                clock = self.rules.clock_for(event)
            except Exception:  # a clock must never stop a decision: log, and go on without it
                log.exception("deadline clock not started", extra={"type": event.type.value})
                continue
            if clock is not None:
                started.append((record.partition, clock))
        return started

    def fulfilments(self, folded: Iterable[Admitted]) -> list[tuple[int, ConsentEvent]]:
        """The batch's ``access.fulfilled`` events with their partitions, redeliveries
        included: completing is idempotent (a clock closes once), and a redelivery completes
        a clock whose closing a crash lost."""
        return [
            (record.partition, event)
            for _, event, record in folded
            if event.type is EventType.ACCESS_FULFILLED
        ]

    def stop(
        self,
        started: list[tuple[int, Clock]],
        honoured_at: datetime,
        fulfilled: Iterable[tuple[int, ConsentEvent]] = (),
    ) -> list[Write]:
        """Close every clock stopped by sending (the broker has the batch's outputs at
        ``honoured_at``) and every open clock a fulfilment in the batch names (honoured at the
        fulfilment's ``occurred_at``, whether the clock started in this batch or before); keep
        the others open. The records to store, in order."""
        summaries: dict[tuple[int, str, str], Summary] = {}
        waiting: dict[bytes, tuple[int, Clock]] = {}
        for partition, clock in started:
            if clock.stop is Stop.SENT:
                self._close(summaries, partition, clock, honoured_at)
            else:
                waiting[open_key(partition, clock.controller, clock.event_id)] = (partition, clock)
        writes: list[Write] = []
        closed: set[bytes] = set()
        for partition, event in fulfilled:
            assert event.request_id is not None  # the contract requires it
            key = open_key(partition, event.controller, event.request_id)
            found = waiting.get(key)
            named = found[1] if found else None if key in closed else self._open(partition, key)
            # None: not open here (fulfilled already, or an unknown request): nothing to close
            if named is None or not fulfils(event, named):
                continue
            if found is None:
                writes.append((partition, key, None))
                closed.add(key)
            else:
                del waiting[key]
            self._close(summaries, partition, named, event.occurred_at)
        for key, (partition, clock) in waiting.items():
            writes.append((partition, key, orjson.dumps(clock.to_json())))
        for (partition, controller, rule), summary in summaries.items():
            value = orjson.dumps(summary.to_json())
            writes.append((partition, summary_key(partition, controller, rule), value))
        return writes

    def _close(
        self,
        summaries: dict[tuple[int, str, str], Summary],
        partition: int,
        clock: Clock,
        honoured_at: datetime,
    ) -> None:
        place = (partition, clock.controller, clock.rule)
        summary = summaries.get(place)
        if summary is None:
            summary = self.summary(*place)
        summaries[place] = summary.record(clock, honoured_at)
        self.stats.observe(clock, honoured_at)

    def complete(
        self, partition: int, controller: str, event_id: str, honoured_at: datetime
    ) -> list[Write]:
        """Close an open clock whose work outside the decision is done (later, a
        destination's acknowledgement). Nothing when it is not open here."""
        key = open_key(partition, controller, event_id)
        clock = self._open(partition, key)
        if clock is None:
            return []
        summaries: dict[tuple[int, str, str], Summary] = {}
        self._close(summaries, partition, clock, honoured_at)
        place, summary = next(iter(summaries.items()))
        return [
            (partition, key, None),
            (partition, summary_key(*place), orjson.dumps(summary.to_json())),
        ]

    async def stage(self, writes: list[Write], outbox: Outbox) -> None:
        """Add the records to the changelog flush the caller waits for."""
        if self.table is None:
            return
        topic = self.table.changelog_topic.get_topic_name()
        for partition, key, value in writes:
            await outbox.add(topic, key, value, partition=partition)

    def written(self, writes: list[Write], flushed: dict[tuple[str, int], int]) -> None:
        """The changelog has the records (``flushed``: its last offset per partition): write
        them to the store, and the offset with them, so recovery reads only what follows."""
        for partition, key, value in writes:
            self._put(partition, key, value)
        store = self._store()
        if store is None or not hasattr(store, "_db_for_partition"):
            return
        topic = self.table.changelog_topic.get_topic_name()
        for partition in {partition for partition, _, _ in writes}:
            offset = flushed.get((topic, partition))
            if offset is not None:
                store.set_persisted_offset(TP(topic, partition), offset)

    # -- reads (this worker's active partitions) ----------------------------------------------

    def _open(self, partition: int, key: bytes) -> Clock | None:
        raw = self._get(partition, key)
        return None if raw is None else Clock.from_json(orjson.loads(raw))

    def summary(self, partition: int, controller: str, rule: str) -> Summary:
        raw = self._get(partition, summary_key(partition, controller, rule))
        return Summary() if raw is None else Summary.from_json(orjson.loads(raw))

    def summaries(self, partition: int) -> Iterator[tuple[str, str, Summary]]:
        for key, value in self._items(partition, _SUMMARY):
            _, _, controller, rule = key.decode().split(_SEP)
            yield controller, rule, Summary.from_json(orjson.loads(value))

    def open_clocks(self, partition: int) -> Iterator[Clock]:
        for _, value in self._items(partition, _OPEN):
            yield Clock.from_json(orjson.loads(value))

    def metrics(self, partitions: Iterable[int], now: datetime) -> Iterator[Metric]:
        stats = self.stats
        yield _histograms(
            "deadline_honoured_fraction",
            "Time to honour an opt-out or request as a fraction of the time its deadline "
            "allows (1 = at the deadline), since this worker started.",
            stats.fraction,
        )
        yield _histograms(
            "deadline_honoured_seconds",
            "Time to honour an opt-out or request, from its occurred_at, since this worker "
            "started.",
            stats.seconds,
        )
        missed = CounterMetricFamily(
            PREFIX + "deadline_missed",
            "Clocks closed after their deadline, since this worker started.",
            labels=["controller", "rule"],
        )
        for labels, n in sorted(stats.missed.items()):
            missed.add_metric(list(labels), n)
        yield missed
        yield from open_metrics(
            (clock for partition in partitions for clock in self.open_clocks(partition)), now
        )

    # -- the store under the table ----------------------------------------------------------

    def _store(self) -> Any:
        return None if self.table is None else self.table.data

    def _get(self, partition: int, key: bytes) -> bytes | None:
        store = self._store()
        if store is None:
            return self.memory.get(key)
        if hasattr(store, "_db_for_partition"):
            found: bytes | None = store._db_for_partition(partition).get(key)
            return found
        value: bytes | None = store.data.get(key)
        return value

    def _put(self, partition: int, key: bytes, value: bytes | None) -> None:
        store = self._store()
        data: Any = self.memory if store is None else store
        if store is not None and hasattr(store, "_db_for_partition"):
            data = store._db_for_partition(partition)
        elif store is not None:
            data = store.data
        if value is None:
            if key in data:
                del data[key]
        else:
            data[key] = value

    def _items(self, partition: int, kind: str) -> Iterator[tuple[bytes, bytes]]:
        prefix = _SEP.join((str(partition), kind, "")).encode()
        store = self._store()
        if store is not None and hasattr(store, "_db_for_partition"):
            items: Iterable[tuple[bytes, bytes]] = store._db_for_partition(partition).items(
                from_key=prefix
            )
        else:
            items = sorted((self.memory if store is None else store.data).items())
        for key, value in items:
            if key.startswith(prefix):
                yield key, value
            elif key > prefix:
                return


def open_metrics(clocks: Iterable[Clock], now: datetime) -> Iterator[Metric]:
    """Gauges of open clocks per (controller, rule): how many, how many overdue, and the
    least time left (seconds, and as a fraction of the time allowed; negative when overdue)."""
    count: dict[Labels, int] = {}
    overdue: dict[Labels, int] = {}
    least: dict[Labels, float] = {}
    least_ratio: dict[Labels, float] = {}
    for clock in clocks:
        labels = (clock.controller, clock.rule)
        left = clock.remaining(now).total_seconds()
        ratio = left / max(clock.allowed.total_seconds(), 1.0)
        count[labels] = count.get(labels, 0) + 1
        overdue[labels] = overdue.get(labels, 0) + (left < 0)
        least[labels] = min(least.get(labels, left), left)
        least_ratio[labels] = min(least_ratio.get(labels, ratio), ratio)
    for name, text, values in (
        ("deadline_open_clocks", "Open clocks (accepted, not yet honoured).", count),
        ("deadline_overdue_clocks", "Open clocks past their deadline.", overdue),
        (
            "deadline_least_remaining_seconds",
            "Least time left before an open clock's deadline (negative: overdue).",
            least,
        ),
        (
            "deadline_least_remaining_ratio",
            "Least time left of an open clock as a fraction of the time its deadline allows.",
            least_ratio,
        ),
    ):
        gauge = GaugeMetricFamily(PREFIX + name, text, labels=["controller", "rule"])
        for labels, value in sorted(values.items()):
            gauge.add_metric(list(labels), value)
        yield gauge


def _histograms(name: str, text: str, observed: dict[Labels, Histogram]) -> Metric:
    return histogram(name, text, dict(sorted(observed.items())), ("controller", "rule"))
