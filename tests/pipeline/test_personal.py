"""Personal data under per-subject data keys, over a dict store: seal, open, shred, rotate, and
erasure in the fold (the state keeps only keyed hashes, a re-imported address is matched)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from schemas.events import ConsentEvent
from schemas.vocabulary import Channel, Reason
from streams.cli import main
from streams.core.engine import Engine
from streams.core.ledger import (
    Arrival,
    ChainHead,
    Entry,
    Personal,
    Record,
    Sealed,
    append,
    verify_stored,
)
from streams.core.policy import parse_policy
from streams.core.state import EMPTY, HASHED, SubjectState
from streams.pipeline.fold import Admitted, Folded, fold
from streams.pipeline.fold import Record as Consumed
from streams.pipeline.personal import SubjectKeys
from streams.security.shredding import IdentifierHasher, Keyring, new_key
from streams.settings import Settings, SettingsError
from tests.support.core import POLICY_TOML

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
KEY = b"acme/subject-1"
PARTITION = 2
ADDRESS = "Ann@Example.com"
EVIDENCE = {"form": "signup", "wording": "Yes, send me offers"}
IDENTIFIER_KEY = new_key()


ENGINE = Engine(parse_policy(POLICY_TOML, "test-policy.toml"))
OFFERS = ENGINE.plans["acme"].by_pair[("offers", Channel.EMAIL)]


def event(type_: str, minute: int, **fields: Any) -> ConsentEvent:
    data = {
        "event_id": f"{type_}-{minute}",
        "type": type_,
        "occurred_at": T0 + timedelta(minutes=minute),
        "controller": "acme",
        "subject_id": "subject-1",
        **fields,
    }
    return ConsentEvent.model_validate(data, context={"now": NOW})


def grant(minute: int, address: str = ADDRESS) -> ConsentEvent:
    return event(
        "consent.granted",
        minute,
        purpose="offers",
        channel="email",
        identifiers={"email": address},
        evidence=EVIDENCE,
    )


def keys_over(
    store: dict[bytes, bytes], data_keys: str = "k1", identifier_key: str = IDENTIFIER_KEY
) -> SubjectKeys:
    keyring = Keyring.parse(data_keys if ":" in data_keys else f"{data_keys}:{KEKS[data_keys]}")
    return SubjectKeys(
        keyring,
        IdentifierHasher.parse(identifier_key),
        lambda key, partition: store.get(key),
        lambda key: PARTITION,
    )


KEKS = {"k1": new_key(), "k2": new_key()}


def written(keys: SubjectKeys, store: dict[bytes, bytes]) -> None:
    """What the pipeline does in steps 3 and 4: the batch's key changes into the store."""
    for key, (partition, value) in keys.take().items():
        assert partition == PARTITION
        store[key] = value


def ledger_record(evt: ConsentEvent) -> Record:
    return Record.of(evt, received_at=evt.occurred_at, arrival=Arrival(api_key="shop"))


def chain(records: list[Record]) -> list[Entry]:
    head, entries = ChainHead(), []
    for record in records:
        entries.append(append(head, record))
        head = entries[-1].head
    return entries


# -- SubjectKeys ------------------------------------------------------------------------------


def test_a_sealed_record_opens_again_after_a_restart_and_holds_no_plaintext() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    sealed = keys.seal(KEY, PARTITION, ledger_record(grant(0)))
    written(keys, store)

    assert isinstance(sealed.personal, Sealed)
    stored = chain([sealed])[0].to_bytes()
    assert b"Example.com" not in stored.lower() and b"signup" not in stored
    hasher = IdentifierHasher.parse(IDENTIFIER_KEY)
    assert sealed.identifier_hashes == {"email": hasher.digest("email", "ann@example.com")}
    assert b"example.com" not in b"".join(store.values())  # wrapped keys only
    reopened = keys_over(store).open(KEY, sealed)  # a fresh reader over the stored keys
    assert reopened.personal == Personal({"email": ADDRESS}, EVIDENCE)
    assert reopened.identifier_hashes == sealed.identifier_hashes


