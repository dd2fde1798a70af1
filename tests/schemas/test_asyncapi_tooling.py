"""The AsyncAPI document passes the official AsyncAPI parser (installed by `make test`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from schemas import generate

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "schemas" / "validate-asyncapi.mjs"
PARSER = ROOT / "node_modules" / "@asyncapi" / "parser"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not PARSER.exists(),
    reason="needs node and the AsyncAPI parser: run `make node_modules/.installed`",
)


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(VALIDATOR), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_official_parser_accepts_the_document() -> None:
    result = validate(generate.HERE / "asyncapi.json")
    assert result.returncode == 0, result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout


def test_the_validator_fails_on_a_channel_level_kafka_key(tmp_path: Path) -> None:
    # The shape the document had before: a key binding on the channel is not allowed.
    document = generate.asyncapi()
    document["channels"]["consentEvents"]["bindings"]["kafka"]["key"] = {"type": "string"}
    broken = tmp_path / "asyncapi.json"
    broken.write_bytes(orjson.dumps(document))
    result = validate(broken)
    assert result.returncode == 1
    assert "channels.consentEvents.bindings.kafka.key" in result.stderr


def test_operations_are_the_services_own() -> None:
    document = generate.asyncapi()
    operations = sorted(
        (document["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"], op["action"])
        for op in document["operations"].values()
    )
    # The service receives input and sends everything else, including its own due clocks.
    assert operations == sorted(
        [
            ("consent.events", "receive"),
            ("consent.events", "send"),
            ("consent.deadletter", "send"),
            ("consent.notifications", "send"),
            *((topic, "send") for topic in generate.SUPPRESSION_TOPICS.values()),
        ]
    )
