"""What every view needs, built once per worker and stored on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from streams.core.engine import Engine
from streams.settings import Settings
from streams.topology import Topology
from streams.web.apikeys import Keyring
from streams.web.metrics import HttpStats
from streams.web.tokens import Signer

if TYPE_CHECKING:
    from streams.app import ConsentStreams
    from streams.web.publishing import Publisher
    from streams.web.routing import Router


@dataclass(frozen=True)
class WebContext:
    streams: ConsentStreams
    settings: Settings
    topology: Topology
    keyring: Keyring
    signer: Signer | None  # None: no CONSENT_TOKEN_SECRET, link endpoints answer 503
    router: Router
    publisher: Publisher
    http: HttpStats

    @property
    def app(self) -> Any:  # faust.App (untyped)
        return self.streams.app

    @property
    def engine(self) -> Engine:
        return self.streams.engine


CONTEXT: web.AppKey[WebContext] = web.AppKey("consent_streams", WebContext)


def context_of(request: web.Request) -> WebContext:
    return request.app[CONTEXT]
