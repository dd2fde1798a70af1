"""Every HTTP route with what the OpenAPI document says about it: one table, so the served API
and its description cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from schemas.events import ConsentEvent
from streams.security.apikeys import Scope
from streams.web import models as m
from streams.web.auth import Handler, guarded
from streams.web.views_clocks import get_deadline_report, get_open_clocks, get_reconsent
from streams.web.views_decisions import get_decision, get_preferences
from streams.web.views_events import post_events
from streams.web.views_export import get_export
from streams.web.views_ledger import get_jwks, get_proof, get_receipt
from streams.web.views_links import get_confirm, get_unsubscribe, post_confirm, post_unsubscribe
from streams.web.views_ops import get_health, get_metrics, get_openapi, get_ready
from streams.web.views_signals import post_signals
from streams.web.views_tokens import post_tokens

JSON = "application/json"
HTML = "text/html"


@dataclass(frozen=True)
class ResponseDoc:
    """How a route answers with one status: what the OpenAPI document says about it."""

    description: str
    model: type[BaseModel] | None = None
    media: str = JSON
    many: bool = False  # also answered as an array when the request was one
    also: tuple[str, ...] = ()  # other media types the same answer comes in (as text)
    retry_after: bool = False


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Body:
    description: str
    model: type[BaseModel] | None = None
    media: tuple[str, ...] = (JSON,)
    batch: bool = False  # one object or an array of them
    required: bool = True
    schema: dict[str, Any] | None = None  # a form's fields, where there is no model


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    scope: Scope | None = None  # enforced by install(): 401/403 before the view runs
    description: str = ""
    body: Body | None = None
    query: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name: (text, required)
    headers: dict[str, str] = field(default_factory=dict)
    responses: dict[int, ResponseDoc] = field(default_factory=dict)
    installed: bool = True  # False: served by Faust itself, only described here


SUBJECT = "/v1/controllers/{controller}/subjects/{subject_id}"
_ERR = m.ErrorBody
_BUSY = ResponseDoc(
    "A rebalance or recovery is under way, or the owning worker is unreachable",
    _ERR,
    retry_after=True,
)
_AUTH = {
    401: ResponseDoc("No API key, or not a valid one", _ERR),
    403: ResponseDoc("The API key lacks the required scope", _ERR),
}
_PAGE_ERRORS = {
    404: ResponseDoc("Not a valid link (malformed, forged or of another kind)", media=HTML),
    410: ResponseDoc("The link has expired, or the policy no longer has what it names", media=HTML),
    503: ResponseDoc(
        "Links are not configured, the event could not be stored, or (confirm) the subject's "
        "partition is moving",
        media=HTML,
        retry_after=True,
    ),
}

ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        SUBJECT + "/decisions/{purpose}",
        get_decision,
        "getDecision",
        "May the controller process for this purpose on this channel?",
        "decisions",
        Scope.READ,
        description="What a sending system calls before it sends. An unknown subject gets the "
        "policy's default decision.",
        query={"channel": ("One of the purpose's channels", True)},
        responses={
            200: ResponseDoc("The decision", m.Decision),
            400: ResponseDoc("Missing or invalid channel, or invalid subject_id", _ERR),
            **_AUTH,
            404: ResponseDoc("Unknown controller or purpose", _ERR),
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        SUBJECT + "/preferences",
        get_preferences,
        "getPreferences",
        "Every purpose x channel decision of a subject, and the statements behind them",
        "decisions",
        Scope.READ,
        responses={
            200: ResponseDoc("Decisions and statements", m.Preferences),
            400: ResponseDoc("Invalid subject_id", _ERR),
            **_AUTH,
            404: ResponseDoc("Unknown controller", _ERR),
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        "/v1/controllers/{controller}/reconsent",
        get_reconsent,
        "listReconsent",
        "Subjects to ask for consent again: a materially changed notice superseded theirs",
        "decisions",
        Scope.READ,
        description="Decided now, over the partitions this worker holds as active (listed in "
        "the answer, with the owners of the others): ask every worker, or use "
        "`consent-streams reconsent`. Paginated in key order, a page reading at most 10,000 "
        "states: follow `next_cursor` until it is null (a page may hold fewer than `limit` "
        "subjects, even none, before the last).",
        query={
            "purpose": ("Only this purpose (default: every purpose)", False),
            "limit": ("Subjects per page, 1 to 1000 (default 100)", False),
            "cursor": ("next_cursor of the previous page", False),
        },
        responses={
            200: ResponseDoc("A page of subjects", m.ReconsentPage),
            400: ResponseDoc("Invalid limit or cursor", _ERR),
            **_AUTH,
            404: ResponseDoc("Unknown controller or purpose", _ERR),
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        "/v1/deadlines",
        get_open_clocks,
        "listOpenDeadlines",
        "Open deadline clocks: opt-outs and requests not yet honoured, soonest deadline first",
        "deadlines",
        Scope.READ,
        description="Over the partitions this worker holds as active (listed in the answer).",
        query={
            "controller": ("Only this controller", False),
            "rule": ("Only this deadline rule, e.g. gdpr_request", False),
            "limit": ("Clocks listed, 1 to 1000 (default 100)", False),
        },
        responses={
            200: ResponseDoc("Open clocks", m.OpenClocks),
            400: ResponseDoc("Invalid limit", _ERR),
            **_AUTH,
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        "/v1/deadlines/report",
        get_deadline_report,
        "deadlineReport",
        "How opt-outs and requests were honoured against their deadlines, per controller and rule",
        "deadlines",
        Scope.READ,
        description="Over the partitions this worker holds as active (listed in the answer); "
        "`consent-streams deadlines report` merges the answers of every worker.",
        responses={
            200: ResponseDoc("The report", m.DeadlineReport),
            **_AUTH,
            503: _BUSY,
        },
    ),
    Route(
        "POST",
        "/v1/events",
        post_events,
        "publishEvents",
        "Publish one event, or a batch of up to 500, to consent.events",
        "events",
        Scope.WRITE,
        description="Validated exactly as the stream validates records. All or nothing: when an "
        "item is invalid nothing is published. 202 once the broker has every event.",
        body=Body(
            "One event, or an array of 1 to 500 (body at most 1 MiB)", ConsentEvent, batch=True
        ),
        responses={
            202: ResponseDoc("Published; the broker acknowledged every event", m.EventsAccepted),
            400: ResponseDoc("Not JSON, or an empty array", _ERR),
            **_AUTH,
            413: ResponseDoc("Body over 1 MiB or more than 500 events", _ERR),
            422: ResponseDoc(
                "Invalid events, item by item; nothing published", m.ValidationErrorBody
            ),
            503: ResponseDoc(
                "The broker did not acknowledge in time; retry", _ERR, retry_after=True
            ),
        },
    ),
    Route(
        "POST",
        SUBJECT + "/signals",
        post_signals,
        "recordPrivacySignals",
        "Record the browser privacy signals a visitor sent",
        "events",
        Scope.WRITE,
        description="A website backend calls this with its visitor's Sec-GPC and DNT headers "
        "copied onto the request. Each signal the controller's policy honours becomes a "
        "privacy.signal event (one per subject, signal and UTC day). No body.",
        headers={
            "Sec-GPC": "The visitor's Global Privacy Control header; 1 = opt out",
            "DNT": "The visitor's Do Not Track header; 1 = opt out (only if the policy honours it)",
        },
        responses={
            200: ResponseDoc("No signal to record", m.SignalsResult),
            202: ResponseDoc("Signals published", m.SignalsResult),
            400: ResponseDoc("Invalid subject_id", _ERR),
            **_AUTH,
            404: ResponseDoc("Unknown controller", _ERR),
            413: ResponseDoc("A body was sent (over 4 KiB)", _ERR),
            503: ResponseDoc(
                "The broker did not acknowledge in time; retry", _ERR, retry_after=True
            ),
        },
    ),
    Route(
        "POST",
        "/v1/tokens",
        post_tokens,
        "mintLinkTokens",
        "Mint one-click unsubscribe or double opt-in confirmation links",
        "links",
        Scope.TOKENS,
        description="One request object or an array (up to 500). Unsubscribe links come with the "
        "List-Unsubscribe and List-Unsubscribe-Post header values for the message. Links are "
        "HTTPS (RFC 8058) and do not show the subject id. No links for purposes on the legal "
        "basis contract or legal_obligation (422).",
        body=Body("One token request, or an array of them", m.TokenRequest, batch=True),
        responses={
            201: ResponseDoc("The links, in request order", m.MintedToken, many=True),
            400: ResponseDoc("Not JSON, or an empty array", _ERR),
            **_AUTH,
            413: ResponseDoc("Body over 256 KiB or more than 500 requests", _ERR),
            422: ResponseDoc("Invalid requests, item by item", m.ValidationErrorBody),
            503: ResponseDoc(
                "No token secret configured (tokens_not_configured, with Retry-After), or links "
                "would not be HTTPS and CONSENT_ALLOW_INSECURE_LINKS is not set "
                "(links_not_secure)",
                _ERR,
                retry_after=True,
            ),
        },
    ),
    Route(
        "GET",
        "/v1/unsubscribe/{token}",
        get_unsubscribe,
        "showUnsubscribe",
        "Unsubscribe page: asks for confirmation, never unsubscribes by itself",
        "links",
        responses={200: ResponseDoc("A page with a button that POSTs", media=HTML), **_PAGE_ERRORS},
    ),
    Route(
        "POST",
        "/v1/unsubscribe/{token}",
        post_unsubscribe,
        "oneClickUnsubscribe",
        "One-click unsubscribe (RFC 8058): publishes an unsubscribed event",
        "links",
        description="No cookie and no authentication: the token is the authority. Every click "
        "is a statement at click time (its event id is derived from the token and the click's "
        "millisecond), so an old link unsubscribes again after a re-subscription; a repeat "
        "changes no decision. The page offers to subscribe again (for one purpose) for an hour.",
        body=Body(
            "List-Unsubscribe=One-Click, URL-encoded or multipart (RFC 8058 allows both)",
            media=FORMS,
            schema={
                "type": "object",
                "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                "required": ["List-Unsubscribe"],
            },
        ),
        responses={
            200: ResponseDoc("Unsubscribed (page)", media=HTML),
            400: ResponseDoc("The body is not List-Unsubscribe=One-Click", media=HTML),
            413: ResponseDoc("Body over 4 KiB", media=HTML),
            **_PAGE_ERRORS,
        },
    ),
    Route(
        "GET",
        "/v1/confirm/{token}",
        get_confirm,
        "showConfirm",
        "Double opt-in page: asks the person to confirm",
        "links",
        responses={200: ResponseDoc("A page with a button that POSTs", media=HTML), **_PAGE_ERRORS},
    ),
    Route(
        "POST",
        "/v1/confirm/{token}",
        post_confirm,
        "confirmSubscription",
        "Double opt-in confirmation: publishes a consent.confirmed event",
        "links",
        description="Confirms only if no opt-out for the pair (withdrawal, unsubscribe, "
        "objection, signal, erasure, restriction) was recorded after the link was made; "
        "otherwise nothing is published and the page says so (409). Reads the subject's state, "
        "so it is answered by the worker owning the subject (forwarded like reads).",
        body=Body(
            "Any form body (the page sends confirm=yes)",
            required=False,
            media=FORMS,
            schema={"type": "object", "properties": {"confirm": {"type": "string"}}},
        ),
        responses={
            200: ResponseDoc("Confirmed (page)", media=HTML),
            409: ResponseDoc(
                "An opt-out was recorded after the link was made: not confirmed (page)",
                media=HTML,
            ),
            413: ResponseDoc("Body over 4 KiB", media=HTML),
            **_PAGE_ERRORS,
        },
    ),
    Route(
        "GET",
        SUBJECT + "/proof/{purpose}",
        get_proof,
        "getProof",
        "Was this purpose allowed on this channel at a time, and which statements say so?",
        "ledger",
        Scope.READ,
        description="The decision as of `at` made from the subject's ledger, the entry that "
        "caused it and the entries in force (with their evidence and provenance), and whether "
        "the subject's hash chain verifies. What a sender keeps with each campaign send. Made "
        "by the engine's own fold and plan, so it cannot disagree with the live decision from "
        "the same statements. An unknown subject gets the policy's default and no entries.",
        query={
            "channel": ("One of the purpose's channels", True),
            "at": ("RFC 3339 time the decision is proven for (default: now)", False),
            "known_at": (
                "RFC 3339: only statements recorded by then count (what was known then)",
                False,
            ),
        },
        responses={
            200: ResponseDoc("The proof", m.ProofOut),
            400: ResponseDoc(
                "Missing or invalid channel, invalid time, or invalid subject_id", _ERR
            ),
            **_AUTH,
            404: ResponseDoc("Unknown controller or purpose", _ERR),
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        SUBJECT + "/receipts/{event_id}",
        get_receipt,
        "getReceipt",
        "The signed consent receipt of one consent statement",
        "ledger",
        Scope.READ,
        description="For consent.granted, consent.confirmed and consent.withdrawn statements: "
        "a compact JWS (EdDSA over Ed25519, typ consent-receipt+jwt) with the elements of "
        "ISO/IEC TS 27560 in W3C DPV terms, issued at the time the statement was recorded, "
        "and its claims. Verify it with the keys at /.well-known/jwks.json.",
        responses={
            200: ResponseDoc("The receipt", m.ReceiptOut),
            400: ResponseDoc("Invalid subject_id", _ERR),
            **_AUTH,
            404: ResponseDoc(
                "Unknown controller, or no consent statement with this event id for the "
                "subject (unknown_statement)",
                _ERR,
            ),
            503: ResponseDoc(
                "Receipt signing is not configured (receipts_not_configured: no Retry-After, "
                "set CONSENT_RECEIPT_KEYS), or the subject's partition is moving (Retry-After)",
                _ERR,
                retry_after=True,
            ),
        },
    ),
    Route(
        "GET",
        "/.well-known/jwks.json",
        get_jwks,
        "getReceiptKeys",
        "The public keys consent receipts are signed with (JWKS)",
        "ledger",
        description="Every configured receipt key's public part, newest first, retired keys "
        "included so that older receipts keep verifying. Empty when receipt signing is not "
        "configured. Public, cacheable for 5 minutes.",
        responses={200: ResponseDoc("The JSON Web Key Set (RFC 7517)", m.Jwks)},
    ),
    Route(
        "GET",
        SUBJECT + "/export",
        get_export,
        "exportSubject",
        "Everything held about a subject at the controller (access and portability)",
        "ledger",
        Scope.EXPORT,
        description="Current decisions for every purpose and channel, the full ledger with "
        "evidence and identifiers (shredded entries marked), which destinations were told what "
        "and when, a signed receipt per consent statement and the chain check. JSON by default; "
        "a page in the controller's language with `Accept: text/html` or `format=html`. An "
        "unknown subject gets an empty export (200), never a 404.",
        query={"format": ("json (default) or html", False)},
        responses={
            200: ResponseDoc("The export", m.ExportOut, also=(HTML,)),
            400: ResponseDoc("Invalid format or subject_id", _ERR),
            **_AUTH,
            404: ResponseDoc("Unknown controller", _ERR),
            503: _BUSY,
        },
    ),
    Route(
        "GET",
        "/",
        get_health,
        "index",
        "Faust's index: answers while the process serves HTTP",
        "operations",
        responses={200: ResponseDoc('Always {"status": "OK"}', m.FaustIndex)},
        installed=False,
    ),
    Route(
        "GET",
        "/health",
        get_health,
        "health",
        "Liveness: the process serves HTTP",
        "operations",
        responses={200: ResponseDoc("Alive", m.Health)},
    ),
    Route(
        "GET",
        "/ready",
        get_ready,
        "ready",
        "Readiness: partitions assigned, tables recovered, no rebalance under way",
        "operations",
        responses={
            200: ResponseDoc(
                "Ready; lists the table partitions this worker answers for", m.Readiness
            ),
            503: ResponseDoc("Not ready", m.Readiness, retry_after=True),
        },
    ),
    Route(
        "GET",
        "/metrics",
        get_metrics,
        "metrics",
        "Prometheus metrics (text format 0.0.4)",
        "operations",
        responses={200: ResponseDoc("Metrics", media="text/plain")},
    ),
    Route(
        "GET",
        "/openapi.json",
        get_openapi,
        "openapi",
        "This document",
        "operations",
        responses={200: ResponseDoc("OpenAPI 3.1 document")},
    ),
)


def install(app: web.Application) -> None:
    for route in ROUTES:
        if not route.installed:
            continue
        handler = route.handler if route.scope is None else guarded(route.handler, route.scope)
        app.router.add_route(route.method, route.path, handler, name=route.operation_id)
        if route.method == "GET":  # aiohttp leaves the body out of HEAD answers
            app.router.add_route("HEAD", route.path, handler)
