"""The consent ledger end to end: events in, one hash-chained entry per accepted event read back
through the worker's backend, rebuilt from its changelog by a fresh worker, checked by
``consent-streams ledger verify`` (which reports a tampered entry and repairs nothing), and kept
exact across SIGKILLs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
import rocksdict
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.workload import contested
from streams.core.engine import Engine
from streams.core.ledger import Entry, LedgerView, Personal, Sealed, verify_chain
from streams.core.policy import Policy, load_policy
from streams.core.state import head_of
from streams.ledger_cli import Progress as Quiet
from streams.ledger_cli import changelog, read_latest
from streams.pipeline.fold import API_KEY_HEADER, LINK_HEADER, Record, route
from streams.pipeline.ledger_store import LEDGER_TABLE, LedgerStore, split_key
from streams.pipeline.web_backend import FaustBackend
from streams.topology import DEFAULT_PARTITIONS, SUBJECTS_TABLE
from tests.support.http import Api
from tests.support.kafka import produce
from tests.support.keys import API_ENV, EXPORT_KEY
from tests.support.pipeline import Pipeline, pipeline_for
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: One record per produce batch: the embedded broker's offset quirk would otherwise cut
#: changelog recovery short (see the broker notes).
RECOVERABLE = {"CONSENT_PRODUCER_MAX_BATCH_SIZE": "1"}


def accepted(policy: Policy, records: list[tuple[bytes | None, bytes]]) -> dict[bytes, set[str]]:
    """State key -> the distinct event ids the worker accepts, as the pure steps route them."""
    engine = Engine(policy)
    folded = route(
        [Record("in", 0, n, k, v) for n, (k, v) in enumerate(records)],
        engine,
        lambda s: 0,
        repartitioned=True,
    ).fold
    out: dict[bytes, set[str]] = defaultdict(set)
    for key, event, _ in folded:
        out[key].add(event.event_id)
    return out


async def cluster_ledger(
    bootstrap: str, app_id: str
) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """(entries, states) as the changelog topics hold them, the latest value per key."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        found: list[dict[bytes, bytes]] = []
        # States first: a head read then refers only to entries already acknowledged.
        for table in (SUBJECTS_TABLE, LEDGER_TABLE):
            topic = changelog(app_id, table)
            if topic not in await consumer.topics():
                found.append({})
                continue
            partitions = list(range(DEFAULT_PARTITIONS))
            read = read_latest(consumer, topic, partitions, Quiet(None))
            found.append(await asyncio.wait_for(read, 30))
        return found[1], found[0]
    finally:
        await consumer.stop()


def chains(entries: dict[bytes, bytes]) -> dict[bytes, list[Entry]]:
    out: dict[bytes, list[tuple[int, Entry]]] = defaultdict(list)
    for stored, value in entries.items():
        split = split_key(stored)
        assert split is not None
        out[split[0]].append((split[1], Entry.from_bytes(value)))
    return {key: [e for _, e in sorted(found)] for key, found in out.items()}


async def until_complete(
    bootstrap: str, app_id: str, expected: dict[bytes, set[str]], timeout: float = 120
) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """Poll the changelogs until every subject's head is at its count of accepted events."""
    deadline = time.monotonic() + timeout
    while True:
        entries, states = await cluster_ledger(bootstrap, app_id)
        heads = {key: head_of(states.get(key)).sequence for key in expected}
        if all(heads[key] == len(ids) for key, ids in expected.items()):
            return entries, states
        if time.monotonic() > deadline:
            behind = {k: (heads[k], len(v)) for k, v in expected.items() if heads[k] != len(v)}
            raise AssertionError(f"ledger heads not complete: {list(behind.items())[:5]}")
        await asyncio.sleep(1)


def assert_exact(
    expected: dict[bytes, set[str]], entries: dict[bytes, bytes], states: dict[bytes, bytes]
) -> None:
    """Per subject: exactly one entry per distinct accepted event, a chain that verifies
    against the head stored with the state, and nothing beyond it."""
    found = chains(entries)
    assert set(found) == set(expected)
    for key, ids in expected.items():
        chain = found[key]
        assert [e.sequence for e in chain] == list(range(1, len(ids) + 1)), key
        assert sorted(e.record.event_id for e in chain) == sorted(ids), key
        assert verify_chain(chain, head_of(states[key])) == [], key


