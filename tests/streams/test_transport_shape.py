"""streams/transport.py overrides internals of Faust's aiokafka driver and of aiokafka.

These tests fail when a release changes what the overrides rely on: run them before moving the
pins in pyproject.toml.
"""

from __future__ import annotations

import importlib.metadata
import inspect

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import READ_COMMITTED, Fetcher, FetchError, FetchResult
from faust.transport import by_url
from faust.transport.drivers import aiokafka as driver

from streams import transport
from streams.settings import DEFAULT_FETCH_WAIT_MS
from tests.support.kafka import unique


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_overridden_methods_keep_their_signatures() -> None:
    thread = driver.AIOKafkaConsumerThread
    assert parameters(thread._create_worker_consumer) == ["self", "transport"]
    assert parameters(thread._fetch_records) == [
        "self",
        "consumer",
        "active_partitions",
        "timeout",
        "max_records",
    ]
    assert parameters(driver.Consumer._new_consumer_thread) == ["self"]
    # How the driver builds its thread, which ours repeats with its own class.
    assert "AIOKafkaConsumerThread(self, loop=self.loop, beacon=self.beacon)" in inspect.getsource(
        driver.Consumer._new_consumer_thread
    )
    assert driver.Transport.Consumer is driver.Consumer
    # on_start makes the worker consumer and starts it (which makes its fetcher).
    assert parameters(thread.on_start) == ["self"]
    start = inspect.getsource(thread.on_start)
    assert "self._consumer = self._create_consumer(" in start
    assert "await self._consumer.start()" in start
    # The fetch wait is still hard-coded (if Faust gains a setting, use it instead).
    assert "fetch_max_wait_ms=1500" in inspect.getsource(thread._create_worker_consumer)


def test_the_unreadable_fetch_report_finds_the_partition_where_aiokafka_keeps_it() -> None:
    # failed_partition() reads the local ``tp`` of fetched_records when one partition's result
    # raises in FetchResult.getall (records) or FetchError.check_raise (the fetch's error).
    assert "tp" in Fetcher.fetched_records.__code__.co_varnames
    source = inspect.getsource(Fetcher.fetched_records)
    assert "res_or_error = self._records[tp]" in source
    assert "res_or_error.getall(" in source
    assert "res_or_error.check_raise()" in source
    assert hasattr(FetchResult, "getall") and hasattr(FetchError, "check_raise")


def test_the_prefetch_backoff_is_still_the_fetchers_own_attribute() -> None:
    # ConsumerThread sets Fetcher._prefetch_backoff: the consumer passes no such setting (if
    # it gains one, pass it there instead), and the fetcher reads the attribute per fetch.
    assert "prefetch_backoff" not in inspect.getsource(AIOKafkaConsumer.start)
    assert parameters(Fetcher.__init__).count("prefetch_backoff") == 1
    source = inspect.getsource(Fetcher)
    assert "backoff=self._prefetch_backoff" in source
    assert "calculate_backoff()" in source


def test_the_pins_are_the_installed_versions() -> None:
    assert importlib.metadata.version("faust-streaming") == "0.15.3"
    assert importlib.metadata.version("aiokafka").startswith("0.14.")


def test_the_scheme_selects_this_driver() -> None:
    url = transport.broker_url("127.0.0.1:9092", 25)
    assert by_url(url) is transport.Transport
    assert transport.Transport.Consumer is transport.Consumer


@pytest.mark.integration
@pytest.mark.parametrize("wait_ms", [DEFAULT_FETCH_WAIT_MS, 250])
async def test_the_worker_consumer_fetches_with_the_setting_and_read_committed(
    bootstrap: str, wait_ms: int
) -> None:
    app = faust.App(unique("shape"), broker=transport.broker_url(bootstrap, wait_ms))
    thread = app.consumer._thread
    assert isinstance(thread, transport.ConsumerThread)
    await thread.on_start()  # makes and starts the worker consumer, as the thread does
    consumer = thread._consumer
    assert consumer is not None
    try:
        # What aiokafka's fetcher actually uses, not what was passed in.
        assert consumer._fetcher._fetch_max_wait_ms == wait_ms
        assert consumer._fetcher._isolation_level == READ_COMMITTED
        assert consumer._fetcher._prefetch_backoff == transport.prefetch_backoff(wait_ms)
    finally:
        await consumer.stop()
