"""Seeded inputs for ``consent.events``, in two profiles.

**Realistic** (:func:`generate`, the benchmarks' default): subjects belong to the controllers of
the shipped policy; events cover every event type, carry identifiers and provenance like real
publishers send them (~200 bytes each), and the stream has the untidiness of production:
redeliveries, late (out-of-order) events and a few malformed records. Every valid record is keyed
by its ``subject_id``, as the contract asks publishers to do.

**Contested** (:func:`contested`, the resilience and integration tests'): few distinct minutes
(equal event times are common), subject ids shared by two controllers, a few purposes per subject
so that events meet on the same pairs, keyless records and many redeliveries, shuffled. It
stresses what the oracle (:mod:`bench.reference`) judges rather than what production looks like.

The two draw in different orders; each is fixed by its seed (the realistic one by its day too).
"""

from __future__ import annotations

import gc
import itertools
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from schemas.vocabulary import Category, Channel, EventType, LegalBasis, Objection, Signal
from streams.core.policy import Controller, Policy, load_policy

#: (controller, share of subjects, jurisdiction)
CONTROLLERS: tuple[tuple[str, float, str], ...] = (
    ("hms-se", 0.35, "SE"),
    ("kms-uk", 0.30, "GB"),
    ("hms-contact-nl", 0.20, "NL"),
    ("sms-tech", 0.15, "GB"),
)

TYPE_MIX: tuple[tuple[EventType, float], ...] = (
    (EventType.CONSENT_GRANTED, 0.30),
    (EventType.CONSENT_CONFIRMED, 0.08),
    (EventType.CONSENT_WITHDRAWN, 0.14),
    (EventType.UNSUBSCRIBED, 0.24),
    (EventType.OBJECTION_RAISED, 0.05),
    (EventType.PRIVACY_SIGNAL, 0.15),
    (EventType.ERASURE_REQUESTED, 0.01),
    (EventType.RESTRICTION_REQUESTED, 0.015),
    (EventType.RESTRICTION_LIFTED, 0.015),
)

SOURCES = ("preference-centre", "crm", "email-service", "mobile-app", "support-desk", "web")
MALFORMED_KINDS = (
    "truncated-json",
    "missing-field",
    "unknown-controller",
    "unknown-purpose",
    "wrong-channel",
    "future-time",
    "key-mismatch",
    "unknown-type",
)

Record = tuple[bytes | None, bytes]


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    events: int = 200_000
    subjects: int = 20_000
    seed: int = 20261122
    duplicate_rate: float = 0.01
    late_rate: float = 0.05
    malformed_rate: float = 0.005


@dataclass(slots=True)
class Workload:
    spec: WorkloadSpec
    records: list[Record]
    kinds: Counter[str] = field(default_factory=Counter)

    @property
    def size_bytes(self) -> int:
        return sum(len(value) for _, value in self.records)

    def describe(self) -> dict[str, Any]:
        return {
            "events": len(self.records),
            "subjects": self.spec.subjects,
            "seed": self.spec.seed,
            "mean_record_bytes": round(self.size_bytes / max(1, len(self.records)), 1),
            "mix": dict(sorted(self.kinds.items())),
        }


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class _Subject:
    id: str
    controller: str
    jurisdiction: str
    email: str
    last_at: datetime | None = None


