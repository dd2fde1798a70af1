"""Effective decisions: what the recorded statements mean for one (purpose, channel).

The policy is compiled once into a :class:`PairPlan` per (controller, purpose, channel): which
slots apply to it. Deciding is then a few dictionary look-ups and ``max`` over tuples.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from orjson import dumps

from schemas.vocabulary import (
    Category,
    Channel,
    Destination,
    EventType,
    LegalBasis,
    Objection,
    Reason,
    Signal,
)
from streams.core.notices import NoticeVersion, superseded_by
from streams.core.periods import Period
from streams.core.policy import Policy, Purpose
from streams.core.retention import Action as RetentionAction
from streams.core.state import SubjectState
from streams.core.statements import (
    ANY,
    CONFIRMED,
    DENIAL,
    DENIAL_REASON,
    ERASURE_SCOPE,
    EXPIRY,
    GRANT,
    LAPSE,
    RESTRICTION,
    RESTRICTION_SCOPE,
    Statement,
    consent_scope,
    from_micros,
    objection_scope,
    signal_scope,
    slot_key,
    to_micros,
    unsubscribe_scope,
)

_DEFAULT_REASON: dict[LegalBasis, Reason] = {
    LegalBasis.CONSENT: Reason.NO_CONSENT,
    LegalBasis.LEGITIMATE_INTEREST: Reason.LEGITIMATE_INTEREST,
    LegalBasis.CONTRACT: Reason.CONTRACT,
    LegalBasis.LEGAL_OBLIGATION: Reason.LEGAL_OBLIGATION,
}
_RESTRICTION_SLOT = slot_key(RESTRICTION_SCOPE, RESTRICTION)
_SERIALS = itertools.count()


Verdict = tuple[Reason, Statement | None]  # a decision's reason and cause


class PairState(StrEnum):
    """What downstream systems have to know about a (purpose, channel)."""

    ALLOWED = "allowed"
    SUPPRESSED = "suppressed"  # denied by an opt-out
    NOT_ALLOWED = "not_allowed"  # no consent yet, or a double opt-in waiting for confirmation


STATE_OF: dict[Reason, PairState] = {
    **dict.fromkeys(
        (Reason.CONSENT, Reason.LEGITIMATE_INTEREST, Reason.CONTRACT, Reason.LEGAL_OBLIGATION),
        PairState.ALLOWED,
    ),
    Reason.NO_CONSENT: PairState.NOT_ALLOWED,
    Reason.PENDING_CONFIRMATION: PairState.NOT_ALLOWED,
    Reason.EXPIRED: PairState.NOT_ALLOWED,
    Reason.RECONSENT_REQUIRED: PairState.NOT_ALLOWED,
    **dict.fromkeys(DENIAL_REASON.values(), PairState.SUPPRESSED),
}


@dataclass(frozen=True, slots=True)
class Ruling:
    """The engine's decision for one (purpose, channel) of a subject, with what it rests on."""

    purpose: Purpose
    channel: Channel
    reason: Reason
    cause: Statement | None  # the statement that makes the decision what it is; None = default

    @property
    def state(self) -> PairState:
        return STATE_OF[self.reason]

    @property
    def allowed(self) -> bool:
        return STATE_OF[self.reason] is PairState.ALLOWED


