"""Timers end to end: clocks come due within the test (periods of seconds in a test policy).

A real worker on the broker, with a policy whose consents last seconds: each test publishes
ordinary events at the wall clock's time and reads what the timers made of them: events on the
input topic, instructions on the destination topics, reminders on the notification topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.vocabulary import Destination
from streams.topology import DEFAULT_PARTITIONS
from tests.support.http import Api
from tests.support.kafka import TopicReader, event_record, produce, unique
from tests.support.pipeline import Pipeline, pipeline_for
from tests.support.timers import clocked_policy, timers_on

pytestmark = pytest.mark.integration

LIFETIME = 6  # seconds: offers
REMINDER = 3  # seconds before the expiry
WINDOW = 3  # seconds: newsletter's confirmation window
RETENTION = 3  # seconds after the last contact: enquiries
#: noticed's second notice version, changing offers materially, takes effect during the module.
NOTICE_AT = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)

POLICY = (
    clocked_policy(LIFETIME, WINDOW, reminder=REMINDER)
    + f"""
[controllers.kept]
name = "Kept Ltd"

[controllers.kept.purposes.updates]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = []

[controllers.kept.purposes.enquiries]
legal_basis = "legitimate_interest"
categories = ["essential"]
channels = ["email"]
destinations = ["crm"]

[[controllers.kept.purposes.enquiries.retention]]
period = "PT{RETENTION}S"
anchor = "last_contact"
action = "erase"

[controllers.noticed]
name = "Noticed BV"

[[controllers.noticed.notices]]
version = "v1"
effective = 2026-01-01

[[controllers.noticed.notices]]
version = "v2"
effective = {NOTICE_AT.isoformat()}
material = ["offers"]

