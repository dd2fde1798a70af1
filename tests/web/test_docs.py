"""The curl examples in docs/api.md work as written (against a worker with the demo key)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streams.security.apikeys import Scope, load_keyring
from streams.settings import Settings
from streams.web.demo_credentials import DEMO_API_KEY, demo_environment
from tests.support.worker import Worker

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
DEMO_URL = "http://127.0.0.1:6066"


def section_script(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))


def try_it_script() -> str:
    return section_script("Try it against `make run`")


def test_demo_environment_gives_an_all_scope_key_and_a_secret() -> None:
    settings = Settings.from_env(demo_environment())
    key = load_keyring(settings.api_keys, None).authenticate(DEMO_API_KEY)
    assert key is not None and key.scopes == set(Scope)
    assert settings.token_secret is not None
    assert DEMO_API_KEY in DOC.read_text(encoding="utf-8")


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_try_it_examples_run(worker: Worker) -> None:
    script = try_it_script()
    assert DEMO_URL in script and "curl" in script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEMO_URL, worker.url)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        '"status":"ready"',
        '{"accepted":1,"event_ids":["doc-1"]}',
        '"reason":"unsubscribed"',
        '"caused_by_event_id":"doc-1"',
        '"signal":"gpc"',
        "<h1>Unsubscribe?</h1>",
        "<h1>You are unsubscribed</h1>",
        "<h1>Tack</h1>",  # hms-se pages are in Swedish
        '"allowed":true,"state":"allowed","reason":"consent"',
        "401\n",
        'consent_streams_events_processed_total{type="unsubscribed"}',
        "/v1/events",
    ):
        assert expected in out, expected


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_readme_http_example_runs(worker: Worker) -> None:
    readme = DOC.parents[1] / "README.md"
    section = readme.read_text(encoding="utf-8").split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    script = "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEMO_URL, worker.url)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '{"accepted":1,"event_ids":["readme-1"]}' in result.stdout
    assert '"reason":"unsubscribed"' in result.stdout
    assert '"caused_by_event_id":"readme-1"' in result.stdout


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_ledger_examples_run(worker: Worker) -> None:
    script = try_it_script() + "\n" + section_script("The ledger against `make run`")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEMO_URL, worker.url)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in (
        '"reason":"unsubscribed"',
        '"cause":{"sequence":1,',
        '"api_key":"demo"',
        '"chain":{"intact":true,',
        '"cs:eventId": "doc-2"',
        "['doc-1'] True",
        "<h1>Dina uppgifter hos HMS Industrial Networks AB</h1>",
        "\nunsubscribed\n",
    ):
        assert expected in out, expected
    assert "receipt verifies" in result.stderr
