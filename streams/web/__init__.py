"""HTTP API served by every worker (on Faust's aiohttp server); see docs/api.md.

Depends on the worker only through :class:`streams.web.backend.Backend`; the worker attaches it
with :func:`streams.web.setup.install_web`.
"""
