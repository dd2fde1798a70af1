"""API key authentication for views: 401 without a valid key, 403 without the scope.

Checked before anything is looked up, so the answer never depends on whether a subject exists.
"""

from __future__ import annotations

from aiohttp import web

from streams.web.apikeys import ApiKey, Scope
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
