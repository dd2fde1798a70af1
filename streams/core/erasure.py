"""What an erasure request tells destinations: erase the person's data, then the decision.

Erasure (GDPR Art 17) is both a denial, folded like any other (``streams/core/decisions.py``),
and an instruction of its own: every destination of every pair the request reaches is told
``erase``. Each ``erase`` is followed at once, for the same destination and pair, by the pair's
decision as it stands (``allow``, or ``suppress``, for "not allowed" too), so the last message
per destination and pair is always a decision, and a consumer that deletes the person's data
on ``erase`` records the suppression again right after, from the identifiers in the message.

Every delivery of the request says all of this again under the same ids (the id covers pair,
action, cause and identifiers, as for any instruction): erasure is rare, and an erase lost to
a crash must not stay lost. Pairs the policy exempts (``erasure = "exempt"``, and legal
obligations by default) get nothing from it and keep their decisions.
"""

from __future__ import annotations

from schemas.vocabulary import Action, Reason
from streams.core.decisions import STATE_OF, ControllerPlan, PairState
from streams.core.propagation import Change
from streams.core.state import SubjectState
from streams.core.statements import Statement

_ALLOWED = PairState.ALLOWED


def with_erasure(
    plan: ControllerPlan, state: SubjectState, erasure: Statement, changes: list[Change]
) -> list[Change]:
    """``changes`` (the event's own decision changes, in policy order) with an ``erase`` before
    the decision of every pair erasure applies to, given ``state`` with the erasure in it."""
    changed = {change[0].serial: change for change in changes}
    out: list[Change] = []
    for pair in plan.pairs:
        change = changed.get(pair.serial)
        if pair.erasable:
            out.append((pair, Reason.ERASURE, erasure, Action.ERASE))
            if change is None:
                reason, cause = pair.verdict_of(state)
                allowed = STATE_OF[reason] is _ALLOWED
                change = (pair, reason, cause, Action.ALLOW if allowed else Action.SUPPRESS)
        if change is not None:
            out.append(change)
    return out
