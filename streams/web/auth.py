"""API key authentication: 401 without a valid key, 403 without the route's scope.

The route table names each route's scope and :func:`guarded` enforces it around the view, so
what the OpenAPI document says and what is checked are one thing. Checked before the view runs,
so the answer never depends on whether a subject exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from streams.security.apikeys import ApiKey, Scope
from streams.web.backend import API_KEY_HEADER, Headers
from streams.web.context import context_of
from streams.web.errors import ApiError

REALM = 'Bearer realm="consent-streams"'
#: Request key under which the authenticated key's name is kept (for the access log).
CLIENT: web.RequestKey[str] = web.RequestKey("consent_streams_client", str)


def bearer_token(header: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <key>`` header, else ``None``."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials or " " in credentials:
        return None
    return credentials


def require(request: web.Request, scope: Scope) -> ApiKey:
    """The request's API key if it has ``scope``; else the 401 or 403 error."""
    presented = bearer_token(request.headers.get("Authorization"))
    if presented is None:
        raise ApiError(
            401,
            "unauthenticated",
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": REALM},
        )
    key = context_of(request).keyring.authenticate(presented)
    if key is None:
        raise ApiError(
            401,
            "invalid_key",
            "the API key is not valid",
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    request[CLIENT] = key.name
    if not key.allows(scope):
        raise ApiError(
            403,
            "insufficient_scope",
            f"the API key {key.name!r} does not have the {scope.value!r} scope",
            headers={
                "WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope.value}"'
            },
        )
    return key


def client_headers(request: web.Request) -> Headers:
    """The provenance header of an event published for the request's authenticated key."""
    return ((API_KEY_HEADER, request[CLIENT].encode()),)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(handler: Handler, scope: Scope) -> Handler:
    """``handler``, answered only for a key with ``scope``."""

    @wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        require(request, scope)
        return await handler(request)

    return checked
