"""Broker-side tools: committed offsets, reading topics to the end, waiting for a worker to drain,
process memory, and a broker behind a TCP relay that can be cut and restored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import BrokerError, broker_binary, free_port, metadata_answers

Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def committed_offsets(
    bootstrap: str, group: str, topics: Iterable[str]
) -> dict[TopicPartition, int]:
    """The consumer group's committed offsets on ``topics`` (partitions without one: absent).

    Asked through a consumer of the group that never joins it (the admin client's request
    version is not understood by the embedded broker).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        out: dict[TopicPartition, int] = {}
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                tp = TopicPartition(topic, partition)
                offset = await consumer.committed(tp)
                if offset is not None and offset >= 0:
                    out[tp] = offset
        return out
    finally:
        await consumer.stop()


async def read_to_end(
    bootstrap: str, *topics: str, idle: float = 1.5, timeout: float = 120.0
) -> list[Record]:
    """Everything on ``topics``, read from the beginning until ``idle`` seconds bring nothing new.

    Only meaningful once no one writes to the topics any more.
    """
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < idle:
            if time.monotonic() > deadline:
                raise AssertionError(f"reading {topics} did not settle within {timeout:.0f}s")
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            found = [record for batch in batches.values() for record in batch]
            if found:
                records.extend(found)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return records


def positions(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """Next offset after the last record seen, per partition."""
    ends: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        ends[tp] = max(ends.get(tp, 0), record.offset + 1)
    return ends


async def wait_drained(
    bootstrap: str,
    group: str,
    events_topic: str,
    produced: int,
    internal_topic: str,
    timeout: float = 120.0,
) -> float:
    """Wait until the worker group has committed every input record and every repartitioned one.

    Faust flushes its producer before it commits, so once both hops are committed everything the
    worker will ever send for that input is on the broker. Returns the seconds waited.
    """
    started = time.monotonic()
    deadline = started + timeout
    committed: dict[TopicPartition, int] = {}

    def input_done() -> bool:
        return sum(o for tp, o in committed.items() if tp.topic == events_topic) >= produced

    while not input_done():
        if time.monotonic() > deadline:
            done = sum(o for tp, o in committed.items() if tp.topic == events_topic)
            raise AssertionError(f"input not drained: {done}/{produced} committed after {timeout}s")
        await asyncio.sleep(0.5)
        committed = await committed_offsets(bootstrap, group, [events_topic])
    internal = positions(await read_to_end(bootstrap, internal_topic, idle=1.0))
    while any(committed.get(tp, 0) < end for tp, end in internal.items()):
        if time.monotonic() > deadline:
            behind = {tp.partition: (committed.get(tp, 0), end) for tp, end in internal.items()}
            raise AssertionError(f"repartitioned events not drained: {behind}")
        await asyncio.sleep(0.5)
        committed = await committed_offsets(bootstrap, group, [internal_topic])
    return time.monotonic() - started


class LagProbe:
    """Records a consumer group has not committed yet, per topic, through one long-lived client.

    For topics whose record count the caller knows, that count is the end (exact); for the
    others the end comes from ListOffsets, which on the embedded broker can under-count by the
    size of the last produce batch (see the broker notes).
    """

    def __init__(self, bootstrap: str, group: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )

    async def __aenter__(self) -> LagProbe:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def lag(self, produced: dict[str, int], end_of: Iterable[str] = ()) -> dict[str, int]:
        consumer = self._consumer
        await consumer.topics()
        out: dict[str, int] = {}
        for topic in [*produced, *end_of]:
            tps = [
                TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            committed = [await consumer.committed(tp) or 0 for tp in tps]
            if topic in produced:
                out[topic] = produced[topic] - sum(committed)
            else:
                ends = await asyncio.wait_for(consumer.end_offsets(tps), 10)
                out[topic] = sum(max(0, ends[tp] - c) for tp, c in zip(tps, committed, strict=True))
        return out


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def rocksdb_bytes(http: aiohttp.ClientSession, url: str) -> int:
    """Memory RocksDB holds in a worker (memtables and block cache), from its ``/metrics``."""
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "consent_streams_rocksdb_memory_bytes"
            for sample in family.samples
        )
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- a broker whose clients reach it through a relay --------------------------------------------


@dataclass
class Relay:
    """Forwards ``listen_port`` to ``target_port`` on loopback, in its own thread.

    ``cut()`` drops every connection and refuses new ones, as a dead or unreachable broker
    would; ``restore()`` accepts connections again. The broker behind it keeps its data.
    """

    target_port: int
    listen_port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    cuts: int = 0

    def start(self) -> Relay:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        self.cuts += 1
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        if self._thread is None:
            return
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.listen_port, reuse_address=True
            )

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            with contextlib.suppress(OSError):
                # An abortive close (RST), as a crashed host or a dropped link looks to a client.
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.target_port
            )
        except OSError:
            writer.close()
            return
        self._writers |= {writer, upstream_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers -= {writer, upstream_writer}


class RelayedBroker:
    """An embedded broker that advertises the relay's port, so every client goes through it."""

    def __init__(self, log_dir: Path) -> None:
        self.broker_port = free_port()
        self.relay = Relay(self.broker_port)
        self.log_path = log_dir / f"broker-{self.broker_port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.relay.listen_port}"

    def start(self, timeout: float = 20.0) -> RelayedBroker:
        inner = f"tcp://127.0.0.1:{self.broker_port}"
        outer = f"tcp://127.0.0.1:{self.relay.listen_port}"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    broker_binary(),
                    "broker",
                    "--listener-url",
                    inner,
                    "--advertised-listener-url",
                    outer,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.relay.start()
        deadline = time.monotonic() + timeout
        while not metadata_answers("127.0.0.1", self.relay.listen_port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"relayed broker did not start; see {self.log_path}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.relay.close()
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
