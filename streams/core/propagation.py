"""Which decision changes downstream systems must hear about, and the stable id of each."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from schemas.vocabulary import Action, Reason
from streams.core.decisions import PairPlan, PairState
from streams.core.statements import Statement

#: (pair, reason, cause, action) of one instruction to send; cause None: the triggering event
Change = tuple[PairPlan, Reason, Statement | None, Action]


def transition(before: PairState, after: PairState) -> Action | None:
    """The instruction a change of state calls for, if any.

    Entering "not allowed" from "suppressed" or from nothing says nothing, but leaving "allowed"
    always suppresses: a system that was told ``allow`` must be told to stop.
    """
    if before is after:
        return None
    if after is PairState.ALLOWED:
        return Action.ALLOW
    if after is PairState.SUPPRESSED or before is PairState.ALLOWED:
        return Action.SUPPRESS
    return None


_RESTATEMENT = {PairState.ALLOWED: Action.ALLOW, PairState.SUPPRESSED: Action.SUPPRESS}


def action_of(state: PairState) -> Action | None:
    """The instruction that restates a decision's state (``None`` for "not allowed")."""
    return _RESTATEMENT.get(state)


def suppression_id(
    controller: str,
    subject_id: str,
    purpose: str,
    channel: str,
    action: str,
    cause: str,
    identifiers: Mapping[str, str],
) -> str:
    """Same (pair, action, cause, identifiers) -> same id, so a redelivered message is
    recognisable, and one that brings a new address is not mistaken for an old one.

    Without identifiers the id is what it was before identifiers counted, so ids stay stable
    across the upgrade for subjects without any.
    """
    parts = [controller, subject_id, purpose, channel, action, cause]
    if identifiers:
        parts += [f"{kind}={value}" for kind, value in identifiers.items()]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
