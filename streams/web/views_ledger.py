"""The ledger read over HTTP: proof as of a time, consent receipts, the JWKS (scope ``read``).

Answered by the worker owning the subject, like decisions (forwarded, or 503 while ownership
moves): the ledger lives with the subject's state.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
from aiohttp import web

from streams.core.engine import subject_key
from streams.core.ledger import LedgerView
from streams.core.proof import prove
from streams.web.context import WebContext, context_of
from streams.web.errors import ApiError, bad_request, json_response, not_found
from streams.web.ledger_out import chain_check, entry_out, opened
from streams.web.models import ProofOut
from streams.web.paths import controller_of, subject_id_of
from streams.web.presenting import pair_decision
from streams.web.receipting import NOT_CONFIGURED, is_consent_statement
from streams.web.routing import owned_or_503
from streams.web.views_decisions import purpose_and_channel

# "+01:00" arrives as " 01:00" when a client does not URL-encode the query.
_UNENCODED_OFFSET = re.compile(r" (\d\d:\d\d)$")


def moment(request: web.Request, name: str) -> datetime | None:
    """An RFC 3339 time from the query, with its offset (400 otherwise)."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(_UNENCODED_OFFSET.sub(r"+\1", raw.strip()))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise bad_request(f"{name} must be an RFC 3339 time with an offset, e.g. 2026-11-20T10:00Z")
    return parsed.astimezone(UTC)


async def with_ledger(
    request: web.Request, key: bytes, render: Callable[[LedgerView], web.Response]
) -> web.Response:
    """Render the subject's ledger on the worker owning it, or answer as the owner did."""
    ctx = context_of(request)
    found = await owned_or_503(ctx, request, key, lambda: ctx.backend.ledger(key))
    if isinstance(found, web.Response):
        return found
    # Off the event loop: checking and rendering a long ledger takes a while (about a second for
    # 10,000 entries), and the worker's stream processing shares this loop.
    return await asyncio.to_thread(render, found)


async def get_proof(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    purpose, channel = purpose_and_channel(request, controller)
    at = moment(request, "at") or datetime.now(UTC)
    known_at = moment(request, "known_at")
    plan = context_of(request).engine.plans[controller.id].by_pair[(purpose.name, channel)]

    def render(view: LedgerView) -> web.Response:
        proof = prove(view.entries, plan, at, known_at)
        wanted = {entry.sequence for entry in proof.basis}
        if proof.cause is not None:
            wanted.add(proof.cause.sequence)
        shown = {
            e.sequence: entry_out(e, record) for e, record in opened(view) if e.sequence in wanted
        }
        body = ProofOut(
            controller=controller.id,
            subject_id=subject_id,
            purpose=purpose.name,
            channel=channel,
            at=at,
            known_at=known_at,
            decision=pair_decision(proof.decision),
            cause=shown[proof.cause.sequence] if proof.cause else None,
            basis=[shown[entry.sequence] for entry in proof.basis],
            chain=chain_check(view, controller.id, subject_id),
        )
        return json_response(body)

    return await with_ledger(request, subject_key(controller.id, subject_id).encode(), render)


def receipts_or_503(ctx: WebContext) -> None:
    if ctx.receipts.signer is None:
        raise ApiError(503, "receipts_not_configured", NOT_CONFIGURED)


async def get_receipt(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    event_id = request.match_info["event_id"]
    ctx = context_of(request)
    receipts_or_503(ctx)

    def render(view: LedgerView) -> web.Response:
        for _, record in opened(view):
            if record.event_id == event_id and is_consent_statement(record):
                return json_response(ctx.receipts.issue(record))
        raise not_found(
            "the subject has no consent statement (consent.granted, consent.confirmed, "
            "consent.withdrawn) with this event id",
            "unknown_statement",
        )

    return await with_ledger(request, subject_key(controller.id, subject_id).encode(), render)


async def get_jwks(request: web.Request) -> web.Response:
    body = orjson.dumps(context_of(request).receipts.jwks())
    # Verifiers may cache the keys briefly; a rotation keeps old keys published anyway.
    return web.Response(
        body=body,
        content_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},
    )
