"""The OpenAPI 3.1 document, generated from the route table and the body models.

Hand-written rather than a framework's generator: aiohttp has none that reads our route table,
and this one documents what the table enforces (scopes, limits, Retry-After) in 250 lines.

python -m streams.web.openapi           # rewrite streams/web/openapi.json
python -m streams.web.openapi --check   # exit 1 if the committed file drifted from the code
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from schemas.generate import CONTRACT_VERSION
from schemas.vocabulary import Channel
from streams.core.policy import ID_PATTERN
from streams.security.tokens import MAX_TOKEN_LENGTH
from streams.web.bodies import EVENTS_BODY_LIMIT
from streams.web.middleware import MAX_URL_LENGTH
from streams.web.models import MAX_BATCH, ErrorBody
from streams.web.paths import MAX_SUBJECT_ID
from streams.web.routes import ROUTES, Body, ResponseDoc, Route

PATH = Path(__file__).with_name("openapi.json")
_REF = "#/components/schemas/{model}"

_SLUG = {"type": "string", "pattern": ID_PATTERN, "maxLength": 64}
_PATH_PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "controller": ("Controller id, as in the policy", _SLUG),
    "subject_id": (
        "The data subject's id at the controller (URL-encoded)",
        {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT_ID},
    ),
    "purpose": ("Purpose name, as in the policy", _SLUG),
    "event_id": (
        "The event id of a consent statement (URL-encoded)",
        {"type": "string", "minLength": 1, "maxLength": 128},
    ),
    "token": (
        "The opaque link token",
        {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_LENGTH},
    ),
}
_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "channel": {"type": "string", "enum": [c.value for c in Channel]},
    "at": {"type": "string", "format": "date-time"},
    "known_at": {"type": "string", "format": "date-time"},
    "format": {"type": "string", "enum": ["json", "html"]},
}

DESCRIPTION = f"""\
HTTP API of the consent-streams workers: decisions and preferences, event intake, one-click \
unsubscribe (RFC 8058), double opt-in links, privacy signals, and the consent ledger: proof \
as of a time, signed consent receipts and the access export.

Every worker serves the whole API. Reads are answered by the worker that owns the subject's \
partition: another worker forwards the request there. While ownership moves (rebalance, \
recovery) reads answer 503 with Retry-After rather than risk a stale decision.

Authentication: `Authorization: Bearer <API key>`; keys carry the scopes read, write, \
tokens and export. Without configured keys every authenticated endpoint answers 401. Link pages \
and the receipt keys (JWKS) take no key; a link's token (encrypted and authenticated) is its \
authority.

Writes are asynchronous: 202 means the broker has the events; decisions reflect them once the \
workers have processed them. A batch carries at most {MAX_BATCH} events and \
{EVENTS_BODY_LIMIT // 1024} KiB.

Errors are JSON `{{"error", "message"}}` (link pages answer HTML). Every GET also answers HEAD. \
A method a path does not list answers 405 with `Allow` (components/responses/MethodNotAllowed); \
an unknown path 404; a URL over {MAX_URL_LENGTH} bytes 414 (components/responses/UriTooLong)."""


def _schema_of(
    model: type[BaseModel], schemas: dict[str, Any], mode: str = "serialization"
) -> dict[str, Any]:
    schema = model.model_json_schema(
        ref_template=_REF, mode="validation" if mode == "validation" else "serialization"
    )
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


def _request_body(body: Body, schemas: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = body.schema or {"type": "string"}
    if body.model is not None:
        one = _schema_of(body.model, schemas, "validation")
        schema = (
            {"oneOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_BATCH}]}
            if body.batch
            else one
        )
    return {
        "description": body.description,
        "required": body.required,
        "content": {media: {"schema": schema} for media in body.media},
    }


def _response(doc: ResponseDoc, schemas: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": doc.description}
    schema: dict[str, Any] = {"type": "string"}
    if doc.model is not None:
        one = _schema_of(doc.model, schemas)
        schema = {"oneOf": [one, {"type": "array", "items": one}]} if doc.many else one
    out["content"] = {doc.media: {"schema": schema}}
    out["content"].update({media: {"schema": {"type": "string"}} for media in doc.also})
    if doc.retry_after:
        out["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        }
    return out


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": _PATH_PARAMETERS[name][0],
            "schema": _PATH_PARAMETERS[name][1],
        }
        for name in re.findall(r"\{(\w+)\}", route.path)
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": required,
            "description": text,
            "schema": _QUERY_SCHEMAS.get(name, {"type": "string"}),
        }
        for name, (text, required) in route.query.items()
    ]
    parameters += [
        {
            "name": name,
            "in": "header",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in route.headers.items()
    ]
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": {str(code): _response(r, schemas) for code, r in route.responses.items()},
    }
    if route.description:
        operation["description"] = route.description
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = _request_body(route.body, schemas)
    if route.scope is not None:
        operation["security"] = [{"apiKey": [route.scope.value]}]
        operation["x-required-scope"] = route.scope.value
    else:
        operation["security"] = []
    return operation


def _head(get: dict[str, Any]) -> dict[str, Any]:
    """The GET operation answered without a body."""
    head = {**get, "operationId": get["operationId"] + "Head"}
    head["summary"] = "Headers only: " + get["summary"][0].lower() + get["summary"][1:]
    head["responses"] = {
        code: {k: v for k, v in response.items() if k != "content"}
        for code, response in get["responses"].items()
    }
    return head


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation = _operation(route, schemas)
        paths.setdefault(route.path, {})[route.method.lower()] = operation
        if route.method == "GET" and route.installed:
            paths[route.path]["head"] = _head(operation)
    error = _schema_of(ErrorBody, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "consent-streams HTTP API",
            "version": CONTRACT_VERSION,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "decisions", "description": "What may be done, per subject"},
            {"name": "deadlines", "description": "Legal deadline clocks of opt-outs and requests"},
            {"name": "events", "description": "Publishing consent events"},
            {"name": "links", "description": "Unsubscribe and confirmation links"},
            {
                "name": "ledger",
                "description": "Proof as of a time, consent receipts, access export",
            },
            {"name": "operations", "description": "Health, readiness, metrics"},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": {
                "MethodNotAllowed": {
                    "description": "The path does not take this method",
                    "headers": {
                        "Allow": {
                            "description": "The methods the path takes",
                            "schema": {"type": "string"},
                        }
                    },
                    "content": {"application/json": {"schema": error}},
                },
                "UriTooLong": {
                    "description": f"The URL is longer than {MAX_URL_LENGTH} bytes",
                    "content": {"application/json": {"schema": error}},
                },
            },
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": (
                        "An API key from CONSENT_API_KEYS; scopes: read, write, tokens, export"
                    ),
                }
            },
        },
    }


def rendered() -> bytes:
    return orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.web.openapi", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the file differs")
    args = parser.parse_args(argv)
    current = PATH.read_bytes() if PATH.exists() else b""
    if args.check:
        if current != rendered():
            print(f"out of date: {PATH} (run: python -m streams.web.openapi)", file=sys.stderr)
            return 1
        return 0
    PATH.write_bytes(rendered())
    print(f"wrote {PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
