"""Personal data under per-subject data keys: seal ledger records, open them, shred on erasure.

Each (controller, subject) has a data key (:class:`streams.security.shredding.DataKeys`),
stored wrapped by the configured key-encryption keys in the changelogged ``data-keys``
table, keyed like the subject state and kept on the subject's own partition. A batch's key
creations and destructions are collected here and written by the batch pipeline: sent to the
keys changelog together with the batch's outputs (step 3), into the store after the broker has
them (step 4), before the states are stored. A kill before the states are stored redelivers
the batch, which seals and appends everything again, overwriting by key: nothing that is
durable and referenced can be sealed under a key that was not kept (docs/guarantees.md).

Erasure destroys the data key: what was sealed under it stays, unreadable, while the keyed
hashes of its identifiers (a separate key, never destroyed) still recognise an address imported
again. The subject state keeps its statements (so the subject stays suppressed) and only keyed
hashes of its identifiers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import replace
from functools import partial
from typing import Any

from faust.types import TP

from schemas.events import ConsentEvent
from streams.core.ledger import Personal, Record, Sealed, seal_personal, unseal
from streams.core.state import HASHED, SubjectState
from streams.core.statements import DENIAL, ERASURE_SCOPE, slot_key
from streams.pipeline.caching import remember
from streams.pipeline.sending import Outbox
from streams.pipeline.store import stored, subjects_after, write_stored
from streams.security.shredding import (
    DataKeys,
    FieldCipher,
    IdentifierHasher,
    KeyMaterialError,
    Keyring,
    Random,
    Shredded,
    field_sealer,
)

#: The table of wrapped data keys (its changelog: ``<app id>-data-keys-changelog``). Not
#: "subject-...": the log check for personal data looks for subject ids by that prefix.
KEYS_TABLE = "data-keys"
ERASURE_SLOT = slot_key(ERASURE_SCOPE, DENIAL)
#: The sealed field of a ledger record (bound into its ciphertext as associated data).
FIELD = "personal"
#: Kafka rolls the active segment of a compacted topic within this long and its older values
#: become eligible for compaction: after an erasure, the values that held plaintext identifiers
#: (subject changelog) or the live data key (keys changelog) can be removed within a day, plus
#: the log cleaner's own delay. Set on the changelogs the worker creates.
MAX_COMPACTION_LAG_MS = 24 * 3600 * 1000
COMPACTION_CONFIGS = {"max.compaction.lag.ms": str(MAX_COMPACTION_LAG_MS)}

#: Stored key values kept in memory (oldest dropped first): ~250 bytes each with the key, so
#: ~2.5 MB, as many subjects as the state cache holds.
CACHE_MAX = 10_000

Read = Callable[[bytes, int], bytes | None]
#: key -> (partition, stored value) of the key creations and destructions of one batch
Changes = dict[bytes, tuple[int, bytes]]


def _subject(key: bytes) -> tuple[str, str]:
    controller, _, subject_id = key.decode().partition("/")  # controller ids never hold '/'
    return controller, subject_id


class _Slot(MutableMapping[str, bytes]):
    """One subject's entry of the keys table, as :class:`DataKeys` reads and writes it."""

    def __init__(self, keys: SubjectKeys, key: bytes, partition: int) -> None:
        self._keys, self._key, self._partition = keys, key, partition

    def __getitem__(self, slot: str) -> bytes:
        value = self._keys._value(self._key, self._partition)
        if value is None:
            raise KeyError(slot)
        return value

    def get(self, slot: str, default: Any = None) -> Any:
        # What DataKeys reads: without a KeyError raised and caught for every new subject.
        value = self._keys._value(self._key, self._partition)
        return default if value is None else value

    def __setitem__(self, slot: str, value: bytes) -> None:
        self._keys._changed(self._key, self._partition, value)

    def __delitem__(self, slot: str) -> None:  # pragma: no cover - DataKeys never deletes
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:  # pragma: no cover - DataKeys never iterates
        return iter(())

    def __len__(self) -> int:  # pragma: no cover
        return 0


class _Bound:
    """Sealing for one subject under its current data key, and the keyed hashes of its
    identifiers: kept while ``value`` is the subject's stored key value (a shred or a rewrap
    stores another)."""

    __slots__ = ("hashes", "seal", "value")

    def __init__(self, value: bytes | None, seal: Callable[[bytes], str]) -> None:
        self.value = value
        self.seal = seal
        self.hashes: dict[tuple[str, str], str] = {}