@dataclass(frozen=True, slots=True)
class PairPlan:
    """Where the statements that apply to one (purpose, channel) are kept."""

    purpose: Purpose
    channel: Channel
    grant_slots: tuple[str, ...]
    confirmed_slots: tuple[str, ...]
    denial_slots: tuple[str, ...]
    restrictable: bool
    erasable: bool  # an erasure request denies it and erases its data downstream
    default: Reason
    # Plain strings for messages, computed once (enum attribute access is slow on a hot path).
    name: str
    channel_name: str
    legal_basis: str
    destinations: tuple[Destination, ...]
    destination_names: tuple[str, ...]  # the destinations' values, as the ledger records them
    double_opt_in: bool
    id_part: str  # "purpose\x1fchannel", as suppression ids join it
    serial: int  # unique among all plans ever compiled: the key of memoised verdicts
    # Clocks (streams/core/timers.py emits the statements these slots hold).
    expiry_slots: tuple[str, ...] = ()
    lapse_slots: tuple[str, ...] = ()
    lifetime: Period | None = None
    window: Period | None = None
    #: the purpose's retention of all its data ends in erasure: retention.due erases
    erased_at_retention_end: bool = False
    #: The controller's notice versions, when one of them changed this purpose materially
    #: (empty otherwise: then no decision of the pair depends on time).
    notices: tuple[NoticeVersion, ...] = ()
    #: The pair's fixed parts of an instruction's JSON (purpose and channel up to the reason's
    #: value; legal basis up to effective_at's), encoded once: see streams.core.engine.
    json_pair: bytes = b""
    json_basis: bytes = b""

    def decide(self, state: SubjectState, now: datetime | None = None) -> Ruling:
        """The decision at ``now``; without it, at the subject's clock (:func:`subject_clock`),
        which is what the worker last emitted for the pair."""
        reason, cause = self.verdict_of(state)
        if self.notices:
            moment = subject_clock(state)
            if now is not None:
                moment = max(moment, to_micros(now))
            reason, cause = self.reconsidered(state, (reason, cause), moment)
        return Ruling(self.purpose, self.channel, reason, cause)

    def reconsidered(self, state: SubjectState, verdict: Verdict, at: int) -> Verdict:
        """``verdict`` at ``at`` (microseconds): a consent given before a later notice version
        in force by then changed the purpose materially no longer counts.

        The cause becomes the grant that stopped counting, dated when it stopped (the new
        version's effective date), so the instruction says when and what.
        """
        if not self.notices or verdict[0] is not Reason.CONSENT:
            return verdict
        slots, grant, slot = state.slots, None, ""
        for key in self.grant_slots:
            found = slots.get(key)
            if found is not None and (grant is None or found > grant):
                grant, slot = found, key
        if grant is None:
            return verdict
        notice = superseded_by(
            self.notices,
            self.name,
            from_micros(at),
            version=state.notices.get(slot),
            given_at=grant.occurred_at,
        )
        if notice is None:
            return verdict
        since = to_micros(notice.effective)
        return Reason.RECONSENT_REQUIRED, Statement(since, 0, grant.event_id, grant.type)

    def verdict_of(self, state: SubjectState) -> Verdict:
        """:meth:`verdict` for ``state``, memoised in it."""
        found: Verdict | None = state.verdicts.get(self.serial)
        if found is None:
            found = state.verdicts[self.serial] = self.verdict(state.slots.get)
        return found

    def verdict(self, get: Callable[[str], Statement | None]) -> Verdict:
        """The decision's reason and cause, given the state's slot look-up (the hot path)."""
        reason, cause = self.consent_verdict(get)
        restriction = get(_RESTRICTION_SLOT) if self.restrictable else None
        if restriction is None:
            return reason, cause
        if restriction.type == EventType.RESTRICTION_REQUESTED:
            return Reason.RESTRICTED, restriction
        # A lift later than the underlying cause is what made the decision effective again.
        if cause is None or restriction > cause:
            return reason, restriction
        return reason, cause

    def consent_verdict(self, get: Callable[[str], Statement | None]) -> Verdict:
        """The decision before any restriction: what grants, denials and clocks say."""
        grant = _latest(get, self.grant_slots)
        denial = _latest(get, self.denial_slots)
        reason: Reason
        cause: Statement | None
        if grant is None and denial is None:
            reason, cause = self.default, None
        elif grant is None or (denial is not None and denial > grant):
            assert denial is not None
            reason, cause = DENIAL_REASON[denial.type], denial
        elif self.double_opt_in:
            confirmed = _latest(get, self.confirmed_slots)
            if confirmed is not None and (denial is None or confirmed > denial):
                reason, cause = Reason.CONSENT, max(grant, confirmed)
            else:
                reason, cause = Reason.PENDING_CONFIRMATION, grant
        else:
            reason, cause = Reason.CONSENT, grant
        if cause is not None and (self.lifetime is not None or self.window is not None):
            return self._clocked(get, reason, cause)
        return reason, cause

    def _clocked(
        self, get: Callable[[str], Statement | None], reason: Reason, cause: Statement
    ) -> Verdict:
        """A consent whose lifetime ran out is expired, and so is a double opt-in whose window
        closed unconfirmed; but only if the expiry or lapse is not earlier than the end of the
        consent or request in force now: a renewal in between wins (order-independent)."""
        if reason is Reason.CONSENT and self.lifetime is not None:
            period, slots = self.lifetime, self.expiry_slots
        elif reason is Reason.PENDING_CONFIRMATION and self.window is not None:
            period, slots = self.window, self.lapse_slots
        else:
            return reason, cause
        ended = _latest(get, slots)
        if ended is not None and ended.at >= ends_at(period, cause.at):
            return Reason.EXPIRED, ended
        return reason, cause


def _latest(get: Callable[[str], Statement | None], keys: tuple[str, ...]) -> Statement | None:
    """The greatest statement in ``keys`` (``max`` over those present, without its iterators:
    this runs for every decision)."""
    found = None
    for key in keys:
        statement = get(key)
        if statement is not None and (found is None or statement > found):
            found = statement
    return found


#: An end beyond the calendar (year 9999): never.
NEVER = 2**63 - 1


def ends_at(period: Period, start: int) -> int:
    """``start`` plus ``period``, both in microseconds since the epoch (UTC)."""
    try:
        return to_micros(period.after(from_micros(start)))
    except (OverflowError, ValueError):
        return NEVER


def subject_clock(state: SubjectState) -> int:
    """The latest event time (microseconds) folded into ``state``: a function of the set of
    events, so the worker's emissions for time-dependent decisions replay the same."""
    return max((statement.at for statement in state.slots.values()), default=0)


