"""Producing events to the input topic and waiting until the broker has them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from schemas.codec import encode_event
from schemas.events import ConsentEvent
from streams.web.errors import unavailable

log = logging.getLogger("consent_streams.http")

#: How long a request waits for the broker's acknowledgement before answering 503.
ACK_TIMEOUT = 15.0


class Publisher:
    def __init__(self, app: Any, topic: str) -> None:
        self.app = app  # faust.App
        self.topic = topic

    async def publish(self, records: list[tuple[bytes, bytes]]) -> None:
        """Send every (key, value) and return once the broker acknowledged all of them."""
        try:
            producer = self.app.producer
            pending = [
                await producer.send(self.topic, key, value, None, None, None)
                for key, value in records
            ]
            await asyncio.wait_for(asyncio.gather(*pending), ACK_TIMEOUT)
        except Exception as exc:  # not started yet, broker down, timed out...
            log.warning("publish failed", extra={"error": type(exc).__name__})
            raise unavailable(
                "the events could not be handed to the broker; retry (the same event ids make "
                "a retry harmless)",
                "publish_failed",
            ) from None

    async def publish_events(self, events: list[ConsentEvent]) -> None:
        await self.publish([(e.subject_id.encode(), encode_event(e)) for e in events])