def test_an_event_without_personal_data_is_kept_unsealed_and_makes_no_data_key() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    bare = event("consent.withdrawn", 0, purpose="offers", channel="email")

    kept = keys.seal(KEY, PARTITION, ledger_record(bare))

    assert kept.personal == Personal() and kept.identifier_hashes == {}
    assert keys.take() == {}  # no key made for nothing to seal
    # The subject's first personal data makes its key, as before.
    assert isinstance(keys.seal(KEY, PARTITION, ledger_record(grant(1))).personal, Sealed)
    assert set(keys.take()) == {KEY}


def test_shredding_makes_every_earlier_entry_unreadable_and_keeps_skeleton_and_hashes() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    records = [keys.seal(KEY, PARTITION, ledger_record(e)) for e in (grant(0), grant(5))]
    written(keys, store)
    erasure = keys.seal(KEY, PARTITION, ledger_record(event("erasure.requested", 10)))
    assert keys.shred(KEY, PARTITION)
    written(keys, store)
    entries = chain([*records, erasure])

    reader = keys_over(store)
    opened = [reader.open(KEY, e.record) for e in entries]
    assert [type(r.personal) for r in opened] == [Sealed, Sealed, Personal]
    assert opened[2].personal == Personal()  # the request itself carried nothing to seal
    assert opened == [e.record for e in entries]  # nothing else changed either
    assert verify_stored([e.to_bytes() for e in entries], head=entries[-1].head) == []
    hasher = IdentifierHasher.parse(IDENTIFIER_KEY)
    for record in opened[:2]:
        assert hasher.matches("email", "ANN@example.com", record.identifier_hashes["email"])
        assert (record.type, record.purpose, record.occurred_at) == (
            "consent.granted",
            "offers",
            record.occurred_at,
        )
    # New data after erasure gets a new key generation: readable, the old stays shredded.
    later = keys.seal(KEY, PARTITION, ledger_record(grant(20, "ann@new.example")))
    written(keys, store)
    assert keys_over(store).open(KEY, later).personal == Personal(
        {"email": "ann@new.example"}, EVIDENCE
    )
    assert isinstance(keys_over(store).open(KEY, records[0]).personal, Sealed)
    assert orjson.loads(store[KEY])["g"] == 2


def test_a_second_shred_changes_nothing() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    assert not keys.shred(KEY, PARTITION)  # never keyed
    keys.seal(KEY, PARTITION, ledger_record(grant(0)))
    assert keys.shred(KEY, PARTITION)
    assert not keys.shred(KEY, PARTITION)


def test_a_new_kek_wraps_while_the_old_still_unwraps_and_rewrap_retires_it() -> None:
    store: dict[bytes, bytes] = {}
    old = keys_over(store, "k1")
    sealed = old.seal(KEY, PARTITION, ledger_record(grant(0)))
    written(old, store)
    both = f"k2:{KEKS['k2']},k1:{KEKS['k1']}"

    rotated = keys_over(store, both)
    assert rotated.open(KEY, sealed).personal == Personal({"email": ADDRESS}, EVIDENCE)
    assert rotated.rewrap(KEY, PARTITION)
    written(rotated, store)
    assert orjson.loads(store[KEY])["w"].startswith("k2:")

    assert keys_over(store, "k2").open(KEY, sealed).personal == Personal(
        {"email": ADDRESS}, EVIDENCE
    )
    # Without the KEK that wraps it the data key does not open: sealed, never an exception.
    assert keys_over(store, "k1").open(KEY, sealed) == sealed


def test_sealing_for_a_subject_moves_its_key_to_the_newest_kek() -> None:
    store: dict[bytes, bytes] = {}
    old = keys_over(store, "k1")
    first = old.seal(KEY, PARTITION, ledger_record(grant(0)))
    written(old, store)
    rotated = keys_over(store, f"k2:{KEKS['k2']},k1:{KEKS['k1']}")
    second = rotated.seal(KEY, PARTITION, ledger_record(grant(5)))
    written(rotated, store)
    assert orjson.loads(store[KEY])["w"].startswith("k2:")
    newest_only = keys_over(store, "k2")
    assert [newest_only.open(KEY, r).personal for r in (first, second)] == [
        Personal({"email": ADDRESS}, EVIDENCE)
    ] * 2


