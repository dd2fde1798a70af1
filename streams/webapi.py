"""The worker's HTTP API on its Faust app: where the pipeline and the web layer meet.

Above both layers, so neither imports the other: the pipeline's backend goes to the web layer
through :class:`streams.web.backend.Backend` only.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from streams.app import ConsentStreams
from streams.pipeline.web_backend import FaustBackend
from streams.settings import Settings
from streams.topology import TopicNames
from streams.web.setup import install_web


def attach_api(streams: ConsentStreams, settings: Settings) -> None:
    """Serve the API on the worker's own web server (Faust's aiohttp application)."""
    backend = FaustBackend(
        streams.app,
        streams.subjects,
        streams.counters,
        TopicNames.of(settings),
        streams.deadlines,
        ledger=streams.ledger,
        opener=streams.keys.open,  # personal data opened, or left sealed after erasure
        ticker=streams.ticker,
        rewrap=streams.rewrap,
        memory=streams.memory,
    )
    faust_app: Any = streams.app
    server = cast(web.Application, faust_app.web.web_app)
    install_web(server, backend, streams.engine, settings)
