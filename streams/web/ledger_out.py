"""Ledger values -> API bodies: entries with their opened personal data, and the chain check."""

from __future__ import annotations

from collections.abc import Iterator

from streams.core.ledger import Entry, LedgerView, Record, Sealed, verify_chain
from streams.web.models import ArrivalOut, ChainCheck, ChainFinding, EffectOut, LedgerEntryOut


def opened(view: LedgerView) -> Iterator[tuple[Entry, Record]]:
    """Each stored entry with its record as the API shows it (personal data opened, or
    ``Sealed`` where it was shredded)."""
    if len(view.records) == len(view.entries):
        yield from zip(view.entries, view.records, strict=True)
    else:  # no opened view: show the entries as stored
        yield from ((entry, entry.record) for entry in view.entries)


def entry_out(entry: Entry, record: Record) -> LedgerEntryOut:
    personal = None if isinstance(record.personal, Sealed) else record.personal
    evidence = personal.evidence if personal else None
    arrival = record.arrival
    return LedgerEntryOut(
        sequence=entry.sequence,
        previous=entry.previous,
        digest=entry.digest,
        event_id=record.event_id,
        type=record.type,
        occurred_at=record.occurred_at,
        received_at=record.received_at,
        purpose=record.purpose,
        channel=record.channel,
        objection=record.objection,
        signal=record.signal,
        notice_version=record.notice_version,
        source=record.source,
        jurisdiction=record.jurisdiction,
        request_id=record.request_id,
        arrival=ArrivalOut(
            topic=arrival.topic,
            partition=arrival.partition,
            offset=arrival.offset,
            api_key=arrival.api_key,
            link_kind=arrival.link_kind,
        ),
        shredded=personal is None,
        identifiers=dict(personal.identifiers) if personal else None,
        evidence=dict(evidence) if evidence is not None else None,
        effects=[
            EffectOut(
                purpose=e.purpose,
                channel=e.channel,
                action=e.action,
                suppression_id=e.suppression_id,
                destinations=list(e.destinations),
            )
            for e in record.effects
        ],
    )


def chain_check(view: LedgerView, controller: str, subject_id: str) -> ChainCheck:
    """The subject's chain checked against its recorded head: reported, never repaired."""
    findings = verify_chain(view.entries, view.head, (controller, subject_id))
    return ChainCheck(
        intact=not findings,
        entries=len(view.entries),
        head_sequence=view.head.sequence if view.head else None,
        problems=[
            ChainFinding(sequence=f.sequence, problem=f.problem.value, detail=f.detail)
            for f in findings
        ],
    )
