"""The consent ledger: one append-only entry per accepted event, hash-chained per subject.

Each entry carries the SHA-256 of its predecessor and its own digest over a canonical encoding
(orjson, sorted keys), so an edit, a reorder, a duplicate or a gap shows up when the chain is
verified. Appending needs only the subject's :class:`ChainHead`, never the history.

Personal data (identifiers, evidence) sits in :class:`Personal`; the pipeline may replace it by
a :class:`Sealed` ciphertext before appending. Digests cover the entry as stored, so a chain
still verifies after its data key has been destroyed. Pure: times come in as arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NamedTuple, Protocol, TypeVar

import orjson

from schemas.events import ConsentEvent
from streams.core.statements import from_micros, to_micros

T = TypeVar("T")

LEDGER_VERSION: Final = 1
#: The ``previous`` of a subject's first entry.
GENESIS: Final = "0" * 64


class Arrival(NamedTuple):
    """How an event reached the worker: a Kafka record, or the HTTP API (key name, link kind).
    A tuple: one is made for every appended entry."""

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    api_key: str | None = None  # the API key's name, never its secret
    link_kind: str | None = None  # the link token kind when a link click published it


@dataclass(frozen=True, slots=True)
class Personal:
    """The personal part of an entry: what erasure makes unreadable."""

    identifiers: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sealed:
    """:class:`Personal`, encrypted under the subject's data key (opaque here)."""

    ciphertext: str


class Effect(NamedTuple):
    """One instruction an event caused for one (purpose, channel). A tuple: the engine makes
    one per instruction, and the canonical encoding writes it as the array it is."""

    purpose: str
    channel: str
    action: str
    suppression_id: str
    destinations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """Everything an entry says, without its place in the chain."""

    controller: str
    subject_id: str
    event_id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    purpose: str | None = None
    channel: str | None = None
    objection: str | None = None
    signal: str | None = None
    notice_version: str | None = None
    source: str | None = None
    jurisdiction: str | None = None
    #: the access request an ``access.fulfilled`` fulfils (contract 1.3)
    request_id: str | None = None
    arrival: Arrival = Arrival()  # noqa: RUF009 (a tuple: immutable)
    personal: Personal | Sealed = Personal()
    #: identifier kind -> keyed hash; survives erasure so a re-imported address is recognised
    identifier_hashes: Mapping[str, str] = field(default_factory=dict)
    effects: tuple[Effect, ...] = ()

    @classmethod
    def of(
        cls,
        event: ConsentEvent,
        *,
        received_at: datetime,
        arrival: Arrival,
        effects: Iterable[Effect] = (),
        identifier_hashes: Mapping[str, str] | None = None,
        personal: Personal | Sealed | None = None,
    ) -> Record:
        """The record of ``event``; ``personal`` is its personal data as stored (sealed, say:
        the worker seals before building the record, so that it is built once), by default
        :func:`personal_of` the event."""
        return cls(
            controller=event.controller,
            subject_id=event.subject_id,
            event_id=event.event_id,
            type=event.type.value,
            occurred_at=event.occurred_at,
            received_at=received_at,
            purpose=event.purpose,
            channel=event.channel.value if event.channel else None,
            objection=event.objection.value if event.objection else None,
            signal=event.signal.value if event.signal else None,
            notice_version=event.notice_version,
            source=event.source,
            jurisdiction=event.jurisdiction,
            request_id=event.request_id,
            arrival=arrival,
            personal=personal_of(event) if personal is None else personal,
            identifier_hashes=dict(identifier_hashes or {}),
            effects=tuple(effects),
        )

    def event(self) -> ConsentEvent:
        """The statement as an event to fold (without personal data: decisions never need it)."""
        data = {
            "event_id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
            "controller": self.controller,
            "subject_id": self.subject_id,
            "purpose": self.purpose,
            "channel": self.channel,
            "objection": self.objection,
            "signal": self.signal,
            "request_id": self.request_id,
        }
        # Validated once more, but against its own time: a ledger outlives the skew window.
        return ConsentEvent.model_validate(
            {k: v for k, v in data.items() if v is not None}, context={"now": self.occurred_at}
        )


def personal_of(event: ConsentEvent) -> Personal:
    """The personal data an event carries: its identifiers (those given) and evidence."""
    given = event.identifiers
    # The model's fields as model_dump(exclude_none=True) gives them, without its overhead.
    identifiers = {k: v for k, v in given.__dict__.items() if v is not None} if given else {}
    return Personal(identifiers, event.evidence)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """All that appending needs: the subject's last sequence number and digest."""

    sequence: int = 0
    digest: str = GENESIS


