"""The batch steps of the worker, as plain functions: route a fetched batch, fold it.

No Kafka and no Faust here: the shell (:mod:`streams.pipeline.batches`) fetches, sends, stores
and commits; tests drive these steps with plain records and a dict for a store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from schemas.codec import RejectedRecord, decode_event
from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from streams.core import ledger as ledgers
from streams.core.engine import Engine, Outbound, subject_key
from streams.core.ledger import Arrival, append_event
from streams.core.state import SubjectState
from streams.pipeline.ledger_store import entry_key

#: Headers the HTTP layer sets on what it publishes: the API key's name, the link token kind.
API_KEY_HEADER = "consent-streams-api-key"
LINK_HEADER = "consent-streams-link"

#: (state key, partition, an event's personal data) -> (the personal data to append, sealed
#: say; keyed hashes of its identifiers)
Sealer = Callable[
    [bytes, int, ledgers.Personal | ledgers.Sealed],
    tuple[ledgers.Personal | ledgers.Sealed, Mapping[str, str]],
]


def keep(
    key: bytes, partition: int, personal: ledgers.Personal | ledgers.Sealed
) -> tuple[ledgers.Personal | ledgers.Sealed, Mapping[str, str]]:
    """The default sealer: the personal data as it is, no hashes."""
    return personal, {}


class Record(NamedTuple):
    """One consumed record, as much of it as the steps need."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None  # seconds since the epoch, as the producer set it
    headers: tuple[tuple[str, bytes], ...] = ()


class Admitted(NamedTuple):
    """A valid record that folds on its partition, with its state key."""

    key: bytes  # controller/subject_id
    event: ConsentEvent
    record: Record


class Rejected(NamedTuple):
    record: Record
    errors: list[FieldError]


@dataclass(slots=True)
class Routed:
    fold: list[Admitted] = field(default_factory=list)
    #: keyless, or keyed on a partition other than the subject's: (subject id, record)
    forward: list[tuple[bytes, Record]] = field(default_factory=list)
    reject: list[Rejected] = field(default_factory=list)


def route(
    records: Iterable[Record],
    engine: Engine,
    place: Callable[[bytes], int],
    *,
    repartitioned: bool = False,
    now: datetime | None = None,
) -> Routed:
    """Decode and admit each record, and say where it folds.

    A record folds here when it is on the partition of its subject id (``place``); anything
    else (keyless, or published with another partitioner) is forwarded once, keyed by subject
    id. Records of the repartition topic were placed by this worker: they always fold.
    ``now`` is the worker's clock (an event may be at most 5 minutes ahead of it).
    """
    routed = Routed()
    for record in records:
        try:
            event = decode_event(record.value, record.key, now=now)
            errors = engine.admit(event)
        except RejectedRecord as exc:
            errors = exc.errors
        if errors:
            routed.reject.append(Rejected(record, errors))
            continue
        subject = event.subject_id.encode()
        if repartitioned or (record.key is not None and place(subject) == record.partition):
            key = subject_key(event.controller, event.subject_id).encode()
            routed.fold.append(Admitted(key, event, record))
        else:
            routed.forward.append((subject, record))
    return routed


class Erasure(Protocol):
    """What erasure needs of the fold (:class:`streams.pipeline.personal.SubjectKeys`)."""

    def recognise(self, state: SubjectState, event: ConsentEvent) -> ConsentEvent: ...

    def erase(
        self, key: bytes, partition: int, before: SubjectState, after: SubjectState, event_id: str
    ) -> SubjectState: ...


@dataclass(slots=True)
class Folded:
    """What a batch requires: messages to send first, then the states to store."""

    messages: list[Outbound] = field(default_factory=list)
    #: key -> (partition, state) for every key whose state changed, its last state in the batch
    states: dict[bytes, tuple[int, SubjectState]] = field(default_factory=dict)
    #: every folded record with its event, in order (duplicates included)
    folded: list[Admitted] = field(default_factory=list)
    #: the folded records that were not redeliveries (the ones that start deadline clocks)
    fresh: list[Admitted] = field(default_factory=list)
    #: ledger entries appended, in order, as the ledger table stores them: (partition, entry
    #: key, entry bytes); bytes only, so that no entry object outlives its append
    stored: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    duplicates: int = 0
    reject: list[Rejected] = field(default_factory=list)


def fold(
    admitted: Iterable[Admitted],
    load: Callable[[bytes, int], SubjectState],
    engine: Engine,
    now: datetime,
    *,
    erasure: Erasure | None = None,
    ledger: bool = True,
    seal: Sealer = keep,
    replayed: Callable[[Record], bool] | None = None,
) -> Folded:
    """Fold a batch into subject states; ``load(key, partition)`` reads a stored state once.

    With ``ledger``, every event that is not a redelivery appends one entry to its subject's
    ledger (through ``seal``), received at ``now``; the new state carries the new chain head.
    With ``erasure``, an erased address seen again is recognised by its keyed hash, and an
    outcome that shreds destroys the subject's data key (after its own ledger entry is sealed)
    and keeps only keyed hashes of its identifiers. An event whose record an earlier owner of
    its partition may have folded (``replayed``) restates every decision it reaches
    (:meth:`Engine.replayed`).
    """
    out = Folded()
    current: dict[bytes, SubjectState] = {}
    for item in admitted:
        key, event, record = item
        try:
            state = current.get(key)
            if state is None:
                state = load(key, record.partition)
            if erasure is not None:
                event = erasure.recognise(state, event)
            outcome = engine.apply(state, event, now)
            if replayed is not None and replayed(record):
                outcome = engine.replayed(outcome, event, now)
            after = outcome.state
            appended = None
            if ledger and not outcome.duplicate:
                personal, hashes = seal(key, record.partition, ledgers.personal_of(event))
                head, data = append_event(
                    after.head,
                    event,
                    received_at=now,
                    arrival=arrival_of(record),
                    effects=outcome.effects,
                    personal=personal,
                    identifier_hashes=hashes,
                )
                after = after.with_head(head)
                appended = (record.partition, entry_key(key, head.sequence), data)
            # The event's ledger entry is sealed and appended above, before an erasure destroys
            # the key it is sealed under.
            if outcome.shred and not outcome.duplicate and erasure is not None:
                after = erasure.erase(key, record.partition, state, after, event.event_id)
        except Exception as exc:  # the record is dead-lettered intact; the batch goes on
            reason = f"could not process: {type(exc).__name__}"
            out.reject.append(Rejected(record, [FieldError(loc="", msg=reason)]))
            continue
        out.messages += outcome.messages
        current[key] = after
        if outcome.duplicate:
            out.duplicates += 1
        else:
            out.states[key] = (record.partition, after)
            out.fresh.append(item)
        if appended is not None:
            out.stored.append(appended)
        out.folded.append(item)
    return out


def arrival_of(record: Record) -> Arrival:
    """How ``record`` reached the worker: where it was read, and who published it over HTTP."""
    api_key = link = None
    for name, value in record.headers:
        if value is None:
            continue
        if name == API_KEY_HEADER:
            api_key = value.decode(errors="replace")
        elif name == LINK_HEADER:
            link = value.decode(errors="replace")
    return Arrival(record.topic, record.partition, record.offset, api_key, link)