class _Generator:
    def __init__(self, spec: WorkloadSpec, policy: Policy, now: datetime) -> None:
        self.spec = spec
        self.policy = policy
        self.rng = random.Random(spec.seed)
        self.now = now
        # Event times span the day before ``now``, in publication order (late ones excepted).
        self.start = now - timedelta(days=1, hours=1)
        self.step = timedelta(days=1) / max(1, spec.events)
        self.subjects = self._subjects()
        self.hot = max(1, len(self.subjects) // 10)
        self.types = [t for t, _ in TYPE_MIX]
        self.type_weights = list(itertools.accumulate(w for _, w in TYPE_MIX))

    def _subjects(self) -> list[_Subject]:
        names = [c for c, _, _ in CONTROLLERS]
        weights = [w for _, w, _ in CONTROLLERS]
        places = {c: j for c, _, j in CONTROLLERS}
        out = []
        for i in range(self.spec.subjects):
            controller = self.rng.choices(names, weights)[0]
            subject_id = f"subj-{i:07d}"
            out.append(_Subject(subject_id, controller, places[controller], f"p{i}@example.org"))
        return out

    def subject(self) -> _Subject:
        # A tenth of the subjects get a third of the traffic.
        if self.rng.random() < 0.33:
            return self.subjects[self.rng.randrange(self.hot)]
        return self.subjects[self.rng.randrange(len(self.subjects))]

    def occurred_at(self, index: int, subject: _Subject) -> tuple[datetime, bool]:
        at = self.start + self.step * index
        late = subject.last_at is not None and self.rng.random() < self.spec.late_rate
        if late:
            assert subject.last_at is not None
            at = subject.last_at - timedelta(seconds=self.rng.uniform(1, 6 * 3600))
        subject.last_at = max(at, subject.last_at or at)
        return at, late

    def scope(self, kind: EventType, controller: Controller) -> dict[str, Any]:
        purposes = list(controller.purposes.values())
        rng = self.rng
        if kind in (EventType.CONSENT_GRANTED, EventType.CONSENT_WITHDRAWN):
            consented = [p for p in purposes if p.legal_basis is LegalBasis.CONSENT]
            pool = consented if consented and rng.random() < 0.75 else purposes
            purpose = rng.choice(pool)
            channel = rng.choice(purpose.channels) if rng.random() < 0.6 else None
            return {"purpose": purpose.name, "channel": channel}
        if kind is EventType.CONSENT_CONFIRMED:
            double = [p for p in purposes if p.double_opt_in]
            consented = [p for p in purposes if p.legal_basis is LegalBasis.CONSENT]
            purpose = rng.choice(double or consented or purposes)
            return {"purpose": purpose.name, "channel": purpose.channels[0]}
        if kind is EventType.UNSUBSCRIBED:
            marketing = [p for p in purposes if p.has_category(Category.DIRECT_MARKETING)]
            if marketing and rng.random() < 0.5:
                purpose = rng.choice(marketing)
                return {"purpose": purpose.name, "channel": rng.choice(purpose.channels)}
            return {"channel": rng.choice(["email", "email", "email", "phone"])}
        if kind is EventType.OBJECTION_RAISED:
            return {
                "objection": rng.choice(["direct_marketing", "profiling", "legitimate_interest"])
            }
        if kind is EventType.PRIVACY_SIGNAL:
            return {"signal": "gpc" if rng.random() < 0.7 else "dnt"}
        return {}

    def event(self, index: int) -> tuple[dict[str, Any], _Subject, bool]:
        rng = self.rng
        subject = self.subject()
        controller = self.policy.controllers[subject.controller]
        kind = rng.choices(self.types, cum_weights=self.type_weights)[0]
        at, late = self.occurred_at(index, subject)
        event: dict[str, Any] = {
            "event_id": f"{index:08d}-{rng.getrandbits(32):08x}",
            "type": kind.value,
            "occurred_at": rfc3339(at),
            "controller": subject.controller,
            "subject_id": subject.id,
        }
        event.update({k: v for k, v in self.scope(kind, controller).items() if v is not None})
        identifiers: dict[str, str] = {}
        if rng.random() < 0.7:
            identifiers["email"] = subject.email
        if rng.random() < 0.2:
            identifiers["crm_id"] = f"CRM{int(subject.id[5:]):08d}"
        if kind is EventType.PRIVACY_SIGNAL or rng.random() < 0.1:
            identifiers["cookie_id"] = f"ck-{rng.getrandbits(48):012x}"
        if identifiers:
            event["identifiers"] = identifiers
        event["source"] = rng.choice(SOURCES)
        if rng.random() < 0.5:
            event["jurisdiction"] = subject.jurisdiction
        if kind is EventType.CONSENT_GRANTED and rng.random() < 0.4:
            event["notice_version"] = "2023-03-30"
            event["evidence"] = {"form": "signup", "ip_hash": f"{rng.getrandbits(64):016x}"}
        return event, subject, late

    def malformed(self, index: int) -> tuple[str, Record]:
        event, subject, _ = self.event(index)
        kind = self.rng.choice(MALFORMED_KINDS)
        key: bytes | None = subject.id.encode()
        if kind == "truncated-json":
            return kind, (key, orjson.dumps(event)[: self.rng.randrange(10, 60)])
        if kind == "missing-field":
            del event["occurred_at"]
        elif kind == "unknown-controller":
            event["controller"] = "acme-unknown"
        elif kind == "unknown-purpose":
            event.update(type="consent.granted", purpose="no-such-purpose")
            event.pop("channel", None)
        elif kind == "wrong-channel":
            purpose = next(iter(self.policy.controllers[subject.controller].purposes.values()))
            event.update(type="consent.granted", purpose=purpose.name, channel="post")
            if "post" in purpose.channels:
                event["channel"] = "web"
        elif kind == "future-time":
            event["occurred_at"] = rfc3339(self.now + timedelta(days=2))
        elif kind == "key-mismatch":
            key = f"{subject.id}-other".encode()
        else:
            event["type"] = "consent.maybe"
        return kind, (key, orjson.dumps(event))


def generate(
    spec: WorkloadSpec, policy: Policy | None = None, now: datetime | None = None
) -> Workload:
    """The records to publish, in order: the same spec on the same (UTC) day, the same records."""
    if now is None:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    gen = _Generator(spec, policy or load_policy(), now)
    workload = Workload(spec, [])
    gc.disable()  # millions of small objects that live until the end: no cycles to find
    try:
        _fill(gen, workload)
    finally:
        gc.enable()
    return workload


def _fill(gen: _Generator, workload: Workload) -> None:
    spec = workload.spec
    recent: list[Record] = []
    rng = gen.rng
    for index in range(spec.events):
        roll = rng.random()
        if roll < spec.duplicate_rate and recent:
            # A redelivery of a recent record: same key, same bytes.
            workload.records.append(rng.choice(recent))
            workload.kinds["duplicate"] += 1
            continue
        if roll < spec.duplicate_rate + spec.malformed_rate:
            kind, record = gen.malformed(index)
            workload.records.append(record)
            workload.kinds[f"malformed:{kind}"] += 1
            continue
        event, subject, late = gen.event(index)
        record = (subject.id.encode(), orjson.dumps(event))
        workload.records.append(record)
        workload.kinds[event["type"]] += 1
        if late:
            workload.kinds["late"] += 1
        recent.append(record)
        if len(recent) > 2000:
            del recent[:1000]


def probe_event(
    controller: str, subject_id: str, kind: EventType, event_id: str, at: datetime, **scope: str
) -> Record:
    """One valid record, for latency probes and recovery checks."""
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": kind.value,
        "occurred_at": rfc3339(at),
        "controller": controller,
        "subject_id": subject_id,
        "source": "bench",
        **scope,
    }
    return subject_id.encode(), orjson.dumps(event)


