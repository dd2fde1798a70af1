"""Which decision changes downstream systems must hear about, and the stable id of each."""

from __future__ import annotations

import hashlib

from schemas.vocabulary import Action
from streams.core.decisions import Decision, PairState


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


def action_of(decision: Decision) -> Action | None:
    """The instruction that restates a decision (``None`` for "not allowed")."""
    return {PairState.ALLOWED: Action.ALLOW, PairState.SUPPRESSED: Action.SUPPRESS}.get(
        decision.state
    )


def suppression_id(
    controller: str, subject_id: str, purpose: str, channel: str, action: str, cause: str
) -> str:
    """Same (pair, action, cause) -> same id, so a redelivered message is recognisable."""
    material = "\x1f".join((controller, subject_id, purpose, channel, action, cause))
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()
