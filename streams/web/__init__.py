"""HTTP API served by every worker (Faust's aiohttp web server); see docs/api.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.app import ConsentStreams
    from streams.settings import Settings


def register_web(streams: ConsentStreams, settings: Settings) -> None:
    """Attach the project's views to the worker's web server."""
    # Imported here: streams.settings imports pure helpers from this package.
    from streams.web.setup import install_web

    install_web(streams, settings)
