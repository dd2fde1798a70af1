"""Quix Streams: the same fold in one stateful ``apply`` over its RocksDB State store.

State is per message key (the ``subject_id``); within it, one entry per controller, so the stored
unit is the same (controller, subject) state the worker keeps. Quix's defaults are kept (changelog
topics, checkpoint every 5 s). Output timestamps are set to processing time: by default Quix copies
the input record's timestamp, which would hide when an output was produced.

    python -m bench.peers.quix --bootstrap HOST:PORT --group G --prefix P. --state-dir D
"""

from __future__ import annotations

import sys
import time
from typing import Any

from bench.peers.args import DEADLETTER, FirstConsume, PeerArgs, parse_args
from bench.peers.steps import Output, Source, admit, fold, reject
from streams.core.engine import Engine
from streams.core.policy import load_policy

DESTINATIONS = ("email", "crm", "analytics", DEADLETTER)
#: This broker reports only the configs a topic was created with, and Quix reads these two.
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def _raw(value: Any) -> Any:
    return value


def build(args: PeerArgs) -> Any:
    from quixstreams import Application, message_context
    from quixstreams.models import TopicConfig
    from quixstreams.models.serializers import Serializer
    from quixstreams.state.rocksdb import RocksDBOptions

    class OutputValue(Serializer):
        """Writes the value part of an :data:`Output`."""

        def __call__(self, value: Output, ctx: Any) -> bytes:
            return value[2]

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        consumer_extra_config={
            "fetch.wait.max.ms": args.fetch_wait_ms,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        },
        rocksdb_options=RocksDBOptions(dumps=_raw, loads=_raw),
        loglevel="WARNING",
    )
    config = TopicConfig(args.partitions, 1, dict(TOPIC_CONFIG))
    source = app.topic(
        args.events_topic, value_deserializer="bytes", key_deserializer="bytes", config=config
    )
    outputs = {
        d: app.topic(
            args.topic_for(d), value_serializer=OutputValue(), key_serializer="bytes", config=config
        )
        for d in DESTINATIONS
    }
    engine = Engine(load_policy())
    first = FirstConsume()

    def step(value: bytes, key: bytes | None, timestamp: int, headers: Any, state: Any) -> Any:
        first()
        parsed = admit(engine, key, value)
        if isinstance(parsed, list):
            ctx = message_context()
            return [reject(key, value, parsed, Source(ctx.topic, ctx.partition, ctx.offset))]
        controller = parsed.controller.encode()
        messages, stored = fold(engine, parsed, state.get(controller))
        if stored is not None:
            state.set(controller, stored)
        return messages

    sdf = app.dataframe(source)
    sdf = sdf.apply(step, stateful=True, metadata=True, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(time.time() * 1000))
    sdf.to_topic(lambda value, key, timestamp, headers: outputs[value[0]], key=lambda v: v[1])
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, "Quix Streams peer: the same fold over its State store.")
    app = build(args)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
