"""A broker in memory for the pipeline's outboxes: what was acknowledged, and how often a flush
waited for it."""

from __future__ import annotations

from typing import Any

import orjson

Added = tuple[str, bytes | None, bytes | None, int | None]  # topic, key, value, partition


class FakeOutbox:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.pending: list[Added] = []

    async def add(
        self, topic: str, key: bytes | None, value: bytes | None, *, partition: int | None = None
    ) -> None:
        self.pending.append((topic, key, value, partition))

    async def sent(self) -> dict[tuple[str, int], int]:
        if self.broker.fail:
            raise ConnectionError("broker gone")
        self.broker.waits += 1
        self.broker.acked += self.pending
        last = {
            (t, p if p is not None else 0): len(self.broker.acked) for t, _, _, p in self.pending
        }
        self.pending = []
        return last


class FakeBroker:
    def __init__(self) -> None:
        self.acked: list[Added] = []
        self.fail = False
        self.waits = 0  # flushes acknowledged

    def outbox(self) -> FakeOutbox:
        return FakeOutbox(self)

    def on(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, _, v, _ in self.acked if t == topic and v is not None]
