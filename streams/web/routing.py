"""Which worker answers for a subject, and forwarding a read to it.

The ``subjects`` table is keyed by the raw bytes of ``controller/subject_id``; a state lives on
the partition of its subject id under the default partitioner (murmur2), where the subject's
keyed events arrive (:func:`streams.topology.partition_key`). The route hashes exactly those
bytes, so it names the partition the subject's state lives in.

A worker answers from its table only for a partition it owns as *active* and only outside a
rebalance or recovery: standby copies may lag, so they are never read. Anything else is either
forwarded to the owner (once: a forwarded request is never forwarded again) or answered 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka.partitioner import murmur2
from yarl import URL

from streams.topology import partition_key

log = logging.getLogger("consent_streams.http")

#: Marks a request one worker forwarded to another.
FORWARDED = "X-Consent-Forwarded"
_PASSED_ON = ("Authorization", "Accept")
_KEPT_BACK = (
    "Retry-After",
    "Cache-Control",
    "WWW-Authenticate",
    # Link pages answered by the owner keep their protections and language.
    "Content-Security-Policy",
    "Referrer-Policy",
    "X-Robots-Tag",
    "Content-Language",
)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner sends ``key`` to."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class Unavailable(Exception):
    """The owner of a key cannot be determined or reached right now."""


@dataclass(frozen=True, slots=True)
class Local:
    partition: int


@dataclass(frozen=True, slots=True)
class Remote:
    partition: int
    url: URL


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


class Router:
    def __init__(self, app: Any, table: Any, timeout: float = 5.0) -> None:
        self.app = app  # faust.App
        self.table = table  # faust Table
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def changelog_topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def settled(self) -> bool:
        """Partitions assigned, recovery done, no rebalance under way."""
        app = self.app
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return False
        return bool(app.tables.actives_ready)

    def active_partitions(self) -> list[int]:
        topic = self.changelog_topic
        return sorted(
            tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic
        )

    def locate(self, key: bytes) -> Local | Remote:
        if not self.settled():
            raise Unavailable("rebalance or recovery in progress")
        partition = partition_of(partition_key(key), int(self.table.partitions))
        topic = self.changelog_topic
        if partition in self.active_partitions():
            return Local(partition)
        me = _ident(URL(str(self.app.conf.canonical_url)))
        for url, topics in self.app.router.table_metadata(self.table.name).items():
            owner = URL(str(url))
            if partition in topics.get(topic, ()) and _ident(owner) != me:
                return Remote(partition, owner)
        raise Unavailable("no worker owns the partition")

    async def forward(self, request: web.Request, owner: URL) -> web.Response:
        headers = {name: request.headers[name] for name in _PASSED_ON if name in request.headers}
        headers[FORWARDED] = "1"
        target = URL(str(owner.origin()) + request.rel_url.raw_path_qs, encoded=True)
        try:
            session = self._client()
            async with session.request(request.method, target, headers=headers) as response:
                body = await response.read()
                kept = {k: response.headers[k] for k in _KEPT_BACK if k in response.headers}
                return web.Response(
                    body=body,
                    status=response.status,
                    content_type=response.content_type,
                    headers=kept,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("owner unreachable", extra={"error": type(exc).__name__})
            raise Unavailable("the worker owning the subject is not reachable") from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