[controllers.noticed.purposes.offers]
legal_basis = "consent"
categories = ["direct_marketing"]
channels = ["email"]
destinations = ["email"]
"""
)


@pytest.fixture(scope="module")
def clocked(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    tmp: Path = tmp_path_factory.mktemp("timers")
    running = pipeline_for(bootstrap, tmp, **timers_on(tmp, POLICY, 0.2))
    try:
        running.worker.start()
        yield running
    finally:
        running.worker.stop()


def event(type_: str, controller: str, subject: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": unique("evt"),
        "type": type_,
        "occurred_at": at.isoformat(),
        "controller": controller,
        "subject_id": subject,
        **fields,
    }


def wall() -> datetime:
    return datetime.now(UTC)


async def send(pipeline: Pipeline, *events: dict[str, Any]) -> None:
    await produce(pipeline.bootstrap, pipeline.topics.events, [event_record(e) for e in events])


def reader(pipeline: Pipeline) -> TopicReader:
    topics = pipeline.topics
    return TopicReader(
        pipeline.bootstrap, topics.events, *topics.suppressions.values(), topics.notifications
    )


def of(r: TopicReader, topic: str, subject: str) -> list[dict[str, Any]]:
    return [v for v in r.values(topic) if v.get("subject_id") == subject]


async def test_a_grant_expires_and_the_destination_is_told_to_suppress(clocked: Pipeline) -> None:
    subject = unique("subject")
    grant = event("consent.granted", "clocked", subject, wall(), purpose="offers")
    email = clocked.topics.suppressions[Destination.EMAIL]
    async with reader(clocked) as r:
        await send(clocked, grant)
        await r.until(lambda r: len(of(r, email, subject)) >= 2, timeout=LIFETIME + 30)
        allow, suppress = of(r, email, subject)
        assert allow["action"] == "allow" and allow["caused_by_event_id"] == grant["event_id"]
        assert suppress["action"] == "suppress" and suppress["reason"] == "expired"
        [expired] = [
            e for e in of(r, clocked.topics.events, subject) if e["type"] == "consent.expired"
        ]
        assert suppress["caused_by_event_id"] == expired["event_id"]
        assert expired["evidence"]["cause_event_id"] == grant["event_id"]
        assert expired["purpose"] == "offers" and expired["channel"] == "email"
        due = datetime.fromisoformat(grant["occurred_at"]) + timedelta(seconds=LIFETIME)
        assert datetime.fromisoformat(expired["occurred_at"]) == due  # event time, not wall
        assert suppress["effective_at"] == expired["occurred_at"].replace("+00:00", "Z")


async def test_a_renewal_before_expiry_wins(clocked: Pipeline) -> None:
    subject = unique("subject")
    first = event("consent.granted", "clocked", subject, wall(), purpose="offers")
    email = clocked.topics.suppressions[Destination.EMAIL]
    async with reader(clocked) as r:
        await send(clocked, first)
        await r.until(lambda r: len(of(r, email, subject)) >= 1, timeout=30)
        await asyncio.sleep(1)
        renewal = event("consent.granted", "clocked", subject, wall(), purpose="offers")
        await send(clocked, renewal)
        await r.until(lambda r: len(of(r, email, subject)) >= 2, timeout=LIFETIME + 30)
    allow, suppress = of(r, email, subject)  # the renewal changed no decision: nothing to say
    assert (allow["action"], suppress["action"]) == ("allow", "suppress")
    expired = [e for e in of(r, clocked.topics.events, subject) if e["type"] == "consent.expired"]
    # The first grant's timer was removed when the renewal was folded: it never fired.
    assert [e["evidence"]["cause_event_id"] for e in expired] == [renewal["event_id"]]
    assert suppress["caused_by_event_id"] == expired[0]["event_id"]


async def test_a_renewal_reminder_reaches_the_notification_topic(clocked: Pipeline) -> None:
    subject = unique("subject")
    grant = event(
        "consent.granted",
        "clocked",
        subject,
        wall(),
        purpose="offers",
        identifiers={"email": "ada@example.org"},
    )
    topic = clocked.topics.notifications
    async with reader(clocked) as r:
        await send(clocked, grant)
        await r.until(lambda r: len(of(r, topic, subject)) >= 1, timeout=LIFETIME + 30)
    [reminder] = of(r, topic, subject)
    expires = datetime.fromisoformat(grant["occurred_at"]) + timedelta(seconds=LIFETIME)
    assert reminder["kind"] == "renewal_reminder"
    assert reminder["consent_event_id"] == grant["event_id"]
    assert datetime.fromisoformat(reminder["expires_at"]) == expires
    assert datetime.fromisoformat(reminder["due_at"]) == expires - timedelta(seconds=REMINDER)
    assert reminder["identifiers"] == {"email": "ada@example.org"}
    assert (reminder["purpose"], reminder["channel"]) == ("offers", "email")


async def test_an_unconfirmed_double_opt_in_lapses_and_its_data_is_erased(
    clocked: Pipeline,
) -> None:
    subject = unique("subject")
    signup = event("consent.granted", "clocked", subject, wall(), purpose="newsletter")
    confirmed = unique("subject")
    signed = event("consent.granted", "clocked", confirmed, wall(), purpose="newsletter")
    confirm = event("consent.confirmed", "clocked", confirmed, wall(), purpose="newsletter")
    email = clocked.topics.suppressions[Destination.EMAIL]
    async with reader(clocked) as r:
        await send(clocked, signup, signed, confirm)
        await r.until(lambda r: len(of(r, email, subject)) >= 2, timeout=WINDOW + 30)
        await asyncio.sleep(WINDOW)  # the confirmed sign-up's window has passed as well
        await r.poll(1.0)
    erase, suppress = of(r, email, subject)
    [lapsed] = [
        e for e in of(r, clocked.topics.events, subject) if e["type"] == "confirmation.lapsed"
    ]
    assert erase["action"] == "erase" and erase["reason"] == "expired"
    assert erase["caused_by_event_id"] == lapsed["event_id"]
    # Then the decision, as after any erase: not allowed (expired), told as suppress.
    assert (suppress["action"], suppress["reason"]) == ("suppress", "expired")
    assert suppress["caused_by_event_id"] == lapsed["event_id"]
    assert lapsed["evidence"]["cause_event_id"] == signup["event_id"]
    # The confirmed one was allowed and nothing lapsed.
    assert [m["action"] for m in of(r, email, confirmed)] == ["allow"]
    kinds = {e["type"] for e in of(r, clocked.topics.events, confirmed)}
    assert kinds == {"consent.granted", "consent.confirmed"}


async def test_retention_end_fires_and_erases_the_purposes_data(clocked: Pipeline) -> None:
    subject = unique("subject")
    contact = event("consent.granted", "kept", subject, wall(), purpose="updates")
    crm = clocked.topics.suppressions[Destination.CRM]
    async with reader(clocked) as r:
        await send(clocked, contact)
        await r.until(lambda r: len(of(r, crm, subject)) >= 2, timeout=RETENTION + 30)
    erase, decision = of(r, crm, subject)
    [due] = [e for e in of(r, clocked.topics.events, subject) if e["type"] == "retention.due"]
    assert due["purpose"] == "enquiries" and "channel" not in due
    assert due["evidence"]["cause_event_id"] == contact["event_id"]
    end = datetime.fromisoformat(contact["occurred_at"]) + timedelta(seconds=RETENTION)
    assert datetime.fromisoformat(due["occurred_at"]) == end
    assert (erase["action"], erase["reason"], erase["purpose"]) == ("erase", "expired", "enquiries")
    assert erase["caused_by_event_id"] == due["event_id"]
    # The decision follows: enquiries (legitimate interest) stays allowed; only the data goes.
    assert (decision["action"], decision["reason"]) == ("allow", "legitimate_interest")


async def test_a_material_notice_change_suppresses_at_its_effective_date(
    clocked: Pipeline,
) -> None:
    """No event of the subject's after the change: the timer tells the destination."""
    subject = unique("subject")
    given = min(wall(), NOTICE_AT - timedelta(seconds=2))  # under v1, a few seconds before v2
    grant = event("consent.granted", "noticed", subject, given, purpose="offers")
    email = clocked.topics.suppressions[Destination.EMAIL]
    wait = (NOTICE_AT - wall()).total_seconds()
    async with reader(clocked) as r:
        await send(clocked, grant)
        await r.until(lambda r: len(of(r, email, subject)) >= 2, timeout=max(wait, 0) + 30)
    allow, suppress = of(r, email, subject)
    assert (allow["action"], allow["caused_by_event_id"]) == ("allow", grant["event_id"])
    assert (suppress["action"], suppress["reason"]) == ("suppress", "reconsent_required")
    assert suppress["caused_by_event_id"] == grant["event_id"]  # the consent that stopped counting
    assert datetime.fromisoformat(suppress["effective_at"]) == NOTICE_AT
    assert datetime.fromisoformat(suppress["emitted_at"]) >= NOTICE_AT  # not before the date
    [superseded] = [
        e for e in of(r, clocked.topics.events, subject) if e["type"] == "consent.superseded"
    ]
    assert datetime.fromisoformat(superseded["occurred_at"]) == NOTICE_AT
    assert superseded["evidence"] == {
        "cause_event_id": grant["event_id"],
        "rule": "notice_version v2",
    }


