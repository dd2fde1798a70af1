"""Topics the worker creates carry the replication and retention the docs promise."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streams.settings import Settings
from streams.topology import TopicNames
from streams.worker import ensure_topics
from tests.support.kafka import unique

pytestmark = pytest.mark.integration


async def test_public_topics_are_created_with_their_configs(bootstrap: str) -> None:
    app_id = unique("topics")
    topology = TopicNames.of(Settings(app_id=app_id, topic_prefix=f"{app_id}."))
    created = await ensure_topics(
        bootstrap, topology.public, configs=topology.public_configs, replication_factor=1
    )
    assert sorted(created) == sorted(topology.public)

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for topic in topology.public:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            [(_, _, _, _, entries)] = response.resources
            configs = {entry[0]: entry[1] for entry in entries}
            for name, value in topology.public_configs[topic].items():
                assert configs.get(name) == value, (topic, name)
    finally:
        await admin.close()
    assert topology.public_configs[topology.events]["retention.ms"] == "-1"
    # Existing topics are left alone: a second call creates nothing.
    assert await ensure_topics(bootstrap, topology.public, configs=topology.public_configs) == []
