"""Wiring: build the shared context and install middleware and routes on a web server."""

from __future__ import annotations

import logging

from aiohttp import web

from streams.core.engine import Engine
from streams.security.apikeys import load_keyring
from streams.security.tokens import Signer
from streams.settings import Settings
from streams.web.backend import Backend
from streams.web.context import CONTEXT, WebContext
from streams.web.links import InsecureLinks, check_base_url
from streams.web.metrics import HttpStats, registry_for
from streams.web.middleware import MAX_REQUEST_LINE, observe
from streams.web.publishing import Publisher
from streams.web.receipting import Receipts
from streams.web.routes import install
from streams.web.routing import Router

log = logging.getLogger("consent_streams.http")


def install_web(
    server: web.Application, backend: Backend, engine: Engine, settings: Settings
) -> None:
    """Serve the API on ``server`` (the worker's own aiohttp application, or a test's)."""
    keyring = load_keyring(settings.api_keys, settings.api_keys_file)
    secret = settings.token_secret
    http = HttpStats()
    context = WebContext(
        backend=backend,
        engine=engine,
        settings=settings,
        keyring=keyring,
        signer=Signer.from_config(secret.get_secret_value()) if secret else None,
        receipts=Receipts.configured(settings, engine.policy),
        router=Router(backend),
        publisher=Publisher(backend),
        http=http,
        registry=registry_for(backend, http),
    )
    server[CONTEXT] = context
    # The parser's own limit answers in plain text: let long URLs through to the JSON 414.
    server._handler_args = {  # read when the server starts
        **(server._handler_args or {}),
        "max_line_size": MAX_REQUEST_LINE,
    }
    server.middlewares.append(observe)
    install(server)

    async def close(_: web.Application) -> None:
        await context.router.close()

    server.on_cleanup.append(close)
    if not len(keyring):
        log.warning("no API keys configured: the authenticated HTTP API answers 401")
    if context.signer is None:
        log.warning("no CONSENT_TOKEN_SECRET: link and token endpoints answer 503")
        return
    try:
        check_base_url(settings.links_base_url, allow_insecure=False)
    except InsecureLinks:
        if settings.allow_insecure_links:
            log.warning("CONSENT_ALLOW_INSECURE_LINKS: minting http:// links, for development only")
        else:
            log.warning(
                "links would not be HTTPS: POST /v1/tokens answers 503 until CONSENT_PUBLIC_URL "
                "is an https:// address (RFC 8058)"
            )
