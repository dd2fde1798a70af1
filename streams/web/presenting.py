"""Engine values -> API bodies: decisions, and the statements recorded in a subject's state."""

from __future__ import annotations

from streams.core import statements as st
from streams.core.decisions import Ruling
from streams.core.state import SubjectState
from streams.web.models import AppliesTo, PairDecision, Role, StatementOut

_ROLE: dict[str, Role] = {
    st.GRANT: "grant",
    st.DENIAL: "denial",
    st.CONFIRMED: "confirmation",
    st.RESTRICTION: "restriction",
    st.EXPIRY: "expiry",
    st.LAPSE: "lapse",
    st.RETENTION_END: "retention_end",
}
# Scope strings are built by streams.core.statements; the prefix before "|" names the kind.
_KIND: dict[str, AppliesTo] = {
    st.consent_scope("", "").split("|")[0]: "consent",
    st.unsubscribe_scope("", "").split("|")[0]: "unsubscribe",
    st.objection_scope("").split("|")[0]: "objection",
    st.signal_scope("").split("|")[0]: "privacy_signal",
    st.ERASURE_SCOPE: "erasure",
    st.RESTRICTION_SCOPE: "restriction",
    st.retention_scope("").split("|")[0]: "retention",
}


def pair_decision(decision: Ruling) -> PairDecision:
    cause = decision.cause
    return PairDecision(
        purpose=decision.purpose.name,
        channel=decision.channel,
        allowed=decision.allowed,
        state=decision.state.value,
        reason=decision.reason,
        legal_basis=decision.purpose.legal_basis,
        since=cause.occurred_at if cause else None,
        caused_by_event_id=cause.event_id if cause else None,
    )


def _any(value: str) -> str | None:
    return None if value == st.ANY else value


def statement_out(scope: str, slot: str, statement: st.Statement) -> StatementOut:
    kind, *rest = scope.split("|")
    applies_to = _KIND.get(kind)
    if applies_to is None or slot not in _ROLE:
        raise ValueError(f"unknown scope or slot {scope!r}/{slot!r}")
    purpose = channel = objection = signal = None
    if applies_to in ("consent", "unsubscribe"):
        purpose, channel = _any(rest[0]), _any(rest[1])
    elif applies_to == "retention":
        purpose = rest[0]
    elif applies_to == "objection":
        objection = rest[0]
    elif applies_to == "privacy_signal":
        signal = rest[0]
    return StatementOut(
        event_id=statement.event_id,
        type=statement.type,
        occurred_at=statement.occurred_at,
        role=_ROLE[slot],
        applies_to=applies_to,
        purpose=purpose,
        channel=channel,
        objection=objection,
        signal=signal,
    )


def statements_of(state: SubjectState) -> list[StatementOut]:
    """Every recorded statement, oldest first."""
    found = [statement_out(scope, slot, s) for scope, slot, s in state.statements()]
    return sorted(found, key=lambda s: (s.occurred_at, s.event_id, s.applies_to, s.role))
