"""API keys: configured as SHA-256 digests with scopes, checked in constant time.

Configuration format, one entry per key (comma-separated in ``CONSENT_API_KEYS``, one per line
in ``CONSENT_API_KEYS_FILE``)::

    name:scope+scope:sha256-hex-of-the-key

No key is ever stored in clear: only its digest. Pure module (no web or Kafka imports).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Scope(StrEnum):
    READ = "read"  # decisions and preferences (personal data)
    WRITE = "write"  # publish events and privacy signals
    TOKENS = "tokens"  # mint unsubscribe / confirmation links
    EXPORT = "export"  # everything held about a subject (access and portability requests)


class ApiKeyError(ValueError):
    """The API key configuration cannot be used."""


#: Generated keys look like ``cs_<43 url-safe characters>``; any string of 16-256 characters
#: without whitespace is accepted, so keys can come from an existing secret store.
KEY_PREFIX = "cs_"
_KEY_SHAPE = re.compile(r"^\S{16,256}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    scopes: frozenset[Scope]
    digest: bytes  # SHA-256 of the key

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


def hash_key(key: str) -> str:
    """The hex digest to put in the configuration for ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_entry(entry: str) -> ApiKey:
    parts = entry.strip().split(":")
    if len(parts) != 3:
        raise ApiKeyError(f"expected name:scopes:sha256hex, got {len(parts)} field(s)")
    name, scope_text, digest = (part.strip() for part in parts)
    if not _NAME.match(name):
        raise ApiKeyError(f"invalid key name {name!r}")
    scopes: set[Scope] = set()
    for raw in scope_text.split("+"):
        try:
            scopes.add(Scope(raw.strip()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ApiKeyError(f"key {name!r}: unknown scope {raw!r} (known: {known})") from None
    if not _DIGEST.match(digest.lower()):
        raise ApiKeyError(
            f"key {name!r}: the third field must be the 64-character SHA-256 hex digest of the "
            "key (consent-streams token hash-key), never the key itself"
        )
    return ApiKey(name, frozenset(scopes), bytes.fromhex(digest))


def parse_entries(entries: Iterable[str]) -> tuple[ApiKey, ...]:
    return _unique(tuple(parse_entry(entry) for entry in entries if entry.strip()))


def _unique(keys: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
    names = [key.name for key in keys]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApiKeyError(f"duplicate key names: {', '.join(repeated)}")
    return keys


def parse_inline(text: str) -> tuple[ApiKey, ...]:
    """``CONSENT_API_KEYS``: entries separated by commas."""
    return parse_entries(text.split(","))


def parse_file(path: Path) -> tuple[ApiKey, ...]:
    """``CONSENT_API_KEYS_FILE``: one entry per line; ``#`` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiKeyError(f"cannot read {path}: {exc}") from None
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return parse_entries(lines)


class Keyring:
    """The configured keys; an empty keyring authenticates nobody."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def authenticate(self, presented: str) -> ApiKey | None:
        if not _KEY_SHAPE.match(presented):
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        # Compare against every key, without stopping early, so timing says nothing.
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def load_keyring(inline: str, path: Path | None) -> Keyring:
    keys = parse_inline(inline) + (parse_file(path) if path is not None else ())
    return Keyring(_unique(keys))
