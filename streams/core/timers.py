"""Due work: what a subject's clocks will ask for, and when, as plain values.

From a subject's state and the policy, :func:`due_work` lists every clock still running:

- ``expiry``: a consent in force ends ``consent_lifetime`` after the statement that gave it;
- ``reminder``: ``renewal_reminder`` before that, the controller is told (a notification);
- ``lapse``: a double opt-in still waiting ends ``confirmation_window`` after the request;
- ``retention``: a purpose's retention of all its data ends ``period`` after its anchor, for the
  anchors the state knows (see :data:`KNOWN_ANCHORS`), unless that end is already recorded;
- ``notice``: a consent in force stops counting at the effective date of the first later notice
  version that changes its purpose materially, unless the subject's clock (its latest event
  time) is already there: then the worker has decided it with the event that moved the clock.

Each item has a deterministic id (kind, controller, subject, purpose, channel, the cause's event
id and the due time), so the same state gives the same items and a re-fired item is a duplicate
of the first. Nothing here reads a clock: the worker decides which items are due by comparing
their time with its ``now`` (:func:`is_due`). Items become events with :func:`due_event`, which
fold like any other; a reminder becomes a notification with :func:`notification`.

:func:`fingerprint` names what an index of due work depends on besides the states, so a worker
can tell that a partition's index was built under another policy (or with the timers off) and
must be rebuilt from the stored states.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from hashlib import blake2b
from typing import Any, NamedTuple

import orjson

from schemas.notifications import NotificationKind
from schemas.vocabulary import EventType, Reason
from streams.core.calendars import zone
from streams.core.decisions import ControllerPlan, PairPlan, ends_at, subject_clock
from streams.core.notices import next_material
from streams.core.periods import Period
from streams.core.policy import Controller, Policy, Purpose
from streams.core.retention import Anchor, RetentionRule, Rounding, retention_due
from streams.core.state import SubjectState
from streams.core.statements import (
    ANY,
    RETENTION_END,
    Statement,
    from_micros,
    retention_scope,
    slot_key,
    to_micros,
)

#: What the worker's timers put in an event's ``source``.
SOURCE = "consent-streams timers"
#: Moves when the same state and policy give other due work (a new kind of clock, a rule read
#: differently): every index built before is then rebuilt.
INDEX_VERSION = 1
#: What an index holds when the timers do not run: nothing.
OFF = "off"
#: Parts of a purpose that no clock reads: changing them rebuilds no index.
_UNREAD = frozenset({"description", "title", "destinations"})


class Kind(StrEnum):
    EXPIRY = "expiry"
    REMINDER = "reminder"
    LAPSE = "lapse"
    RETENTION = "retention"
    NOTICE = "notice"


_EXPIRY, _REMINDER, _LAPSE = Kind.EXPIRY.value, Kind.REMINDER.value, Kind.LAPSE.value
_RETENTION, _NOTICE = Kind.RETENTION.value, Kind.NOTICE.value

#: The event each kind folds as (a reminder is a notification, not an event).
EVENT_TYPE: dict[Kind, EventType] = {
    Kind.EXPIRY: EventType.CONSENT_EXPIRED,
    Kind.LAPSE: EventType.CONFIRMATION_LAPSED,
    Kind.RETENTION: EventType.RETENTION_DUE,
    Kind.NOTICE: EventType.CONSENT_SUPERSEDED,
}

#: Retention anchors the state can place in time. The subject's last contact (or activity, or
#: account traffic): its latest statement from a publisher. ``collected``: the latest statement
#: about the purpose itself. Contract and event ends are not in any event yet.
KNOWN_ANCHORS = frozenset(
    {Anchor.LAST_CONTACT, Anchor.LAST_ACTIVITY, Anchor.ACCOUNT_INACTIVITY, Anchor.COLLECTED}
)
#: Statements a publisher made (the timers' own do not count as contact).
_PUBLISHED = frozenset(kind.value for kind in EventType) - {t.value for t in EVENT_TYPE.values()}


class Due(NamedTuple):
    """One clock's end for one subject."""

    at: int  # due time, microseconds since the epoch (UTC)
    kind: str  # a Kind value
    controller: str
    subject_id: str
    purpose: str
    channel: str | None  # None: every channel of the purpose (retention)
    cause: str  # event id of the statement the clock runs from
    until: int  # reminders: when the consent expires; others: ``at``
    rule: str  # the policy rule, for people reading the event ("consent_lifetime P13M")

    @property
    def id(self) -> str:
        return due_id(self)


def due_id(item: Due) -> str:
    parts = (item.kind, item.controller, item.subject_id, item.purpose, item.channel or ANY)
    material = "\x1f".join((*parts, item.cause, str(item.at)))
    return blake2b(material.encode(), digest_size=16).hexdigest()