@dataclass(frozen=True, slots=True)
class Entry:
    sequence: int  # 1, 2, 3... per (controller, subject)
    previous: str  # digest of entry ``sequence - 1``; GENESIS for the first
    record: Record
    digest: str  # SHA-256 of this entry's canonical encoding (without the digest itself)

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.sequence, self.digest)

    def computed_digest(self) -> str:
        content = _record_content(self.sequence, self.previous, self.record)
        return hashlib.sha256(_canonical(content)).hexdigest()

    def to_bytes(self) -> bytes:
        content = _record_content(self.sequence, self.previous, self.record)
        return orjson.dumps({**content, "digest": self.digest}, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        try:
            raw: dict[str, Any] = orjson.loads(data)
            if raw.pop("v") != LEDGER_VERSION:
                raise ValueError("unsupported ledger entry version")
            return cls(
                sequence=_int(raw.pop("sequence")),
                previous=_str(raw.pop("previous")),
                digest=_str(raw.pop("digest")),
                record=_record(raw),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CorruptEntry(f"undecodable ledger entry: {exc}") from None

    def with_record(self, record: Record) -> Entry:
        """The same place in the chain, another content (a decrypted view, or in tests)."""
        return replace(self, record=record)


@dataclass(frozen=True, slots=True)
class LedgerView:
    """A subject's ledger as a worker holds it (what the HTTP API and the CLI read)."""

    #: as stored, in sequence order: what the chain check reads
    entries: tuple[Entry, ...] = ()
    #: the same entries' records with personal data opened (``Sealed`` where it was shredded)
    records: tuple[Record, ...] = ()
    #: the chain head kept with the subject's state (``None``: no entry yet)
    head: ChainHead | None = None


def seal_personal(personal: Personal, encrypt: Callable[[bytes], str]) -> Sealed:
    """``personal`` encrypted by ``encrypt`` (the subject's data key): what :func:`unseal` opens."""
    plain = {"identifiers": dict(personal.identifiers), "evidence": personal.evidence}
    return Sealed(encrypt(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)))


def seal(
    record: Record,
    encrypt: Callable[[bytes], str],
    identifier_hashes: Mapping[str, str] | None = None,
) -> Record:
    """``record`` with its personal data encrypted by ``encrypt`` (the subject's data key), and
    ``identifier_hashes`` added to its own; already sealed, ``record`` as it is."""
    personal = record.personal
    if isinstance(personal, Sealed):
        return record
    hashes = record.identifier_hashes
    if identifier_hashes:
        hashes = {**hashes, **identifier_hashes}
    return replace(record, personal=seal_personal(personal, encrypt), identifier_hashes=hashes)


def unseal(record: Record, decrypt: Callable[[str], bytes]) -> Record:
    """The decrypted view of ``record``; whatever ``decrypt`` raises (e.g. after erasure) passes."""
    if not isinstance(record.personal, Sealed):
        return record
    plain = orjson.loads(decrypt(record.personal.ciphertext))
    return replace(record, personal=Personal(plain["identifiers"], plain["evidence"]))


class CorruptEntry(ValueError):
    """Stored bytes that are not a ledger entry."""


def append(head: ChainHead, record: Record) -> Entry:
    """The entry that follows ``head``: O(1) whatever the length of the history."""
    sequence = head.sequence + 1
    digest = hashlib.sha256(_canonical(_record_content(sequence, head.digest, record))).hexdigest()
    return Entry(sequence, head.digest, record, digest)


def append_stored(head: ChainHead, record: Record) -> tuple[Entry, bytes]:
    """:func:`append`, and the entry as :meth:`Entry.to_bytes` stores it, encoded together."""
    digest, stored = _digest_and_stored(_record_content(head.sequence + 1, head.digest, record))
    return Entry(head.sequence + 1, head.digest, record, digest), stored


def append_event(
    head: ChainHead,
    event: ConsentEvent,
    *,
    received_at: datetime,
    arrival: Arrival,
    effects: Sequence[Effect],
    personal: Personal | Sealed,
    identifier_hashes: Mapping[str, str],
) -> tuple[ChainHead, bytes]:
    """The head after appending ``event``'s entry to ``head``, and the entry as stored: the
    bytes ``append_stored(head, Record.of(event, ...))`` gives, without building the record
    (the worker appends every accepted event, and keeps only the bytes)."""
    sequence = head.sequence + 1
    content = _content(
        sequence, head.digest, event, received_at, arrival, personal, identifier_hashes, effects
    )
    digest, stored = _digest_and_stored(content)
    return ChainHead(sequence, digest), stored


def _digest_and_stored(content: dict[str, Any]) -> tuple[str, bytes]:
    """The digest of ``content`` and its stored form, from one encoding."""
    canonical = _canonical(content)
    digest = hashlib.sha256(canonical).hexdigest()
    # The stored form is the canonical one with the digest among the sorted keys: just before
    # "effects" (the first key after it; earlier values cannot hold an unescaped quote).
    at = canonical.index(b'"effects":')
    return digest, b"".join((canonical[:at], b'"digest":"', digest.encode(), b'",', canonical[at:]))


# -- verification ---------------------------------------------------------------------------


class Problem(StrEnum):
    ALTERED = "altered"  # content does not match its digest
    BROKEN_LINK = "broken_link"  # ``previous`` is not the digest of the entry before
    MISSING = "missing"  # a sequence number absent from the chain
    DUPLICATE = "duplicate"  # a sequence number present more than once
    OUT_OF_ORDER = "out_of_order"  # an entry stored after one with a higher sequence
    FOREIGN = "foreign"  # an entry of another (controller, subject)
    HEAD_MISMATCH = "head_mismatch"  # the chain does not end where the subject's head says
    CORRUPT = "corrupt"  # stored bytes that do not decode (``sequence`` is the position)


@dataclass(frozen=True, slots=True)
class Finding:
    sequence: int
    problem: Problem
    detail: str


def verify_chain(
    entries: Sequence[Entry],
    head: ChainHead | None = None,
    subject: tuple[str, str] | None = None,
) -> list[Finding]:
    """Everything wrong with one subject's chain, in storage order; empty when it is intact.

    Reports, never repairs. ``head`` (the subject's stored chain head) also catches entries
    cut from the end; ``subject`` (controller, subject id) catches entries from elsewhere.
    """
    findings: list[Finding] = []
    if subject is None and entries:
        subject = (entries[0].record.controller, entries[0].record.subject_id)
    first: dict[int, Entry] = {}
    highest = 0
    for entry in entries:
        seq = entry.sequence
        if entry.computed_digest() != entry.digest:
            findings.append(Finding(seq, Problem.ALTERED, "content does not match its digest"))
        if (entry.record.controller, entry.record.subject_id) != subject:
            findings.append(Finding(seq, Problem.FOREIGN, "entry of another subject"))
        if seq in first:
            findings.append(Finding(seq, Problem.DUPLICATE, f"sequence {seq} stored again"))
            continue
        first[seq] = entry
        if seq < 1 or seq < highest:
            findings.append(Finding(seq, Problem.OUT_OF_ORDER, f"stored after {highest}"))
        highest = max(highest, seq)
    for seq, entry in sorted(first.items()):
        before = GENESIS if seq == 1 else first[seq - 1].digest if seq - 1 in first else None
        if before is not None and entry.previous != before:
            findings.append(Finding(seq, Problem.BROKEN_LINK, f"does not follow entry {seq - 1}"))
    end = max(highest, head.sequence if head else 0)
    for seq in range(1, end + 1):
        if seq not in first:
            findings.append(Finding(seq, Problem.MISSING, f"entry {seq} is missing"))
    if head is not None and 0 < highest == head.sequence and first[highest].digest != head.digest:
        findings.append(
            Finding(highest, Problem.HEAD_MISMATCH, "last entry is not the recorded head")
        )
    if head is not None and highest > head.sequence:
        findings.append(
            Finding(highest, Problem.HEAD_MISMATCH, f"entries beyond head {head.sequence}")
        )
    return findings


def verify_stored(
    records: Sequence[bytes],
    head: ChainHead | None = None,
    subject: tuple[str, str] | None = None,
) -> list[Finding]:
    """:func:`verify_chain` over stored bytes; undecodable ones are reported by position."""
    entries: list[Entry] = []
    findings: list[Finding] = []
    for position, data in enumerate(records):
        try:
            entries.append(Entry.from_bytes(data))
        except CorruptEntry as exc:
            findings.append(Finding(position, Problem.CORRUPT, str(exc)))
    return findings + verify_chain(entries, head, subject)


# -- canonical encoding -----------------------------------------------------------------------


def _canonical(content: Mapping[str, Any]) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


class _Statement(Protocol):
    """What an entry says of its statement: a :class:`Record`, or the event it is made of."""

    @property
    def controller(self) -> str: ...
    @property
    def subject_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def objection(self) -> str | None: ...
    @property
    def signal(self) -> str | None: ...
    @property
    def notice_version(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def jurisdiction(self) -> str | None: ...
    @property
    def request_id(self) -> str | None: ...


def _record_content(sequence: int, previous: str, record: Record) -> dict[str, Any]:
    return _content(
        sequence,
        previous,
        record,
        record.received_at,
        record.arrival,
        record.personal,
        record.identifier_hashes,
        record.effects,
    )


def _content(
    sequence: int,
    previous: str,
    said: _Statement,
    received_at: datetime,
    arrival: Arrival,
    personal: Personal | Sealed,
    identifier_hashes: Mapping[str, str],
    effects: Sequence[Effect],
) -> dict[str, Any]:
    """The canonical content of an entry (before sorting); ``said`` is a record or an event,
    whose enumerations encode as their values."""
    content = {
        "v": LEDGER_VERSION,
        "sequence": sequence,
        "previous": previous,
        "controller": said.controller,
        "subject_id": said.subject_id,
        "event_id": said.event_id,
        "type": said.type,
        "occurred_at": to_micros(said.occurred_at),
        "received_at": to_micros(received_at),
        "purpose": said.purpose,
        "channel": said.channel,
        "objection": said.objection,
        "signal": said.signal,
        "notice_version": said.notice_version,
        "source": said.source,
        "jurisdiction": said.jurisdiction,
        "arrival": {
            "topic": arrival.topic,
            "partition": arrival.partition,
            "offset": arrival.offset,
            "api_key": arrival.api_key,
            "link_kind": arrival.link_kind,
        },
        "personal": (
            {"sealed": personal.ciphertext}
            if isinstance(personal, Sealed)
            else {"identifiers": dict(personal.identifiers), "evidence": personal.evidence}
        ),
        "identifier_hashes": dict(identifier_hashes),
        "effects": [tuple(effect) for effect in effects],  # [purpose, ..., [destinations]]
    }
    if said.request_id is not None:  # only then: entries without one keep their digests
        content["request_id"] = said.request_id
    return content


def _record(raw: dict[str, Any]) -> Record:
    arrival = raw["arrival"]
    personal = raw["personal"]
    return Record(
        controller=_str(raw["controller"]),
        subject_id=_str(raw["subject_id"]),
        event_id=_str(raw["event_id"]),
        type=_str(raw["type"]),
        occurred_at=from_micros(_int(raw["occurred_at"])),
        received_at=from_micros(_int(raw["received_at"])),
        purpose=_opt(_str, raw["purpose"]),
        channel=_opt(_str, raw["channel"]),
        objection=_opt(_str, raw["objection"]),
        signal=_opt(_str, raw["signal"]),
        notice_version=_opt(_str, raw["notice_version"]),
        source=_opt(_str, raw["source"]),
        jurisdiction=_opt(_str, raw["jurisdiction"]),
        request_id=_opt(_str, raw.get("request_id")),
        arrival=Arrival(
            _opt(_str, arrival["topic"]),
            _opt(_int, arrival["partition"]),
            _opt(_int, arrival["offset"]),
            _opt(_str, arrival["api_key"]),
            _opt(_str, arrival["link_kind"]),
        ),
        personal=(
            Sealed(_str(personal["sealed"]))
            if "sealed" in personal
            else Personal(_strings(personal["identifiers"]), _opt(_dict, personal["evidence"]))
        ),
        identifier_hashes=_strings(raw["identifier_hashes"]),
        effects=tuple(
            Effect(_str(p), _str(c), _str(a), _str(sid), tuple(map(_str, destinations)))
            for p, c, a, sid, destinations in raw["effects"]
        ),
    )


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError("expected an integer")
    return value


def _str(value: Any) -> str:
    if type(value) is not str:
        raise TypeError("expected a string")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise TypeError("expected an object")
    return value


def _strings(value: Any) -> dict[str, str]:
    return {key: _str(item) for key, item in _dict(value).items()}


def _opt(parse: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else parse(value)
