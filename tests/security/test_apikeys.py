"""API keys: configuration parsing, hashing at rest, constant-time lookup, bearer headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.security.apikeys import (
    ApiKeyError,
    Keyring,
    Scope,
    generate_key,
    hash_key,
    load_keyring,
    parse_entry,
    parse_inline,
)
from streams.settings import Settings, SettingsError
from streams.web.auth import bearer_token

KEY = "cs_example-key-for-tests-only"


def entry(name: str, scopes: str, key: str = KEY) -> str:
    return f"{name}:{scopes}:{hash_key(key)}"


def test_entry_names_scopes_and_only_a_digest() -> None:
    parsed = parse_entry(entry("crm", "read+write"))
    assert parsed.name == "crm"
    assert parsed.scopes == {Scope.READ, Scope.WRITE}
    assert parsed.digest.hex() == hash_key(KEY)
    assert parsed.allows(Scope.READ) and not parsed.allows(Scope.TOKENS)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("crm:read", "expected name:scopes:sha256hex"),
        (f"crm:admin:{'0' * 64}", "unknown scope 'admin'"),
        (f"crm:read:{KEY}", "never the key itself"),
        (f"bad name:read:{'0' * 64}", "invalid key name"),
        (f"a:read:{'0' * 64},a:write:{'1' * 64}", "duplicate key names: a"),
    ],
)
def test_bad_entries_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ApiKeyError, match=problem):
        parse_inline(text)


def test_keyring_finds_the_key_and_nothing_else() -> None:
    other = generate_key()
    ring = Keyring(parse_inline(f"{entry('a', 'read')},{entry('b', 'write', other)}"))
    found = ring.authenticate(other)
    assert found is not None and found.name == "b"
    assert ring.authenticate(KEY + "x") is None
    assert ring.authenticate("") is None
    assert ring.authenticate("short") is None
    assert Keyring().authenticate(KEY) is None  # nothing configured: nobody gets in


def test_generated_keys_are_long_and_distinct() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20 and all(k.startswith("cs_") and len(k) > 40 for k in keys)


def test_keys_file_with_comments_adds_to_inline_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# crm system\n{entry('crm', 'read')}  # rotated 2026-01\n\n")
    ring = load_keyring(entry("mailer", "tokens", generate_key()), path)
    assert sorted(k.name for k in ring.keys) == ["crm", "mailer"]
    with pytest.raises(ApiKeyError, match="duplicate"):
        load_keyring(entry("crm", "write"), path)


def test_settings_reject_bad_key_configuration(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CONSENT_API_KEYS"):
        Settings.from_env({"CONSENT_API_KEYS": "crm:read:not-a-digest"})
    with pytest.raises(SettingsError, match="CONSENT_API_KEYS_FILE"):
        Settings.from_env({"CONSENT_API_KEYS_FILE": str(tmp_path / "missing")})
    assert Settings.from_env({"CONSENT_API_KEYS": entry("crm", "read")}).api_keys


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer   {KEY} ", KEY),
        (f"Basic {KEY}", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_header(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected
