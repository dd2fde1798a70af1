"""Producing events to the input topic and waiting until the broker has them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from schemas.codec import encode_event
from schemas.events import ConsentEvent
from streams.web.backend import Backend, Headers, Outgoing
from streams.web.errors import unavailable

log = logging.getLogger("consent_streams.http")

#: How long a request waits for the broker's acknowledgement before answering 503.
ACK_TIMEOUT = 15.0


class Publisher:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send every record and return once the broker acknowledged all of them."""
        try:
            await asyncio.wait_for(self.backend.publish(records), ACK_TIMEOUT)
        except Exception as exc:  # not started yet, broker down, timed out...
            log.warning("publish failed", extra={"error": type(exc).__name__})
            raise unavailable(
                "the events could not be handed to the broker; retry (the same event ids make "
                "a retry harmless)",
                "publish_failed",
            ) from None

    async def publish_events(self, events: list[ConsentEvent], headers: Headers) -> None:
        await self.publish([(e.subject_id.encode(), encode_event(e), headers) for e in events])
