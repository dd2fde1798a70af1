"""Erasure by crypto-shredding through a real worker on the broker: a subject's personal data
becomes unreadable, its decisions stay, and an address imported again is matched and stays
suppressed.

The worker's sealing keys are the run's (``streams.process.run_keys``): this test process made
them, so it can check hashes and open what the worker sealed, as an operator with the keys can.

The ledger test reads the ledger's topic as stored and checks it with the core's own verifier;
it is skipped, saying so, while the worker has no ledger topic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.core.ledger import CorruptEntry, Entry, Personal, Sealed, verify_stored
from streams.core.state import HASHED, SubjectState
from streams.pipeline.personal import KEYS_TABLE, MAX_COMPACTION_LAG_MS, SubjectKeys
from streams.process import run_keys
from streams.security.shredding import IdentifierHasher, Keyring
from tests.support.http import decision_path, event
from tests.support.kafka import TopicReader, unique
from tests.support.keys import API_ENV, READ_KEY
from tests.support.waiting import eventually
from tests.support.worker import Worker, make_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTROLLER = "hms-se"
ADDRESS = "Anna.Svensson@Example.se"
EVIDENCE = {"form": "newsletter-signup", "wording": "Yes, send me the newsletter"}


@pytest.fixture(scope="module")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    running = make_worker(bootstrap, tmp_path_factory.mktemp("erasure"), **API_ENV)
    try:
        running.process.start()
        yield running
    finally:
        running.process.stop()


def hasher() -> IdentifierHasher:
    return IdentifierHasher.parse(run_keys()["CONSENT_IDENTIFIER_KEY"])


def hashed_email(state: SubjectState) -> bool:
    return state.identifiers.get("email", (0, ""))[1].startswith(HASHED)


async def publish(worker: Worker, *events: dict[str, Any]) -> None:
    assert (await worker.api().post("/v1/events", json=list(events))).status == 202


async def newest_state(worker: Worker, key: bytes, accept: Any) -> SubjectState:
    """The newest value of ``key`` on the subject changelog, once ``accept`` holds for it."""
    topic = f"{worker.process.app_id}-subjects-changelog"
    async with TopicReader(worker.bootstrap, topic) as reader:

        def newest() -> bytes | None:
            values = [r.value for r in reader.records if r.key == key]
            return values[-1] if values else None

        await reader.until(lambda r: (v := newest()) is not None and accept(v), timeout=30)
        value = newest()
        assert value is not None
        return SubjectState.from_bytes(value)


async def erased_subject(worker: Worker) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A subject that granted and confirmed with an address and evidence, then was erased."""
    subject = unique("anna")
    granted = event(
        "consent.granted",
        CONTROLLER,
        subject,
        purpose="newsletter",
        identifiers={"email": ADDRESS},
        evidence=EVIDENCE,
        occurred_at="2026-11-20T10:00:00Z",
    )
    confirmed = event(
        "consent.confirmed",
        CONTROLLER,
        subject,
        purpose="newsletter",
        occurred_at="2026-11-20T10:05:00Z",
    )
    erasure = event("erasure.requested", CONTROLLER, subject, occurred_at="2026-11-20T11:00:00Z")
    path = decision_path(CONTROLLER, subject, "newsletter", "email")
    await publish(worker, granted, confirmed)
    await eventually(lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["allowed"])
    await publish(worker, erasure)
    await eventually(
        lambda: worker.api(READ_KEY).get(path), lambda r: r.json()["reason"] == "erasure"
    )
    return subject, granted, erasure


async def test_the_changelogs_are_compacted_within_a_day(worker: Worker) -> None:
    """Older values (identifiers before an erasure, a destroyed data key) do not linger."""
    admin = AIOKafkaAdminClient(bootstrap_servers=worker.bootstrap)
    await admin.start()
    try:
        for topic in (f"{worker.process.app_id}-subjects-changelog", keys_changelog(worker)):
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            [(_, _, _, _, entries)] = response.resources
            configs = {entry[0]: entry[1] for entry in entries}
            assert configs.get("cleanup.policy") == "compact", topic
            assert configs.get("max.compaction.lag.ms") == str(MAX_COMPACTION_LAG_MS), topic
    finally:
        await admin.close()


async def test_erasure_leaves_only_keyed_hashes_in_the_state_and_the_decisions_stand(
    worker: Worker,
) -> None:
    subject, _, _ = await erased_subject(worker)
    key = f"{CONTROLLER}/{subject}".encode()

    state = await newest_state(worker, key, lambda v: hashed_email(SubjectState.from_bytes(v)))
    assert b"example.se" not in state.to_bytes().lower()
    assert state.known_identifiers() == {}
    assert state.identifiers["email"][1] == HASHED + hasher().digest("email", ADDRESS)