# -- the contested profile ---------------------------------------------------------------------

CONTESTED_T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_PLUS_TWO = timezone(timedelta(hours=2))

#: Contested weights favour the statements that interact: grants against withdrawals,
#: restrictions and lifts, and confirmations for double opt-in purposes.
CONTESTED_WEIGHTS: dict[str, int] = {
    "consent.granted": 22,
    "consent.confirmed": 12,
    "consent.withdrawn": 12,
    "unsubscribed": 9,
    "objection.raised": 4,
    "privacy.signal": 5,
    "erasure.requested": 1,
    "restriction.requested": 7,
    "restriction.lifted": 12,
}


@dataclass(frozen=True)
class ContestedWorkload:
    seed: int
    events: tuple[dict[str, Any], ...]  # distinct logical events
    records: tuple[Record, ...]  # arrival order: shuffled, with redelivered duplicates

    @property
    def duplicates(self) -> int:
        return len(self.records) - len(self.events)


def contested(
    policy: Policy,
    seed: int,
    *,
    events: int,
    subjects: int,
    duplicate_ratio: float = 0.15,
    keyless_ratio: float = 0.2,
    prefix: str = "",
    event_prefix: str | None = None,
) -> ContestedWorkload:
    """``events`` distinct events over ``subjects`` (controller, subject) pairs of every controller.

    Subject ids are shared by two controllers each, times fall on a few minutes (equal event
    times are common), a share of records has no key, and ``duplicate_ratio`` of the events is
    published twice. Everything depends on ``seed`` only. ``prefix`` starts subject and event
    ids; ``event_prefix``, if given, replaces it for event ids (same subjects, new events).
    """
    rng = random.Random(seed)
    controllers = sorted(policy.controllers)
    owners = [
        (controllers[k % len(controllers)], f"{prefix}s{k // 2:04d}") for k in range(subjects)
    ]
    focus = {owner: _focus(policy, owner[0], rng) for owner in owners}
    types = list(CONTESTED_WEIGHTS)
    weights = list(CONTESTED_WEIGHTS.values())
    out: list[dict[str, Any]] = []
    for n in range(events):
        owner = rng.choice(owners)
        type_ = rng.choices(types, weights)[0]
        event_id = f"{prefix if event_prefix is None else event_prefix}e{n:06d}"
        out.append(_event(policy, rng, event_id, type_, owner, focus[owner]))
    records = [_record(e, rng, keyless_ratio) for e in out]
    records += [
        _record(rng.choice(out), rng, keyless_ratio) for _ in range(int(events * duplicate_ratio))
    ]
    rng.shuffle(records)
    return ContestedWorkload(seed, tuple(out), tuple(records))


