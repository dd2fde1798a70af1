"""The access and portability export: everything held about a subject at a controller.

Built from the subject's state (current decisions, as the preferences read gives them) and its
ledger (history, evidence, identifiers, instructions sent, receipts, chain check). A subject
with nothing recorded gets the same document with empty lists and the policy's defaults, so
the answer never tells whether a subject exists.
"""

from __future__ import annotations

from datetime import datetime

from streams.core.engine import Engine
from streams.core.ledger import LedgerView, Sealed
from streams.core.policy import Controller
from streams.core.state import SubjectState
from streams.web.ledger_out import chain_check, entry_out, opened
from streams.web.models import (
    ControllerOut,
    ExportOut,
    IdentifierOut,
    NotificationOut,
    ReceiptOut,
)
from streams.web.presenting import pair_decision, statements_of
from streams.web.receipting import NOT_CONFIGURED, Receipts, is_consent_statement


def build_export(
    engine: Engine,
    receipts: Receipts,
    controller: Controller,
    subject_id: str,
    state: SubjectState,
    view: LedgerView,
    now: datetime,
) -> ExportOut:
    identifiers: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    notifications: list[NotificationOut] = []
    issued: list[ReceiptOut] = []
    for entry, record in opened(view):
        at = record.received_at
        if not isinstance(record.personal, Sealed):
            for kind, value in record.personal.identifiers.items():
                first, _ = identifiers.get((kind, value), (at, at))
                identifiers[(kind, value)] = (min(first, at), at)
        notifications += [
            NotificationOut(
                purpose=e.purpose,
                channel=e.channel,
                action=e.action,
                suppression_id=e.suppression_id,
                destinations=list(e.destinations),
                sequence=entry.sequence,
                event_id=record.event_id,
                at=at,
            )
            for e in record.effects
        ]
        if receipts.signer is not None and is_consent_statement(record):
            issued.append(receipts.issue(record))
    return ExportOut(
        controller=ControllerOut(id=controller.id, name=controller.name),
        subject_id=subject_id,
        generated_at=now,
        decisions=[pair_decision(d) for d in engine.decide_all(state, controller.id)],
        statements=statements_of(state),
        identifiers=[
            IdentifierOut(kind=kind, value=value, first_recorded=first, last_recorded=last)
            for (kind, value), (first, last) in identifiers.items()
        ],
        ledger=[entry_out(entry, record) for entry, record in opened(view)],
        notifications=notifications,
        receipts=issued,
        receipts_unavailable=None if receipts.signer is not None else NOT_CONFIGURED,
        chain=chain_check(view, controller.id, subject_id),
    )
