"""Settings come from the environment, typed, with safe defaults and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import DEFAULT_FETCH_WAIT_MS, ENVIRONMENT, Settings, SettingsError


def test_defaults_are_safe() -> None:
    settings = Settings.from_env({})
    assert settings.web_host == "127.0.0.1"
    assert settings.bootstrap_servers is None  # embedded broker
    assert settings.policy_file is None  # shipped example


def test_every_variable_is_read() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "CONSENT_POLICY_FILE": "/etc/policy.toml",
        "CONSENT_DATA_DIR": "/var/lib/cs",
        "CONSENT_WEB_HOST": "0.0.0.0",
        "CONSENT_WEB_PORT": "7000",
        "CONSENT_APP_ID": "prod-consent",
    }
    settings = Settings.from_env(env)
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.policy_file == Path("/etc/policy.toml")
    assert settings.data_dir == Path("/var/lib/cs")
    assert (settings.web_host, settings.web_port, settings.app_id) == (
        "0.0.0.0",
        7000,
        "prod-consent",
    )
    assert set(env) <= set(ENVIRONMENT)


def test_blank_means_unset_and_errors_name_the_variable() -> None:
    assert Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "  "}).bootstrap_servers is None
    with pytest.raises(SettingsError, match="CONSENT_WEB_PORT"):
        Settings.from_env({"CONSENT_WEB_PORT": "http"})
    with pytest.raises(SettingsError, match="CONSENT_APP_ID"):
        Settings.from_env({"CONSENT_APP_ID": "has space"})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValueError):
        settings.web_port = 1  # type: ignore[misc]


def test_insecure_links_need_an_explicit_setting() -> None:
    assert Settings.from_env({}).allow_insecure_links is False
    assert Settings.from_env({"CONSENT_ALLOW_INSECURE_LINKS": "1"}).allow_insecure_links is True
    off = Settings.from_env({"CONSENT_ALLOW_INSECURE_LINKS": "false"})
    assert off.allow_insecure_links is False
    with pytest.raises(SettingsError, match="CONSENT_ALLOW_INSECURE_LINKS"):
        Settings.from_env({"CONSENT_ALLOW_INSECURE_LINKS": "maybe"})


def test_transport_settings_are_typed_with_defaults_for_the_embedded_broker() -> None:
    settings = Settings.from_env({})
    assert (settings.broker_wait, settings.fetch_wait_ms, settings.replication_factor) == (
        60.0,
        DEFAULT_FETCH_WAIT_MS,
        1,
    )
    settings = Settings.from_env(
        {
            "CONSENT_BROKER_WAIT": "2.5",
            "CONSENT_FETCH_WAIT_MS": "500",
            "CONSENT_REPLICATION_FACTOR": "3",
        }
    )
    assert (settings.broker_wait, settings.fetch_wait_ms, settings.replication_factor) == (
        2.5,
        500,
        3,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CONSENT_BROKER_WAIT", "0"),
        ("CONSENT_BROKER_WAIT", "inf"),
        ("CONSENT_BROKER_WAIT", "nan"),
        ("CONSENT_BROKER_WAIT", "soon"),
        ("CONSENT_FETCH_WAIT_MS", "0"),
        ("CONSENT_FETCH_WAIT_MS", "1.5"),
        ("CONSENT_REPLICATION_FACTOR", "0"),
        ("CONSENT_BATCH_MAX", "0"),
        ("CONSENT_BATCH_MAX", "many"),
        ("CONSENT_STATE_CACHE", "0"),
        ("CONSENT_STATE_CACHE", "lots"),
    ],
)
def test_transport_settings_out_of_range_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_batch_max_bounds_each_fetch_of_the_worker(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.core.policy import load_policy

    assert Settings.from_env({}).batch_max == 1000
    settings = Settings.from_env(
        {"CONSENT_BATCH_MAX": "4000", "CONSENT_DATA_DIR": str(tmp_path / "data")}
    )
    worker = create_app(settings, load_policy(), bootstrap="127.0.0.1:1")
    assert worker.app.conf.broker_max_poll_records == 4000


def test_state_cache_bounds_every_per_subject_cache_of_the_worker(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.core.policy import load_policy

    assert Settings.from_env({}).state_cache == 10_000
    settings = Settings.from_env(
        {"CONSENT_STATE_CACHE": "50000", "CONSENT_DATA_DIR": str(tmp_path / "data")}
    )
    worker = create_app(settings, load_policy(), bootstrap="127.0.0.1:1")
    index = worker.pipeline.timers
    assert index is not None
    assert (worker.pipeline.store.cache_max, worker.keys.cache_max, index.memo_max) == (
        50_000,
        50_000,
        50_000,
    )