def test_a_revocation_during_a_batch_keeps_its_key_changes_for_the_batch_to_send() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    sealed = keys.seal(KEY, PARTITION, ledger_record(grant(0)))
    keys.forget()  # partitions revoked while the batch awaits the broker
    written(keys, store)
    assert keys_over(store).open(KEY, sealed).personal == Personal({"email": ADDRESS}, EVIDENCE)


def test_a_ciphertext_moved_to_another_subject_stays_sealed() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    sealed = keys.seal(KEY, PARTITION, ledger_record(grant(0)))
    keys.seal(b"acme/subject-2", PARTITION, ledger_record(grant(1)))
    assert keys.open(b"acme/subject-2", sealed) == sealed


# -- erasure in the state and the fold -----------------------------------------------------


def admitted(*events: ConsentEvent) -> list[Admitted]:
    return [
        Admitted(KEY, e, Consumed("events", PARTITION, n, b"subject-1", b"{}"))
        for n, e in enumerate(events)
    ]


def fold_batches(
    keys: SubjectKeys, store: dict[bytes, bytes], *batches: list[ConsentEvent]
) -> tuple[SubjectState, list[Folded]]:
    table: dict[bytes, SubjectState] = {}
    results = []
    for batch in batches:
        folded = fold(
            admitted(*batch),
            lambda key, partition: table.get(key, EMPTY),
            ENGINE,
            NOW,
            erasure=keys,
        )
        written(keys, store)
        table.update({key: state for key, (_, state) in folded.states.items()})
        results.append(folded)
    return table.get(KEY, EMPTY), results


def test_erasure_keeps_statements_and_only_keyed_hashes_of_identifiers() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    keys.seal(KEY, PARTITION, ledger_record(grant(0)))  # the ledger's first entry made a key
    state, (_, erased) = fold_batches(keys, store, [grant(0)], [event("erasure.requested", 10)])

    assert ADDRESS.encode() not in state.to_bytes() and b"example" not in state.to_bytes()
    assert state.known_identifiers() == {}
    hasher = IdentifierHasher.parse(IDENTIFIER_KEY)
    assert state.identifiers["email"][1] == HASHED + hasher.digest("email", ADDRESS)
    assert OFFERS.decide(state).reason is Reason.ERASURE
    # The erasure's own instructions still name the address (destinations must find it) ...
    told = [orjson.loads(m.value) for m in erased.messages]
    assert told and {v["identifiers"].get("email") for v in told} == {ADDRESS}
    # ... and its data key is destroyed.
    assert "w" not in orjson.loads(store[KEY])


def test_a_re_imported_address_is_matched_kept_as_its_hash_and_stays_suppressed() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    # A stale list imported again: the old consent time, the same address in another case,
    # plus an address never seen.
    reimport = event(
        "consent.granted",
        3,
        purpose="offers",
        channel="email",
        identifiers={"email": "ann@EXAMPLE.com", "phone": "+46 70 123 45 67"},
    )
    state, (*_, again) = fold_batches(
        keys, store, [grant(0)], [event("erasure.requested", 10)], [reimport]
    )

    assert OFFERS.decide(state).reason is Reason.ERASURE
    assert b"example" not in state.to_bytes().lower()
    assert state.identifiers["email"][1].startswith(HASHED)
    assert state.known_identifiers() == {"phone": "+46 70 123 45 67"}  # new data stays
    for message in again.messages:  # a newly learned phone restates the suppressions
        value = orjson.loads(message.value)
        assert value["action"] != "allow" and "email" not in value["identifiers"]