async def test_an_address_imported_again_is_matched_and_stays_suppressed(worker: Worker) -> None:
    subject, _, erasure = await erased_subject(worker)
    key = f"{CONTROLLER}/{subject}".encode()
    # A stale list imported again: the old consent, the same address in another case, and a
    # phone number never seen (which makes the worker restate its suppressions).
    phone = "+46 70 123 45 67"
    reimport = event(
        "consent.granted",
        CONTROLLER,
        subject,
        purpose="newsletter",
        identifiers={"email": ADDRESS.lower(), "phone": phone},
        occurred_at="2026-11-20T10:30:00Z",
    )
    await publish(worker, reimport)

    state = await newest_state(worker, key, lambda v: phone.encode() in v)
    assert b"example.se" not in state.to_bytes().lower()
    assert state.identifiers["email"][1] == HASHED + hasher().digest("email", ADDRESS)
    path = decision_path(CONTROLLER, subject, "newsletter", "email")
    reply = await worker.api(READ_KEY).get(path)
    assert (reply.json()["reason"], reply.json()["caused_by_event_id"]) == (
        "erasure",
        erasure["event_id"],
    )
    topics = list(worker.topics.suppressions.values())
    async with TopicReader(worker.bootstrap, *topics) as reader:
        await reader.until(
            lambda r: any(v["identifiers"].get("phone") == phone for v in r.values()), timeout=30
        )
        after = [v for v in reader.values() if v["subject_id"] == subject]
    restated = [v for v in after if "phone" in v["identifiers"]]
    assert restated and all(v["action"] != "allow" for v in restated)
    assert all("email" not in v["identifiers"] for v in restated)


async def test_the_ledger_after_erasure_is_sealed_unreadable_and_its_chain_verifies(
    worker: Worker,
) -> None:
    subject, granted, erasure = await erased_subject(worker)
    key = f"{CONTROLLER}/{subject}".encode()
    ledger = await ledger_topic(worker)
    async with TopicReader(worker.bootstrap, ledger, keys_changelog(worker)) as reader:

        def mine() -> list[Entry]:
            return [e for e in entries_of(reader, ledger) if e.record.subject_id == subject]

        await reader.until(lambda r: len(mine()) >= 3, timeout=30)
        stored = [e.to_bytes() for e in mine()]
        kept = {r.key: r.value for r in reader.records if r.topic == keys_changelog(worker)}

    assert verify_stored(stored, subject=(CONTROLLER, subject)) == []
    entries = [Entry.from_bytes(data) for data in stored]
    records = [e.record for e in entries]
    # Skeleton intact: ids, times, types, purposes, effects; the hashes still match the address.
    assert [(r.event_id, r.type) for r in records[::2]] == [
        (granted["event_id"], "consent.granted"),
        (erasure["event_id"], "erasure.requested"),
    ]
    assert records[0].purpose == "newsletter" and records[2].effects
    assert records[0].identifier_hashes == {"email": hasher().digest("email", ADDRESS)}
    # Personal data: sealed, and unreadable even with the worker's own keys.
    assert b"example.se" not in b"".join(stored).lower()
    assert b"newsletter-signup" not in b"".join(stored)
    opener = SubjectKeys(
        Keyring.parse(run_keys()["CONSENT_DATA_KEYS"]),
        hasher(),
        lambda k, partition: kept.get(k),
        lambda k: 0,
    )
    opened = [opener.open(key, r).personal for r in records]
    # Sealed where the event carried personal data (the grant); an entry of an event that
    # carried none holds an empty personal part.
    assert isinstance(opened[0], Sealed)
    assert all(isinstance(p, Sealed) or p == Personal() for p in opened)
    assert "w" not in orjson.loads(kept[key])  # the data key is destroyed


def keys_changelog(worker: Worker) -> str:
    return f"{worker.process.app_id}-{KEYS_TABLE}-changelog"


async def ledger_topic(worker: Worker) -> str:
    """The worker's ledger topic (``ledger`` in its name), once it has one."""
    admin = AIOKafkaAdminClient(bootstrap_servers=worker.bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    found = sorted(t for t in topics if t.startswith(worker.process.app_id) and "ledger" in t)
    if not found:
        pytest.skip("needs the ledger: the worker has no ledger topic")
    return str(found[0])


def entries_of(reader: TopicReader, topic: str) -> list[Entry]:
    """The newest entry stored per record key, in offset order (a compacted topic's view)."""
    newest: dict[bytes | None, Any] = {}
    for record in reader.records:
        if record.topic == topic and record.value is not None:
            newest.pop(record.key, None)
            newest[record.key] = record
    out = []
    for record in newest.values():
        try:
            out.append(Entry.from_bytes(record.value))
        except CorruptEntry:
            continue
    return out