def _focus(policy: Policy, controller: str, rng: random.Random) -> list[str]:
    """A few purposes per subject, so that its events meet on the same pairs."""
    purposes = sorted(policy.controllers[controller].purposes)
    return rng.sample(purposes, k=min(3, len(purposes)))


def _event(
    policy: Policy,
    rng: random.Random,
    event_id: str,
    type_: str,
    owner: tuple[str, str],
    focus: Sequence[str],
) -> dict[str, Any]:
    controller_id, subject_id = owner
    controller = policy.controllers[controller_id]
    moment = CONTESTED_T0 + timedelta(minutes=rng.randrange(20), seconds=rng.choice((0, 0, 0, 30)))
    event: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        # The same instant is sometimes written with another offset.
        "occurred_at": (moment if rng.random() < 0.8 else moment.astimezone(_PLUS_TWO))
        .isoformat()
        .replace("+00:00", "Z"),
        "controller": controller_id,
        "subject_id": subject_id,
    }
    if type_.startswith("consent."):
        purpose = controller.purposes[rng.choice(focus)]
        event["purpose"] = purpose.name
        if rng.random() < 0.6:
            event["channel"] = rng.choice(purpose.channels).value
    elif type_ == "unsubscribed":
        marketing = [
            name
            for name in focus
            if controller.purposes[name].has_category(Category.DIRECT_MARKETING)
        ]
        if marketing and rng.random() < 0.6:
            purpose = controller.purposes[rng.choice(marketing)]
            event["purpose"] = purpose.name
            if rng.random() < 0.7:
                event["channel"] = rng.choice(purpose.channels).value
        elif rng.random() < 0.5:
            event["channel"] = rng.choice(list(Channel)).value
    elif type_ == "objection.raised":
        event["objection"] = rng.choice(list(Objection)).value
    elif type_ == "privacy.signal":
        event["signal"] = rng.choice(list(Signal)).value
    if rng.random() < 0.3:
        event["identifiers"] = {"email": f"{subject_id}.{rng.randrange(3)}@example.org"}
    if rng.random() < 0.2:
        event["source"] = rng.choice(("crm", "web-form", "email-platform"))
    return event


def _record(event: Mapping[str, Any], rng: random.Random, keyless_ratio: float) -> Record:
    key = None if rng.random() < keyless_ratio else str(event["subject_id"]).encode()
    return key, orjson.dumps(event)
