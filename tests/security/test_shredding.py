"""Crypto-shredding: sealed fields open until the data key is destroyed; keyed hashes survive."""

from __future__ import annotations

import base64
import hmac
import os
import tracemalloc

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.security.shredding import (
    DataKeys,
    FieldCipher,
    IdentifierHasher,
    KeyMaterialError,
    Keyring,
    Shredded,
    b64,
    field_sealer,
    new_key,
    normalise,
    unb64,
)

OLD = f"2026-01:{new_key()}"
NEW = f"2026-12:{new_key()}"


def vault(configured: str = OLD) -> tuple[FieldCipher, dict[str, bytes]]:
    store: dict[str, bytes] = {}
    return FieldCipher(DataKeys(Keyring.parse(configured), store)), store


def test_a_sealed_field_opens_for_its_subject_and_field_only() -> None:
    cipher, store = vault()
    token = cipher.seal("acme", "s-1", "identifiers", b'{"email":"a@example.com"}')
    assert b"a@example.com" not in token.encode() and b"a@example.com" not in str(store).encode()
    assert cipher.open("acme", "s-1", "identifiers", token) == b'{"email":"a@example.com"}'
    cipher.seal("acme", "s-2", "identifiers", b"x")  # s-2 gets its own key
    for controller, subject, field in (
        ("acme", "s-1", "evidence"),
        ("beta", "s-1", "identifiers"),
        ("acme", "s-2", "identifiers"),
    ):
        with pytest.raises((KeyMaterialError, Shredded)):
            cipher.open(controller, subject, field, token)


def test_a_tampered_ciphertext_does_not_open() -> None:
    cipher, _ = vault()
    token = cipher.seal("acme", "s-1", "evidence", b"signup form")
    head, _, blob = token.rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[-1] ^= 1
    forged = f"{head}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"
    with pytest.raises(KeyMaterialError):
        cipher.open("acme", "s-1", "evidence", forged)


def test_after_the_key_is_destroyed_data_is_shredded_and_the_keyed_hash_still_matches() -> None:
    cipher, _ = vault()
    hasher = IdentifierHasher.parse(new_key())
    token = cipher.seal("acme", "s-1", "identifiers", b'{"email":"A@Example.com"}')
    kept = hasher.digests({"email": "A@Example.com", "phone": "+46 70-123 45 67"})

    assert cipher.keys.destroy("acme", "s-1") is True
    with pytest.raises(Shredded):
        cipher.open("acme", "s-1", "identifiers", token)
    assert cipher.keys.destroy("acme", "s-1") is False  # nothing left to destroy

    # The address imported again is recognised, in any case or spacing.
    assert hasher.matches("email", " a@example.COM", kept["email"])
    assert hasher.matches("phone", "+46701234567", kept["phone"])
    assert not hasher.matches("email", "b@example.com", kept["email"])


def test_a_subject_seen_again_after_erasure_gets_a_new_key() -> None:
    cipher, _ = vault()
    old = cipher.seal("acme", "s-1", "evidence", b"before")
    cipher.keys.destroy("acme", "s-1")
    new = cipher.seal("acme", "s-1", "evidence", b"after")
    assert cipher.open("acme", "s-1", "evidence", new) == b"after"
    with pytest.raises(Shredded):
        cipher.open("acme", "s-1", "evidence", old)


def test_rotation_new_kek_wraps_old_still_unwraps_and_rewrap_retires_it() -> None:
    store: dict[str, bytes] = {}
    before = FieldCipher(DataKeys(Keyring.parse(OLD), store))
    token = before.seal("acme", "s-1", "evidence", b"signup form")

    rotated = FieldCipher(DataKeys(Keyring.parse(f"{NEW},{OLD}"), store))
    assert rotated.open("acme", "s-1", "evidence", token) == b"signup form"
    assert rotated.keys.rewrap("acme", "s-1") is True
    assert rotated.keys.rewrap("acme", "s-1") is False  # already under the newest

    retired = FieldCipher(DataKeys(Keyring.parse(NEW), store))
    assert retired.open("acme", "s-1", "evidence", token) == b"signup form"
    with pytest.raises(KeyMaterialError, match="unknown key-encryption key"):
        FieldCipher(DataKeys(Keyring.parse(OLD), store)).open("acme", "s-1", "evidence", token)


