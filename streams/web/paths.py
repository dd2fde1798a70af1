"""Path parameters shared by the subject-scoped endpoints, checked against the policy."""

from __future__ import annotations

from aiohttp import web

from streams.core.policy import Controller
from streams.web.context import context_of
from streams.web.errors import bad_request, not_found

MAX_SUBJECT_ID = 256  # as in the event contract


def controller_of(request: web.Request) -> Controller:
    found = context_of(request).engine.policy.controller(request.match_info["controller"])
    if found is None:
        raise not_found("no such controller in the policy", "unknown_controller")
    return found


def subject_id_of(request: web.Request) -> str:
    subject_id = request.match_info["subject_id"]
    if not 1 <= len(subject_id) <= MAX_SUBJECT_ID:
        raise bad_request(f"subject_id must be 1 to {MAX_SUBJECT_ID} characters")
    return subject_id
