"""Crypto-shredding: personal fields under a per-subject data key that erasure destroys.

Each (controller, subject) has an AES-256-GCM data key, stored wrapped by a key-encryption key
(KEK) from configuration. Several KEKs may be configured (rotation): the first wraps, any
unwraps, and :meth:`DataKeys.rewrap` moves a stored key to the first. Ciphertexts are bound to
(controller, subject, field) as associated data, so one cannot be moved to another subject or
field. Destroying a data key leaves its ciphertexts unreadable (:class:`Shredded`), while keyed
hashes of identifiers, under a separate key, still recognise an address imported again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_FORMAT = "v1"

Random = Callable[[int], bytes]
_URLSAFE = bytes.maketrans(b"+/", b"-_")
#: HMAC's inner and outer pads, as byte translations of the key (RFC 2104)
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Shredded(Exception):
    """The subject's data key was destroyed: this data is gone for good."""


class KeyMaterialError(ValueError):
    """Key material that is missing, malformed or does not open this ciphertext."""


def b64(data: bytes) -> str:
    # base64.urlsafe_b64encode, without its two Python-level calls (hot: every sealed field)
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise KeyMaterialError("not base64url") from None


@lru_cache(maxsize=16)
def _kek_cipher(kek: bytes) -> AESGCM:
    """The AES-GCM object of a key-encryption key (few, used for every data key)."""
    return AESGCM(kek)


def new_key() -> str:
    """A fresh 256-bit key, base64url, for configuration."""
    return b64(os.urandom(KEY_BYTES))


@dataclass(frozen=True, slots=True)
class Keyring:
    """Key-encryption keys by id, newest first: the first wraps, every one unwraps."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyMaterialError("at least one key-encryption key is needed")
        for kid, key in self.keys:
            if not _KID.match(kid):
                raise KeyMaterialError(f"key id {kid!r}: letters, digits, '.', '_' or '-' only")
            if len(key) != KEY_BYTES:
                raise KeyMaterialError(f"key {kid!r}: {KEY_BYTES} bytes needed, got {len(key)}")
        if len({kid for kid, _ in self.keys}) != len(self.keys):
            raise KeyMaterialError("key ids must be unique")

    @classmethod
    def parse(cls, configured: str) -> Keyring:
        """``id:base64url-key`` pairs separated by commas, newest first."""
        keys = []
        for part in filter(None, (p.strip() for p in configured.split(","))):
            kid, sep, key = part.partition(":")
            if not sep:
                raise KeyMaterialError("each key is written id:base64url-key")
            keys.append((kid, unb64(key)))
        return cls(tuple(keys))

    @property
    def current(self) -> str:
        return self.keys[0][0]

    def wrap(self, data_key: bytes, context: bytes, random: Random = os.urandom) -> str:
        kid, kek = self.keys[0]
        nonce = random(NONCE_BYTES)
        return f"{kid}:{b64(nonce + _kek_cipher(kek).encrypt(nonce, data_key, context))}"

    def unwrap(self, wrapped: str, context: bytes) -> bytes:
        kid, _, blob = wrapped.partition(":")
        kek = dict(self.keys).get(kid)
        if kek is None:
            raise KeyMaterialError(f"data key wrapped by unknown key-encryption key {kid!r}")
        raw = unb64(blob)
        try:
            return _kek_cipher(kek).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
        except InvalidTag:
            raise KeyMaterialError("wrapped data key does not open (altered or moved)") from None

    def kid_of(self, wrapped: str) -> str:
        return wrapped.partition(":")[0]


def _slot(controller: str, subject_id: str) -> str:
    return f"{controller}/{subject_id}"


def _kept(encoded: bytes) -> bytes:
    """A copy of its own size: orjson's output keeps its ~4 KB working buffer, and these values
    are cached per subject (10,000 of them held 80 MB)."""
    return memoryview(encoded).tobytes()


def _context(*parts: str | int) -> bytes:
    # JSON array: unambiguous whatever characters the ids contain.
    return _kept(orjson.dumps(parts))


class DataKeys:
    """Per-subject data keys, wrapped, in a mapping the pipeline backs with a changelogged table.

    A stored value is ``{"g": generation, "w": wrapped key}``, or ``{"g": generation}`` once
    destroyed. A subject seen again after erasure gets a new generation: new data is readable,
    what was sealed before stays shredded.
    """

    def __init__(
        self, keyring: Keyring, store: MutableMapping[str, bytes], random: Random = os.urandom
    ) -> None:
        self.keyring = keyring
        self.store = store
        self._random = random

    def _read(self, controller: str, subject_id: str) -> tuple[int, str | None]:
        """(generation, wrapped key); None once destroyed, and generation 0 if never keyed."""
        raw = self.store.get(_slot(controller, subject_id))
        if raw is None:
            return 0, None
        stored = orjson.loads(raw)
        return int(stored["g"]), stored.get("w")

    def _write(
        self, controller: str, subject_id: str, generation: int, wrapped: str | None
    ) -> None:
        value = {"g": generation} if wrapped is None else {"g": generation, "w": wrapped}
        self.store[_slot(controller, subject_id)] = _kept(orjson.dumps(value))

    def current(self, controller: str, subject_id: str) -> tuple[int, bytes]:
        """(generation, data key), creating a key when the subject has none (or it was erased)."""
        generation, wrapped = self._read(controller, subject_id)
        if wrapped is None:
            return self._made(controller, subject_id, generation + 1)
        context = _key_context(controller, subject_id, generation)
        return generation, self.keyring.unwrap(wrapped, context)

    def _made(self, controller: str, subject_id: str, generation: int) -> tuple[int, bytes]:
        """A new data key of ``generation``, stored wrapped by the newest KEK."""
        key = self._random(KEY_BYTES)
        context = _key_context(controller, subject_id, generation)
        self._write(
            controller, subject_id, generation, self.keyring.wrap(key, context, self._random)
        )
        return generation, key

    def for_sealing(self, controller: str, subject_id: str) -> tuple[int, bytes]:
        """:meth:`rewrap`, then :meth:`current`, with one read of the store: what sealing
        needs (a key wrapped by an older KEK moves to the newest as its subject is written to)."""
        generation, wrapped = self._read(controller, subject_id)
        if wrapped is None:
            return self._made(controller, subject_id, generation + 1)
        context = _key_context(controller, subject_id, generation)
        key = self.keyring.unwrap(wrapped, context)
        if self.keyring.kid_of(wrapped) != self.keyring.current:
            wrapping = self.keyring.wrap(key, context, self._random)
            self._write(controller, subject_id, generation, wrapping)
        return generation, key

    def key(self, controller: str, subject_id: str, generation: int) -> bytes:
        current, wrapped = self._read(controller, subject_id)
        if wrapped is None or current != generation:
            raise Shredded(f"data key generation {generation} of this subject is destroyed")
        return self.keyring.unwrap(wrapped, _key_context(controller, subject_id, generation))

    def destroy(self, controller: str, subject_id: str) -> bool:
        """Erase the subject's data key; False when there was none to destroy."""
        generation, wrapped = self._read(controller, subject_id)
        if wrapped is None:
            return False
        self._write(controller, subject_id, generation, None)
        return True

    def rewrap(self, controller: str, subject_id: str) -> bool:
        """Wrap the subject's data key with the current KEK; False when nothing changed."""
        generation, wrapped = self._read(controller, subject_id)
        if wrapped is None or self.keyring.kid_of(wrapped) == self.keyring.current:
            return False
        context = _key_context(controller, subject_id, generation)
        key = self.keyring.unwrap(wrapped, context)
        self._write(
            controller, subject_id, generation, self.keyring.wrap(key, context, self._random)
        )
        return True


