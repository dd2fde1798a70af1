"""``consent-streams demo``: broker, worker and a scripted day of consent events, printed.

The scenario follows the shipped policy (written from the HMS, SMS Tech and KMS privacy notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.broker import wait_forever
from streams.process import WorkerProcess
from streams.settings import Settings
from streams.tables import render
from streams.topology import TopicNames
from streams.web.demo_credentials import DEMO_API_KEY, demo_environment
from streams.worker import bootstrap_servers

DAY = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Step:
    story: str
    events: tuple[dict[str, Any], ...]
    raw: bytes | None = None  # a malformed record instead of events


def _event(
    n: int, minute: int, type_: str, controller: str, subject: str, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": f"demo-{n:03d}",
        "type": type_,
        "occurred_at": (DAY + timedelta(minutes=minute)).isoformat(),
        "controller": controller,
        "subject_id": subject,
        "source": "demo",
        **fields,
    }


def scenario() -> list[Step]:
    anna = {"email": "anna.lind@example.se"}
    unsubscribe_all = _event(4, 60, "unsubscribed", "hms-se", "hms-c-1001", identifiers=anna)
    return [
        Step(
            "Anna signs up for the HMS newsletter (double opt-in): nothing is allowed yet",
            (
                _event(
                    1,
                    0,
                    "consent.granted",
                    "hms-se",
                    "hms-c-1001",
                    purpose="newsletter",
                    identifiers=anna,
                    evidence={"form": "footer-signup"},
                ),
            ),
        ),
        Step(
            "Anna clicks the confirmation link: newsletter allowed for email and CRM",
            (_event(2, 5, "consent.confirmed", "hms-se", "hms-c-1001", purpose="newsletter"),),
        ),
        Step(
            "Anna clicks 'unsubscribe from all': every HMS marketing purpose on email suppressed",
            (unsubscribe_all,),
        ),
        Step("The same unsubscribe is delivered again: same suppression ids", (unsubscribe_all,)),
        Step(
            "Ben, a KMS customer, objects to legitimate-interest processing (GDPR Art 21)",
            (
                _event(
                    5,
                    70,
                    "objection.raised",
                    "kms-uk",
                    "kms-ben",
                    objection="legitimate_interest",
                    identifiers={"email": "ben@example.co.uk"},
                ),
            ),
        ),
        Step(
            "Chloe accepts analytics and ad cookies at HMS Contact Centers, then sends GPC",
            (
                _event(
                    6,
                    80,
                    "consent.granted",
                    "hms-contact-nl",
                    "nl-chloe",
                    purpose="web-analytics",
                    identifiers={"cookie_id": "ck-7f3a"},
                ),
                _event(
                    7, 80, "consent.granted", "hms-contact-nl", "nl-chloe", purpose="ad-targeting"
                ),
                _event(8, 95, "privacy.signal", "hms-contact-nl", "nl-chloe", signal="gpc"),
            ),
        ),
        Step(
            "Dev opts in to SMS Tech offers and sends DNT, which SMS Tech's notice does not honour",
            (
                _event(
                    9,
                    100,
                    "consent.granted",
                    "sms-tech",
                    "sms-dev",
                    purpose="marketing-offers",
                    channel="email",
                    identifiers={"email": "dev@example.com"},
                ),
                _event(10, 101, "privacy.signal", "sms-tech", "sms-dev", signal="dnt"),
            ),
        ),
        Step(
            "Erik asks HMS to erase his data: every recipient is told (GDPR Art 17 and 19)",
            (_event(11, 110, "erasure.requested", "hms-se", "hms-c-2002"),),
        ),
        Step(
            "Fatima restricts processing at KMS while a complaint runs, then the restriction ends",
            (
                _event(12, 120, "restriction.requested", "kms-uk", "kms-fatima"),
                _event(13, 180, "restriction.lifted", "kms-uk", "kms-fatima"),
            ),
        ),
        Step(
            "Gus's withdrawal arrives before his older newsletter grant: the withdrawal still wins",
            (
                _event(
                    15, 200, "consent.withdrawn", "hms-contact-nl", "nl-gus", purpose="newsletter"
                ),
                _event(
                    14, 190, "consent.granted", "hms-contact-nl", "nl-gus", purpose="newsletter"
                ),
            ),
        ),
        Step(
            "A service publishes a malformed record: it goes to the dead-letter topic, intact",
            (),
            raw=b'{"event_id": "bad-1", "type": "consent.granted", "controller": "hms-se"}',
        ),
    ]


def _subjects(steps: list[Step]) -> list[tuple[str, str]]:
    """(controller, subject) in scenario order."""
    seen: dict[tuple[str, str], None] = {}
    for step in steps:
        for event in step.events:
            seen.setdefault((event["controller"], event["subject_id"]), None)
    return list(seen)


def _preferences(url: str, controller: str, subject: str) -> dict[str, Any]:
    """What the worker itself answers (GET .../preferences), with the demo's read key."""
    request = urllib.request.Request(
        f"{url}/v1/controllers/{controller}/subjects/{subject}/preferences",
        headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
    )
    for _ in range(50):  # the worker answers 503 while a rebalance is in flight
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return dict(orjson.loads(response.read()))
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise
            time.sleep(0.2)
    raise RuntimeError("the worker did not answer the preferences request")


