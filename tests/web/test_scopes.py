"""The route table is the one place scopes are declared, and what it declares is enforced."""

from __future__ import annotations

import pytest

from streams.security.apikeys import Scope
from streams.web.routes import ROUTES, Route
from tests.support.fake_backend import Served
from tests.support.keys import ALL_KEY, EXPORT_KEY, READ_KEY, TOKENS_KEY, WRITE_KEY

KEY_OF = {
    Scope.READ: READ_KEY,
    Scope.WRITE: WRITE_KEY,
    Scope.TOKENS: TOKENS_KEY,
    Scope.EXPORT: EXPORT_KEY,
}
PARAMETERS = {
    "controller": "kms-uk",
    "subject_id": "s",
    "purpose": "marketing-email",
    "event_id": "e-1",
}
GUARDED = [route for route in ROUTES if route.scope is not None]


def url_of(route: Route) -> str:
    return route.path.format(**PARAMETERS)


def test_every_personal_route_has_a_scope() -> None:
    assert {r.operation_id: r.scope for r in GUARDED} == {
        "getDecision": Scope.READ,
        "getPreferences": Scope.READ,
        "listReconsent": Scope.READ,
        "listOpenDeadlines": Scope.READ,
        "deadlineReport": Scope.READ,
        "publishEvents": Scope.WRITE,
        "recordPrivacySignals": Scope.WRITE,
        "mintLinkTokens": Scope.TOKENS,
        "getProof": Scope.READ,
        "getReceipt": Scope.READ,
        "exportSubject": Scope.EXPORT,
    }


def test_every_scope_has_a_test_key() -> None:
    assert set(KEY_OF) == set(Scope)


@pytest.mark.parametrize("route", GUARDED, ids=lambda r: r.operation_id)
async def test_keys_without_the_scope_get_403(served: Served, route: Route) -> None:
    assert route.scope is not None
    for scope, key in KEY_OF.items():
        if scope is route.scope:
            continue
        reply = await served.api(key).call(route.method, url_of(route))
        assert (reply.status, reply.json()["error"]) == (403, "insufficient_scope"), key
        assert f'scope="{route.scope.value}"' in reply.headers["WWW-Authenticate"]
    reply = await served.api(None).call(route.method, url_of(route))
    assert (reply.status, reply.json()["error"]) == (401, "unauthenticated")
    assert served.backend.published == []


@pytest.mark.parametrize("route", GUARDED, ids=lambda r: r.operation_id)
async def test_the_scope_lets_the_view_answer(served: Served, route: Route) -> None:
    for key in (KEY_OF[route.scope] if route.scope else ALL_KEY, ALL_KEY):
        reply = await served.api(key).call(route.method, url_of(route))
        assert reply.status not in (401, 403), reply.text
