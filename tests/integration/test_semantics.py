"""Decision semantics end to end: events in on the input topic, suppressions out per destination.

Runs the real worker against the broker with the shipped policy (streams/policy.example.toml).
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from bench.reference import erasures_owed
from streams.core.policy import load_policy
from streams.topology import DEFAULT_PARTITIONS, SUBJECTS_TABLE, partition_of
from tests.integration.scenario import Scenario, publish, told_when
from tests.support.kafka import TopicReader, event_record, produce
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

DM_EMAIL_HMS = ["customer-marketing", "newsletter", "partner-list-marketing", "customer-surveys"]


async def test_list_versus_global_unsubscribe(pipeline: Pipeline) -> None:
    one_list = Scenario("hms-se")
    one_list.add("unsubscribed", 1, purpose="customer-surveys")
    everything = Scenario("hms-se")
    everything.add("unsubscribed", 1)  # no purpose: every marketing purpose; no channel: email
    await publish(pipeline, one_list, everything)
    told = await told_when(
        pipeline, lambda t: len(t.messages(everything.subject_id)) >= 2 * len(DM_EMAIL_HMS)
    )
    assert told.messages(one_list.subject_id) == [
        ("email", "customer-surveys", "email", "suppress"),
        ("crm", "customer-surveys", "email", "suppress"),
    ]
    assert sorted(told.last(everything.subject_id)) == sorted(
        (d, p, "email") for p in DM_EMAIL_HMS for d in ("email", "crm")
    )
    assert set(told.last(everything.subject_id).values()) == {"suppress"}


async def test_double_opt_in_allows_only_after_confirmation(pipeline: Pipeline) -> None:
    s = Scenario("hms-se")
    s.add("consent.granted", 1, purpose="newsletter", identifiers={"email": "anna@example.org"})
    confirmed = s.add("consent.confirmed", 2, purpose="newsletter")
    await publish(pipeline, s)
    told = await told_when(pipeline, lambda t: len(t.messages(s.subject_id)) >= 2)
    assert told.messages(s.subject_id) == [
        ("email", "newsletter", "email", "allow"),
        ("crm", "newsletter", "email", "allow"),
    ]
    [(_, message), _] = told.raw(s.subject_id)
    assert message["caused_by_event_id"] == confirmed["event_id"]
    assert message["identifiers"] == {"email": "anna@example.org"}
    assert message["reason"] == "consent" and message["legal_basis"] == "consent"


async def test_out_of_order_and_duplicates(pipeline: Pipeline) -> None:
    late = Scenario("sms-tech")
    withdrawn = late.add("consent.withdrawn", 2, purpose="marketing-offers", channel="email")
    late.add("consent.granted", 1, purpose="marketing-offers", channel="email")  # arrives last
    dup = Scenario("kms-uk")
    unsubscribe = dup.add("unsubscribed", 1, purpose="marketing-email")
    dup.events.append(dict(unsubscribe))  # redelivered
    await publish(pipeline, late, dup)
    told = await told_when(pipeline, lambda t: len(t.raw(dup.subject_id)) >= 4)
    # The older grant changes nothing: the withdrawal (later in event time) still decides.
    assert told.messages(late.subject_id) == [
        ("email", "marketing-offers", "email", "suppress"),
        ("crm", "marketing-offers", "email", "suppress"),
    ]
    assert {v["caused_by_event_id"] for _, v in told.raw(late.subject_id)} == {
        withdrawn["event_id"]
    }
    # The duplicate restates the same instruction with the same id: idempotent downstream.
    raw = told.raw(dup.subject_id)
    assert len(raw) == 4
    ids = {(d, v["suppression_id"]) for d, v in raw}
    assert len(ids) == 2 and {v["action"] for _, v in raw} == {"suppress"}


async def test_objection_versus_legitimate_interest_versus_contract(pipeline: Pipeline) -> None:
    s = Scenario("kms-uk")
    s.add("objection.raised", 1, objection="legitimate_interest")
    await publish(pipeline, s)
    expected = {
        ("email", "marketing-email", "email"),
        ("crm", "marketing-email", "email"),
        ("crm", "sales-calls", "phone"),
        *((d, "lead-scoring", c) for d in ("email", "crm", "analytics") for c in ("web", "email")),
        ("analytics", "web-tracking", "web"),
    }
    told = await told_when(pipeline, lambda t: len(t.last(s.subject_id)) >= len(expected))
    assert set(told.last(s.subject_id)) == expected  # account-support (contract) untouched
    assert {v["reason"] for _, v in told.raw(s.subject_id)} == {"objection"}


async def test_gpc_and_a_controller_that_ignores_dnt(pipeline: Pipeline) -> None:
    gpc = Scenario("hms-contact-nl")
    gpc.add("consent.granted", 1, purpose="web-analytics")
    gpc.add("consent.granted", 1, purpose="ad-targeting")
    gpc.add("privacy.signal", 2, signal="gpc")
    dnt = Scenario("sms-tech")
    dnt.add("consent.granted", 1, purpose="marketing-offers", channel="email")
    dnt.add("privacy.signal", 2, signal="dnt")
    await publish(pipeline, gpc, dnt)
    told = await told_when(pipeline, lambda t: len(t.messages(gpc.subject_id)) >= 4)
    assert told.messages(gpc.subject_id) == [
        ("analytics", "web-analytics", "web", "allow"),
        ("analytics", "ad-targeting", "web", "allow"),
        ("analytics", "web-analytics", "web", "suppress"),
        ("analytics", "ad-targeting", "web", "suppress"),
    ]
    assert told.last(dnt.subject_id) == {
        ("email", "marketing-offers", "email"): "allow",
        ("crm", "marketing-offers", "email"): "allow",
    }


async def test_erasure_reaches_every_recipient_but_exempt_purposes(pipeline: Pipeline) -> None:
    s = Scenario("hms-se")
    s.add("consent.confirmed", 1, purpose="newsletter")
    s.add("erasure.requested", 2)
    await publish(pipeline, s)
    told = await told_when(
        pipeline, lambda t: ("crm", "marketing-automation", "web") in t.last(s.subject_id)
    )
    last = told.last(s.subject_id)
    assert last[("email", "newsletter", "email")] == "suppress"
    assert last[("crm", "event-attendance", "email")] == "suppress"  # a contract purpose it reaches
    assert last[("analytics", "web-analytics", "web")] == "suppress"
    # order-handling (contract) is exempt while orders need it: its decision stands, unannounced.
    assert not [pair for pair in last if pair[1] == "order-handling"]
    raw = told.raw(s.subject_id)
    erased = {
        (d, v["controller"], v["subject_id"], v["purpose"], v["channel"], v["caused_by_event_id"])
        for d, v in raw
        if v["action"] == "erase"
    }
    assert erased == erasures_owed(load_policy(), s.events)
    assert {v["reason"] for _, v in raw if v["action"] != "allow"} == {"erasure"}
    # Each erase is followed, for its destination and pair, by the suppression.
    sent = told.messages(s.subject_id)
    for n, (destination, purpose, channel, action) in enumerate(sent):
        if action == "erase":
            after = [a for d, p, c, a in sent[n + 1 :] if (d, p, c) == sent[n][:3]]
            assert after[:1] == ["suppress"], (destination, purpose, channel)


async def test_restriction_and_lift(pipeline: Pipeline) -> None:
    s = Scenario("kms-uk")
    s.add("restriction.requested", 1)
    lift = s.add("restriction.lifted", 2)
    await publish(pipeline, s)
    told = await told_when(
        pipeline, lambda t: t.last(s.subject_id).get(("crm", "account-support", "phone")) == "allow"
    )
    messages = told.raw(s.subject_id)
    suppressions = [v for _, v in messages if v["action"] == "suppress"]
    allows = [v for _, v in messages if v["action"] == "allow"]
    assert {v["reason"] for v in suppressions} == {"restricted"}
    assert {(v["purpose"], v["channel"]) for v in suppressions} == {
        (v["purpose"], v["channel"]) for v in allows
    }
    assert {v["caused_by_event_id"] for v in allows} == {lift["event_id"]}
    assert set(told.last(s.subject_id).values()) == {"allow"}


async def test_controller_isolation_and_channel_scoping(pipeline: Pipeline) -> None:
    kms = Scenario("kms-uk")
    kms.add("unsubscribed", 1, channel="email")
    sms = Scenario("sms-tech", subject_id=kms.subject_id)  # same subject id, other controller
    sms.add("consent.granted", 1, purpose="marketing-offers")  # every channel
    sms.add("consent.withdrawn", 2, purpose="marketing-offers", channel="phone")
    await publish(pipeline, kms, sms)
    told = await told_when(pipeline, lambda t: len(t.raw(kms.subject_id)) >= 4 + 4 + 2)
    by_controller: dict[str, set[tuple[str, str, str, str]]] = {}
    for destination, v in told.raw(kms.subject_id):
        by_controller.setdefault(v["controller"], set()).add(
            (destination, v["purpose"], v["channel"], v["action"])
        )
    assert by_controller["sms-tech"] == {
        ("email", "marketing-offers", "email", "allow"),
        ("crm", "marketing-offers", "email", "allow"),
        ("email", "marketing-offers", "phone", "allow"),
        ("crm", "marketing-offers", "phone", "allow"),
        ("email", "marketing-offers", "phone", "suppress"),
        ("crm", "marketing-offers", "phone", "suppress"),
    }
    assert {p for _, p, _, _ in by_controller["kms-uk"]} == {"marketing-email", "lead-scoring"}


async def test_keyless_records_are_routed_by_subject(pipeline: Pipeline) -> None:
    s = Scenario("hms-se")
    s.add("unsubscribed", 1, purpose="customer-marketing")
    await publish(pipeline, s, keyed=False)
    told = await told_when(pipeline, lambda t: len(t.messages(s.subject_id)) >= 2)
    assert told.messages(s.subject_id) == [
        ("email", "customer-marketing", "email", "suppress"),
        ("crm", "customer-marketing", "email", "suppress"),
    ]


async def test_logs_carry_no_personal_data(pipeline: Pipeline) -> None:
    """The worker's log after it has processed personal data of its own, keyed and keyless."""
    s = Scenario("hms-se")
    s.add("consent.granted", 1, purpose="newsletter", identifiers={"email": "anna@example.org"})
    s.add("consent.confirmed", 2, purpose="newsletter")
    keyless = Scenario("hms-se")
    keyless.add("unsubscribed", 1, purpose="customer-marketing")
    await publish(pipeline, s)
    await publish(pipeline, keyless, keyed=False)
    await told_when(
        pipeline,
        lambda t: len(t.messages(s.subject_id)) >= 2 and len(t.messages(keyless.subject_id)) >= 2,
    )
    log = pipeline.worker.log_path.read_text()
    assert "Ready" in log  # the log is the worker's, and it is not empty
    for personal in ("example.org", "anna@", "subject-"):
        assert personal not in log


