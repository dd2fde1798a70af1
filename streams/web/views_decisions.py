"""Reads: one decision, or every decision and statement of a subject (scope ``read``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from schemas.vocabulary import Channel
from streams.core.engine import subject_key
from streams.core.policy import Controller, Purpose
from streams.core.state import SubjectState
from streams.web.context import context_of
from streams.web.errors import bad_request, json_response, not_found
from streams.web.models import Decision, Preferences
from streams.web.paths import controller_of, subject_id_of
from streams.web.presenting import pair_decision, statements_of
from streams.web.routing import owned_or_503


def purpose_and_channel(request: web.Request, controller: Controller) -> tuple[Purpose, Channel]:
    purpose = controller.purposes.get(request.match_info["purpose"])
    if purpose is None:
        raise not_found("the controller has no such purpose", "unknown_purpose")
    raw = request.query.get("channel")
    offered = ", ".join(purpose.channels)
    if raw is None:
        raise bad_request(f"the channel query parameter is required (one of: {offered})")
    if raw not in purpose.channels:
        raise bad_request(f"channel must be one of the purpose's channels: {offered}")
    return purpose, Channel(raw)


async def _answer(
    request: web.Request, key: bytes, render: Callable[[SubjectState], web.Response]
) -> web.Response:
    """Answer from this worker's state if it owns the key, else from the owner, else 503."""
    ctx = context_of(request)
    found = await owned_or_503(
        ctx, request, key, lambda: SubjectState.from_bytes(ctx.backend.state(key))
    )
    return found if isinstance(found, web.Response) else render(found)


async def get_decision(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    purpose, channel = purpose_and_channel(request, controller)
    engine = context_of(request).engine

    def render(state: SubjectState) -> web.Response:
        # Decided now: a notice change in force answers reconsent_required from its date on.
        now = datetime.now(UTC)
        decision = pair_decision(engine.decide(state, controller.id, purpose.name, channel, now))
        body = Decision(controller=controller.id, subject_id=subject_id, **decision.model_dump())
        return json_response(body)

    return await _answer(request, subject_key(controller.id, subject_id).encode(), render)


async def get_preferences(request: web.Request) -> web.Response:
    controller = controller_of(request)
    subject_id = subject_id_of(request)
    engine = context_of(request).engine

    def render(state: SubjectState) -> web.Response:
        body = Preferences(
            controller=controller.id,
            subject_id=subject_id,
            decisions=[
                pair_decision(d) for d in engine.decide_all(state, controller.id, datetime.now(UTC))
            ],
            statements=statements_of(state),
        )
        return json_response(body)

    return await _answer(request, subject_key(controller.id, subject_id).encode(), render)
