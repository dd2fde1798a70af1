"""Legal deadline clocks: which deadline an opt-out or a request runs against, and how well
each one was honoured.

Every opt-out (``unsubscribed``, ``consent.withdrawn``, ``objection.raised``,
``privacy.signal``) and request (``erasure.requested``, ``restriction.requested``,
``access.requested``) starts a :class:`Clock` at its ``occurred_at``. Of the rules that apply to
it (see :func:`applicable`), the one that runs out first is its deadline. The pipeline stops the
clock once it is honoured (an access request: once an ``access.fulfilled`` names it, see
:func:`fulfils`) and records it in a :class:`Summary` per controller and rule. Pure: times come
in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas.events import ConsentEvent
from schemas.vocabulary import Category, Channel, EventType, Objection, Signal
from streams.core.calendars import Jurisdiction, zone
from streams.core.deadlines import (
    LEGAL_DEADLINES,
    DeadlineRule,
    LegalDeadline,
    RequestKind,
    deadline,
)
from streams.core.periods import Period
from streams.core.policy import Controller, Policy

OPT_OUTS = frozenset(
    {
        EventType.UNSUBSCRIBED,
        EventType.CONSENT_WITHDRAWN,
        EventType.OBJECTION_RAISED,
        EventType.PRIVACY_SIGNAL,
    }
)
REQUESTS = frozenset(
    {EventType.ERASURE_REQUESTED, EventType.RESTRICTION_REQUESTED, EventType.ACCESS_REQUESTED}
)
#: Requests answered outside the worker: their clock stays open until confirmed.
CONFIRMED_REQUESTS = frozenset({EventType.ACCESS_REQUESTED})
#: The GDPR and the UK GDPR: the controllers' jurisdictions where one month applies.
GDPR_HOMES = frozenset({Jurisdiction.SE, Jurisdiction.NL, Jurisdiction.GB})
#: Subjects' countries (event ``jurisdiction``) where the GDPR or the UK GDPR protects them.
_EEA_AND_UK = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IS "
_EEA_AND_UK += "IT LI LT LU LV MT NL NO PL PT RO SE SI SK GB"
GDPR_COUNTRIES = frozenset(_EEA_AND_UK.split(" "))
#: Channels of commercial electronic messages (CASL); CAN-SPAM and the bulk sender rules are
#: about email only.
_ELECTRONIC = frozenset({Channel.EMAIL, Channel.SMS})
#: A controller's own promise about requests: the rule name it is reported under.
PROMISE_PREFIX = "promise_"


class Stop(StrEnum):
    """What stops a clock."""

    #: Every instruction the event caused is acknowledged by the broker, for every destination
    #: (for an erasure request, its ``erase`` instructions and the destruction of the subject's
    #: data key, which travel with them).
    SENT = "sent"
    #: Work outside the worker is confirmed (``ClockBook.complete``): an access export handed
    #: over (``access.fulfilled``), later a destination's acknowledgement. The clock stays open
    #: until then.
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class Clock:
    """One running deadline: an opt-out or a request and when it must have been honoured."""

    controller: str
    subject_id: str
    event_id: str
    type: str  # EventType value
    rule: str  # a LegalDeadline value, or "promise_requests"
    started: datetime  # the event's occurred_at
    deadline: datetime
    stop: Stop = Stop.SENT

    @property
    def allowed(self) -> timedelta:
        """The time the rule gives (deadline minus start)."""
        return self.deadline - self.started

    def remaining(self, now: datetime) -> timedelta:
        return self.deadline - now

    def to_json(self) -> dict[str, Any]:
        return {
            "controller": self.controller,
            "subject_id": self.subject_id,
            "event_id": self.event_id,
            "type": self.type,
            "rule": self.rule,
            "started": self.started.isoformat(),
            "deadline": self.deadline.isoformat(),
            "stop": self.stop.value,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Clock:
        return cls(
            controller=raw["controller"],
            subject_id=raw["subject_id"],
            event_id=raw["event_id"],
            type=raw["type"],
            rule=raw["rule"],
            started=datetime.fromisoformat(raw["started"]),
            deadline=datetime.fromisoformat(raw["deadline"]),
            stop=Stop(raw["stop"]),
        )


Rule = LegalDeadline | DeadlineRule


def _country(event: ConsentEvent) -> str | None:
    return event.jurisdiction.partition("-")[0] if event.jurisdiction else None


def marketing_channels(event: ConsentEvent, controller: Controller) -> frozenset[Channel]:
    """The channels on which the event stops direct marketing (where the email and CASL rules
    reach)."""
    kind = event.type
    if kind is EventType.UNSUBSCRIBED:
        return frozenset({event.channel or Channel.EMAIL})
    if kind is EventType.CONSENT_WITHDRAWN:
        purpose = controller.purposes.get(event.purpose or "")
        if purpose is None or not purpose.has_category(Category.DIRECT_MARKETING):
            return frozenset()
        return frozenset(purpose.channels if event.channel is None else (event.channel,))
    if kind is EventType.OBJECTION_RAISED and event.objection is Objection.DIRECT_MARKETING:
        return frozenset(
            channel
            for purpose in controller.purposes.values()
            if purpose.has_category(Category.DIRECT_MARKETING)
            for channel in purpose.channels
        )
    return frozenset()


def applicable(
    event: ConsentEvent, controller: Controller
) -> list[tuple[str, Rule, Jurisdiction | None]]:
    """Every rule that sets a deadline for the event: (name, rule, calendar).

    - email marketing stopped: Gmail/Yahoo bulk sender rule (2 days), and CAN-SPAM when the
      subject or the controller is in the US;
    - email or SMS marketing stopped, subject or controller in Canada: CASL;
    - a GPC signal: the CCPA (its opt-out preference signal; a browser header says nothing
      reliable about residence, so the stricter reading applies to every sender);
    - any opt-out or request under the GDPR (controller in SE, NL or GB, or subject in the
      EEA or the UK): one month (art. 12(3)); withdrawals and signals included, as the outer
      bound of "without undue delay";
    - requests and objections: the controller's own ``requests`` promise;
    - an access request from a subject in the US, or at a US controller: 45 calendar days
      (CCPA request to know, read for every US subject as the GPC rule is).
    """
    kind = event.type
    if kind not in OPT_OUTS and kind not in REQUESTS:
        return []
    country, home = _country(event), controller.jurisdiction
    found: list[tuple[str, Rule, Jurisdiction | None]] = []
    channels = marketing_channels(event, controller)
    in_us = country == "US" or home is Jurisdiction.US
    in_ca = country == "CA" or home is Jurisdiction.CA
    if Channel.EMAIL in channels:
        rule = LegalDeadline.BULK_SENDER_UNSUBSCRIBE
        found.append((rule.value, rule, None))
        if in_us:
            rule = LegalDeadline.CAN_SPAM_OPT_OUT
            found.append((rule.value, rule, Jurisdiction.US))
    if channels & _ELECTRONIC and in_ca:
        rule = LegalDeadline.CASL_UNSUBSCRIBE
        found.append((rule.value, rule, Jurisdiction.CA))
    if kind is EventType.PRIVACY_SIGNAL and event.signal is Signal.GPC:
        rule = LegalDeadline.CCPA_OPT_OUT
        found.append((rule.value, rule, Jurisdiction.US))
    if kind is EventType.ACCESS_REQUESTED and in_us:
        rule = LegalDeadline.CCPA_REQUEST_TO_KNOW
        found.append((rule.value, rule, Jurisdiction.US))
    if home in GDPR_HOMES or country in GDPR_COUNTRIES:
        calendar = home if home in GDPR_HOMES else _ours(country)
        rule = LegalDeadline.GDPR_REQUEST
        found.append((rule.value, rule, calendar))
    promise = controller.promises.get(RequestKind.REQUESTS)
    if promise is not None and (kind in REQUESTS or kind is EventType.OBJECTION_RAISED):
        found.append((PROMISE_PREFIX + RequestKind.REQUESTS.value, promise, home))
    return found


def _ours(country: str | None) -> Jurisdiction | None:
    try:
        return Jurisdiction(country) if country else None
    except ValueError:
        return None


def due(rule: Rule, start: datetime, calendar: Jurisdiction | None) -> datetime:
    """:func:`deadline`; without a calendar, a calendar-day rule runs its exact period (never
    later than any calendar's reading) and business days are weekdays in UTC."""
    if calendar is not None:
        return deadline(rule, start, calendar)
    found = LEGAL_DEADLINES[rule] if isinstance(rule, LegalDeadline) else rule
    if found.within is not None:
        return found.within.after(start.astimezone(UTC))
    assert found.business_days is not None
    day, left = start.astimezone(UTC).date(), found.business_days
    while left:
        day += timedelta(days=1)
        left -= day.weekday() < 5
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def clock_for(event: ConsentEvent, controller: Controller) -> Clock | None:
    """The clock the event starts: the strictest applicable rule; None when no rule applies
    (or none can be counted: a deadline before year 1 or after 9999)."""
    return _clock(event, applicable(event, controller), due)


Due = Callable[[Rule, datetime, Jurisdiction | None], datetime]


def _clock(
    event: ConsentEvent, rules: list[tuple[str, Rule, Jurisdiction | None]], due: Due
) -> Clock | None:
    if not rules:
        return None
    start = event.occurred_at
    deadlines = []
    for name, rule, calendar in rules:
        try:
            deadlines.append((name, due(rule, start, calendar)))
        except OverflowError:  # an event dated at the edge of the calendar (year 1)
            continue
    if not deadlines:
        return None
    # The earliest; the first listed on a tie.
    name, when = min(deadlines, key=lambda item: item[1])
    stop = Stop.CONFIRMED if event.type in CONFIRMED_REQUESTS else Stop.SENT
    return Clock(
        event.controller,
        event.subject_id,
        event.event_id,
        event.type.value,
        name,
        start,
        when,
        stop,
    )


def fulfils(event: ConsentEvent, clock: Clock) -> bool:
    """Whether ``event`` stops ``clock`` (one waiting for confirmation): an ``access.fulfilled``
    naming the clock's access request, for the same subject at the same controller."""
    return (
        event.type is EventType.ACCESS_FULFILLED
        and clock.type == EventType.ACCESS_REQUESTED.value
        and event.request_id == clock.event_id
        and event.controller == clock.controller
        and event.subject_id == clock.subject_id
    )


class ClockRules:
    """:func:`clock_for` over a policy, remembering what repeats: the rules per kind of event,
    and deadlines that depend only on the day of receipt, per day (a worker's hot path).

    Both memories are bounded (emptied when full); the answers are :func:`clock_for`'s.
    """

    LIMIT = 50_000

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._rules: dict[tuple[object, ...], list[tuple[str, Rule, Jurisdiction | None]]] = {}
        self._days: dict[tuple[object, ...], datetime] = {}

    def clock_for(self, event: ConsentEvent) -> Clock | None:
        kind = (
            event.controller,
            event.type,
            event.channel,
            event.purpose,
            event.objection,
            event.signal,
            event.jurisdiction,
        )
        rules = self._rules.get(kind)
        if rules is None:
            if len(self._rules) >= self.LIMIT:
                self._rules.clear()
            rules = applicable(event, self.policy.controllers[event.controller])
            self._rules[kind] = rules
        return _clock(event, rules, self._due)

    def _due(self, rule: Rule, start: datetime, calendar: Jurisdiction | None) -> datetime:
        found = LEGAL_DEADLINES[rule] if isinstance(rule, LegalDeadline) else rule
        by_day = calendar is not None and (
            found.business_days is not None
            or (found.end_of_day and found.within is not None and _whole_days(found.within))
        )
        if not by_day:
            return due(rule, start, calendar)
        assert calendar is not None
        key = (id(found), calendar, start.astimezone(zone(calendar)).date())
        when = self._days.get(key)
        if when is None:
            if len(self._days) >= self.LIMIT:
                self._days.clear()
            when = self._days[key] = due(rule, start, calendar)
        return when


def _whole_days(period: Period) -> bool:
    """Whether adding ``period`` to a moment moves its date by a fixed rule (no time part)."""
    return not (period.exact.seconds or period.exact.microseconds)


# -- how clocks were honoured ------------------------------------------------------------

#: Histogram resolution of the report's time to honour: 8 buckets per doubling (9 % wide).
_PER_DOUBLING = 8
#: The shortest time told apart (anything faster is in the first bucket).
_FLOOR_SECONDS = 0.001


def bucket_of(seconds: float) -> int:
    """The bucket index of a duration: bucket ``i`` holds durations up to ``2 ** (i / 8)``."""
    return math.ceil(_PER_DOUBLING * math.log2(max(seconds, _FLOOR_SECONDS)))


def bucket_bound(index: int) -> float:
    return float(2 ** (index / _PER_DOUBLING))


@dataclass(frozen=True, slots=True)
class Summary:
    """How the closed clocks of one controller and rule were honoured (mergeable)."""

    count: int = 0
    met: int = 0
    missed: int = 0
    #: The largest time to honour as a fraction of the time allowed, and in seconds.
    worst_fraction: float = 0.0
    worst_seconds: float = 0.0
    #: Time to honour in seconds, as a sparse log histogram (see :func:`bucket_of`).
    buckets: dict[int, int] = field(default_factory=dict)

    def record(self, clock: Clock, honoured_at: datetime) -> Summary:
        taken = max((honoured_at - clock.started).total_seconds(), 0.0)
        fraction = taken / max(clock.allowed.total_seconds(), 1.0)
        met = honoured_at <= clock.deadline
        index = bucket_of(taken)
        return Summary(
            count=self.count + 1,
            met=self.met + met,
            missed=self.missed + (not met),
            worst_fraction=max(self.worst_fraction, fraction),
            worst_seconds=max(self.worst_seconds, taken),
            buckets={**self.buckets, index: self.buckets.get(index, 0) + 1},
        )

    def merge(self, other: Summary) -> Summary:
        buckets = dict(self.buckets)
        for index, n in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + n
        return replace(
            self,
            count=self.count + other.count,
            met=self.met + other.met,
            missed=self.missed + other.missed,
            worst_fraction=max(self.worst_fraction, other.worst_fraction),
            worst_seconds=max(self.worst_seconds, other.worst_seconds),
            buckets=buckets,
        )

    def quantile(self, q: float) -> float | None:
        """The time to honour (seconds) that a fraction ``q`` of the clocks did not exceed, as
        its bucket's upper bound (at most 9 % high), capped at the worst; None when empty."""
        if not self.count:
            return None
        rank, seen = q * self.count, 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(bucket_bound(index), self.worst_seconds)
        return self.worst_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "met": self.met,
            "missed": self.missed,
            "worst_fraction": self.worst_fraction,
            "worst_seconds": self.worst_seconds,
            "buckets": {str(index): n for index, n in sorted(self.buckets.items())},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Summary:
        return cls(
            count=raw["count"],
            met=raw["met"],
            missed=raw["missed"],
            worst_fraction=raw["worst_fraction"],
            worst_seconds=raw["worst_seconds"],
            buckets={int(index): n for index, n in raw["buckets"].items()},
        )