async def test_keyed_keyless_and_misplaced_records_of_a_subject_meet_in_one_state(
    pipeline: Pipeline,
) -> None:
    """A grant on the fast path, a confirmation without a key and a withdrawal published to
    another partition than the default partitioner's (the last two take the repartition hop)
    all fold into the one state of the subject: allow after the confirmation, then suppress.
    """
    s = Scenario("hms-se")
    granted = s.add("consent.granted", 1, purpose="newsletter")
    confirmed = s.add("consent.confirmed", 2, purpose="newsletter")
    withdrawn = s.add("consent.withdrawn", 3, purpose="newsletter")
    topic = pipeline.topics.events
    await produce(pipeline.bootstrap, topic, [event_record(granted)])
    await produce(pipeline.bootstrap, topic, [event_record(confirmed, keyed=False)])
    await told_when(pipeline, lambda t: len(t.messages(s.subject_id)) >= 2, settle=False)
    home = partition_of(s.subject_id.encode(), DEFAULT_PARTITIONS)
    key, value = event_record(withdrawn)
    await produce_to(pipeline.bootstrap, topic, (home + 1) % DEFAULT_PARTITIONS, key, value)
    told = await told_when(pipeline, lambda t: len(t.messages(s.subject_id)) >= 4)
    assert told.messages(s.subject_id) == [  # per destination, in order
        ("email", "newsletter", "email", "allow"),
        ("email", "newsletter", "email", "suppress"),
        ("crm", "newsletter", "email", "allow"),
        ("crm", "newsletter", "email", "suppress"),
    ]
    # Stored where its keyed events arrive and where the decisions API looks for it.
    changelog = f"{pipeline.worker.app_id}-{SUBJECTS_TABLE}-changelog"
    key = f"hms-se/{s.subject_id}".encode()
    async with TopicReader(pipeline.bootstrap, changelog) as reader:
        await reader.until(lambda r: sum(x.key == key for x in r.records) >= 2, timeout=30)
    assert {x.partition for x in reader.records if x.key == key} == {home}


async def produce_to(
    bootstrap: str, topic: str, partition: int, key: bytes | None, value: bytes
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, partition=partition)
    finally:
        await producer.stop()