def test_data_after_an_erasure_in_the_same_batch_is_sealed_under_a_new_key() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    before = keys.seal(KEY, PARTITION, ledger_record(grant(0)))
    fold(
        admitted(grant(0), event("erasure.requested", 10)),
        lambda k, p: EMPTY,
        ENGINE,
        NOW,
        erasure=keys,
    )
    after = keys.seal(KEY, PARTITION, ledger_record(grant(20, "new@example.org")))
    written(keys, store)
    reader = keys_over(store)
    assert isinstance(reader.open(KEY, before).personal, Sealed)
    assert reader.open(KEY, after).personal == Personal({"email": "new@example.org"}, EVIDENCE)


def test_a_redelivered_erasure_is_a_duplicate_and_shreds_nothing_again() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    erasure = event("erasure.requested", 10)
    state, _ = fold_batches(keys, store, [grant(0), erasure])
    keys.seal(KEY, PARTITION, ledger_record(grant(20)))  # new data: generation 2
    written(keys, store)
    folded = fold(admitted(erasure), lambda k, p: state, ENGINE, NOW, erasure=keys)
    assert folded.duplicates == 1 and keys.take() == {}
    assert "w" in orjson.loads(store[KEY])


def test_an_erasure_seen_again_past_the_redelivery_window_leaves_later_data_readable() -> None:
    store: dict[bytes, bytes] = {}
    keys = keys_over(store)
    erasure = event("erasure.requested", 10)
    state, _ = fold_batches(keys, store, [grant(0), erasure])
    later = keys.seal(KEY, PARTITION, ledger_record(grant(20)))
    written(keys, store)
    forgotten = SubjectState(state.slots, state.identifiers, b"")  # its id left the window
    folded = fold(admitted(erasure), lambda k, p: forgotten, ENGINE, NOW, erasure=keys)
    assert folded.duplicates == 0 and keys.take() == {}
    assert keys_over(store).open(KEY, later).personal == Personal({"email": ADDRESS}, EVIDENCE)


# -- configuration ----------------------------------------------------------------------------


def test_keys_are_made_up_for_a_run_on_the_embedded_broker() -> None:
    keyring, hasher = Settings().personal_keys()
    assert keyring.current == "run"
    assert hasher.digest("email", "a@b.se") != IdentifierHasher.parse(new_key()).digest(
        "email", "a@b.se"
    )


def test_against_a_cluster_missing_keys_name_the_variables_and_the_command() -> None:
    settings = Settings(bootstrap_servers="kafka:9092", identifier_key=new_key())
    with pytest.raises(SettingsError) as raised:
        settings.personal_keys()
    message = str(raised.value)
    assert "CONSENT_DATA_KEYS" in message and "CONSENT_IDENTIFIER_KEY" not in message
    assert "consent-streams keys new-kek" in message


def test_the_worker_exits_2_against_a_cluster_without_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.delenv("CONSENT_DATA_KEYS", raising=False)
    monkeypatch.delenv("CONSENT_IDENTIFIER_KEY", raising=False)
    assert main(["worker"]) == 2
    error = capsys.readouterr().err
    assert "CONSENT_DATA_KEYS and CONSENT_IDENTIFIER_KEY" in error
    assert "consent-streams keys new-identifier-key" in error


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CONSENT_DATA_KEYS", "k1", "id:base64url-key"),
        ("CONSENT_DATA_KEYS", f"k1:{new_key()[:20]}", "32 bytes"),
        ("CONSENT_DATA_KEYS", f"k1:{new_key()},k1:{new_key()}", "unique"),
        ("CONSENT_IDENTIFIER_KEY", "c2hvcnQ", "at least 32 bytes"),
    ],
)
def test_malformed_keys_are_refused_naming_the_variable(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert variable in str(raised.value) and says in str(raised.value)
    assert value not in str(raised.value)  # a key is never echoed


def test_keys_commands_print_keys_the_settings_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new-kek", "--id", "kek-2026"]) == 0
    kek = capsys.readouterr().out.strip()
    assert main(["keys", "new-identifier-key"]) == 0
    identifier = capsys.readouterr().out.strip()
    settings = Settings.from_env({"CONSENT_DATA_KEYS": kek, "CONSENT_IDENTIFIER_KEY": identifier})
    assert settings.personal_keys()[0].current == "kek-2026"
