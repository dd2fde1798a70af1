"""Seeded inputs for ``consent.events``: one draw, configured by a :class:`Profile`.

Every stream is drawn the same way: subjects over the policy's controllers (some hot), an event
type from the profile's mix, a purpose and channel the type asks for (from the purposes the
subject's events meet on), an event time, identifiers and provenance; then each record is a new
event, a redelivery of a recent record or a malformed record, keyed by the subject id or not.
The profile says how much of each:

**Realistic** (:data:`REALISTIC`, the benchmarks' default): subjects belong to the controllers of
the shipped policy in their shares, a tenth of them get a third of the traffic, events cover
every event type with identifiers and provenance like real publishers send them (~260 bytes
each), times run through the day before ``now`` in publication order, with 1 % redeliveries,
~5 % late (out-of-order) events and 0.5 % malformed records. Every record is keyed by its
``subject_id``, as the contract asks publishers to do.

**Contested** (:data:`CONTESTED`, the resilience and integration tests', via :func:`contested`):
subject ids shared by two controllers, three purposes per subject so that events meet on the
same pairs, a mix that favours statements that interact, times on a few instants (equal event
times are common, some written with another offset), subjects' addresses that change, many
redeliveries and keyless records, shuffled. It stresses what the oracle (:mod:`bench.reference`)
judges rather than what production looks like.

The records depend on the spec only (and, for a profile without a fixed start, on the UTC day).
"""

from __future__ import annotations

import gc
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar

import orjson

from schemas.events import PURPOSE_TYPES
from schemas.vocabulary import Category, Channel, EventType, LegalBasis, Objection, Signal
from streams.core.policy import Controller, Policy, Purpose, load_policy

T = TypeVar("T")
Record = tuple[bytes | None, bytes]
#: (event type, weight)
Mix = tuple[tuple[EventType, float], ...]

#: (controller, share of subjects) in the shipped policy.
CONTROLLERS: tuple[tuple[str, float], ...] = (
    ("hms-se", 0.35),
    ("kms-uk", 0.30),
    ("hms-contact-nl", 0.20),
    ("sms-tech", 0.15),
)

