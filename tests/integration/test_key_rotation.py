"""Rotating the key-encryption key through a real worker on the broker: after a restart with a
new KEK first, every stored data key is wrapped by it, /metrics says when, and a worker given
only the new KEK still opens what was sealed before the rotation."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.pipeline.personal import KEYS_TABLE
from streams.pipeline.rewrap import wrapped_by
from streams.security.shredding import new_key
from tests.support.http import event
from tests.support.kafka import TopicReader, unique
from tests.support.keys import API_ENV, EXPORT_KEY
from tests.support.waiting import eventually
from tests.support.worker import Worker, make_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTROLLER = "hms-se"
OLD, NEW = f"old:{new_key()}", f"new:{new_key()}"
ADDRESS = "Rotated.Reader@Example.se"


@pytest.fixture(scope="module")
def worker(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    # Restarted on its data directory: one record per produce batch, or the embedded broker's
    # offset quirk cuts the keys changelog's recovery short (see the broker notes).
    running = make_worker(
        bootstrap,
        tmp_path_factory.mktemp("rotation"),
        CONSENT_DATA_KEYS=OLD,
        CONSENT_PRODUCER_MAX_BATCH_SIZE="1",
        **API_ENV,
    )
    try:
        yield running
    finally:
        running.process.stop()


async def data_keys(worker: Worker, subjects: list[str]) -> dict[str, str | None]:
    """The KEK each subject's data key is wrapped by, in its newest value on the changelog."""
    changelog = f"{worker.process.app_id}-{KEYS_TABLE}-changelog"
    wanted = {f"{CONTROLLER}/{subject}".encode() for subject in subjects}
    async with TopicReader(worker.bootstrap, changelog) as reader:
        await reader.until(lambda r: wanted <= {record.key for record in r.records}, timeout=30)
        newest = {r.key: r.value for r in reader.records if r.key in wanted}
    return {key.decode(): wrapped_by(value) for key, value in newest.items()}


def rotation(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("consent_streams_data_keys")
        for sample in family.samples
    }


async def test_after_a_rotation_the_old_kek_can_be_retired(worker: Worker) -> None:
    subjects = [unique("reader") for _ in range(6)]
    worker.process.start()
    given = {"purpose": "newsletter", "identifiers": {"email": ADDRESS}}
    grants = [event("consent.granted", CONTROLLER, s, **given) for s in subjects]
    assert (await worker.api().post("/v1/events", json=grants)).status == 202
    assert set((await data_keys(worker, subjects)).values()) == {"old"}
    worker.process.stop()

    worker.process.extra_env["CONSENT_DATA_KEYS"] = f"{NEW},{OLD}"  # the new KEK first
    worker.process.start()
    found = await eventually(
        lambda: worker.api(None).get("/metrics"),
        lambda r: rotation(r.text).get("consent_streams_data_keys_rewrap_pending_partitions") == 0,
    )
    assert rotation(found.text)["consent_streams_data_keys_rewrapped_total"] >= len(subjects)
    worker.process.stop()

    assert set((await data_keys(worker, subjects)).values()) == {"new"}

    worker.process.extra_env["CONSENT_DATA_KEYS"] = NEW  # the old KEK retired
    worker.process.start()
    for subject in subjects:
        path = f"/v1/controllers/{CONTROLLER}/subjects/{subject}/export"
        export = await eventually(
            lambda p=path: worker.api(EXPORT_KEY).get(p), lambda r: r.status == 200
        )
        assert ADDRESS in orjson.dumps(export.json()).decode()  # opened, not left sealed
