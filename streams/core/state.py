"""Per-(controller, subject) state: the greatest statement per slot, plus identifiers, and the
head of the subject's ledger chain.

Stored form (version 3): one version byte, one byte with the number of remembered event
digests, the digests (8 bytes each, oldest first), then ``[slots, identifiers]`` as JSON.
Version 4 is the same with ``[slots, identifiers, notices]``: written only when a consent in
the state was given under a named notice version, so other states keep their version 3 bytes
(and a worker that predates notice versions refuses a state it would misread). Version 5 adds
the ledger's chain head after the digests (its sequence as 8 bytes big-endian, its SHA-256
digest as 32 raw bytes), with either body: written once the subject has a ledger entry, so
that head and state are stored in one record. Version 2 (a JSON object holding event ids in
full) is still read. States without a head (versions 2 to 4) have the genesis head.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from hashlib import blake2b
from typing import Any

import orjson

from schemas.events import ACCESS_TYPES, ConsentEvent, Identifiers
from streams.core.ledger import ChainHead
from streams.core.statements import GRANT, Statement, consent_scope, placements, slot_key

STATE_VERSION = 3
#: The version of states that keep the notice version of a consent.
NOTICES_VERSION = 4
#: The version of states that keep their ledger chain head.
CHAINED_VERSION = 5
#: How many recent event ids a subject remembers to recognise redeliveries.
SEEN_LIMIT = 64
#: Bytes of an event id's digest: a false "already seen" is a 64/2**64 chance per event.
DIGEST_SIZE = 8
IDENTIFIER_KINDS = tuple(Identifiers.model_fields)

_SEEN_BYTES = SEEN_LIMIT * DIGEST_SIZE
_V3 = bytes([STATE_VERSION])
_V4 = bytes([NOTICES_VERSION])
_V5 = bytes([CHAINED_VERSION])
_HEAD_BYTES = 8 + 32  # sequence, digest
_GENESIS_HEAD = ChainHead()
_NO_NOTICES: Mapping[str, str] = {}
_new = tuple.__new__

#: Marks an identifier kept only as its keyed hash (after erasure): recognised, never sent on.
HASHED = "\x1fhmac:"
CONSENT_PREFIX = consent_scope("", "")[:2]  # "c|"
GRANT_SUFFIX = slot_key("", GRANT)  # "#g"

Identified = Mapping[str, tuple[int, str]]  # kind -> (event time, value) of the latest statement
Verdicts = dict[int, tuple[Any, Statement | None]]


def event_digest(event_id: str) -> bytes:
    return blake2b(event_id.encode(), digest_size=DIGEST_SIZE).digest()


def remembers(seen: bytes, digest: bytes) -> bool:
    """Whether ``seen`` (concatenated digests) holds ``digest`` at a digest boundary."""
    at = seen.find(digest)
    while at != -1:
        if at % DIGEST_SIZE == 0:
            return True
        at = seen.find(digest, at + 1)
    return False


def merge_identifiers(
    identifiers: Identified, given: Identifiers | None, at: int
) -> tuple[Identified, bool]:
    """``identifiers`` with those an event at ``at`` carries; whether a value changed."""
    if given is None:
        return identifiers, False
    merged: dict[str, tuple[int, str]] | None = None
    gained = False
    for kind in IDENTIFIER_KINDS:
        value = getattr(given, kind)
        if value is None:
            continue
        current = identifiers.get(kind)
        candidate = (at, value)
        if current is None or candidate > current:
            if merged is None:
                merged = dict(identifiers)
            merged[kind] = candidate
            gained = gained or current is None or current[1] != value
    return (identifiers, False) if merged is None else (merged, gained)


class SubjectState:
    """Immutable by convention: nothing mutates a state's mappings once it is built, so states
    can be shared, cached and reused (``absorb`` and the engine build new ones)."""

    __slots__ = ("head", "identifiers", "notices", "seen", "slots", "verdicts")

    #: slot key ("scope#slot") -> the greatest statement folded into it
    slots: Mapping[str, Statement]
    identifiers: Identified
    #: digests of the last SEEN_LIMIT event ids, oldest first
    seen: bytes
    #: memo of pair decisions (PairPlan.serial -> reason, cause): a function of ``slots``, so
    #: filling it changes nothing a reader can see; shared by states with the same slots
    verdicts: Verdicts
    #: consent grant slot key -> the notice version its statement was given under (only for
    #: events that named one; the others were given under the version in force at their time)
    notices: Mapping[str, str]
    #: the last entry of the subject's ledger (sequence 0 and GENESIS: none yet)
    head: ChainHead

    def __init__(
        self,
        slots: Mapping[str, Statement] | None = None,
        identifiers: Identified | None = None,
        seen: bytes = b"",
        verdicts: Verdicts | None = None,
        notices: Mapping[str, str] | None = None,
        head: ChainHead = _GENESIS_HEAD,
    ) -> None:
        self.slots = {} if slots is None else slots
        self.identifiers = {} if identifiers is None else identifiers
        self.seen = seen
        self.verdicts = {} if verdicts is None else verdicts
        self.notices = _NO_NOTICES if notices is None else notices
        self.head = head

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubjectState):
            return NotImplemented
        return (self.slots, self.identifiers, self.seen, self.notices, self.head) == (
            other.slots,
            other.identifiers,
            other.seen,
            other.notices,
            other.head,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable containers inside

    def __repr__(self) -> str:
        return (
            f"SubjectState(slots={self.slots!r}, identifiers=<{len(self.identifiers)}>, "
            f"seen=<{len(self.seen) // DIGEST_SIZE}>, head={self.head.sequence})"
        )

    def with_head(self, head: ChainHead) -> SubjectState:
        """The same state, its ledger chain now ending at ``head`` (mappings shared)."""
        return SubjectState(
            self.slots, self.identifiers, self.seen, self.verdicts, self.notices, head
        )

    def has_seen(self, event_id: str) -> bool:
        return remembers(self.seen, event_digest(event_id))

    def statements(self) -> Iterator[tuple[str, str, Statement]]:
        """(scope, slot, statement) for everything recorded."""
        for key, statement in self.slots.items():
            scope, _, slot = key.rpartition("#")
            yield scope, slot, statement

    def known_identifiers(self) -> dict[str, str]:
        """The plaintext identifiers (what messages carry); keyed hashes are left out."""
        return {
            kind: value
            for kind, (_, value) in sorted(self.identifiers.items())
            if not value.startswith(HASHED)
        }

    def with_identifiers_hashed(self, digest: Callable[[str, str], str]) -> SubjectState:
        """The state with each plaintext identifier replaced by ``HASHED + digest(kind, value)``
        (erasure): its statements stay, so its decisions do; a hash recognises the address."""
        erased = copy.copy(self)  # everything else as it is
        erased.identifiers = {
            kind: (at, value if value.startswith(HASHED) else HASHED + digest(kind, value))
            for kind, (at, value) in self.identifiers.items()
        }
        return erased

    def fold(self, event: ConsentEvent) -> SubjectState:
        """The state with ``event`` included; an equal state for a statement already known."""
        return self.absorb(event)[0]

    def absorb(self, event: ConsentEvent) -> tuple[SubjectState, tuple[str, ...]]:
        """Like :meth:`fold`, and also the slot keys whose statement changed."""
        statement = Statement.of(event)
        after, changed, _ = self.with_statement(
            statement,
            placements(event),
            None if event.type in ACCESS_TYPES else event.identifiers,  # kept in the ledger
            event_digest(event.event_id),
            notice=event.notice_version,
        )
        return after, changed

    def with_statement(
        self,
        statement: Statement,
        keys: tuple[str, ...],
        identifiers: Identifiers | None,
        digest: bytes,
        unseen: bool = False,
        notice: str | None = None,
    ) -> tuple[SubjectState, tuple[str, ...], bool]:
        """The state with ``statement`` put in ``keys``; the keys it changed; and whether an
        identifier was gained or changed. ``unseen``: the caller knows ``digest`` is new;
        ``notice``: the notice version a consent was given under."""
        slots = self.slots
        changed: tuple[str, ...] = ()
        for key in keys:
            current = slots.get(key)
            if current is None or statement > current:
                changed += (key,)
        verdicts = self.verdicts
        notices = self.notices
        if changed:
            slots = dict(slots)
            for key in changed:
                slots[key] = statement
            verdicts = {}
            if notice is not None or notices:
                notices = _with_notice(notices, changed, notice)
        merged, gained = (
            (self.identifiers, False)
            if identifiers is None
            else merge_identifiers(self.identifiers, identifiers, statement.at)
        )
        seen = self.seen
        if unseen or not remembers(seen, digest):
            seen = (seen + digest)[-_SEEN_BYTES:]
        state = SubjectState(slots, merged, seen, verdicts, notices, self.head)
        return state, changed, gained

    # -- storage ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        seen, head = self.seen, self.head
        count = bytes([len(seen) // DIGEST_SIZE])
        # Statements (NamedTuples) as arrays.
        body: tuple[object, ...] = (
            (self.slots, self.identifiers, self.notices)
            if self.notices
            else (self.slots, self.identifiers)
        )
        json = orjson.dumps(body, default=tuple)
        if head.sequence:
            chained = head.sequence.to_bytes(8, "big") + bytes.fromhex(head.digest)
            return b"".join((_V5, count, seen, chained, json))
        return (_V4 if self.notices else _V3) + count + seen + json

    @classmethod
    def from_bytes(cls, data: bytes | None) -> SubjectState:
        if not data:
            return EMPTY
        version = data[0]
        if version in (STATE_VERSION, NOTICES_VERSION, CHAINED_VERSION):
            seen_end = end = 2 + data[1] * DIGEST_SIZE
            head = _GENESIS_HEAD
            if version == CHAINED_VERSION:
                end += _HEAD_BYTES
                head = _head(data[seen_end:end])
            slots, identifiers, *notices = orjson.loads(data[end:])
            return cls(
                {key: _new(Statement, value) for key, value in slots.items()},
                {kind: (at, value) for kind, (at, value) in identifiers.items()},
                data[2:seen_end],
                notices=notices[0] if notices else None,
                head=head,
            )
        return _from_version_2(data)


def _with_notice(
    notices: Mapping[str, str], changed: tuple[str, ...], notice: str | None
) -> Mapping[str, str]:
    """``notices`` after a statement given under ``notice`` replaced those in ``changed``:
    only consent grant slots keep a version."""
    out = dict(notices)
    for key in changed:
        if key.startswith(CONSENT_PREFIX) and key.endswith(GRANT_SUFFIX):
            if notice is None:
                out.pop(key, None)
            else:
                out[key] = notice
    return out


def _head(data: bytes) -> ChainHead:
    sequence = int.from_bytes(data[:8], "big")
    return ChainHead(sequence, data[8:].hex()) if sequence else _GENESIS_HEAD


def head_of(data: bytes | None) -> ChainHead:
    """The ledger head a stored state carries, without decoding the rest."""
    if not data or data[0] != CHAINED_VERSION:
        return _GENESIS_HEAD
    end = 2 + data[1] * DIGEST_SIZE
    return _head(data[end : end + _HEAD_BYTES])


def _from_version_2(data: bytes) -> SubjectState:
    raw: dict[str, Any] = orjson.loads(data)
    if raw.get("v") != 2:
        raise ValueError(f"unsupported subject state version {raw.get('v')!r}")
    seen = b"".join(event_digest(event_id) for event_id in raw["seen"][-SEEN_LIMIT:])
    return SubjectState(
        {key: Statement(*value) for key, value in raw["slots"].items()},
        {kind: (at, value) for kind, (at, value) in raw["identifiers"].items()},
        seen,
    )


EMPTY = SubjectState()
