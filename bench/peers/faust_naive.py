"""Naive Faust: one agent, one table update and one send per message, nothing tuned.

Events are already keyed by ``subject_id``, so every (controller, subject) key is only ever seen
in one partition of the input topic and the table can live on that partition directly (no
repartition hop). The table is a RocksDB-backed Faust table with its changelog, like the worker's.

    python -m bench.peers.faust_naive --bootstrap HOST:PORT --group G --prefix P. --state-dir D
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

from bench.peers.args import DEADLETTER, FirstConsume, PeerArgs, parse_args
from bench.peers.steps import Source, admit, fold, reject, table_key
from streams.core.engine import Engine
from streams.core.policy import load_policy

RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
DESTINATIONS = ("email", "crm", "analytics", DEADLETTER)


def build(args: PeerArgs) -> Any:
    import faust

    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="rocksdb://",
        datadir=args.state_dir,
        topic_partitions=args.partitions,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    engine = Engine(load_policy())
    source = app.topic(args.events_topic, **RAW)
    outputs = {d: app.topic(args.topic_for(d), **RAW) for d in DESTINATIONS}
    subjects = app.Table("subjects", partitions=args.partitions, key_type=bytes, value_type=bytes)
    first = FirstConsume()

    @app.agent(source, concurrency=1)
    async def process(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            first()
            message = event.message
            parsed = admit(engine, message.key, message.value)
            if isinstance(parsed, list):
                where = Source(message.topic, message.partition, message.offset)
                _, key, value = reject(message.key, message.value, parsed, where)
                await outputs[DEADLETTER].send(key=key, value=value)
                continue
            key = table_key(parsed)
            messages, state = fold(engine, parsed, subjects.get(key))
            for destination, out_key, value in messages:
                await outputs[destination].send(key=out_key, value=value)
            if state is not None:
                subjects[key] = state
            yield None

    return app


def main(argv: list[str] | None = None) -> int:
    import faust

    args = parse_args(argv, "Naive Faust peer: one agent, table update and send per event.")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(build(args), loop=loop, loglevel="WARNING", redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
