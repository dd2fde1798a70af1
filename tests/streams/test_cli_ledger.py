"""``consent-streams receipt``, ``proof`` and ``export`` against the API in this process."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from schemas.codec import decode_event
from streams.cli import main as cli_main
from streams.security.receipts import ReceiptSigner, new_receipt_key, public_part
from streams.settings import Settings, SettingsError
from streams.web.backend import API_KEY_HEADER
from tests.support.fake_backend import Served, serve
from tests.support.keys import ALL_KEY, EXPORT_KEY, READ_KEY, WRITE_KEY
from tests.web.test_api_ledger import granted_then_withdrawn


async def run(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    """The command in a thread: it makes blocking HTTP calls to the server on this loop."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return await asyncio.to_thread(cli_main, argv)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve() as running:
        yield running


def test_new_key_makes_a_key_the_settings_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["receipt", "new-key"]) == 0
    key, public = (line.rsplit(" ", 1)[1] for line in capsys.readouterr().out.splitlines())
    assert public == public_part(key)
    settings = Settings.from_env({"CONSENT_RECEIPT_KEYS": f"{new_receipt_key()},{public}"})
    assert settings.receipt_keys is not None
    rotated = ReceiptSigner.parse(settings.receipt_keys.get_secret_value())
    assert len(rotated.jwks()["keys"]) == 2  # the retired key still verifies its receipts


def test_a_bad_receipt_key_is_a_clear_configuration_error() -> None:
    with pytest.raises(SettingsError, match="CONSENT_RECEIPT_KEYS") as raised:
        Settings.from_env({"CONSENT_RECEIPT_KEYS": "public:abc,secret-looking-value"})
    assert "secret-looking-value" not in str(raised.value)


async def test_verify_a_fetched_receipt_with_the_served_jwks(
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    path = f"/v1/controllers/sms-tech/subjects/{subject}/receipts/grant-1"
    receipt = (await served.api(READ_KEY).get(path)).json()
    assert (
        await run(["receipt", "verify", receipt["receipt"], "--jwks", served.url], {}, monkeypatch)
        == 0
    )
    captured = capsys.readouterr()
    assert orjson.loads(captured.out) == receipt["claims"]
    assert "receipt verifies" in captured.err

    jwks = tmp_path / "jwks.json"
    jwks.write_bytes((await served.api(None).get("/.well-known/jwks.json")).body)
    forged = receipt["receipt"][:-4] + (
        "AAAA" if not receipt["receipt"].endswith("AAAA") else "BBBB"
    )
    assert cli_main(["receipt", "verify", forged, "--jwks", str(jwks)]) == 1
    assert "receipt does not verify" in capsys.readouterr().err
    assert cli_main(["receipt", "verify", receipt["receipt"], "--jwks", str(tmp_path / "no")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_verify_reads_the_api_answer_from_stdin(served: Served, tmp_path: Path) -> None:
    assert served.settings.receipt_keys is not None
    signer = ReceiptSigner.parse(served.settings.receipt_keys.get_secret_value())
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps(signer.jwks()))
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "receipt", "verify", "-", "--jwks", str(jwks)],
        input='{"receipt": "not.a.receipt"}',
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "does not verify" in result.stderr


async def test_proof_and_export_write_what_the_worker_answers(
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    common = ["--url", served.url, "--controller", "sms-tech", "--subject", subject]
    proof_file = tmp_path / "proof.json"
    argv = ["proof", *common, "--purpose", "marketing-offers", "--channel", "email"]
    argv += ["--at", "2026-11-02T09:30:00+00:00", "-o", str(proof_file)]
    assert await run(argv, {"CONSENT_API_KEY": READ_KEY}, monkeypatch) == 0
    proof = orjson.loads(proof_file.read_bytes())
    assert (proof["decision"]["reason"], proof["at"]) == ("consent", "2026-11-02T09:30:00Z")
    assert proof["cause"]["event_id"] == "grant-1"

    key_file = tmp_path / "key"
    key_file.write_text(EXPORT_KEY + "\n")
    page = tmp_path / "export.html"
    argv = ["export", *common, "--key-file", str(key_file), "--html", "-o", str(page)]
    assert await run(argv, {"CONSENT_API_KEY": ""}, monkeypatch) == 0
    assert "<h1>Your data at Smart Manufacturing" in page.read_text()
    assert stat.S_IMODE(page.stat().st_mode) == 0o600  # personal data: the owner's only

    assert await run(["export", *common], {"CONSENT_API_KEY": EXPORT_KEY}, monkeypatch) == 0
    assert orjson.loads(capsys.readouterr().out)["subject_id"] == subject


async def test_useful_errors(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--url", served.url, "--controller", "sms-tech", "--subject", "s"]
    assert await run(["export", *common], {"CONSENT_API_KEY": ""}, monkeypatch) == 2
    assert "no API key: set CONSENT_API_KEY or pass --key-file" in capsys.readouterr().err
    assert await run(["export", *common], {"CONSENT_API_KEY": WRITE_KEY}, monkeypatch) == 1
    err = capsys.readouterr().err
    assert "the worker answered 403: insufficient_scope" in err and "'export' scope" in err
    argv = ["proof", *common, "--purpose", "nope", "--channel", "email"]
    assert await run(argv, {"CONSENT_API_KEY": READ_KEY}, monkeypatch) == 1
    assert "404: unknown_purpose" in capsys.readouterr().err
    closed = ["--url", "http://127.0.0.1:9", "--controller", "c", "--subject", "s"]
    assert await run(["export", *closed], {"CONSENT_API_KEY": READ_KEY}, monkeypatch) == 1
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["proof", "--help"])
    assert "CONSENT_API_KEY" in capsys.readouterr().out


async def test_an_export_that_fulfils_a_request_publishes_access_fulfilled_after_writing(
    served: Served,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject, _, _ = granted_then_withdrawn(served)
    out = tmp_path / "export.json"
    argv = ["export", "--url", served.url, "--controller", "sms-tech", "--subject", subject]
    argv += ["-o", str(out), "--fulfils", "ask-7"]
    assert await run(argv, {"CONSENT_API_KEY": ALL_KEY}, monkeypatch) == 0
    assert orjson.loads(out.read_bytes())["subject_id"] == subject
    ((key, value, headers),) = served.backend.published
    event = decode_event(value)
    assert (key, event.type, event.request_id) == (subject.encode(), "access.fulfilled", "ask-7")
    assert (event.controller, event.subject_id) == ("sms-tech", subject)
    assert headers == ((API_KEY_HEADER, b"admin"),)  # published like any API write
    assert f"published access.fulfilled {event.event_id} for request ask-7" in (
        capsys.readouterr().err
    )

    # A key without scope write: the export is written, the fulfilment is not published.
    out.unlink()
    assert await run(argv, {"CONSENT_API_KEY": EXPORT_KEY}, monkeypatch) == 1
    assert out.exists() and len(served.backend.published) == 1
    err = capsys.readouterr().err
    assert "the export is written, but access.fulfilled for request ask-7 was not" in err
    assert "403: insufficient_scope" in err
    # A request id the contract refuses is a usage error, before anything is asked.
    with pytest.raises(SystemExit) as refused:
        cli_main([*argv[:-1], "x" * 129])
    assert refused.value.code == 2 and "1 to 128 characters" in capsys.readouterr().err
