"""The batch steps without Kafka: where each record folds, and what a batch stores and sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streams.core.engine import Engine
from streams.core.policy import load_policy
from streams.core.state import EMPTY, SubjectState
from streams.pipeline.fold import Record, fold, route

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
HOME = 3  # the partition every subject id maps to in these tests


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy())


def event(n: int, type_: str = "unsubscribed", subject: str = "s-1", **fields: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e-{n}",
            "type": type_,
            "occurred_at": f"2026-11-01T09:{n:02d}:00Z",
            "controller": "hms-se",
            "subject_id": subject,
            **fields,
        }
    )


def record(value: bytes, key: bytes | None = b"s-1", partition: int = HOME, n: int = 0) -> Record:
    return Record("events", partition, n, key, value)


def test_keyed_records_on_their_subjects_partition_fold_there(engine: Engine) -> None:
    routed = route([record(event(1))], engine, lambda subject: HOME)
    assert [(a.key, a.record.offset) for a in routed.fold] == [(b"hms-se/s-1", 0)]
    assert not routed.forward and not routed.reject


def test_keyless_and_misplaced_records_are_forwarded_keyed_by_subject(engine: Engine) -> None:
    keyless = record(event(1), key=None, n=1)
    misplaced = record(event(2), partition=HOME + 1, n=2)
    routed = route([keyless, misplaced], engine, lambda subject: HOME)
    assert routed.forward == [(b"s-1", keyless), (b"s-1", misplaced)]
    assert not routed.fold


def test_repartitioned_records_always_fold(engine: Engine) -> None:
    routed = route([record(event(1), partition=0)], engine, lambda s: HOME, repartitioned=True)
    assert len(routed.fold) == 1 and not routed.forward


def test_rejected_records_keep_their_reasons(engine: Engine) -> None:
    wrong_key = record(event(1), key=b"someone-else", n=1)
    not_json = record(b"{", n=2)
    routed = route([wrong_key, not_json], engine, lambda s: HOME)
    assert [r.record for r in routed.reject] == [wrong_key, not_json]
    assert routed.reject[0].errors[0].loc == "key"


def test_a_batch_stores_each_changed_key_once_with_its_last_state(engine: Engine) -> None:
    loads: list[bytes] = []
    stored: dict[bytes, SubjectState] = {}

    def load(key: bytes, partition: int) -> SubjectState:
        assert partition == HOME
        loads.append(key)
        return stored.get(key, EMPTY)

    values = [
        event(1, "consent.granted", purpose="newsletter"),
        event(2, "consent.confirmed", purpose="newsletter"),
        event(1, "consent.granted", purpose="newsletter"),  # a redelivery
        event(3, subject="s-2"),
    ]
    records = [
        record(v, key=orjson.loads(v)["subject_id"].encode(), n=n) for n, v in enumerate(values)
    ]
    routed = route(records, engine, lambda subject: HOME)
    folded = fold(routed.fold, load, engine, NOW)
    assert loads == [b"hms-se/s-1", b"hms-se/s-2"]
    assert sorted(folded.states) == [b"hms-se/s-1", b"hms-se/s-2"]
    partition, state = folded.states[b"hms-se/s-1"]
    assert partition == HOME
    assert state.has_seen("e-1") and state.has_seen("e-2") and not state.has_seen("e-3")
    assert folded.duplicates == 1 and len(folded.folded) == 4
    # What one event at a time from a store would send, in the same order.
    one_by_one = []
    current: dict[bytes, SubjectState] = {}
    for admitted in routed.fold:
        outcome = engine.apply(current.get(admitted.key, EMPTY), admitted.event, NOW)
        current[admitted.key] = outcome.state
        one_by_one += outcome.messages
    assert folded.messages == one_by_one and one_by_one


def test_an_event_the_engine_cannot_fold_is_dead_lettered_and_the_batch_goes_on(
    engine: Engine,
) -> None:
    def load(key: bytes, partition: int) -> SubjectState:
        if key == b"hms-se/broken":
            raise ValueError("unsupported subject state version")
        return EMPTY

    records = [record(event(1, subject="broken"), key=b"broken"), record(event(2), n=1)]
    folded = fold(route(records, engine, lambda s: HOME).fold, load, engine, NOW)
    assert [r.record.offset for r in folded.reject] == [0]
    assert folded.reject[0].errors[0].msg == "could not process: ValueError"
    assert list(folded.states) == [b"hms-se/s-1"]
