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
from schemas.notifications import ConsentNotification
from schemas.suppressions import SuppressionMessage
from schemas.topics import DEADLETTER_TOPIC, EVENTS_TOPIC, NOTIFICATIONS_TOPIC, SUPPRESSION_TOPICS

HERE = Path(__file__).parent
CONTRACT_VERSION = "1.3.0"
MODELS: dict[str, type[BaseModel]] = {
    "consent-event": ConsentEvent,
    "suppression-message": SuppressionMessage,
    "dead-letter": DeadLetter,
    "consent-notification": ConsentNotification,
}


def _portable(node: Any) -> Any:
    """Make every pattern mean the same in Python's ``re`` as in ECMA-262.

    JSON Schema patterns are ECMA-262, where ``$`` is the end of the string; Python's ``re`` (used
    by python-jsonschema and others) also lets it match before a final line feed.
    """
    if isinstance(node, dict):
        return {
            key: value + "(?!\\n)"
            if key == "pattern" and isinstance(value, str) and value.endswith("$")
            else _portable(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_portable(item) for item in node]
    return node


def _schema(model: type[BaseModel], **options: Any) -> dict[str, Any]:
    schema: dict[str, Any] = _portable(model.model_json_schema(**options))
    return schema


def json_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://consent-streams.dev/schemas/v1/{name}.schema.json",
            **_schema(model, mode="validation"),
        }
        for name, model in MODELS.items()
    }


KAFKA_BINDING_VERSION = "0.5.0"
#: What each message's Kafka key is; in AsyncAPI's Kafka bindings the key is a message binding.
MESSAGE_KEYS: dict[str, str] = {
    "ConsentEvent": "subject_id (UTF-8); keyless records are accepted",
    "SuppressionMessage": "subject_id (UTF-8)",
    "DeadLetter": "the rejected record's key, unchanged",
    "ConsentNotification": "subject_id (UTF-8)",
}


#: What each message is for, beyond its schema.
MESSAGE_DESCRIPTIONS: dict[str, str] = {
    "ConsentEvent": "A statement about one data subject at one controller.",
    "SuppressionMessage": (
        "What a subscribed system must do for one (subject, purpose, channel): `suppress` "
        "(stop contacting), `allow` (contacting allowed again) or, since 1.2.0, `erase` "
        "(delete the person's data for the pair; sent to every destination of every purpose "
        "an erasure request reaches, never to purposes the policy exempts, with reason "
        "`erasure`; and with reason `expired` when a double opt-in lapsed unconfirmed or a "
        "purpose's retention ended). Each `erase` is "
        "followed on the same topic by the pair's decision, so after deleting, a consumer "
        "records the suppression again from the identifiers in the message. Apply messages "
        "idempotently by `suppression_id`."
    ),
    "DeadLetter": "A rejected input record, intact, with the reasons.",
    "ConsentNotification": (
        "A notice for the controller's messaging systems (since 1.2.0): `renewal_reminder`, a "
        "consent expires at `expires_at` unless given again. Not a decision; deduplicate by "
        "`notification_id`."
    ),
}

_EXAMPLE_PAIR: dict[str, Any] = {
    "controller": "hms-se",
    "subject_id": "hms-c-2002",
    "purpose": "newsletter",
    "channel": "email",
    "legal_basis": "consent",
    "identifiers": {"email": "erik@example.org"},
    "emitted_at": "2026-11-22T10:00:01Z",
    "schema_version": 1,
}
#: Examples of each message (the ids are what the worker computes for them).
MESSAGE_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "SuppressionMessage": [
        {
            "name": "allow",
            "summary": "A confirmed double opt-in allows the newsletter.",
            "payload": {
                **_EXAMPLE_PAIR,
                "suppression_id": "cc422693888726e03da30eabfa23eb20",
                "action": "allow",
                "reason": "consent",
                "effective_at": "2026-11-01T09:05:00Z",
                "caused_by_event_id": "evt-confirm-2002",
            },
        },
        {
            "name": "erase",
            "summary": "An erasure request: delete the person's data for the pair.",
            "payload": {
                **_EXAMPLE_PAIR,
                "suppression_id": "2597d23f35a6c3d55e96c8af258d2def",
                "action": "erase",
                "reason": "erasure",
                "effective_at": "2026-11-22T09:59:00Z",
                "caused_by_event_id": "evt-erasure-2002",
            },
        },
        {
            "name": "suppress",
            "summary": "Right after the erase: the pair's decision, keep the address suppressed.",
            "payload": {
                **_EXAMPLE_PAIR,
                "suppression_id": "e2ac214bbdfa247ead1ad68db2fc10c7",
                "action": "suppress",
                "reason": "erasure",
                "effective_at": "2026-11-22T09:59:00Z",
                "caused_by_event_id": "evt-erasure-2002",
            },
        },
    ],
}


def _channel(topic: str, message: str, description: str) -> dict[str, Any]:
    return {
        "address": topic,
        "description": description,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _operation(action: str, channel: str, summary: str) -> dict[str, Any]:
    return {"action": action, "channel": {"$ref": f"#/channels/{channel}"}, "summary": summary}


def asyncapi() -> dict[str, Any]:
    # Operations are the service's: it receives events and sends suppressions and dead letters.
    channels: dict[str, Any] = {
        "consentEvents": _channel(
            EVENTS_TOPIC,
            "ConsentEvent",
            "Consent, opt-out and privacy-right events published by any service, and the "
            "events the worker's timers emit (consent.expired, confirmation.lapsed, "
            "retention.due, consent.superseded).",
        ),
        "consentNotifications": _channel(
            NOTIFICATIONS_TOPIC,
            "ConsentNotification",
            "Notices for the controller's messaging systems, such as renewal reminders.",
        ),
        "deadLetter": _channel(
            DEADLETTER_TOPIC,
            "DeadLetter",
            "Every rejected input record, intact, with the reasons.",
        ),
    }
    operations: dict[str, Any] = {
        "receiveConsentEvents": _operation(
            "receive",
            "consentEvents",
            "Fold consent, opt-out and privacy-right events into per-subject decisions.",
        ),
        "sendDeadLetters": _operation(
            "send", "deadLetter", "Publish every rejected record, intact, with the reasons."
        ),
        "sendTimerEvents": _operation(
            "send",
            "consentEvents",
            "Emit due clocks (expiry, lapse, retention end) as events, decided like any other.",
        ),
        "sendConsentNotifications": _operation(
            "send",
            "consentNotifications",
            "Remind a subject's controller that a consent expires soon.",
        ),
    }
    for destination, topic in SUPPRESSION_TOPICS.items():
        name = f"suppressions{destination.value.capitalize()}"
        channels[name] = _channel(
            topic,
            "SuppressionMessage",
            f"Suppress, allow and erase instructions for {destination.value} systems.",
        )
        operations[f"send{name[0].upper()}{name[1:]}"] = _operation(
            "send",
            name,
            f"Tell {destination.value} systems what to suppress, allow or erase.",
        )
    schemas: dict[str, Any] = {}
    for model in MODELS.values():
        schema = _schema(model, ref_template="#/components/schemas/{model}")
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
                    "description": MESSAGE_DESCRIPTIONS[model.__name__],
                    **(
                        {"examples": MESSAGE_EXAMPLES[model.__name__]}
                        if model.__name__ in MESSAGE_EXAMPLES
                        else {}
                    ),
                    "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "description": MESSAGE_KEYS[model.__name__]},
                            "bindingVersion": KAFKA_BINDING_VERSION,
                        }
                    },
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