async def test_metrics_show_indexed_and_fired_clocks_and_how_late_they_are(
    clocked: Pipeline,
) -> None:
    subject = unique("subject")
    grant = event("consent.granted", "clocked", subject, wall(), purpose="offers")
    email = clocked.topics.suppressions[Destination.EMAIL]
    api = Api(clocked.worker.url, None)
    async with reader(clocked) as r:
        await send(clocked, grant)
        await r.until(lambda r: len(of(r, email, subject)) >= 1, timeout=30)
        indexed = timer_samples((await api.get("/metrics")).text)
        await r.until(lambda r: len(of(r, email, subject)) >= 2, timeout=LIFETIME + 30)
    assert indexed[("consent_streams_timers_indexed", "expiry")] >= 1  # this grant's, at least
    assert ("consent_streams_timers_indexed", "notice") in indexed
    found = timer_samples((await api.get("/metrics")).text)
    assert found[("consent_streams_timers_fired_total", "expiry")] >= 1
    assert found[("consent_streams_timers_fired_total", "reminder")] >= 1
    # The ticker keeps up: nothing waits long past its due time.
    assert 0 <= found[("consent_streams_timers_oldest_overdue_seconds", "")] < 5


def timer_samples(text: str) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("kind", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("consent_streams_timers")
        for sample in family.samples
    }