# -- the worker's own store, read as FaustBackend.ledger reads it -----------------------------


class _Partitions:
    """A stopped worker's RocksDB partition databases of one table (read only)."""

    def __init__(self, data_dir: Path, table: str) -> None:
        self.data_dir, self.name = data_dir, table
        self.partitions = DEFAULT_PARTITIONS
        self.data = self
        self._open: dict[int, rocksdict.Rdict] = {}

    def _db_for_partition(self, partition: int) -> rocksdict.Rdict:
        if partition not in self._open:
            [path] = self.data_dir.glob(f"**/tables/{self.name}-{partition}.db")
            options = rocksdict.Options(raw_mode=True)
            self._open[partition] = rocksdict.Rdict(
                str(path), options, access_type=rocksdict.AccessType.read_only()
            )
        return self._open[partition]

    def get(self, key: bytes) -> bytes | None:
        for partition in range(self.partitions):
            value = self._db_for_partition(partition).get(key)
            if value is not None:
                return bytes(value)
        return None

    def close(self) -> None:
        for db in self._open.values():
            db.close()


def served(data_dir: Path, keys: list[bytes]) -> dict[bytes, LedgerView]:
    """What FaustBackend.ledger serves for ``keys`` from a stopped worker's data directory."""
    subjects, ledger = _Partitions(data_dir, SUBJECTS_TABLE), _Partitions(data_dir, LEDGER_TABLE)
    try:
        backend = FaustBackend(None, subjects, None, None, ledger=LedgerStore(ledger))  # type: ignore[arg-type]
        return {key: backend.ledger(key) for key in keys}
    finally:
        subjects.close()
        ledger.close()


