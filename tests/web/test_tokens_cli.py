"""``consent-streams token``: minting from the command line, keys and secrets."""

from __future__ import annotations

import io

import pytest

from streams.security.apikeys import hash_key, parse_entry
from streams.security.tokens import Signer, TokenKind
from streams.web.tokens_cli import main

SECRET = "c" * 40


def test_unsubscribe_prints_url_and_headers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENT_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("CONSENT_PUBLIC_URL", "https://prefs.example.org/")
    assert main(["unsubscribe", "--controller", "kms-uk", "--subject", "s-1"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["url"] == f"https://prefs.example.org/v1/unsubscribe/{lines['token']}"
    assert lines["List-Unsubscribe"] == f"<{lines['url']}>"
    assert lines["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert lines["expires"] == "never"
    assert Signer.from_config(SECRET).verify(lines["token"]).kind is TokenKind.UNSUBSCRIBE


def test_confirm_as_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENT_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("CONSENT_PUBLIC_URL", "https://prefs.example.org")
    argv = ["confirm", "--controller", "hms-se", "--subject", "s", "--purpose", "newsletter"]
    assert main([*argv, "--ttl", "3600", "--json"]) == 0
    assert '"kind": "confirm"' in capsys.readouterr().out


def test_a_confirmation_link_needs_its_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["confirm", "--controller", "hms-se", "--subject", "s"])
    assert exited.value.code == 2
    assert "--purpose" in capsys.readouterr().err
    for command, words in (("confirm", "the purpose confirmed"), ("unsubscribe", "default")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert words in capsys.readouterr().out


def test_links_must_be_https(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENT_TOKEN_SECRET", SECRET)
    monkeypatch.delenv("CONSENT_ALLOW_INSECURE_LINKS", raising=False)
    argv = ["unsubscribe", "--controller", "kms-uk", "--subject", "s-1"]
    for public in (None, "http://prefs.example.org"):
        if public is None:
            monkeypatch.delenv("CONSENT_PUBLIC_URL", raising=False)
        else:
            monkeypatch.setenv("CONSENT_PUBLIC_URL", public)
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert "not HTTPS" in captured.err and "RFC 8058" in captured.err
        assert "List-Unsubscribe" not in captured.out
    monkeypatch.setenv("CONSENT_ALLOW_INSECURE_LINKS", "1")
    assert main(argv) == 0
    assert "List-Unsubscribe: <http://prefs.example.org/v1/" in capsys.readouterr().out


def test_no_unsubscribe_from_billing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENT_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("CONSENT_PUBLIC_URL", "https://prefs.example.org")
    argv = ["unsubscribe", "--controller", "kms-uk", "--subject", "s", "--purpose", "billing"]
    assert main(argv) == 2
    assert "'contract'" in capsys.readouterr().err


def test_minting_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENT_PUBLIC_URL", "https://prefs.example.org")
    monkeypatch.delenv("CONSENT_TOKEN_SECRET", raising=False)
    assert main(["unsubscribe", "--controller", "kms-uk", "--subject", "s"]) == 2
    assert "CONSENT_TOKEN_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("CONSENT_TOKEN_SECRET", SECRET)
    assert main(["unsubscribe", "--controller", "nope", "--subject", "s"]) == 2
    assert "unknown controller" in capsys.readouterr().err
    assert main(["unsubscribe", "--controller", "kms-uk", "--subject", "s", "--ttl", "5"]) == 2
    assert "--ttl" in capsys.readouterr().err


def test_keys_and_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash-key", "my-key-0123456789"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("my-key-0123456789")
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin-0123456789\n"))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out.strip() == hash_key("from-stdin-0123456789")
    assert main(["new-key", "--name", "crm", "--scopes", "read,write"]) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].rsplit(" ", 1)[1]
    parsed = parse_entry(out[1].rsplit(" ", 1)[1])
    assert parsed.name == "crm" and parsed.digest.hex() == hash_key(key)
    assert main(["new-key", "--name", "crm", "--scopes", "admin"]) == 2
    assert main(["new-secret"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 32