def test_a_new_subject_is_wrapped_by_the_newest_kek() -> None:
    keyring = Keyring.parse(f"{NEW},{OLD}")
    store: dict[str, bytes] = {}
    FieldCipher(DataKeys(keyring, store)).seal("acme", "s-1", "evidence", b"x")
    assert b'"w":"2026-12:' in store["acme/s-1"]


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ("", "at least one"),
        ("nocolon", "id:base64url-key"),
        ("k1:c2hvcnQ", "32 bytes"),
        (f"{OLD},{OLD}", "unique"),
        (f"bad id:{new_key()}", "key id"),
    ],
)
def test_bad_key_configuration_is_refused_with_the_reason(configured: str, message: str) -> None:
    with pytest.raises(KeyMaterialError, match=message):
        Keyring.parse(configured)


def test_the_identifier_hash_key_must_be_long_enough() -> None:
    with pytest.raises(KeyMaterialError, match="at least 32 bytes"):
        IdentifierHasher(b"short")


def test_for_sealing_makes_a_key_or_returns_the_current_one_rewrapped_by_the_newest_kek() -> None:
    store: dict[str, bytes] = {}
    old = DataKeys(Keyring.parse(OLD), store)
    made = old.for_sealing("acme", "s-1")
    assert made == old.current("acme", "s-1") and made[0] == 1
    rotated = DataKeys(Keyring.parse(f"{NEW},{OLD}"), store)
    assert rotated.for_sealing("acme", "s-1") == made
    assert b'"w":"2026-12:' in store["acme/s-1"]  # moved to the newest KEK
    old.destroy("acme", "s-1")
    again = rotated.for_sealing("acme", "s-1")
    assert again[0] == 2 and again[1] != made[1]  # a new generation after erasure


@given(st.binary(min_size=32, max_size=100), st.sampled_from(["email", "phone", "crm_id"]))
def test_identifier_hashes_are_hmac_sha256_of_the_normalised_identifier(
    key: bytes, kind: str
) -> None:
    for value in ("Ann@Example.com", "+46 70-123 45 67", "crm-1"):
        material = orjson.dumps([kind, normalise(kind, value)])
        expected = hmac.new(key, material, "sha256").hexdigest()
        assert IdentifierHasher(key).digest(kind, value) == expected


@given(st.binary(max_size=100))
def test_b64_is_unpadded_base64url(data: bytes) -> None:
    assert b64(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert unb64(b64(data)) == data


names = st.text(min_size=1, max_size=12)


@given(names, names, names, st.binary(max_size=256), names)
def test_any_sealed_field_opens_only_where_it_was_sealed(
    controller: str, subject: str, field: str, plaintext: bytes, other: str
) -> None:
    cipher, _ = vault()
    token = cipher.seal(controller, subject, field, plaintext)
    assert cipher.open(controller, subject, field, token) == plaintext
    if other != field:
        with pytest.raises(KeyMaterialError):
            cipher.open(controller, subject, other, token)
    cipher.keys.destroy(controller, subject)
    with pytest.raises(Shredded):
        cipher.open(controller, subject, field, token)


def test_a_stored_key_value_and_a_bound_sealer_hold_about_their_own_size() -> None:
    # Both are kept per subject: orjson's output would keep its ~4 KB working buffer each.
    store: dict[str, bytes] = {}
    keys = DataKeys(Keyring.parse(OLD), store)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        generation, key = keys.for_sealing("acme", "s-1")
        sealer = field_sealer(key, generation, "acme", "s-1", "personal", os.urandom)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sealer(b"x") and len(store["acme/s-1"]) < 200
    assert held < 2000, held
