"""Which errors of a fetch count as unreadable input (exit 65), and which stay Faust's; the
fetcher settings the driver derives from the fetch wait."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError, UnsupportedCodecError

from streams.transport import (
    AIOKAFKA_PREFETCH_BACKOFF,
    broker_url,
    failed_partition,
    prefetch_backoff,
)

STUCK = TopicPartition("consent.events", 3)


def traceback_of(call: Callable[[], None]) -> TracebackType | None:
    try:
        call()
    except Exception as exc:
        return exc.__traceback__
    raise AssertionError("did not raise")


# Stand-ins with the names of aiokafka's frames; the shape test checks the real ones.
def fetched_records(read: Callable[[], None]) -> None:
    tp = STUCK  # noqa: F841 - the fetcher's loop variable, read from the frame
    read()


def getall() -> None:
    raise UnsupportedCodecError("Libraries for snappy compression codec not found")


def check_raise() -> None:
    raise KafkaError("Unexpected error during data retrieval")


def elsewhere() -> None:
    raise KafkaError("authorization failed")


def test_an_error_reading_one_partition_names_it() -> None:
    assert failed_partition(traceback_of(lambda: fetched_records(getall))) == STUCK
    assert failed_partition(traceback_of(lambda: fetched_records(check_raise))) == STUCK


def test_an_error_not_about_one_partition_is_left_to_faust() -> None:
    assert failed_partition(traceback_of(lambda: fetched_records(elsewhere))) is None
    assert failed_partition(traceback_of(getall)) is None


def test_the_broker_url_carries_the_fetch_wait() -> None:
    assert broker_url("127.0.0.1:9092", 25) == "consent-kafka://127.0.0.1:9092?fetch_wait_ms=25"


def test_untaken_records_hold_back_a_broker_no_longer_than_the_fetch_wait() -> None:
    assert prefetch_backoff(10) == 0.010
    assert prefetch_backoff(20) == 0.020
    # Never longer than aiokafka's own backoff, however long the wait.
    assert prefetch_backoff(1500) == AIOKAFKA_PREFETCH_BACKOFF == 0.1
    assert prefetch_backoff(100) == 0.1
