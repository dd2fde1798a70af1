"""Which worker answers for a subject, and forwarding a read to it.

The backend names the partition a subject's state lives in and who holds it; this module
decides from that. Hand-written rather than Faust's own router: it must never answer from a
standby copy or bounce a request between workers, and must answer 503 while ownership moves.

A worker answers from its table only for a partition it owns as *active* and only outside a
rebalance or recovery: standby copies may lag, so they are never read. Anything else is either
forwarded to the owner (once: a forwarded request is never forwarded again) or answered 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import aiohttp
from aiohttp import web
from yarl import URL

from streams.core.state import SubjectState
from streams.web.backend import Backend
from streams.web.errors import unavailable

if TYPE_CHECKING:
    from streams.web.context import WebContext

log = logging.getLogger("consent_streams.http")
T = TypeVar("T")

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


class Unavailable(Exception):
    """The owner of a key cannot be determined or reached right now."""


@dataclass(frozen=True, slots=True)
class Local:
    partition: int


@dataclass(frozen=True, slots=True)
class Remote:
    partition: int
    url: URL


class Router:
    def __init__(self, backend: Backend, timeout: float = 5.0) -> None:
        self.backend = backend
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def locate(self, key: bytes) -> Local | Remote:
        backend = self.backend
        if not backend.settled():
            raise Unavailable("rebalance or recovery in progress")
        partition = backend.partition_of(key)
        if partition in backend.active_partitions():
            return Local(partition)
        owner = backend.owner_of(partition)
        if owner is None:
            raise Unavailable("no worker owns the partition")
        return Remote(partition, URL(owner))

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


async def owned_or_answer(
    ctx: WebContext, request: web.Request, key: bytes, read: Callable[[], T]
) -> T | web.Response:
    """``read()`` on this worker if it owns ``key``, else the owner's answer to the same request.

    Raises :class:`Unavailable` (counted) while ownership moves or the owner is unreachable.
    """
    try:
        place = ctx.router.locate(key)
        if isinstance(place, Local):
            # No await between the ownership check and the read.
            return read()
        if FORWARDED in request.headers:
            raise Unavailable("ownership is moving")  # never bounce between workers
        ctx.http.forwarded += 1
        return await ctx.router.forward(request, place.url)
    except Unavailable:
        ctx.http.unavailable += 1
        raise


async def owned_or_503(
    ctx: WebContext, request: web.Request, key: bytes, read: Callable[[], T]
) -> T | web.Response:
    """:func:`owned_or_answer`, answering 503 (with Retry-After) while ownership moves."""
    try:
        return await owned_or_answer(ctx, request, key, read)
    except Unavailable:
        raise unavailable(
            "the subject's partition is being rebalanced or recovered; retry shortly",
            "rebalancing",
        ) from None


async def state_or_answer(
    ctx: WebContext, request: web.Request, key: bytes
) -> SubjectState | web.Response:
    """The subject's state from this worker, or the owner's answer to the same request."""
    return await owned_or_answer(
        ctx, request, key, lambda: SubjectState.from_bytes(ctx.backend.state(key))
    )
