"""What every view needs, built once per worker and stored on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry

from streams.core.engine import Engine
from streams.security.apikeys import Keyring
from streams.security.tokens import Signer
from streams.settings import Settings
from streams.web.backend import Backend
from streams.web.metrics import HttpStats
from streams.web.publishing import Publisher
from streams.web.receipting import Receipts
from streams.web.routing import Router


@dataclass(frozen=True)
class WebContext:
    backend: Backend
    engine: Engine
    settings: Settings
    keyring: Keyring
    signer: Signer | None  # None: no CONSENT_TOKEN_SECRET, link endpoints answer 503
    receipts: Receipts
    router: Router
    publisher: Publisher
    http: HttpStats
    registry: CollectorRegistry  # what /metrics exposes


CONTEXT: web.AppKey[WebContext] = web.AppKey("consent_streams", WebContext)


def context_of(request: web.Request) -> WebContext:
    return request.app[CONTEXT]