async def _publish(bootstrap: str, topics: TopicNames, steps: list[Step]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n, step in enumerate(steps, 1):
            print(f"  {n:>2}. {step.story}")
            for event in step.events:
                await producer.send_and_wait(
                    topics.events, orjson.dumps(event), key=event["subject_id"].encode()
                )
            if step.raw is not None:
                await producer.send_and_wait(topics.events, step.raw)
    finally:
        await producer.stop()


async def _collect(bootstrap: str, topics: TopicNames, quiet: float = 4.0) -> list[Any]:
    """Read outputs until nothing new arrives for ``quiet`` seconds."""
    names = [*topics.suppressions.values(), topics.deadletter]
    consumer = AIOKafkaConsumer(*names, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        last = time.monotonic()
        while time.monotonic() - last < quiet or not records:
            batches = await consumer.getmany(timeout_ms=500)
            found = [r for batch in batches.values() for r in batch]
            if found:
                records += found
                last = time.monotonic()
            if time.monotonic() - last > 60:
                break
    finally:
        await consumer.stop()
    return records


def _report(url: str, topics: TopicNames, steps: list[Step], records: list[Any]) -> None:
    destination_of = {topic: d.value for d, topic in topics.suppressions.items()}
    messages = [(r, orjson.loads(r.value)) for r in records if r.topic in destination_of]
    # Group by cause (scenario order); per subject the topics keep event order.
    messages.sort(key=lambda m: (m[1]["caused_by_event_id"], m[0].timestamp))
    rows: list[tuple[str, ...]] = []
    for r, v in messages:
        rows.append(
            (
                destination_of[r.topic],
                v["controller"],
                v["subject_id"],
                v["purpose"],
                v["channel"],
                v["action"],
                v["reason"],
                v["caused_by_event_id"],
                v["suppression_id"][:8],
            )
        )
    print()
    print(
        render(
            [
                "to",
                "controller",
                "subject",
                "purpose",
                "channel",
                "action",
                "reason",
                "cause",
                "id",
            ],
            rows,
            f"Messages the destinations received ({len(rows)})",
        )
    )
    letters = [orjson.loads(r.value) for r in records if r.topic == topics.deadletter]
    print()
    print(
        render(
            ["payload (base64, intact)", "errors"],
            [
                (
                    v["payload_b64"][:40] + "...",
                    "; ".join(f"{e['loc'] or '<record>'}: {e['msg']}" for e in v["errors"]),
                )
                for v in letters
            ],
            f"Dead letters ({len(letters)})",
        )
    )
    rows = []
    for controller, subject in _subjects(steps):
        answer = _preferences(url, controller, subject)
        for d in answer["decisions"]:
            if d["caused_by_event_id"] is not None:
                rows.append(
                    (
                        controller,
                        subject,
                        d["purpose"],
                        d["channel"],
                        "yes" if d["allowed"] else "no",
                        d["reason"],
                        d["caused_by_event_id"],
                    )
                )
    print()
    print(
        render(
            ["controller", "subject", "purpose", "channel", "allowed", "reason", "because of"],
            rows,
            "Decisions that events changed, as the worker answers them "
            "(GET /v1/.../preferences; everything else follows the legal basis)",
        )
    )


@contextlib.contextmanager
def _worker(settings: Settings, bootstrap: str, data: Path) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(
        bootstrap,
        settings.app_id,
        data / "tables",
        data / "worker.log",
        web_port=settings.web_port,
        extra_env={"CONSENT_WEB_HOST": settings.web_host, **demo_environment()},
    )
    print(f"Starting a worker (log: {worker.log_path}) ...", flush=True)
    worker.start()
    try:
        yield worker
    finally:
        print("Stopping the worker ...", flush=True)
        worker.stop()


def run_demo(settings: Settings, keep_running: bool = True) -> int:
    steps = scenario()
    data = Path(tempfile.mkdtemp(prefix="consent-demo-"))
    topics = TopicNames.of(settings)
    with bootstrap_servers(settings) as bootstrap:
        print(f"Kafka-protocol broker at {bootstrap}")
        with _worker(settings, bootstrap, data) as worker:
            print(f"Worker ready at {worker.url} (GET /health, /ready)\n\nScenario:")
            asyncio.run(_publish(bootstrap, topics, steps))
            _report(worker.url, topics, steps, asyncio.run(_collect(bootstrap, topics)))
            if keep_running:
                print(
                    f"\nThe worker keeps running. Publish JSON events to '{topics.events}' at "
                    f"{bootstrap}, or ask it (demo key, see docs/api.md):\n"
                    f"  curl -H 'Authorization: Bearer {DEMO_API_KEY}' "
                    f"{worker.url}/v1/controllers/hms-se/subjects/hms-c-1001/decisions/newsletter"
                    "?channel=email\nCtrl-C stops worker and broker."
                )
                wait_forever()
    print("Stopped.")
    return 0


__all__ = ["run_demo", "scenario"]
