"""Effective decisions: what the recorded statements mean for one (purpose, channel)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from schemas.vocabulary import Category, Channel, EventType, LegalBasis, Objection, Reason, Signal
from streams.core.policy import Policy, Purpose
from streams.core.state import SubjectState
from streams.core.statements import (
    ANY,
    CONFIRMED,
    DENIAL,
    DENIAL_REASON,
    ERASURE_SCOPE,
    GRANT,
    RESTRICTION,
    RESTRICTION_SCOPE,
    Statement,
    consent_scope,
    latest,
    objection_scope,
    signal_scope,
    unsubscribe_scope,
)

_DEFAULT_REASON: dict[LegalBasis, Reason] = {
    LegalBasis.CONSENT: Reason.NO_CONSENT,
    LegalBasis.LEGITIMATE_INTEREST: Reason.LEGITIMATE_INTEREST,
    LegalBasis.CONTRACT: Reason.CONTRACT,
    LegalBasis.LEGAL_OBLIGATION: Reason.LEGAL_OBLIGATION,
}


class PairState(StrEnum):
    """What downstream systems have to know about a (purpose, channel)."""

    ALLOWED = "allowed"
    SUPPRESSED = "suppressed"  # denied by an opt-out
    NOT_ALLOWED = "not_allowed"  # no consent yet, or a double opt-in waiting for confirmation


@dataclass(frozen=True, slots=True)
class Decision:
    purpose: Purpose
    channel: Channel
    reason: Reason
    cause: Statement | None  # the statement that makes the decision what it is; None = default

    @property
    def allowed(self) -> bool:
        return self.state is PairState.ALLOWED

    @property
    def state(self) -> PairState:
        if self.reason in _ALLOWING:
            return PairState.ALLOWED
        if self.reason in (Reason.NO_CONSENT, Reason.PENDING_CONFIRMATION):
            return PairState.NOT_ALLOWED
        return PairState.SUPPRESSED


_ALLOWING = frozenset(
    {Reason.CONSENT, Reason.LEGITIMATE_INTEREST, Reason.CONTRACT, Reason.LEGAL_OBLIGATION}
)


@dataclass(frozen=True, slots=True)
class Applicability:
    """Where statements that apply to one (purpose, channel) are kept."""

    grants: tuple[str, ...]  # scopes whose GRANT/CONFIRMED slots apply
    denials: tuple[str, ...]  # scopes whose DENIAL slot applies
    restrictable: bool


@cache
def _applicability(purpose: Purpose, channel: Channel, signals: frozenset[Signal]) -> Applicability:
    consent = (consent_scope(purpose.name, channel), consent_scope(purpose.name, ANY))
    denials = [*consent, unsubscribe_scope(purpose.name, channel)]
    if purpose.has_category(Category.DIRECT_MARKETING):
        denials += [unsubscribe_scope(ANY, channel), objection_scope(Objection.DIRECT_MARKETING)]
    if purpose.has_category(Category.PROFILING):
        denials.append(objection_scope(Objection.PROFILING))
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        denials.append(objection_scope(Objection.LEGITIMATE_INTEREST))
    denials += [signal_scope(signal) for signal in sorted(signals)]
    restrictable = purpose.legal_basis is not LegalBasis.LEGAL_OBLIGATION
    if restrictable:
        denials.append(ERASURE_SCOPE)
    return Applicability(consent, tuple(denials), restrictable)


def _signals_for(policy: Policy, controller: str, purpose: Purpose) -> frozenset[Signal]:
    return frozenset(
        signal
        for signal in Signal
        if policy.signal_categories(controller, signal) & frozenset(purpose.categories)
    )


def decide(
    policy: Policy, controller: str, purpose: Purpose, channel: Channel, state: SubjectState
) -> Decision:
    """The effective decision for one (purpose, channel) of a subject at a controller."""
    where = _applicability(purpose, channel, _signals_for(policy, controller, purpose))
    grant = confirmed = denial = None
    for scope in where.grants:
        grant = latest(grant, state.get(scope, GRANT))
        confirmed = latest(confirmed, state.get(scope, CONFIRMED))
    for scope in where.denials:
        denial = latest(denial, state.get(scope, DENIAL))

    decision: Decision
    if grant is None and denial is None:
        decision = Decision(purpose, channel, _DEFAULT_REASON[purpose.legal_basis], None)
    elif grant is None or (denial is not None and denial.order > grant.order):
        assert denial is not None
        decision = Decision(purpose, channel, DENIAL_REASON[denial.type], denial)
    elif purpose.double_opt_in:
        if confirmed is not None and (denial is None or confirmed.order > denial.order):
            decision = Decision(purpose, channel, Reason.CONSENT, latest(grant, confirmed))
        else:
            decision = Decision(purpose, channel, Reason.PENDING_CONFIRMATION, grant)
    else:
        decision = Decision(purpose, channel, Reason.CONSENT, grant)

    restriction = state.get(RESTRICTION_SCOPE, RESTRICTION) if where.restrictable else None
    if restriction is None:
        return decision
    if restriction.type is EventType.RESTRICTION_REQUESTED:
        return Decision(purpose, channel, Reason.RESTRICTED, restriction)
    # A lift later than the underlying cause is what made the decision effective again.
    if latest(decision.cause, restriction) is restriction:
        return Decision(purpose, channel, decision.reason, restriction)
    return decision


def decide_all(policy: Policy, controller: str, state: SubjectState) -> list[Decision]:
    """Every (purpose, channel) decision of a subject, in the policy's order."""
    found = policy.controller(controller)
    if found is None:
        return []
    return [
        decide(policy, controller, found.purposes[purpose], channel, state)
        for purpose, channel in policy.pairs(controller)
    ]
