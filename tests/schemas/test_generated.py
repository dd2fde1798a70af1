"""The committed JSON Schema and AsyncAPI files are exactly what the models generate."""

from __future__ import annotations

from typing import Any

import orjson

from schemas import generate
from schemas.suppressions import SuppressionMessage
from schemas.topics import PUBLIC_TOPICS
from streams.core.propagation import suppression_id


def test_committed_files_match_the_models() -> None:
    stale = [
        str(path)
        for path, data in generate.rendered().items()
        if not path.exists() or path.read_bytes() != data
    ]
    assert stale == [], "run: python -m schemas.generate"


def test_asyncapi_names_every_topic_and_resolves_every_reference() -> None:
    document = orjson.loads((generate.HERE / "asyncapi.json").read_bytes())
    assert document["asyncapi"].startswith("3.")
    assert sorted(c["address"] for c in document["channels"].values()) == sorted(PUBLIC_TOPICS)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_json_schema_rejects_what_the_model_rejects() -> None:
    schema = orjson.loads((generate.HERE / "json" / "consent-event.schema.json").read_bytes())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {
        "event_id",
        "type",
        "occurred_at",
        "controller",
        "subject_id",
    }
    assert schema["properties"]["event_id"]["maxLength"] == 128


def test_suppression_examples_are_valid_messages_with_the_workers_ids() -> None:
    examples = generate.MESSAGE_EXAMPLES["SuppressionMessage"]
    assert [e["name"] for e in examples] == ["allow", "erase", "suppress"]
    for example in examples:
        message = SuppressionMessage.model_validate(example["payload"])
        assert message.suppression_id == suppression_id(
            message.controller,
            message.subject_id,
            message.purpose,
            message.channel.value,
            message.action.value,
            message.caused_by_event_id,
            message.identifiers.model_dump(exclude_none=True),
        )
    document = orjson.loads((generate.HERE / "asyncapi.json").read_bytes())
    described = document["components"]["messages"]["SuppressionMessage"]
    assert "`erase`" in described["description"]
    assert [e["payload"]["action"] for e in described["examples"]] == ["allow", "erase", "suppress"]
    schema = orjson.loads((generate.HERE / "json" / "suppression-message.schema.json").read_bytes())
    assert "erase" in schema["$defs"]["Action"]["enum"]
    assert "erase" in schema["properties"]["action"]["description"]