def _plan(policy: Policy, controller: str, purpose: Purpose, channel: Channel) -> PairPlan:
    consent = (consent_scope(purpose.name, channel), consent_scope(purpose.name, ANY))
    denials = [*consent, unsubscribe_scope(purpose.name, channel)]
    if purpose.has_category(Category.DIRECT_MARKETING):
        denials += [unsubscribe_scope(ANY, channel), objection_scope(Objection.DIRECT_MARKETING)]
    if purpose.has_category(Category.PROFILING):
        denials.append(objection_scope(Objection.PROFILING))
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        denials.append(objection_scope(Objection.LEGITIMATE_INTEREST))
    categories = frozenset(purpose.categories)
    denials += [
        signal_scope(signal)
        for signal in Signal
        if policy.signal_categories(controller, signal) & categories
    ]
    notices = policy.controllers[controller].notices
    material = any(purpose.name in notice.material for notice in notices)
    restrictable = purpose.legal_basis is not LegalBasis.LEGAL_OBLIGATION
    if purpose.erasable:
        denials.append(ERASURE_SCOPE)
    return PairPlan(
        purpose=purpose,
        channel=channel,
        grant_slots=tuple(slot_key(s, GRANT) for s in consent),
        confirmed_slots=tuple(slot_key(s, CONFIRMED) for s in consent),
        denial_slots=tuple(slot_key(s, DENIAL) for s in denials),
        restrictable=restrictable,
        erasable=purpose.erasable,
        default=_DEFAULT_REASON[purpose.legal_basis],
        name=purpose.name,
        channel_name=channel.value,
        legal_basis=purpose.legal_basis.value,
        destinations=purpose.destinations,
        destination_names=tuple(d.value for d in purpose.destinations),
        double_opt_in=purpose.double_opt_in,
        id_part=f"{purpose.name}\x1f{channel.value}",
        serial=next(_SERIALS),
        expiry_slots=tuple(slot_key(s, EXPIRY) for s in consent),
        lapse_slots=tuple(slot_key(s, LAPSE) for s in consent),
        lifetime=purpose.consent_lifetime,
        window=purpose.confirmation_window,
        erased_at_retention_end=any(
            rule.action is RetentionAction.ERASE and not rule.data for rule in purpose.retention
        ),
        notices=notices if material else (),
        json_pair=b"".join(
            (dumps(purpose.name), b',"channel":', dumps(channel.value), b',"reason":')
        ),
        json_basis=b"".join(
            (b',"legal_basis":', dumps(purpose.legal_basis.value), b',"effective_at":')
        ),
    )


@dataclass(frozen=True, slots=True)
class ControllerPlan:
    pairs: tuple[PairPlan, ...]  # in the policy's order
    by_pair: dict[tuple[str, Channel], PairPlan]
    by_slot: dict[str, tuple[PairPlan, ...]]  # slot key -> the pairs it applies to
    #: Pairs whose purpose a notice version changed materially, and those versions' effective
    #: times (microseconds): a subject's clock passing one can change their decisions.
    renewed: tuple[PairPlan, ...] = ()
    renewals: tuple[int, ...] = ()
    #: affected() of each set of slot keys asked so far (bounded by the policy: an event's
    #: placements)
    _affected: dict[tuple[str, ...], tuple[PairPlan, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def compile(cls, policy: Policy, controller: str) -> ControllerPlan:
        found = policy.controller(controller)
        assert found is not None
        pairs = tuple(
            _plan(policy, controller, found.purposes[purpose], channel)
            for purpose, channel in policy.pairs(controller)
        )
        by_slot: dict[str, list[PairPlan]] = defaultdict(list)
        for pair in pairs:
            clocks = (*pair.expiry_slots, *pair.lapse_slots)
            for key in (*pair.grant_slots, *pair.confirmed_slots, *pair.denial_slots, *clocks):
                by_slot[key].append(pair)
            if pair.restrictable:
                by_slot[_RESTRICTION_SLOT].append(pair)
        return cls(
            pairs=pairs,
            by_pair={(p.purpose.name, p.channel): p for p in pairs},
            by_slot={key: tuple(plans) for key, plans in by_slot.items()},
            renewed=tuple(p for p in pairs if p.notices),
            renewals=tuple(to_micros(n.effective) for n in found.notices if n.material),
        )

    def renewals_between(self, before: int, after: int) -> bool:
        """Whether a material notice version took effect in (``before``, ``after``]."""
        return any(before < at <= after for at in self.renewals)

    def affected(self, slot_keys: Sequence[str]) -> tuple[PairPlan, ...]:
        """The pairs whose decision a statement in these slots can change, in policy order."""
        if len(slot_keys) == 1:
            return self.by_slot.get(slot_keys[0], ())
        keys = tuple(slot_keys)
        found = self._affected.get(keys)
        if found is None:
            touched = {id(p) for key in keys for p in self.by_slot.get(key, ())}
            found = self._affected[keys] = tuple(p for p in self.pairs if id(p) in touched)
        return found


def compile_policy(policy: Policy) -> dict[str, ControllerPlan]:
    return {
        controller: ControllerPlan.compile(policy, controller) for controller in policy.controllers
    }
