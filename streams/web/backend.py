"""What the HTTP API needs from the worker it runs in: a small read/publish interface.

The worker implements it over its Faust app (``streams/pipeline/web_backend.py``); the
in-process HTTP tests implement it in memory. Nothing here knows about Faust or Kafka, so the
web layer does not either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Protocol

from prometheus_client.metrics_core import Metric

from streams.core.clocks import Clock, Summary
from streams.core.ledger import LedgerView

#: Kafka header on events the API publishes for an authenticated client: the API key's *name*
#: (never the key). The ledger records it as the event's arrival.
API_KEY_HEADER: Final = "consent-streams-api-key"
#: Kafka header on events a link click publishes: the link token's kind (unsubscribe, confirm).
LINK_HEADER: Final = "consent-streams-link"

#: Kafka record headers, as (name, value) pairs.
Headers = tuple[tuple[str, bytes], ...]
#: One record to publish: key, value and headers.
Outgoing = tuple[bytes, bytes, Headers]


class Backend(Protocol):
    def settled(self) -> bool:
        """Partitions assigned, tables recovered, no rebalance under way."""

    def ready(self) -> bool:
        """Settled, with input partitions assigned: the worker answers reads (``/ready``)."""

    def partition_of(self, key: bytes) -> int:
        """The partition that stores the state of ``key`` (``controller/subject_id``)."""

    def partition_count(self) -> int:
        """How many partitions the subject table has."""

    def active_partitions(self) -> list[int]:
        """The partitions whose state this worker holds as active (standbys are never read)."""

    def owner_of(self, partition: int) -> str | None:
        """The base URL of another worker holding ``partition`` as active, if one is known."""

    def state(self, key: bytes) -> bytes | None:
        """The stored state of ``key``; only meaningful for an active partition of this worker."""

    def scan_states(
        self, partition: int, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, stored state) of ``partition`` for keys starting with ``prefix`` (a
        controller's ``controller/``), in key order, from the first key after ``after``.
        Only meaningful for an active partition of this worker."""

    def open_clocks(self, partition: int) -> Iterable[Clock]:
        """Deadline clocks of ``partition`` not yet honoured (active partitions only)."""

    def clock_summaries(self, partition: int) -> Iterable[tuple[str, str, Summary]]:
        """(controller, rule, summary) of the clocks closed in ``partition`` (active only)."""

    def ledger(self, key: bytes) -> LedgerView:
        """The ledger of ``key``; only meaningful for an active partition of this worker."""

    async def publish(self, records: Sequence[Outgoing]) -> None:
        """Send (key, value, headers) records to the input topic; return once the broker has
        them all."""

    def metrics(self) -> Iterable[Metric]:
        """The pipeline's metric families, read at scrape time."""