def verify_cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "ledger",
            "verify",
            "--bootstrap",
            pipeline.bootstrap,
            "--app-id",
            pipeline.worker.app_id,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_events_in_ledger_out_rebuilt_and_verified(bootstrap: str, tmp_path: Path) -> None:
    policy = load_policy()
    workload = contested(
        policy, 11, events=600, subjects=40, duplicate_ratio=0.1, keyless_ratio=0.2, prefix="lg-"
    )
    records = list(workload.records)
    expected = accepted(policy, records)
    pipeline = pipeline_for(bootstrap, tmp_path, **RECOVERABLE, **API_ENV)
    app_id = pipeline.worker.app_id
    # One event as the HTTP API publishes it: with the key's name and the link kind.
    http_key, http_value = records[0]
    via_http = orjson.loads(http_value)
    pipeline.worker.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                pipeline.topics.events,
                http_value,
                key=http_key,
                headers=[(API_KEY_HEADER, b"shop-frontend"), (LINK_HEADER, b"unsubscribe")],
            )
        finally:
            await producer.stop()
        await produce(bootstrap, pipeline.topics.events, records[1:])
        entries, states = await until_complete(bootstrap, app_id, expected)
        # Through the worker's HTTP API: the access export carries the ledger, opened (a
        # subject never erased: an erasure leaves what was sealed before it shredded).
        kept = next(
            key
            for key, chain in sorted(chains(entries).items())
            if all(e.record.type != "erasure.requested" for e in chain)
        )
        controller, _, subject_id = kept.decode().partition("/")
        path = f"/v1/controllers/{controller}/subjects/{subject_id}/export"
        reply = await Api(pipeline.worker.url, EXPORT_KEY).get(path)
        assert reply.status == 200, reply.text
        export = reply.json()
    finally:
        pipeline.worker.stop()
    assert_exact(expected, entries, states)
    first = chains(entries)
    http_entry = next(
        e
        for e in first[f"{via_http['controller']}/{via_http['subject_id']}".encode()]
        if e.record.event_id == via_http["event_id"]
    )
    assert (http_entry.record.arrival.api_key, http_entry.record.arrival.link_kind) == (
        "shop-frontend",
        "unsubscribe",
    )
    assert http_entry.record.arrival.topic in (pipeline.topics.events, pipeline.topics.by_subject)
    exported = first[kept]
    assert [e["event_id"] for e in export["ledger"]] == [e.record.event_id for e in exported]
    assert [e["digest"] for e in export["ledger"]] == [e.digest for e in exported]
    assert export["chain"] == {
        "intact": True,
        "entries": len(exported),
        "head_sequence": len(exported),
        "problems": [],
    }
    assert not any(e["shredded"] for e in export["ledger"])  # opened with the subject's key
    # As stored, personal data is sealed under the subject's data key; an event that carried
    # none is kept with an empty personal part.
    stored = [e.record.personal for chain in first.values() for e in chain]
    assert all(isinstance(p, Sealed) or p == Personal() for p in stored)
    assert any(isinstance(p, Sealed) for p in stored)

    # Read back as the worker serves it: the same entries, the head kept with the state.
    keys = sorted(expected)
    views = served(pipeline.worker.data_dir, keys)
    for key in keys:
        assert list(views[key].entries) == first[key]
        assert views[key].records == tuple(e.record for e in first[key])
        assert views[key].head == first[key][-1].head
        assert verify_chain(views[key].entries, views[key].head) == []

    # A fresh worker on an empty data directory rebuilds the same ledger from its changelog.
    fresh = WorkerProcess(
        bootstrap,
        app_id,
        tmp_path / "fresh-data",
        tmp_path / "fresh.log",
        extra_env=pipeline.worker.extra_env,
    )
    fresh.start()  # ready: its tables are recovered
    fresh.stop()
    rebuilt = served(fresh.data_dir, keys)
    assert {k: v.entries for k, v in rebuilt.items()} == {k: v.entries for k, v in views.items()}
    assert {k: v.head for k, v in rebuilt.items()} == {k: v.head for k, v in views.items()}

    # The command finds the ledger intact ...
    clean = verify_cli(pipeline)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert (
        f"{len(keys)} subjects, {sum(map(len, expected.values()))} entries, 0 findings"
        in clean.stdout
    )
    one = keys[0].decode()
    assert verify_cli(pipeline, "--subject", one).returncode == 0

    # ... and reports an entry edited on the changelog, without repairing it.
    target_key = next(k for k in entries if split_key(k) == (keys[0], 1))
    tampered = entries[target_key].replace(b'"received_at":', b'"received_at":1', 1)
    await produce(bootstrap, changelog(app_id, LEDGER_TABLE), [(target_key, tampered)])
    found = verify_cli(pipeline, "--subject", one)
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"{one}  #1  altered" in found.stdout
    assert "(altered 1)" in found.stdout
    everything = verify_cli(pipeline, "--quiet")
    assert everything.returncode == 1 and "1 findings (altered 1)" in everything.stdout
    after, _ = await cluster_ledger(bootstrap, app_id)
    assert after[target_key] == tampered  # reported, never repaired
    assert verify_cli(pipeline, "--partition", "99").returncode == 2


async def test_sigkill_mid_stream_loses_and_duplicates_no_entry(
    bootstrap: str, tmp_path: Path
) -> None:
    policy = load_policy()
    workload = contested(
        policy, 23, events=2000, subjects=150, duplicate_ratio=0.05, keyless_ratio=0.2, prefix="lk-"
    )
    records = list(workload.records)
    expected = accepted(policy, records)
    total = sum(map(len, expected.values()))
    pipeline = pipeline_for(bootstrap, tmp_path, **RECOVERABLE)
    app_id = pipeline.worker.app_id
    worker = pipeline.worker.start()
    midway = 0  # kills that found the ledger part written
    try:
        chunk = -(-len(records) // 4)
        for start in range(0, len(records), chunk):
            await produce(bootstrap, pipeline.topics.events, records[start : start + chunk])
            await asyncio.sleep(0.5)
            worker.kill()
            entries, _ = await cluster_ledger(bootstrap, app_id)
            midway += 0 < len(entries) < total
            worker.start()
        entries, states = await until_complete(bootstrap, app_id, expected, timeout=180)
    finally:
        worker.stop()
    assert midway >= 2
    assert_exact(expected, entries, states)
    clean = verify_cli(pipeline, "--quiet")
    assert clean.returncode == 0, clean.stdout + clean.stderr
