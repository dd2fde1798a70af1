"""The committed OpenAPI document matches the code, and describes every route."""

from __future__ import annotations

import re

import orjson

from streams.web.openapi import PATH, document, main, rendered
from streams.web.routes import ROUTES


def test_committed_document_is_current() -> None:
    assert PATH.read_bytes() == rendered(), "run: python -m streams.web.openapi"
    assert main(["--check"]) == 0


def test_every_route_is_documented_with_its_scope() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for route in ROUTES:
        operation = doc["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.operation_id
        if route.scope is None:
            assert operation["security"] == []
        else:
            assert operation["security"] == [{"apiKey": [route.scope.value]}]
            assert {"401", "403"} <= set(operation["responses"])


def test_every_reference_resolves() -> None:
    doc = document()
    text = orjson.dumps(doc).decode()
    schemas = doc["components"]["schemas"]
    for name in re.findall(r'"#/components/schemas/([^"]+)"', text):
        assert name in schemas, name


def test_the_document_is_precise() -> None:
    doc = document()
    paths = doc["paths"]
    one_click = paths["/v1/unsubscribe/{token}"]["post"]["requestBody"]["content"]
    assert set(one_click) == {"application/x-www-form-urlencoded", "multipart/form-data"}
    assert one_click["multipart/form-data"]["schema"]["required"] == ["List-Unsubscribe"]
    decision = paths["/v1/controllers/{controller}/subjects/{subject_id}/decisions/{purpose}"][
        "get"
    ]
    params = {p["name"]: p["schema"] for p in decision["parameters"]}
    assert params["channel"]["enum"] == ["email", "sms", "phone", "post", "web"]
    assert params["subject_id"]["maxLength"] == 256 and params["subject_id"]["minLength"] == 1
    assert params["controller"]["maxLength"] == 64 and "pattern" in params["purpose"]
    assert paths["/"]["get"]["responses"]["200"]
    for path, operations in paths.items():
        if "get" in operations and path != "/":
            assert operations["head"]["operationId"] == operations["get"]["operationId"] + "Head"
    assert {"MethodNotAllowed", "UriTooLong"} <= set(doc["components"]["responses"])
    assert "409" in paths["/v1/confirm/{token}"]["post"]["responses"]


def test_the_ledger_routes_are_described() -> None:
    paths = document()["paths"]
    subject = "/v1/controllers/{controller}/subjects/{subject_id}"
    export = paths[subject + "/export"]["get"]
    assert export["security"] == [{"apiKey": ["export"]}]
    assert set(export["responses"]["200"]["content"]) == {"application/json", "text/html"}
    body = export["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ExportOut"}
    proof = paths[subject + "/proof/{purpose}"]["get"]
    params = {p["name"]: p for p in proof["parameters"]}
    assert params["channel"]["required"] is True
    assert params["at"]["schema"] == {"type": "string", "format": "date-time"}
    assert params["known_at"]["required"] is False
    receipt = paths[subject + "/receipts/{event_id}"]["get"]
    assert {"200", "404", "503"} <= set(receipt["responses"])
    assert paths["/.well-known/jwks.json"]["get"]["security"] == []
