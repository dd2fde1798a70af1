"""Hostile input over HTTP: event intake, token minting and the link endpoints, against a real
worker. Bad requests get a 4xx and publish nothing, valid ones are published and processed,
nothing answers 5xx and the worker never restarts anything."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from streams.core.policy import Policy
from streams.security import apikeys, tokens
from tests.resilience.cluster import read_to_end, wait_drained
from tests.resilience.harness import destinations, outputs, start
from tests.resilience.hostile import malformed, valid_event
from tests.resilience.report import FULL, Mode, Report
from tests.resilience.workload import judge
from tests.support.pipeline import Pipeline, pipeline_for

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

PART = ("http", "hostile input (HTTP)")
#: Record-level categories whose body is a valid event over HTTP (the Kafka key is not sent).
NOT_BAD_OVER_HTTP = {"wrong_key", "no_value"}


@dataclass
class Api:
    pipeline: Pipeline
    keys: dict[str, str]  # role -> key
    secret: str
    session: aiohttp.ClientSession
    statuses: list[tuple[str, str, int]] = field(default_factory=list)  # (expected, what, status)
    published: set[str] = field(default_factory=set)  # event ids the API must have published
    #: link clicks: one event id per click, "link-<kind>-<token digest>-<click millisecond>"
    clicked: dict[str, int] = field(default_factory=dict)  # id prefix -> clicks

    @property
    def base(self) -> str:
        return self.pipeline.worker.url

    async def call(
        self,
        expected: str,
        what: str,
        method: str,
        path: str,
        *,
        role: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        sent = dict(headers or {})
        if role is not None:
            sent["Authorization"] = f"Bearer {self.keys[role]}"
        async with self.session.request(method, self.base + path, headers=sent, **kwargs) as reply:
            body = await reply.read()
        self.statuses.append((expected, what, reply.status))
        return reply.status, body


@pytest.fixture(scope="module")
async def api(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    keys = {role: apikeys.generate_key() for role in ("writer", "reader", "minter")}
    scopes = {"writer": "write", "reader": "read", "minter": "tokens"}
    configured = ",".join(
        f"{role}:{scopes[role]}:{apikeys.hash_key(key)}" for role, key in keys.items()
    )
    secret = tokens.new_secret()
    pipeline = pipeline_for(
        bootstrap,
        tmp_path_factory.mktemp("http"),
        CONSENT_API_KEYS=configured,
        CONSENT_TOKEN_SECRET=secret,
        CONSENT_ALLOW_INSECURE_LINKS="1",  # links point at the worker's own http:// address
    )
    try:
        await start(pipeline.worker)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Api(pipeline, keys, secret, session)
    finally:
        pipeline.worker.stop()


async def _require(api: Api, method: str, path: str) -> None:
    """A lost route fails the test: a plain 404 would otherwise pass every "4xx" check."""
    async with api.session.request(method, api.base + path) as reply:
        served = reply.status != 404 or "json" in reply.headers.get("Content-Type", "")
    assert served, f"{method} {path} is not served"


def _event_body(n: int) -> dict[str, Any]:
    return valid_event(n, subject_id=f"http-subject-{n}") | {"event_id": f"http-{n}"}


@pytest.mark.timeout(660 if FULL else 240)
async def test_event_intake_refuses_bad_requests_and_publishes_good_ones(
    api: Api, mode: Mode, policy: Policy, report: Report
) -> None:
    await _require(api, "POST", "/v1/events")
    since = len(api.statuses)
    rng = random.Random(mode.seed + 71)
    valid = _event_body(0)
    body = orjson.dumps(valid)
    # Authentication and scope.
    for what, headers in {
        "no credentials": {},
        "bare scheme": {"Authorization": "Bearer"},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "two credentials": {"Authorization": "Bearer abcdefghijklmnop qrstuvwxyz"},
        "unknown key": {"Authorization": f"Bearer cs_{secrets.token_urlsafe(32)}"},
        "short key": {"Authorization": "Bearer x"},
        "long key": {"Authorization": "Bearer " + "k" * 300},
    }.items():
        await api.call("4xx", f"auth: {what}", "POST", "/v1/events", data=body, headers=headers)
    for role in ("reader", "minter"):
        await api.call("4xx", f"scope: {role}", "POST", "/v1/events", data=body, role=role)
    # Bodies: every malformed record category, broken arrays, size limits.
    count = 0
    for n in range(1, mode.hostile_examples + 1):
        category, (_, value) = malformed(rng, n)
        if category in NOT_BAD_OVER_HTTP:
            continue
        count += 1
        await api.call(
            "4xx",
            f"body: {category}",
            "POST",
            "/v1/events",
            data=value,
            role="writer",
            headers={"Content-Type": "application/json"},
        )
        if rng.random() < 0.3:  # a batch with one bad item publishes nothing
            inner, (_, bad) = malformed(rng, n + 10**6)
            if bad is not None and inner not in NOT_BAD_OVER_HTTP and len(bad) < 50_000:
                good = orjson.dumps(_event_body(10**6 + n))
                batch = b"[" + good + b"," + bad + b"]"
                await api.call(
                    "4xx",
                    f"batch with a bad item: {inner}",
                    "POST",
                    "/v1/events",
                    data=batch,
                    role="writer",
                    headers={"Content-Type": "application/json"},
                )
    for what, data in {
        "empty body": b"",
        "empty array": b"[]",
        "over 1 MiB": b"[" + b",".join([body] * (1024 * 1024 // len(body) + 10)) + b"]",
        "501 events": orjson.dumps([_event_body(2 * 10**6 + i) for i in range(501)]),
        "a string": b'"event"',
    }.items():
        await api.call(
            "4xx",
            what,
            "POST",
            "/v1/events",
            data=data,
            role="writer",
            headers={"Content-Type": "application/json"},
        )
    # Valid requests among them: one event, and batches.
    published = 0
    for n in range(1, 21):
        events = [_event_body(3 * 10**6 + n * 10 + i) for i in range(1 if n % 2 else 4)]
        data = orjson.dumps(events[0] if len(events) == 1 else events)
        status, _ = await api.call(
            "2xx",
            "valid",
            "POST",
            "/v1/events",
            data=data,
            role="writer",
            headers={"Content-Type": "application/json"},
        )
        if 200 <= status < 300:
            api.published |= {e["event_id"] for e in events}
            published += len(events)
    _check(api, report, "intake", since)
    report.add(*PART, intake_bad_bodies=count, intake_valid_events_published=published)
    await _only_accepted_requests_reached_the_stream(api, policy, report)


@pytest.mark.timeout(660 if FULL else 240)
async def test_links_refuse_forged_expired_and_oversized_tokens(
    api: Api, policy: Policy, report: Report
) -> None:
    await _require(api, "POST", "/v1/tokens")
    since = len(api.statuses)
    minted: dict[str, str] = {}
    for kind, request in {
        "unsubscribe": {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "link-1"},
        "confirm": {
            "kind": "confirm",
            "controller": "hms-se",
            "subject_id": "link-2",
            "purpose": "newsletter",
            "channel": "email",
        },
    }.items():
        status, body = await api.call(
            "2xx", f"mint {kind}", "POST", "/v1/tokens", json=request, role="minter"
        )
        assert status == 201, body[:300]
        minted[kind] = (
            orjson.loads(body)[0]["token"] if body.startswith(b"[") else orjson.loads(body)["token"]
        )
    for what, data in {
        "writer key": (orjson.dumps({"kind": "unsubscribe"}), "writer"),
        "unknown kind": (
            orjson.dumps({"kind": "other", "controller": "kms-uk", "subject_id": "x"}),
            "minter",
        ),
        "ttl too short": (
            orjson.dumps(
                {"kind": "unsubscribe", "controller": "kms-uk", "subject_id": "x", "ttl_seconds": 1}
            ),
            "minter",
        ),
        "not json": (b"{", "minter"),
    }.items():
        await api.call(
            "4xx",
            f"mint: {what}",
            "POST",
            "/v1/tokens",
            data=data[0],
            role=data[1],
            headers={"Content-Type": "application/json"},
        )
    good = minted["unsubscribe"]
    other = tokens.Signer.from_config(tokens.new_secret())
    same = tokens.Signer.from_config(api.secret)
    now = int(time.time())
    claims = tokens.Claims(
        tokens.TokenKind.UNSUBSCRIBE, "kms-uk", "link-3", None, None, now - 7200, now - 3600
    )
    forged = {
        "random": secrets.token_urlsafe(40),
        "payload changed": f"{good[:5]}{'A' if good[5] != 'A' else 'B'}{good[6:]}",
        "tag changed": f"{good[:-2]}{'A' if good[-2] != 'A' else 'B'}{good[-1]}",
        "other secret": other.mint(claims),
        "expired": same.mint(claims),
        "version": f"9{good[1:]}",
        "no tag": good[:-22],
        "huge": "2" + "A" * 5000,
        "non-ascii": "v1.\u00e9t\u00e9.\u00e9t\u00e9",
        "dots": "...",
        "encoded slash": "v1.%2F..%2F.x",
    }
    for what, token in forged.items():
        for prefix in ("unsubscribe", "confirm"):
            path = f"/v1/{prefix}/{token}"
            await api.call("4xx", f"{prefix} GET: {what}", "GET", path)
            await api.call(
                "4xx",
                f"{prefix} POST: {what}",
                "POST",
                path,
                data={"List-Unsubscribe": "One-Click"},
            )
    unsubscribe = f"/v1/unsubscribe/{good}"
    await api.call("2xx", "unsubscribe page", "GET", unsubscribe)  # shows a page, publishes nothing
    await api.call("4xx", "unsubscribe: wrong body", "POST", unsubscribe, data={"foo": "bar"})
    await api.call(
        "4xx",
        "unsubscribe: 8 KiB body",
        "POST",
        unsubscribe,
        data={"List-Unsubscribe": "One-Click", "pad": "x" * 8192},
    )
    for attempt in range(2):  # each click is its own event, at click time
        status, _ = await api.call(
            "2xx",
            f"one-click {attempt}",
            "POST",
            unsubscribe,
            data={"List-Unsubscribe": "One-Click"},
        )
    api.clicked[_click_prefix(tokens.TokenKind.UNSUBSCRIBE, good)] = 2
    confirm = f"/v1/confirm/{minted['confirm']}"
    await api.call("2xx", "confirm page", "GET", confirm)
    await api.call("2xx", "confirm", "POST", confirm, data={"confirm": "yes"})
    api.clicked[_click_prefix(tokens.TokenKind.CONFIRM, minted["confirm"])] = 1
    _check(api, report, "links", since)
    report.add(*PART, forged_or_expired_tokens_tried=len(forged) * 4)
    await _only_accepted_requests_reached_the_stream(api, policy, report)


async def _only_accepted_requests_reached_the_stream(
    api: Api, policy: Policy, report: Report
) -> None:
    """What the worker published and processed for every request made so far in this module:
    each test ends with it, so none depends on another having run before or after it."""
    topics = api.pipeline.topics
    records = await read_to_end(api.pipeline.bootstrap, topics.events)
    await wait_drained(
        api.pipeline.bootstrap,
        api.pipeline.worker.app_id,
        topics.events,
        len(records),
        topics.by_subject,
    )
    ids = [orjson.loads(r.value or b"{}").get("event_id") for r in records]
    clicks = {p: sum(1 for i in set(ids) if str(i).startswith(p)) for p in api.clicked}
    unexpected = sorted(
        i for i in set(ids) - api.published if not str(i).startswith(tuple(api.clicked))
    ) + sorted(p for p, n in clicks.items() if n > api.clicked[p])
    missing = sorted(api.published - set(ids)) + sorted(
        p for p, n in clicks.items() if n < api.clicked[p]
    )
    events = list(
        {i: orjson.loads(r.value or b"{}") for i, r in zip(ids, records, strict=True)}.values()
    )
    verdict = judge(policy, events, await outputs(api.pipeline), destinations(topics))
    worker = api.pipeline.worker
    crashes = [
        line[:200]
        for line in worker.log_path.read_text(errors="replace").splitlines()
        if "Crashed reason=" in line
    ]
    report.add(
        *PART,
        published_without_acceptance=len(unexpected),
        accepted_but_not_published=len(missing),
        worker_restarts=worker.restarts_seen - 1,
        agent_crashes=len(crashes),
    )
    assert not unexpected, f"published although refused: {unexpected[:5]}"
    assert not missing, f"accepted but not on the stream: {missing[:5]}"
    assert verdict.ok, verdict.explain()
    assert worker.restarts_seen == 1 and not crashes, crashes[:3]


def _click_prefix(kind: Any, token: str) -> str:
    """The event ids of clicks on ``token`` start with this (the click time follows)."""
    return tokens.link_event_id(kind, token, datetime.now(UTC)).rsplit("-", 1)[0] + "-"


def _check(api: Api, report: Report, part: str, since: int) -> None:
    """Every answer since ``since`` in its expected class; none a 5xx."""
    answers = api.statuses[since:]
    server_errors = [s for s in answers if s[2] >= 500]
    wrong = [
        s
        for s in answers
        if (s[0] == "4xx" and not 400 <= s[2] < 500) or (s[0] == "2xx" and not 200 <= s[2] < 300)
    ]
    report.add(
        *PART,
        **{
            f"{part}_requests": len(answers),
            f"{part}_5xx": len(server_errors),
            f"{part}_unexpected_status": len(wrong),
        },
    )
    assert not server_errors, server_errors[:10]
    assert not wrong, wrong[:10]