def _key_context(controller: str, subject_id: str, generation: int) -> bytes:
    return _context("data-key", controller, subject_id, generation)


class FieldCipher:
    """Seals and opens personal fields of one controller's subjects."""

    def __init__(self, keys: DataKeys, random: Random = os.urandom) -> None:
        self.keys = keys
        self._random = random

    def seal(self, controller: str, subject_id: str, field: str, plaintext: bytes) -> str:
        return self.sealer(controller, subject_id, field)(plaintext)

    def sealer(self, controller: str, subject_id: str, field: str) -> Callable[[bytes], str]:
        """:meth:`seal` for one field of one subject under its current data key, bound once
        (the key, its cipher and the associated data); keep it only while that key is current."""
        generation, key = self.keys.current(controller, subject_id)
        return field_sealer(key, generation, controller, subject_id, field, self._random)

    def open(self, controller: str, subject_id: str, field: str, token: str) -> bytes:
        """The plaintext; :class:`Shredded` once the subject's key is destroyed."""
        version, _, rest = token.partition(".")
        generation_text, _, blob = rest.partition(".")
        if version != _FORMAT or not generation_text.isdigit():
            raise KeyMaterialError("not a sealed field")
        generation = int(generation_text)
        key = self.keys.key(controller, subject_id, generation)
        raw = unb64(blob)
        aad = _context("field", controller, subject_id, field, generation)
        try:
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except InvalidTag:
            raise KeyMaterialError("sealed field does not open here (altered or moved)") from None


def field_sealer(
    key: bytes, generation: int, controller: str, subject_id: str, field: str, random: Random
) -> Callable[[bytes], str]:
    """Sealing of one field of one subject under its data key ``key`` of ``generation``: the
    cipher and the associated data made once (what :meth:`FieldCipher.open` opens)."""
    aead = AESGCM(key)
    aad = _context("field", controller, subject_id, field, generation)
    prefix = f"{_FORMAT}.{generation}."

    def seal(plaintext: bytes) -> str:
        nonce = random(NONCE_BYTES)
        return prefix + b64(nonce + aead.encrypt(nonce, plaintext, aad))

    return seal


class IdentifierHasher:
    """Keyed hashes (HMAC-SHA256) of identifiers: recognise an address without keeping it.

    The key is separate from the KEKs and is never destroyed by erasure; without it the hashes
    cannot be tested against guessed addresses.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise KeyMaterialError(f"identifier hash key: at least {KEY_BYTES} bytes needed")
        # HMAC (RFC 2104) with its two keyed SHA-256 states made once and copied per digest:
        # the same digests as hmac.digest, which sets up the key again (several times slower).
        block = hashlib.sha256().block_size
        padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
        self._inner = hashlib.sha256(padded.translate(_IPAD))
        self._outer = hashlib.sha256(padded.translate(_OPAD))

    @classmethod
    def parse(cls, configured: str) -> IdentifierHasher:
        return cls(unb64(configured.strip()))

    def digest(self, kind: str, value: str) -> str:
        inner = self._inner.copy()
        inner.update(_context(kind, normalise(kind, value)))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def digests(self, identifiers: Mapping[str, str]) -> dict[str, str]:
        return {kind: self.digest(kind, value) for kind, value in sorted(identifiers.items())}

    def matches(self, kind: str, value: str, digest: str) -> bool:
        return hmac.compare_digest(self.digest(kind, value), digest)


def normalise(kind: str, value: str) -> str:
    """The form compared: case-insensitive addresses, phone numbers by their digits."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind == "phone":
        return ("+" if value.startswith("+") else "") + "".join(c for c in value if c.isdigit())
    return value
