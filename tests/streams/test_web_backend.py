"""The HTTP API's view of a Faust app, without a broker: the hash, and when a worker may
answer itself (the web layer's Router over the Faust backend)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP
from yarl import URL

from schemas.vocabulary import Destination
from streams.pipeline.stats import BatchStats, EventStats
from streams.pipeline.web_backend import FaustBackend
from streams.topology import partition_of
from streams.web.routing import Local, Remote, Router, Unavailable

CHANGELOG = "app-subjects-changelog"
ME, PEER = "http://127.0.0.1:7001", "http://127.0.0.1:7002"


def test_partition_matches_the_kafka_default_partitioner() -> None:
    partitions = list(range(6))
    for n in range(200):
        key = f"kms-uk/subject-{n}".encode()
        assert partition_of(key, 6) == DefaultPartitioner()(key, partitions, partitions)


def router(
    *,
    mine: set[int],
    theirs: set[int],
    rebalancing: bool = False,
    recovered: bool = True,
    listed_as_mine: set[int] | None = None,
) -> Router:
    completed = SimpleNamespace(is_set=lambda: recovered)
    metadata = {ME: {CHANGELOG: sorted(listed_as_mine or mine)}, PEER: {CHANGELOG: sorted(theirs)}}
    app: Any = SimpleNamespace(
        rebalancing=rebalancing,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed), actives_ready=True),
        assignor=SimpleNamespace(assigned_actives=lambda: {TP(CHANGELOG, p) for p in mine}),
        conf=SimpleNamespace(canonical_url=URL(ME)),
        router=SimpleNamespace(table_metadata=lambda name: metadata),
    )
    table: Any = SimpleNamespace(
        name="subjects",
        partitions=6,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: CHANGELOG),
    )
    return Router(FaustBackend(app, table, counters=None, topics=None))


def key_in(partition: int) -> bytes:
    """A table key whose state lives in ``partition``: its subject id's partition."""
    return next(
        k for k in (f"c/s{n}".encode() for n in range(1000)) if partition_of(k[2:], 6) == partition
    )


def test_a_state_is_looked_for_on_its_subject_ids_partition() -> None:
    # Where the subject's keyed events arrive, whatever the controller.
    subject = next(f"s{n}" for n in range(1000) if partition_of(f"s{n}".encode(), 6) == 4)
    for controller in ("hms-se", "kms-uk", "c"):
        key = f"{controller}/{subject}".encode()
        assert router(mine={4}, theirs={0, 1, 2, 3, 5}).locate(key) == Local(4)


def test_own_active_partition_is_answered_here() -> None:
    assert router(mine={0, 1, 2}, theirs={3, 4, 5}).locate(key_in(1)) == Local(1)


def test_other_partitions_go_to_their_owner() -> None:
    assert router(mine={0, 1, 2}, theirs={3, 4, 5}).locate(key_in(4)) == Remote(4, URL(PEER))


@pytest.mark.parametrize("state", [{"rebalancing": True}, {"recovered": False}])
def test_nothing_is_answered_while_ownership_moves(state: dict[str, bool]) -> None:
    with pytest.raises(Unavailable):
        router(mine={0, 1, 2}, theirs={3, 4, 5}, **state).locate(key_in(1))


def test_listed_but_not_active_here_is_unavailable_not_local() -> None:
    # The metadata says this worker, but the partition is not one of its actives.
    lying = router(mine={0}, theirs={3, 4, 5}, listed_as_mine={0, 1, 2})
    with pytest.raises(Unavailable):
        lying.locate(key_in(1))
    with pytest.raises(Unavailable):
        router(mine={0}, theirs={3}).locate(key_in(5))  # nobody owns it


def test_metrics_families_from_the_pipeline_counters() -> None:
    stats = EventStats()
    stats.on_processed("unsubscribed", 0.2)
    stats.on_rejected(b"not json")
    counters = SimpleNamespace(
        duplicates=1, emitted={Destination.EMAIL: 2}, events=stats, batches=BatchStats()
    )
    app = SimpleNamespace(consumer=None)  # not started: no lag to tell
    backend = FaustBackend(app, table=None, counters=counters, topics=None)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in backend.metrics()
        for s in family.samples
    }
    assert samples[("consent_streams_events_processed_total", (("type", "unsubscribed"),))] == 1
    assert samples[("consent_streams_events_rejected_total", (("type", "unknown"),))] == 1
    assert samples[("consent_streams_events_duplicate_total", ())] == 1
    assert samples[("consent_streams_suppressions_emitted_total", (("destination", "email"),))] == 2
    assert samples[("consent_streams_processing_latency_seconds_bucket", (("le", "0.25"),))] == 1
    assert samples[("consent_streams_processing_latency_seconds_count", ())] == 1
    assert samples[("consent_streams_batch_step_seconds_count", (("step", "send"),))] == 0
    assert not any(name == "consent_streams_consumer_lag" for name, _ in samples)
    assert not any(name == "consent_streams_rocksdb_memory_bytes" for name, _ in samples)


def test_rocksdb_memory_by_part() -> None:
    counters = SimpleNamespace(duplicates=0, emitted={}, events=EventStats(), batches=BatchStats())
    memory = SimpleNamespace(memtable_usage=5, block_cache_usage=7)
    backend = FaustBackend(
        SimpleNamespace(consumer=None), table=None, counters=counters, topics=None, memory=memory
    )
    samples = {
        s.labels["part"]: s.value
        for family in backend.metrics()
        if family.name == "consent_streams_rocksdb_memory_bytes"
        for s in family.samples
    }
    assert samples == {"memtables": 5, "block_cache": 7}