def is_due(item: Due, now: datetime) -> bool:
    return item.at <= to_micros(now)


class _Retained(NamedTuple):
    purpose: Purpose
    rule: RetentionRule
    done: str  # the slot key of its recorded end
    same_end: int  # equal for rules whose end from the same anchor is the same (period, rounding)
    text: str  # the rule, for people reading the event


class ControllerClocks(NamedTuple):
    pairs: tuple[PairPlan, ...]  # pairs with a lifetime or a confirmation window
    retained: tuple[_Retained, ...]
    zone: tzinfo
    renewed: tuple[PairPlan, ...]  # pairs whose purpose a notice version changed materially

    def any(self) -> bool:
        return bool(self.pairs or self.retained or self.renewed)


class TimerPlan:
    """The policy's clocks, compiled once per controller."""

    def __init__(self, policy: Policy, plans: dict[str, ControllerPlan]) -> None:
        self.clocks: dict[str, ControllerClocks] = {
            name: _compile(controller, plans[name])
            for name, controller in policy.controllers.items()
        }

    def any(self) -> bool:
        """Whether the policy has a clock at all (otherwise nothing is ever due)."""
        return any(c.any() for c in self.clocks.values())

    def runs_clocks(self, controller: str) -> bool:
        clocks = self.clocks.get(controller)
        return clocks is not None and clocks.any()

    def due_work(self, controller: str, subject_id: str, state: SubjectState) -> list[Due]:
        """Every clock still running for the subject, in policy order."""
        clocks = self.clocks.get(controller)
        if clocks is None or not state.slots:
            return []
        out = list(_consent_clocks(clocks.pairs, controller, subject_id, state))
        if clocks.retained:
            out += _retention_clocks(clocks, controller, subject_id, state)
        if clocks.renewed:
            out += _notice_clocks(clocks.renewed, controller, subject_id, state)
        return out


