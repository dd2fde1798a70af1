"""A small HTTP client for the API tests, and the paths, bodies and links they send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from streams.security.tokens import Claims, Signer, TokenKind
from tests.support.kafka import unique
from tests.support.keys import ALL_KEY, SECRET

# Headers of a one-click unsubscribe (RFC 8058) or confirm form post.
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Api:
    def __init__(self, base: str, key: str | None = ALL_KEY) -> None:
        self.base = base
        self.key = key

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if self.key is not None:
            sent.setdefault("Authorization", f"Bearer {self.key}")
        if json is not None:
            data = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else self.base + path
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, data=data, headers=sent, allow_redirects=False) as r,
        ):
            return Reply(r.status, r.headers, await r.read())

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Reply:
        return await self.call("POST", path, **kwargs)


def decision_path(controller: str, subject: str, purpose: str, channel: str) -> str:
    return f"/v1/controllers/{controller}/subjects/{subject}/decisions/{purpose}?channel={channel}"


def event(type_: str, controller: str, subject: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": unique("evt"),
        "type": type_,
        "occurred_at": fields.pop("occurred_at", "2026-11-20T10:00:00Z"),
        "controller": controller,
        "subject_id": subject,
        **fields,
    }


def local_token(kind: TokenKind, expires: datetime | None, **fields: str | None) -> str:
    now = datetime.now(UTC)
    claims = Claims(
        kind=kind,
        controller=fields.get("controller") or "kms-uk",
        subject_id=fields.get("subject_id") or unique("s"),
        purpose=fields.get("purpose"),
        channel=fields.get("channel"),
        issued_at=int(now.timestamp()),
        expires_at=int(expires.timestamp()) if expires else None,
    )
    return Signer.from_config(SECRET).mint(claims)