class SubjectKeys:
    """Seal, open and shred subjects' personal data; ``read(key, partition)`` reads the store.

    Changes made while a batch is folded are kept in :meth:`take`'s buffer until the pipeline
    writes them; reads see them at once.
    """

    def __init__(
        self,
        keyring: Keyring,
        hasher: IdentifierHasher,
        read: Read,
        place: Callable[[bytes], int],
        random: Random = os.urandom,
        cache_max: int = CACHE_MAX,
    ) -> None:
        self.keyring = keyring
        self.hasher = hasher
        self._read = read
        self._place = place  # the partition of a subject state key (for reads outside a batch)
        self._random = random
        self.cache_max = cache_max
        self._pending: Changes = {}
        self._cache: dict[bytes, bytes | None] = {}
        #: key -> the subject's sealing, bound once per data key
        self._unwrapped: dict[bytes, _Bound] = {}

    # -- what the fold and the readers call --------------------------------------------------

    def seal(self, key: bytes, partition: int, record: Record) -> Record:
        """``record`` with keyed hashes of its identifiers and its personal data sealed under
        the subject's current data key (made when the subject has none, or was erased)."""
        if isinstance(record.personal, Sealed):
            return record
        sealed, hashes = self.seal_personal(key, partition, record.personal)
        return replace(
            record, personal=sealed, identifier_hashes={**record.identifier_hashes, **hashes}
        )

    def seal_personal(
        self, key: bytes, partition: int, personal: Personal | Sealed
    ) -> tuple[Personal | Sealed, dict[str, str]]:
        """``personal`` sealed under the subject's current data key (made when the subject has
        none, or was erased), and the keyed hashes of its identifiers: the fold's sealer.

        An event without identifiers or evidence has nothing to seal: it is appended as it is
        and makes no data key (a subject that never gives personal data never has one)."""
        if isinstance(personal, Sealed) or not (personal.identifiers or personal.evidence):
            return personal, {}
        bound = self._bound(key, partition)
        hashes: dict[str, str] = {}
        if personal.identifiers:
            known = bound.hashes  # a subject's identifiers recur from event to event
            for kind, value in personal.identifiers.items():
                found = known.get((kind, value))
                if found is None:
                    found = known[kind, value] = self.identifier_hash(kind, value)
                hashes[kind] = found
        return seal_personal(personal, bound.seal), hashes

    def open(self, key: bytes, record: Record) -> Record:
        """``record`` with its personal data opened; still :class:`Sealed` when the data key is
        destroyed (erasure) or the ciphertext does not open here. Never raises for that."""
        if not isinstance(record.personal, Sealed):
            return record
        controller, subject_id = _subject(key)
        cipher = self._cipher(key, self._place(key))
        try:
            return unseal(record, partial(cipher.open, controller, subject_id, FIELD))
        except (Shredded, KeyMaterialError):
            return record

    def shred(self, key: bytes, partition: int) -> bool:
        """Destroy the subject's data key; False when it had none."""
        controller, subject_id = _subject(key)
        self._unwrapped.pop(key, None)  # its key, and its identifiers' hashes
        return self._data_keys(key, partition).destroy(controller, subject_id)

    def rewrap(self, key: bytes, partition: int) -> bool:
        """Wrap the subject's data key with the newest KEK; False when nothing changed."""
        controller, subject_id = _subject(key)
        return self._data_keys(key, partition).rewrap(controller, subject_id)

    def identifier_hash(self, kind: str, value: str) -> str:
        """The keyed hash of an identifier; a value already kept as its hash is that hash."""
        if value.startswith(HASHED):
            return value[len(HASHED) :]
        return self.hasher.digest(kind, value)

    def erase(
        self, key: bytes, partition: int, before: SubjectState, after: SubjectState, event_id: str
    ) -> SubjectState:
        """Erasure of a subject: its data key destroyed, its identifiers kept as keyed hashes.

        ``before`` already holding this very request means it was carried out, and the event
        is delivered again past the redelivery window: data sealed since is left alone.
        """
        done = before.slots.get(ERASURE_SLOT)
        if done is not None and done.event_id == event_id:
            return after
        self.shred(key, partition)
        return after.with_identifiers_hashed(self.hasher.digest)

    def recognise(self, state: SubjectState, event: ConsentEvent) -> ConsentEvent:
        """``event`` with each identifier whose keyed hash the state keeps (an erased address
        imported again) replaced by that hash, so that it is matched and not kept again."""
        given = event.identifiers
        if given is None or not any(v.startswith(HASHED) for _, v in state.identifiers.values()):
            return event
        matched: dict[str, str] = {}
        for kind, value in given.model_dump(exclude_none=True).items():
            _, kept = state.identifiers.get(kind, (0, ""))
            if kept.startswith(HASHED) and self.hasher.matches(kind, value, kept[len(HASHED) :]):
                matched[kind] = kept
        if not matched:
            return event
        # Not validated again: a hash is no address, and the event was validated on arrival.
        return event.model_copy(update={"identifiers": given.model_copy(update=matched)})

    # -- the batch's changes -------------------------------------------------------------

    def take(self) -> Changes:
        """The key creations and destructions since the last call (the pipeline writes them)."""
        changes, self._pending = self._pending, {}
        for key, (_, value) in changes.items():
            self._remember(key, value)
        return changes

    def forget_pending(self) -> None:
        """Drop changes never taken (a batch that failed before writing them is redelivered)."""
        self._pending.clear()

    def forget(self) -> None:
        """Drop cached values (partitions are being revoked: they may come back changed).

        Changes not yet taken stay: a batch in flight still sends them with its outputs.
        """
        self._cache.clear()
        self._unwrapped.clear()

    def _value(self, key: bytes, partition: int) -> bytes | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        if key in self._cache:
            return self._cache[key]
        value = self._read(key, partition)
        self._remember(key, value)
        return value

    def _changed(self, key: bytes, partition: int, value: bytes) -> None:
        self._pending[key] = (partition, value)

    def _remember(self, key: bytes, value: bytes | None) -> None:
        remember(self._cache, key, value, self.cache_max)

    def _bound(self, key: bytes, partition: int) -> _Bound:
        """Sealing under the subject's current data key, unwrapped and bound once per stored
        value (sealing is hot: a subject's events in a batch share it)."""
        value = self._value(key, partition)
        bound = self._unwrapped.get(key)
        if bound is None or bound.value is not value:
            controller, subject_id = _subject(key)
            # Made if none; moved to the newest KEK as its subject is written to.
            generation, data_key = self._data_keys(key, partition).for_sealing(
                controller, subject_id
            )
            sealer = field_sealer(data_key, generation, controller, subject_id, FIELD, self._random)
            bound = _Bound(self._value(key, partition), sealer)
            remember(self._unwrapped, key, bound, self.cache_max)
        return bound

    def _data_keys(self, key: bytes, partition: int) -> DataKeys:
        return DataKeys(self.keyring, _Slot(self, key, partition), self._random)

    def _cipher(self, key: bytes, partition: int) -> FieldCipher:
        return FieldCipher(self._data_keys(key, partition), self._random)


