"""Appending to a long ledger: per-append cost at entry 1 and at entry 10,000 of one subject.

Runs the worker's own per-batch ledger path in this process, without a broker: the production
fold (engine and append) on batches of one subject's events, and the entries written to a
RocksDB database in one write batch per fetch, as the ledger table stores them. Appending needs
only the head kept with the state, so the cost must not grow with the history.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil
import rocksdict

from streams.core.engine import Engine
from streams.core.ledger import verify_stored
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import Record, fold, route
from streams.pipeline.ledger_store import LedgerStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)
#: Batches compared at each end of the history (medians: robust to a busy machine).
ENDS = 5
#: What one subject says again and again (a banner answered on every visit, a daily signal).
STATEMENTS: tuple[dict[str, Any], ...] = (
    {"type": "consent.granted", "purpose": "newsletter", "channel": "email"},
    {"type": "consent.withdrawn", "purpose": "newsletter", "channel": "email"},
    {"type": "unsubscribed", "identifiers": {"email": "hot@example.com"}},
    {"type": "restriction.requested"},
    {"type": "restriction.lifted"},
)


@dataclass(frozen=True, slots=True)
class LedgerRun:
    entries: int
    batch: int
    #: the fold with its append and the store's write, per event: median of the first and
    #: last ENDS batches
    first_us: float
    last_us: float
    bytes_per_entry: float
    read_ms: float  # the whole chain read back by prefix (what FaustBackend.ledger does)
    verify_ms: float  # and checked against the head
    rss_growth_mb: float
    chain_ok: bool

    @property
    def growth(self) -> float:
        return self.last_us / self.first_us

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "growth": self.growth}


class _Table:
    """The ledger table as LedgerStore sees it: one RocksDB database, partition 0."""

    offset_key = b"__faust\x00offset__"

    def __init__(self, path: Path) -> None:
        self.db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True))
        self.data = self
        self.changelog_topic = self

    def get_topic_name(self) -> str:
        return "ledger-changelog"

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        return self.db


def _events(count: int) -> list[Record]:
    out = []
    for n, statement in zip(range(count), itertools.cycle(STATEMENTS), strict=False):
        value = {
            "event_id": f"hot-{n:06d}",
            "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
            "controller": "hms-se",
            "subject_id": "hot-subject",
            **statement,
        }
        out.append(Record("events", 0, n, b"hot-subject", orjson.dumps(value)))
    return out


def measure(entries: int = 10_000, batch: int = 100, workdir: Path | None = None) -> LedgerRun:
    engine = Engine(load_policy())
    process = psutil.Process()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        table = _Table(Path(tmp) / "ledger-0.db")
        store = LedgerStore(table)
        states: dict[bytes, SubjectState] = {}
        records = _events(entries)
        rss_before = process.memory_info().rss
        per_event: list[float] = []
        written = 0
        for start in range(0, entries, batch):
            chunk = route(records[start : start + batch], engine, lambda subject: 0).fold
            started = time.perf_counter()
            folded = fold(chunk, lambda key, p: states.get(key, EMPTY), engine, datetime.now(UTC))
            store.write(folded.stored, {("ledger-changelog", 0): start + batch})
            for key, (_, state) in folded.states.items():
                states[key] = SubjectState.from_bytes(state.to_bytes())  # stored, read back
            per_event.append((time.perf_counter() - started) / len(chunk) * 1e6)
            written += sum(len(data) for _, _, data in folded.stored)
        rss_growth = (process.memory_info().rss - rss_before) / 2**20
        [(key, state)] = states.items()
        started = time.perf_counter()
        chain = list(store.read(key, 0))
        read_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        ok = not verify_stored(chain, state.head, ("hms-se", "hot-subject"))
        verify_ms = (time.perf_counter() - started) * 1000
        table.db.close()
    return LedgerRun(
        entries=state.head.sequence,
        batch=batch,
        first_us=statistics.median(per_event[:ENDS]),
        last_us=statistics.median(per_event[-ENDS:]),
        bytes_per_entry=written / max(state.head.sequence, 1),
        read_ms=read_ms,
        verify_ms=verify_ms,
        rss_growth_mb=rss_growth,
        chain_ok=ok and len(chain) == entries,
    )


def summary(run: dict[str, Any]) -> str:
    return (
        f"one subject, {int(run['entries']):,} entries in batches of {int(run['batch'])}: "
        f"{run['first_us']:.0f} us per event at the start, {run['last_us']:.0f} us at the end "
        f"({run['growth']:.2f}x); {run['bytes_per_entry']:.0f} B per entry; whole chain read "
        f"{run['read_ms']:.0f} ms, verified {run['verify_ms']:.0f} ms; RSS "
        f"{run['rss_growth_mb']:+.0f} MB; chain {'verifies' if run['chain_ok'] else 'BROKEN'}"
    )


if __name__ == "__main__":
    print(summary(measure().as_dict()))