TYPE_MIX: Mix = (
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

#: Grants against withdrawals, restrictions against lifts, confirmations for double opt-in.
CONTESTED_MIX: Mix = (
    (EventType.CONSENT_GRANTED, 22),
    (EventType.CONSENT_CONFIRMED, 12),
    (EventType.CONSENT_WITHDRAWN, 12),
    (EventType.UNSUBSCRIBED, 9),
    (EventType.OBJECTION_RAISED, 4),
    (EventType.PRIVACY_SIGNAL, 5),
    (EventType.ERASURE_REQUESTED, 1),
    (EventType.RESTRICTION_REQUESTED, 7),
    (EventType.RESTRICTION_LIFTED, 12),
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
CONTESTED_T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_PLUS_TWO = timezone(timedelta(hours=2))


@dataclass(frozen=True, slots=True)
class Profile:
    """How a stream is drawn, apart from its size and seed."""

    #: Controllers and their shares of the subjects (drawn); None: every controller of the
    #: policy in turn, so that a subject id belongs to the same controllers whatever the seed.
    controllers: tuple[tuple[str, float], ...] | None = CONTROLLERS
    #: Controllers that share one subject id (each pair is a subject of its own).
    shared_ids: int = 1
    #: The hot subjects (this share of them) get ``hot_traffic`` of the events.
    hot_subjects: float = 0.1
    hot_traffic: float = 0.33
    #: Purposes a subject's events name, drawn once per subject; None: all its controller's.
    purposes_per_subject: int | None = None
    mix: Mix = TYPE_MIX
    #: Event times run from ``start`` (None: ``spread`` and an hour before ``now``) over
    #: ``spread`` in publication order, as multiples of ``grain`` after ``start``.
    start: datetime | None = None
    spread: timedelta = timedelta(days=1)
    grain: timedelta = timedelta(milliseconds=1)
    #: Late events: up to ``late_by`` before their subject's latest event time.
    late_rate: float = 0.05
    late_by: timedelta = timedelta(hours=6)
    #: Event times written with a +02:00 offset instead of Z (the same instant).
    offset_rate: float = 0.0
    #: Emails that are one of the subject's other addresses (identifiers gained and changed).
    address_churn: float = 0.0
    #: Shares of the records that redeliver a recent one, and that are malformed (exact counts).
    duplicate_rate: float = 0.01
    malformed_rate: float = 0.005
    keyless_rate: float = 0.0
    #: Publish the records in random order instead of as drawn.
    shuffle: bool = False


REALISTIC = Profile()
CONTESTED = Profile(
    controllers=None,
    shared_ids=2,
    hot_traffic=0.0,
    purposes_per_subject=3,
    mix=CONTESTED_MIX,
    start=CONTESTED_T0,
    spread=timedelta(minutes=20),
    grain=timedelta(seconds=30),
    late_rate=0.1,
    late_by=timedelta(minutes=10),
    offset_rate=0.2,
    address_churn=0.5,
    duplicate_rate=0.15,
    malformed_rate=0.0,
    keyless_rate=0.2,
    shuffle=True,
)


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    events: int = 200_000  # records published, redeliveries and malformed ones included
    subjects: int = 20_000  # (controller, subject) pairs
    seed: int = 20261122
    profile: Profile = REALISTIC
    #: Starts subject and event ids; ``event_prefix``, if given, replaces it for event ids (the
    #: same subjects, new events).
    prefix: str = ""
    event_prefix: str | None = None


@dataclass(slots=True)
class Workload:
    spec: WorkloadSpec
    records: list[Record]
    kinds: Counter[str] = field(default_factory=Counter)
    #: The value of each distinct valid event, at its first delivery.
    distinct: list[bytes] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The distinct valid events (what the oracle decides over)."""
        return [orjson.loads(value) for value in self.distinct]

    @property
    def duplicates(self) -> int:
        return self.kinds["duplicate"]

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


class Draws(Protocol):
    """Where the choices of an event's shape come from: a seeded ``random.Random`` in the
    streams, Hypothesis in the property tests (it shrinks only what it drew itself)."""

    def chance(self, p: float) -> bool: ...

    def pick(self, options: Sequence[T]) -> T: ...


@dataclass(frozen=True, slots=True)
class Seeded:
    rng: random.Random

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)


#: An unsubscribe without a purpose: mostly email (the contract's default), sometimes the phone.
UNSUBSCRIBE_CHANNELS = (Channel.EMAIL, Channel.EMAIL, Channel.EMAIL, Channel.PHONE)


def scope(
    kind: EventType,
    purposes: Sequence[Purpose],
    draws: Draws,
    requests: Sequence[str] = ("no-such-request",),
) -> dict[str, Any]:
    """The fields the contract gives an event of ``kind`` besides the common ones, chosen among
    ``purposes`` (those the subject's events meet on): a purpose and perhaps one of its channels
    for consents and the timers' types (mostly consent purposes; mostly double opt-in ones for a
    confirmation), a marketing purpose or a channel for an unsubscribe, the objection, the signal,
    the access request a fulfilment names (one of ``requests``, event ids known or not); nothing
    for erasures, restrictions and access requests."""
    if kind in PURPOSE_TYPES:
        consented = [p for p in purposes if p.legal_basis is LegalBasis.CONSENT]
        pool = consented if consented and draws.chance(0.75) else purposes
        if kind is EventType.CONSENT_CONFIRMED:
            double = [p for p in purposes if p.double_opt_in]
            pool = double if double and draws.chance(0.9) else pool
        purpose = draws.pick(pool)
        if draws.chance(0.6):
            return {"purpose": purpose.name, "channel": draws.pick(purpose.channels)}
        return {"purpose": purpose.name}
    if kind is EventType.UNSUBSCRIBED:
        marketing = [p for p in purposes if p.has_category(Category.DIRECT_MARKETING)]
        if marketing and draws.chance(0.5):
            purpose = draws.pick(marketing)
            if draws.chance(0.8):
                return {"purpose": purpose.name, "channel": draws.pick(purpose.channels)}
            return {"purpose": purpose.name}
        return {"channel": draws.pick(UNSUBSCRIBE_CHANNELS)} if draws.chance(0.9) else {}
    if kind is EventType.OBJECTION_RAISED:
        return {"objection": draws.pick(list(Objection))}
    if kind is EventType.PRIVACY_SIGNAL:
        return {"signal": Signal.GPC if draws.chance(0.7) else Signal.DNT}
    if kind is EventType.ACCESS_FULFILLED:
        return {"request_id": draws.pick(requests)}
    return {}


@dataclass(slots=True)
class _Subject:
    id: str
    number: int
    controller: Controller
    purposes: list[Purpose]
    email: str
    last_at: datetime | None = None


class _Generator:
    def __init__(self, spec: WorkloadSpec, policy: Policy, now: datetime) -> None:
        self.spec = spec
        self.profile = spec.profile
        self.policy = policy
        self.rng = random.Random(spec.seed)
        self.draws = Seeded(self.rng)
        self.now = now
        self.start = self.profile.start or now - self.profile.spread - timedelta(hours=1)
        self.step = self.profile.spread / max(1, spec.events)
        self.subjects = self._subjects()
        self.hot = max(1, int(len(self.subjects) * self.profile.hot_subjects))
        self.types = [t for t, _ in self.profile.mix]
        self.type_weights = list(itertools.accumulate(w for _, w in self.profile.mix))
        self.event_prefix = spec.prefix if spec.event_prefix is None else spec.event_prefix

    def _subjects(self) -> list[_Subject]:
        profile, rng = self.profile, self.rng
        names = sorted(self.policy.controllers)
        out: list[_Subject] = []
        for number in range(-(-self.spec.subjects // profile.shared_ids)):
            subject_id = f"{self.spec.prefix}s{number:07d}"
            left = list(profile.controllers or ())
            for _ in range(
                min(profile.shared_ids, len(left or names), self.spec.subjects - len(out))
            ):
                if left:
                    name, _ = left.pop(rng.choices(range(len(left)), [w for _, w in left])[0])
                else:  # in turn: the same subject ids belong to the same controllers for any seed
                    name = names[len(out) % len(names)]
                controller = self.policy.controllers[name]
                purposes = sorted(controller.purposes.values(), key=lambda p: p.name)
                if profile.purposes_per_subject is not None:
                    purposes = rng.sample(
                        purposes, min(profile.purposes_per_subject, len(purposes))
                    )
                email = f"{subject_id}@example.org"
                out.append(_Subject(subject_id, number, controller, purposes, email))
        return out

    def subject(self) -> _Subject:
        if self.rng.random() < self.profile.hot_traffic:
            return self.subjects[self.rng.randrange(self.hot)]
        return self.subjects[self.rng.randrange(len(self.subjects))]

    def occurred_at(self, index: int, subject: _Subject) -> tuple[str, bool]:
        profile, rng = self.profile, self.rng
        at = self.start + self.step * index
        late = subject.last_at is not None and rng.random() < profile.late_rate
        if late:
            assert subject.last_at is not None
            at = subject.last_at - timedelta(
                seconds=rng.uniform(1, profile.late_by.total_seconds())
            )
        at = self.start + (at - self.start) // profile.grain * profile.grain
        subject.last_at = max(at, subject.last_at or at)
        if rng.random() < profile.offset_rate:
            return at.astimezone(_PLUS_TWO).isoformat(timespec="milliseconds"), late
        return rfc3339(at), late

    def event(self, index: int) -> tuple[dict[str, Any], _Subject, bool]:
        rng = self.rng
        subject = self.subject()
        controller = subject.controller
        kind = rng.choices(self.types, cum_weights=self.type_weights)[0]
        at, late = self.occurred_at(index, subject)
        event: dict[str, Any] = {
            "event_id": f"{self.event_prefix}{index:08d}-{rng.getrandbits(32):08x}",
            "type": kind.value,
            "occurred_at": at,
            "controller": controller.id,
            "subject_id": subject.id,
        }
        event.update(scope(kind, subject.purposes, self.draws))
        identifiers: dict[str, str] = {}
        if rng.random() < 0.7:
            email = subject.email
            if rng.random() < self.profile.address_churn:
                email = f"{subject.id}.{rng.randrange(3)}@example.org"
            identifiers["email"] = email
        if rng.random() < 0.2:
            identifiers["crm_id"] = f"CRM{subject.number:08d}"
        if kind is EventType.PRIVACY_SIGNAL or rng.random() < 0.1:
            identifiers["cookie_id"] = f"ck-{rng.getrandbits(48):012x}"
        if identifiers:
            event["identifiers"] = identifiers
        event["source"] = rng.choice(SOURCES)
        if controller.jurisdiction is not None and rng.random() < 0.5:
            event["jurisdiction"] = controller.jurisdiction
        if kind is EventType.CONSENT_GRANTED and controller.notices and rng.random() < 0.4:
            # The version in force: an older one would start a notice clock.
            event["notice_version"] = controller.notices[-1].version
            event["evidence"] = {"form": "signup", "ip_hash": f"{rng.getrandbits(64):016x}"}
        return event, subject, late

    def key(self, subject: _Subject) -> bytes | None:
        return None if self.rng.random() < self.profile.keyless_rate else subject.id.encode()

    def malformed(self, index: int) -> tuple[str, Record]:
        event, subject, _ = self.event(index)
        kind = self.rng.choice(MALFORMED_KINDS)
        key = self.key(subject)
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
            purpose = subject.purposes[0]
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
    """The records to publish, in order: the same spec (on the same UTC day unless the profile
    fixes its start), the same records."""
    if now is None:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    gen = _Generator(spec, policy or load_policy(), now)
    workload = Workload(spec, [])
    gc.disable()  # millions of small objects that live until the end: no cycles to find
    try:
        _fill(gen, workload)
    finally:
        gc.enable()
    if spec.profile.shuffle:
        gen.rng.shuffle(workload.records)
    return workload


def _fill(gen: _Generator, workload: Workload) -> None:
    spec, profile = workload.spec, workload.spec.profile
    rng = gen.rng
    # Exactly the profile's share of redeliveries and malformed records, at random places (none
    # first: a redelivery needs a record before it), so that a small workload has them too.
    duplicates = round(spec.events * profile.duplicate_rate)
    malformed = round(spec.events * profile.malformed_rate)
    places = rng.sample(range(1, spec.events), min(duplicates + malformed, max(0, spec.events - 1)))
    redelivered, broken = set(places[:duplicates]), set(places[duplicates:])
    recent: list[Record] = []
    for index in range(spec.events):
        if index in redelivered and recent:
            # A redelivery of a recent record: same key, same bytes.
            workload.records.append(rng.choice(recent))
            workload.kinds["duplicate"] += 1
            continue
        if index in broken:
            kind, record = gen.malformed(index)
            workload.records.append(record)
            workload.kinds[f"malformed:{kind}"] += 1
            continue
        event, subject, late = gen.event(index)
        record = (gen.key(subject), orjson.dumps(event))
        workload.records.append(record)
        workload.distinct.append(record[1])
        workload.kinds[event["type"]] += 1
        workload.kinds["late"] += late
        workload.kinds["keyless"] += record[0] is None
        recent.append(record)
        if len(recent) > 2000:
            del recent[:1000]
    workload.kinds += Counter()  # drop the zero counts


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
) -> Workload:
    """``events`` distinct events of the contested profile over ``subjects``
    (controller, subject) pairs of every controller, and ``duplicate_ratio`` as many again
    redelivered. Everything depends on ``seed`` only."""
    profile = replace(
        CONTESTED,
        duplicate_rate=duplicate_ratio / (1 + duplicate_ratio),
        keyless_rate=keyless_ratio,
    )
    spec = WorkloadSpec(
        events=events + round(events * duplicate_ratio),
        subjects=subjects,
        seed=seed,
        profile=profile,
        prefix=prefix,
        event_prefix=event_prefix,
    )
    return generate(spec, policy)


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