class KeysTable:
    """The ``data-keys`` Faust table beneath :class:`SubjectKeys` (raw keys and values)."""

    def __init__(self, table: Any) -> None:
        self.table = table  # faust Table[bytes, bytes]

    @property
    def topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def get(self, key: bytes, partition: int) -> bytes | None:
        return stored(self.table, key, partition)

    def entries(self, partition: int, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` stored (subject key, value) of ``partition``, after ``after``."""
        return subjects_after(self.table, partition, after, limit)

    async def send(self, changes: Changes, outbox: Outbox) -> None:
        """Step 3: the changes go to the changelog with the batch's outputs."""
        topic = self.topic
        for key, (partition, value) in changes.items():
            await outbox.add(topic, key, value, partition=partition)  # the key's own partition

    async def save(self, changes: Changes, outbox: Outbox) -> None:
        """Outside a batch's flush: ``changes`` through ``outbox`` to the changelog, then, once
        acknowledged, into the store (as a batch does in steps 3 and 4)."""
        await self.send(changes, outbox)
        self.write(changes, await outbox.sent())

    def write(self, changes: Changes, last: Mapping[tuple[str, int], int]) -> None:
        """Step 4: once the broker has them (``last``: offsets of the outbox), into the store."""
        topic = self.topic
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, (partition, value) in changes.items():
            by_partition.setdefault(partition, []).append((key, value))
        for partition, items in by_partition.items():
            tp = TP(topic, partition)
            write_stored(self.table, partition, items, tp, last[(topic, partition)])