#: A policy change, across a restart: offers first without a lifetime, then with a short one
#: (newsletter's lifetime keeps the timers running under both).
OFFERS_LIFETIME = f'consent_lifetime = "PT{LIFETIME}S"\nrenewal_reminder = "PT{REMINDER}S"\n'


def lifetimes(offers: str) -> str:
    assert OFFERS_LIFETIME in POLICY
    return POLICY.replace(OFFERS_LIFETIME, offers, 1)


ADDED_LIFETIME = 3  # seconds: shorter than a restart, so it is due when the worker is back


async def test_a_lifetime_added_to_the_policy_expires_consents_given_before_it(
    bootstrap: str, tmp_path: Path
) -> None:
    """The subject sends nothing after its grant: the restarted worker rebuilds the timer
    index from the stored states under the new policy, and the consent expires; a restart
    under the same policy rebuilds nothing."""
    policy = tmp_path / "policy.toml"
    policy.write_text(lifetimes(""))
    pipeline = pipeline_for(
        bootstrap,
        tmp_path,
        CONSENT_POLICY_FILE=str(policy),
        CONSENT_TIMERS="true",
        CONSENT_TIMER_INTERVAL="0.2",
        CONSENT_PRODUCER_MAX_BATCH_SIZE="1",  # restarted: see the broker notes
    )
    worker = pipeline.worker
    subject = unique("subject")
    grant = event("consent.granted", "clocked", subject, wall(), purpose="offers")
    email = pipeline.topics.suppressions[Destination.EMAIL]
    worker.start()
    try:
        async with reader(pipeline) as r:
            await send(pipeline, grant)
            await r.until(lambda r: len(of(r, email, subject)) >= 1, timeout=30)
    finally:
        worker.stop()

    policy.write_text(lifetimes(f'consent_lifetime = "PT{ADDED_LIFETIME}S"\n'))
    worker.start()
    try:
        async with reader(pipeline) as r:
            await r.until(lambda r: suppressed(of(r, email, subject)), timeout=60)
            metrics = timer_samples((await Api(worker.url, None).get("/metrics")).text)
    finally:
        worker.stop()
    # The grant may be folded again after the restart (its offset not yet committed at the
    # stop): a redelivery restates its allow.
    *allowed, suppress = of(r, email, subject)
    assert {(m["action"], m["caused_by_event_id"]) for m in allowed} == {
        ("allow", grant["event_id"])
    }
    assert (suppress["action"], suppress["reason"]) == ("suppress", "expired")
    # Nothing of the subject's after the grant: the expiry is the timer's own event.
    grant_event, expired = of(r, pipeline.topics.events, subject)
    assert grant_event["event_id"] == grant["event_id"]
    assert expired["type"] == "consent.expired"
    assert expired["evidence"]["cause_event_id"] == grant["event_id"]
    assert suppress["caused_by_event_id"] == expired["event_id"]
    due = datetime.fromisoformat(grant["occurred_at"]) + timedelta(seconds=ADDED_LIFETIME)
    assert datetime.fromisoformat(expired["occurred_at"]) == due
    assert metrics[("consent_streams_timers_reindexed_subjects_total", "")] >= 1

    # The same policy again: every partition's index is found up to date, none is rebuilt.
    seen = worker.log_path.stat().st_size
    worker.start()
    try:
        lines = await logged_after(
            worker.log_path, seen, "timer index up to date", DEFAULT_PARTITIONS
        )
        metrics = timer_samples((await Api(worker.url, None).get("/metrics")).text)
    finally:
        worker.stop()
    assert not [line for line in lines if "timer index rebuilt" in line]
    assert metrics[("consent_streams_timers_reindexed_subjects_total", "")] == 0


def suppressed(messages: list[dict[str, Any]]) -> bool:
    return any(m["action"] == "suppress" for m in messages)


async def logged_after(path: Path, offset: int, message: str, count: int) -> list[str]:
    """The log's lines after ``offset``, once ``count`` of them carry ``message``."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        with path.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        if sum(f'"msg":"{message}"' in line for line in lines) >= count:
            return lines
        assert asyncio.get_running_loop().time() < deadline, f"{message!r} not logged {count}x"
        await asyncio.sleep(0.2)
