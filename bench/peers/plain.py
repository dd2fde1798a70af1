"""The transport limit: a plain aiokafka loop with no state.

It consumes ``consent.events`` in batches as a consumer group member, parses each record and
produces one small message per record (appended to one producer batch per partition, the cheapest
way aiokafka offers), then commits. Anything a stream processor does
on top of that (validation, state, decisions) can only cost more; this is the ceiling for a
Python consumer on the same broker.

    python -m bench.peers.plain --bootstrap HOST:PORT --group G --prefix P.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.peers.args import FirstConsume, PeerArgs, parse_args

OUTPUT_TOPIC = "bench.transport-out"


def transform(value: bytes | None) -> bytes:
    try:
        event = orjson.loads(value or b"")
        return orjson.dumps(
            {
                "caused_by_event_id": event.get("event_id"),
                "subject_id": event.get("subject_id"),
                "type": event.get("type"),
            }
        )
    except (orjson.JSONDecodeError, AttributeError):
        return b'{"error":"unparseable"}'


async def run(args: PeerArgs, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        args.events_topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=args.fetch_wait_ms,
        max_partition_fetch_bytes=1 << 20,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    await consumer.start()
    first = FirstConsume()
    out = args.prefix + OUTPUT_TOPIC
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            if not batches:
                continue
            first()
            pending = []
            for tp, records in batches.items():
                # Same key, same partition count: the output partition is the input's.
                batch = producer.create_batch()
                for record in records:
                    value = transform(record.value)
                    if batch.append(key=record.key, value=value, timestamp=None) is None:
                        pending.append(
                            await producer.send_batch(batch, out, partition=tp.partition)
                        )
                        batch = producer.create_batch()
                        batch.append(key=record.key, value=value, timestamp=None)
                pending.append(await producer.send_batch(batch, out, partition=tp.partition))
            await asyncio.gather(*pending)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "Plain aiokafka consume-parse-produce loop (the transport limit).")
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.closing(loop):
        loop.run_until_complete(run(args, stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
