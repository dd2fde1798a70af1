"""Reads, auth, errors, headers and the operations endpoints, in process over the in-memory
backend. What events do to decisions is tested against a worker (test_http_reads.py)."""

from __future__ import annotations

import re

import orjson
import pytest

from schemas.codec import decode_event
from streams.core.engine import Engine, subject_key
from streams.core.policy import load_policy
from streams.core.state import EMPTY
from tests.support.fake_backend import Served
from tests.support.http import decision_path, event
from tests.support.kafka import unique
from tests.support.keys import READ_KEY, TOKENS_KEY, WRITE_KEY


async def test_unknown_subject_gets_the_policy_default(served: Served) -> None:
    reply = await served.api(READ_KEY).get(
        decision_path("kms-uk", unique("nobody"), "marketing-email", "email")
    )
    assert reply.status == 200
    body = reply.json()
    assert {k: body[k] for k in ("allowed", "state", "reason", "legal_basis")} == {
        "allowed": True,
        "state": "allowed",
        "reason": "legitimate_interest",
        "legal_basis": "legitimate_interest",
    }
    assert body["since"] is None and body["caused_by_event_id"] is None
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("key", "status", "error"),
    [
        (None, 401, "unauthenticated"),
        ("cs_not-a-configured-key-123", 401, "invalid_key"),
        (WRITE_KEY, 403, "insufficient_scope"),
        (TOKENS_KEY, 403, "insufficient_scope"),
    ],
)
async def test_reads_need_a_key_with_read_scope(
    served: Served, key: str | None, status: int, error: str
) -> None:
    paths = [
        decision_path("kms-uk", unique("s"), "marketing-email", "email"),
        f"/v1/controllers/kms-uk/subjects/{unique('s')}/preferences",
    ]
    for path in paths:
        reply = await served.api(key).get(path)
        assert (reply.status, reply.json()["error"]) == (status, error)
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="consent-streams"')


async def test_errors_do_not_tell_whether_a_subject_exists(served: Served) -> None:
    known = unique("known")
    unsubscribed = decode_event(orjson.dumps(event("unsubscribed", "kms-uk", known)))
    state = Engine(load_policy()).apply(EMPTY, unsubscribed, unsubscribed.occurred_at).state
    served.backend.states[subject_key("kms-uk", known).encode()] = state.to_bytes()
    path = decision_path("kms-uk", known, "marketing-email", "email")
    assert (await served.api(READ_KEY).get(path)).json()["reason"] == "unsubscribed"
    for key in (None, "cs_wrong-key-000000000000", WRITE_KEY):
        replies = [
            await served.api(key).get(decision_path("kms-uk", s, "marketing-email", "email"))
            for s in (known, unique("unknown"))
        ]
        assert replies[0].status == replies[1].status
        assert replies[0].body == replies[1].body


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        (decision_path("acme", "s", "marketing-email", "email"), 404, "unknown_controller"),
        (decision_path("kms-uk", "s", "nope", "email"), 404, "unknown_purpose"),
        ("/v1/controllers/kms-uk/subjects/s/decisions/marketing-email", 400, "bad_request"),
        (decision_path("kms-uk", "s", "marketing-email", "phone"), 400, "bad_request"),
        (decision_path("kms-uk", "s", "marketing-email", "pigeon"), 400, "bad_request"),
        (decision_path("kms-uk", "x" * 257, "marketing-email", "email"), 400, "bad_request"),
        ("/v1/controllers/acme/subjects/s/preferences", 404, "unknown_controller"),
    ],
)
async def test_bad_reads(served: Served, path: str, status: int, error: str) -> None:
    reply = await served.api(READ_KEY).get(path)
    assert (reply.status, reply.json()["error"]) == (status, error)


async def test_operations_endpoints(served: Served) -> None:
    api = served.api(None)
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = (await api.get("/ready")).json()
    assert ready["status"] == "ready" and ready["partitions"] == [0, 1, 2, 3, 4, 5]
    openapi = await api.get("/openapi.json")
    assert openapi.json()["openapi"] == "3.1.0"
    assert "/v1/events" in openapi.json()["paths"]


async def test_not_ready_while_ownership_moves(served: Served) -> None:
    served.backend.is_settled = False
    ready = await served.api(None).get("/ready")
    assert (ready.status, ready.headers["Retry-After"]) == (503, "1")
    read = await served.api(READ_KEY).get(decision_path("kms-uk", "s", "marketing-email", "email"))
    assert (read.status, read.json()["error"]) == (503, "rebalancing")


async def test_metrics_count_requests_with_process_metrics(served: Served) -> None:
    subject = unique("m")
    await served.api(READ_KEY).get(decision_path("kms-uk", subject, "marketing-email", "email"))
    reply = await served.api(None).get("/metrics")
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    route = "/v1/controllers/{controller}/subjects/{subject_id}/decisions/{purpose}"
    for needle in (
        f'consent_streams_http_requests_total{{method="GET",route="{route}",status="200"}} 1.0',
        "consent_streams_ready 1.0",
        "consent_streams_http_reads_forwarded_total 0.0",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ):
        assert needle in text, needle
    assert subject not in text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line


async def test_head_and_405_answer_as_documented(served: Served) -> None:
    api = served.api(None)
    head = await api.call("HEAD", "/openapi.json")
    assert head.status == 200 and head.body == b""
    assert (
        await served.api(READ_KEY).call("HEAD", "/v1/controllers/kms-uk/subjects/s/preferences")
    ).status == 200
    wrong = await api.call("DELETE", "/v1/events")
    assert wrong.status == 405 and "POST" in wrong.headers["Allow"]
    assert wrong.json()["error"] == "method_not_allowed"
    for length in (9000, 60_000):
        long = await api.get("/v1/controllers/kms-uk/subjects/" + "s" * length + "/preferences")
        assert long.status == 414 and long.headers["Content-Type"].startswith("application/json")
        assert long.json()["error"] == "uri_too_long"