def fingerprint(policy: Policy, running: bool) -> str:
    """What the due work of a stored state depends on, as a short stable hash: the controllers'
    purposes (without descriptions, titles and destinations), signal mappings, jurisdictions
    and notice versions, the policy's signals and :data:`INDEX_VERSION`. :data:`OFF` when the
    timers do not run."""
    if not running:
        return OFF
    controllers = {
        name: {
            "purposes": {
                purpose: model.model_dump(mode="json", exclude=set(_UNREAD))
                for purpose, model in controller.purposes.items()
            },
            **controller.model_dump(mode="json", include={"signals", "jurisdiction", "notices"}),
        }
        for name, controller in policy.controllers.items()
    }
    read = {
        "version": INDEX_VERSION,
        "signals": policy.model_dump(mode="json", include={"signals"}),
        "controllers": controllers,
    }
    return blake2b(orjson.dumps(read, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _compile(controller: Controller, plan: ControllerPlan) -> ControllerClocks:
    pairs = tuple(p for p in plan.pairs if p.lifetime is not None or p.window is not None)
    ends: dict[tuple[Period, Rounding], int] = {}
    retained = tuple(
        _Retained(
            purpose,
            rule,
            slot_key(retention_scope(purpose.name), RETENTION_END),
            ends.setdefault((rule.period, rule.rounding), len(ends)),
            f"retention {rule.period} from {rule.anchor.value}, then {rule.action.value}",
        )
        for purpose in controller.purposes.values()
        for rule in purpose.retention
        if not rule.data and rule.anchor in KNOWN_ANCHORS
    )
    where = zone(controller.jurisdiction) if controller.jurisdiction is not None else UTC
    return ControllerClocks(pairs, retained, where, plan.renewed)


@functools.cache
def _rule(name: str, period: Period) -> str:
    return f"{name} {period}"


def _consent_clocks(
    pairs: tuple[PairPlan, ...], controller: str, subject_id: str, state: SubjectState
) -> Iterator[Due]:
    get = state.slots.get
    # One grant for every channel is the cause of each channel's clock: count its end once.
    ends: dict[tuple[Period, int], int] = {}
    for pair in pairs:
        reason, cause = pair.consent_verdict(get)
        if cause is None:
            continue
        if reason is Reason.CONSENT and pair.lifetime is not None:
            kind, period, name = _EXPIRY, pair.lifetime, "consent_lifetime"
        elif reason is Reason.PENDING_CONFIRMATION and pair.window is not None:
            kind, period, name = _LAPSE, pair.window, "confirmation_window"
        else:
            continue
        end = ends.get((period, cause.at))
        if end is None:
            end = ends[(period, cause.at)] = ends_at(period, cause.at)
        head = (controller, subject_id, pair.name, pair.channel_name, cause.event_id)
        yield Due(end, kind, *head, end, _rule(name, period))
        lead = pair.purpose.renewal_reminder
        if kind is _EXPIRY and lead is not None:
            remind = _before(lead, end)
            if remind > cause.at:
                yield Due(remind, _REMINDER, *head, end, _rule("renewal_reminder", lead))


def _before(period: Period, end: int) -> int:
    try:
        return to_micros(period.before(from_micros(end)))
    except (OverflowError, ValueError):
        return end


def _retention_clocks(
    clocks: ControllerClocks, controller: str, subject_id: str, state: SubjectState
) -> Iterator[Due]:
    statements = state.slots
    contact, collected = _anchors(statements)
    # Rules of several purposes often share a period and an anchor: each end is computed once.
    ends: dict[tuple[int, int], int | None] = {}
    for retained in clocks.retained:
        rule = retained.rule
        name = retained.purpose.name
        anchor = collected.get(name) if rule.anchor is Anchor.COLLECTED else contact
        if anchor is None:
            continue
        found = (retained.same_end, anchor.at)
        if found in ends:
            end = ends[found]
        else:
            try:
                end = to_micros(retention_due(rule, from_micros(anchor.at), clocks.zone))
            except (OverflowError, ValueError):
                end = None  # beyond the calendar: never
            ends[found] = end
        if end is None:
            continue
        done = statements.get(retained.done)
        if done is not None and done.at >= end:
            continue
        yield Due(
            end, _RETENTION, controller, subject_id, name, None, anchor.event_id, end, retained.text
        )


def _anchors(statements: Mapping[str, Statement]) -> tuple[Statement | None, dict[str, Statement]]:
    """The latest statement a publisher made (the last contact), and per purpose the latest one
    about the purpose itself (its consent or unsubscribe slots): one pass over the slots."""
    contact: Statement | None = None
    collected: dict[str, Statement] = {}
    for key, s in statements.items():
        if s.type not in _PUBLISHED:
            continue
        if contact is None or s > contact:
            contact = s
        end = key.find("|", 2)
        if end > 2 and key[1] == "|" and key[0] in "cu":  # "c|<purpose>|<channel>#..." or "u|"
            purpose = key[2:end]
            best = collected.get(purpose)
            if best is None or s > best:
                collected[purpose] = s
    return contact, collected


def _notice_clocks(
    pairs: tuple[PairPlan, ...], controller: str, subject_id: str, state: SubjectState
) -> Iterator[Due]:
    """One item per consent statement a later material notice change will supersede (a grant
    for every channel is one consent: its event names no channel)."""
    clock = subject_clock(state)
    slots, seen = state.slots, set()
    for pair in pairs:
        if pair.verdict_of(state)[0] is not Reason.CONSENT:
            continue  # only a consent in force can stop counting (as PairPlan.reconsidered)
        grant, slot = None, ""
        for key in pair.grant_slots:
            found = slots.get(key)
            if found is not None and (grant is None or found > grant):
                grant, slot = found, key
        if grant is None or slot in seen:
            continue
        seen.add(slot)
        notice = next_material(
            pair.notices, pair.name, version=state.notices.get(slot), given_at=grant.occurred_at
        )
        if notice is None:
            continue
        at = to_micros(notice.effective)
        if at <= clock:
            continue  # decided already, when an event moved the subject's clock past it
        channel = slot.partition("#")[0].rpartition("|")[2]
        yield Due(
            at,
            _NOTICE,
            controller,
            subject_id,
            pair.name,
            None if channel == ANY else channel,
            grant.event_id,
            at,
            f"notice_version {notice.version}",
        )


def due_event(item: Due) -> dict[str, Any]:
    """The input event an expiry, lapse, retention end or notice change becomes (JSON-ready,
    contract 1.2)."""
    event: dict[str, Any] = {
        "event_id": item.id,
        "type": EVENT_TYPE[Kind(item.kind)].value,
        "occurred_at": from_micros(item.at),
        "controller": item.controller,
        "subject_id": item.subject_id,
        "purpose": item.purpose,
        "source": SOURCE,
        "evidence": {"cause_event_id": item.cause, "rule": item.rule},
        "schema_version": 1,
    }
    if item.channel is not None:
        event["channel"] = item.channel
    return event


def notification(item: Due, state: SubjectState, now: datetime) -> dict[str, Any]:
    """The renewal reminder a reminder item becomes (a ``ConsentNotification``, JSON-ready)."""
    return {
        "notification_id": item.id,
        "kind": NotificationKind.RENEWAL_REMINDER.value,
        "controller": item.controller,
        "subject_id": item.subject_id,
        "purpose": item.purpose,
        "channel": item.channel,
        "due_at": from_micros(item.at),
        "expires_at": from_micros(item.until),
        "consent_event_id": item.cause,
        "identifiers": state.known_identifiers(),
        "emitted_at": now.astimezone(UTC),
        "schema_version": 1,
    }
