"""Write (or check) the JSON Schema files and the AsyncAPI document derived from the models.

python -m schemas.generate           # rewrite the files
python -m schemas.generate --check   # exit 1 if a committed file drifted from the models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from schemas.deadletter import DeadLetter
from schemas.events import ConsentEvent
from schemas.suppressions import SuppressionMessage
from schemas.topics import DEADLETTER_TOPIC, EVENTS_TOPIC, SUPPRESSION_TOPICS

HERE = Path(__file__).parent
CONTRACT_VERSION = "1.0.0"
MODELS: dict[str, type[BaseModel]] = {
    "consent-event": ConsentEvent,
    "suppression-message": SuppressionMessage,
    "dead-letter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://consent-streams.dev/schemas/v1/{name}.schema.json",
            **model.model_json_schema(mode="validation"),
        }
        for name, model in MODELS.items()
    }


def _channel(topic: str, message: str, key: str, description: str) -> dict[str, Any]:
    return {
        "address": topic,
        "description": description,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {
            "kafka": {"bindingVersion": "0.5.0", "key": {"type": "string", "description": key}}
        },
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {
        "consentEvents": _channel(
            EVENTS_TOPIC,
            "ConsentEvent",
            "subject_id (UTF-8); keyless records are accepted",
            "Consent, opt-out and privacy-right events published by any service.",
        ),
        "deadLetter": _channel(
            DEADLETTER_TOPIC,
            "DeadLetter",
            "the rejected record's key, unchanged",
            "Every rejected input record, intact, with the reasons.",
        ),
    }
    operations: dict[str, Any] = {
        "publishConsentEvent": {
            "action": "send",
            "channel": {"$ref": "#/channels/consentEvents"},
            "summary": "Publish a consent, opt-out or privacy-right event.",
        },
        "receiveDeadLetters": {
            "action": "receive",
            "channel": {"$ref": "#/channels/deadLetter"},
            "summary": "Read rejected records with the reasons.",
        },
    }
    for destination, topic in SUPPRESSION_TOPICS.items():
        name = f"suppressions{destination.value.capitalize()}"
        channels[name] = _channel(
            topic,
            "SuppressionMessage",
            "subject_id (UTF-8)",
            f"Suppress/allow instructions for {destination.value} systems.",
        )
        operations[f"receive{name[0].upper()}{name[1:]}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"Apply suppressions in the {destination.value} system.",
        }
    schemas: dict[str, Any] = {}
    for model in MODELS.values():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "consent-streams event contract",
            "version": CONTRACT_VERSION,
            "description": "Topics and messages of consent-streams. Values are UTF-8 JSON.",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {
                model.__name__: {
                    "name": model.__name__,
                    "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                }
                for model in MODELS.values()
            },
            "schemas": dict(sorted(schemas.items())),
        },
    }


def rendered() -> dict[Path, bytes]:
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    files = {
        HERE / "json" / f"{name}.schema.json": orjson.dumps(schema, option=opts) + b"\n"
        for name, schema in json_schemas().items()
    }
    files[HERE / "asyncapi.json"] = orjson.dumps(asyncapi(), option=opts) + b"\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a file differs")
    args = parser.parse_args(argv)
    stale = [
        path for path, data in rendered().items() if not path.exists() or path.read_bytes() != data
    ]
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run: python -m schemas.generate)", file=sys.stderr)
        return 1 if stale else 0
    for path, data in rendered().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(stale)} changed file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
