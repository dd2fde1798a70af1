"""Consistency checks for the Docker Compose stack in compose/.

No container is started: the compose file and the Dockerfile are parsed and
checked against the project's own settings and topic names.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.topics import DEADLETTER_TOPIC, EVENTS_TOPIC, NOTIFICATIONS_TOPIC, SUPPRESSION_TOPICS
from streams.settings import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
README = COMPOSE_DIR / "README.md"

KAFKA_BIN = "/opt/kafka/bin/"
PROJECT_TOPICS = {EVENTS_TOPIC, DEADLETTER_TOPIC, NOTIFICATIONS_TOPIC, *SUPPRESSION_TOPICS.values()}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


@pytest.fixture(scope="module")
def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every service built from compose/Dockerfile."""
    found = {name: svc for name, svc in services.items() if "build" in svc}
    assert "worker" in found
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def command_text(value: str | list[str] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else "\n".join(value)


def command_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else list(value)


def parse_listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)} (empty host = all interfaces)."""
    result: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        match = re.fullmatch(r"([A-Za-z0-9_]+)://([^:]*):(\d+)", item)
        assert match, f"unparseable listener {item!r}"
        result[match.group(1)] = (match.group(2), int(match.group(3)))
    return result


def published_ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """-> [(host_ip, host_port, container_port)] for every published port."""
    result: list[tuple[str, int, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            result.append(
                (str(entry.get("host_ip", "")), int(entry["published"]), int(entry["target"]))
            )
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            result.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            result.append(("", int(parts[0]), int(parts[1])))
        else:
            result.append(("", 0, int(parts[0])))
    return result


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """-> [(source, target)] for every volume entry of a service."""
    result: list[tuple[str, str]] = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            result.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target = str(entry).split(":")[:2]
            result.append((source, target))
    return result


def dockerfile_instructions() -> list[tuple[str, str]]:
    """All instructions as (INSTRUCTION, arguments), continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        logical.append(pending)
    instructions = []
    for item in logical:
        keyword, _, args = item.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """Instructions of the last build stage, from its FROM on."""
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def instruction(name: str) -> str:
    values = [args for keyword, args in dockerfile_final_stage() if keyword == name]
    assert values, f"{name} missing from the final stage of {DOCKERFILE.name}"
    return values[-1]


def internal_endpoints(services: dict[str, dict[str, Any]]) -> set[str]:
    """host:port of every advertised listener addressed by the kafka service's own name."""
    kafka = services["kafka"]
    names = {"kafka", str(kafka.get("hostname", "kafka"))}
    advertised = parse_listeners(env_of(kafka)["KAFKA_ADVERTISED_LISTENERS"])
    return {f"{host}:{port}" for host, port in advertised.values() if host in names}


def topic_creations(services: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    topics = services["topics"]
    script = command_text(topics.get("entrypoint")) + "\n" + command_text(topics.get("command"))
    result = []
    for line in script.splitlines():
        if "kafka-topics.sh" not in line or "--create" not in line:
            continue
        argv = shlex.split(line)
        options: dict[str, Any] = {"tool": argv[0], "if_not_exists": "--if-not-exists" in argv}
        for flag in ("--topic", "--partitions", "--replication-factor", "--bootstrap-server"):
            assert flag in argv, f"{flag} missing in: {line.strip()}"
            options[flag] = argv[argv.index(flag) + 1]
        result.append(options)
    return result


# --------------------------------------------------------------------------- compose


def test_compose_specification_without_version(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert {"kafka", "topics", "worker"} <= set(compose["services"])


def test_kafka_image_is_pinned_apache_kafka(services: dict[str, dict[str, Any]]) -> None:
    image = services["kafka"]["image"]
    match = re.fullmatch(r"apache/kafka:(\d+)\.(\d+)\.(\d+)", image)
    assert match, f"kafka image must be apache/kafka with a pinned x.y.z tag, got {image!r}"
    assert int(match.group(1)) >= 3
    assert services["topics"]["image"] == image


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env.get("CLUSTER_ID")
    node_id = env["KAFKA_NODE_ID"]
    listeners = parse_listeners(env["KAFKA_LISTENERS"])
    advertised = parse_listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]

    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1
    voter_id, _, voter_address = voters[0].partition("@")
    assert voter_id == node_id
    assert int(voter_address.rsplit(":", 1)[1]) == listeners[controller][1]

    assert controller in listeners and controller not in advertised
    assert set(listeners) <= set(protocols)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"{name} advertised on a port it does not listen on"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert env[key] == "1", f"{key} must be 1 on a single node"


def test_kafka_listens_for_network_and_host(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    advertised = parse_listeners(env_of(kafka)["KAFKA_ADVERTISED_LISTENERS"])
    assert internal_endpoints(services), "no listener advertised under the service name"
    host_listeners = [port for host, port in advertised.values() if host == "localhost"]
    assert host_listeners, "no listener advertised for clients on the host"
    published = {container: (ip, host) for ip, host, container in published_ports(kafka)}
    for port in host_listeners:
        assert port in published, f"host listener port {port} is not published"
        ip, host_port = published[port]
        assert host_port == port, "advertised localhost port must equal the published port"
        assert ip == "127.0.0.1"


def test_kafka_healthcheck_uses_kafka_tools(services: dict[str, dict[str, Any]]) -> None:
    test = command_text(services["kafka"]["healthcheck"]["test"])
    assert KAFKA_BIN in test
    assert "kafka-broker-api-versions.sh" in test or "kafka-topics.sh" in test


def test_topics_service_creates_exactly_the_project_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    creations = topic_creations(services)
    names = [item["--topic"] for item in creations]
    assert len(names) == len(set(names))
    assert set(names) == PROJECT_TOPICS
    endpoints = internal_endpoints(services)
    for item in creations:
        assert item["tool"].startswith(KAFKA_BIN)
        assert item["if_not_exists"], f"{item['--topic']} must be created with --if-not-exists"
        assert item["--bootstrap-server"] in endpoints
        assert int(item["--partitions"]) >= 1
        assert item["--replication-factor"] == "1"


def test_topics_service_waits_for_kafka(services: dict[str, dict[str, Any]]) -> None:
    topics = services["topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics.get("restart", "no") == "no"


def test_worker_build_points_at_the_dockerfile(workers: dict[str, dict[str, Any]]) -> None:
    for name, worker in workers.items():
        build = worker["build"]
        assert build["context"] == "..", name
        assert build["dockerfile"] == "compose/Dockerfile", name
        assert (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_worker_starts_after_topics(workers: dict[str, dict[str, Any]]) -> None:
    for name, worker in workers.items():
        depends = worker["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully", name
        assert worker["restart"] == "unless-stopped", name


#: ``${VAR:?message}``: compose refuses to start unless the operator's shell sets VAR.
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z_]+):\?(?P<message>[^}]+)\}$")


def resolved(env: dict[str, str]) -> dict[str, str]:
    """``env`` as a worker would see it, with the operator's keys exported."""
    from streams.security.shredding import new_key

    exported = {"CONSENT_DATA_KEYS": f"kek-1:{new_key()}", "CONSENT_IDENTIFIER_KEY": new_key()}
    return {
        var: exported[match["var"]] if (match := REQUIRED.match(value)) else value
        for var, value in env.items()
    }


def test_sealing_keys_come_from_the_operator_and_are_the_same_for_every_worker(
    workers: dict[str, dict[str, Any]],
) -> None:
    for name, worker in workers.items():
        env = env_of(worker)
        for var, command in (
            ("CONSENT_DATA_KEYS", "keys new-kek"),
            ("CONSENT_IDENTIFIER_KEY", "keys new-identifier-key"),
        ):
            match = REQUIRED.match(env[var])
            assert match and match["var"] == var and command in match["message"], (name, var)
        Settings.from_env(resolved(env)).personal_keys()  # against the stack's Kafka


def test_worker_environment_is_what_the_code_reads(workers: dict[str, dict[str, Any]]) -> None:
    for name, worker in workers.items():
        env = resolved(env_of(worker))
        # Every variable the compose file sets is read by the code; the six core ones are all set.
        assert set(env) <= set(ENVIRONMENT), name
        assert set(env) >= set(list(ENVIRONMENT)[:6]), name
        settings = Settings.from_env(env)
        assert settings.web_host == "0.0.0.0", f"{name}: web host must be 0.0.0.0 in a container"
        assert str(settings.data_dir) == "/var/lib/consent-streams"


def test_worker_bootstrap_is_the_internal_listener(
    services: dict[str, dict[str, Any]], workers: dict[str, dict[str, Any]]
) -> None:
    endpoints = internal_endpoints(services)
    for name, worker in workers.items():
        servers = env_of(worker)["KAFKA_BOOTSTRAP_SERVERS"].split(",")
        assert servers and all(server.strip() in endpoints for server in servers), name


def test_worker_web_port_published_on_loopback(workers: dict[str, dict[str, Any]]) -> None:
    host_ports = []
    for name, worker in workers.items():
        web_port = int(env_of(worker)["CONSENT_WEB_PORT"])
        ports = published_ports(worker)
        assert len(ports) == 1, name
        ip, host_port, container_port = ports[0]
        assert ip == "127.0.0.1", f"{name}: the web port must bind the host loopback only"
        assert container_port == web_port, name
        host_ports.append(host_port)
    assert len(host_ports) == len(set(host_ports))


def test_worker_state_on_named_volume(
    compose: dict[str, Any], workers: dict[str, dict[str, Any]]
) -> None:
    declared = set(compose.get("volumes") or {})
    sources = []
    for name, worker in workers.items():
        data_dir = env_of(worker)["CONSENT_DATA_DIR"]
        matching = [source for source, target in mounts(worker) if target == data_dir]
        assert len(matching) == 1, f"{name}: {data_dir} is not on a volume"
        assert matching[0] in declared, f"{name}: {matching[0]} is not a named volume"
        sources.append(matching[0])
    assert len(sources) == len(set(sources)), "each worker needs its own state volume"


def test_custom_policy_mount_is_optional(workers: dict[str, dict[str, Any]]) -> None:
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(
        r"^\s*#\s*-\s*\./policy\.toml:/etc/consent-streams/policy\.toml:ro\s*$", raw, re.M
    )
    for name, worker in workers.items():
        policy = env_of(worker)["CONSENT_POLICY_FILE"]
        targets = {target for _, target in mounts(worker)}
        if policy:
            assert policy in targets, f"{name}: {policy} is not mounted"
        else:
            assert "/etc/consent-streams/policy.toml" not in targets, name


def test_second_worker_is_behind_a_profile(workers: dict[str, dict[str, Any]]) -> None:
    assert "profiles" not in workers["worker"]
    app_ids = {env_of(worker)["CONSENT_APP_ID"] for worker in workers.values()}
    assert len(app_ids) == 1, "all workers must share one consumer group"
    for name, worker in workers.items():
        if name != "worker":
            assert worker.get("profiles") == ["scale"], name


def test_worker_command_is_worker(workers: dict[str, dict[str, Any]]) -> None:
    assert json.loads(instruction("CMD")) == ["worker"]
    for name, worker in workers.items():
        if "command" in worker:
            assert command_list(worker["command"]) == ["worker"], name
        assert "entrypoint" not in worker, name


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    build_args = dict(
        args.split("=", 1) for keyword, args in instructions if keyword == "ARG" and "=" in args
    )
    for keyword, args in instructions:
        if keyword == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m.group(1)], args.split()[0])
            assert image == "python:3.11-slim", args
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert "pip install --no-cache-dir ." in runs
    assert json.loads(instruction("ENTRYPOINT")) == ["consent-streams"]


def test_dockerfile_runs_as_non_root() -> None:
    user = instruction("USER").split(":")[0]
    assert user not in {"root", "0", ""}


def test_web_port_agrees_everywhere(workers: dict[str, dict[str, Any]]) -> None:
    web_port = {int(env_of(worker)["CONSENT_WEB_PORT"]) for worker in workers.values()}
    assert len(web_port) == 1
    (port,) = web_port

    exposed = {int(item.split("/")[0]) for item in instruction("EXPOSE").split()}
    assert port in exposed

    health = instruction("HEALTHCHECK")
    cmd = health[health.index("CMD") + len("CMD") :].strip()
    probe = " ".join(json.loads(cmd)) if cmd.startswith("[") else cmd
    assert "127.0.0.1" in probe and "/health" in probe
    assert "urllib" in probe
    assert f":{port}/" in probe or f"'{port}'" in probe or f'"{port}"' in probe

    env_line = " ".join(args for keyword, args in dockerfile_final_stage() if keyword == "ENV")
    match = re.search(r"CONSENT_WEB_PORT=(\d+)", env_line)
    if match:
        assert int(match.group(1)) == port


def test_console_script_is_declared() -> None:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("pyproject.toml not present")
    scripts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]
    assert "consent-streams" in scripts


# --------------------------------------------------------------------------- README


def test_readme_documents_the_stack() -> None:
    text = README.read_text(encoding="utf-8")
    assert "docker compose -f compose/docker-compose.yml up --build" in text
    assert "down -v" in text
    for topic in PROJECT_TOPICS:
        assert f"`{topic}`" in text, topic
    for script in ("kafka-console-producer.sh", "kafka-console-consumer.sh"):
        assert KAFKA_BIN + script in text


def test_each_worker_advertises_its_own_address(workers: dict[str, dict[str, Any]]) -> None:
    # Reads for a subject owned by another worker are forwarded to this URL.
    for name, worker in workers.items():
        settings = Settings.from_env(resolved(env_of(worker)))
        assert settings.advertised_url == f"http://{name}:{settings.web_port}", name


def test_dead_letter_topic_holds_a_base64_copy_of_the_largest_record(
    services: dict[str, dict[str, Any]],
) -> None:
    from streams.topology import DEADLETTER_MAX_BYTES

    script = " ".join(str(part) for part in services["topics"]["command"])
    line = next(x for x in script.split("kafka-topics.sh") if "--topic consent.deadletter" in x)
    assert f"--config max.message.bytes={DEADLETTER_MAX_BYTES}" in line


def test_topics_service_sets_the_configs_the_worker_would(
    services: dict[str, dict[str, Any]],
) -> None:
    from streams.topology import TopicNames

    wanted = TopicNames.of(Settings()).public_configs
    script = command_text(services["topics"].get("command"))
    for line in script.splitlines():
        if "kafka-topics.sh" not in line or "--create" not in line:
            continue
        argv = shlex.split(line)
        topic = argv[argv.index("--topic") + 1]
        configs = dict(
            argv[i + 1].split("=", 1) for i, flag in enumerate(argv) if flag == "--config"
        )
        assert configs == wanted[topic], topic


def test_worker_image_can_read_compressed_input() -> None:
    # The image installs the package (see test_dockerfile_base_and_entrypoint), so it gets the
    # codecs only if the package declares them.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    [aiokafka] = [d for d in dependencies if d.startswith("aiokafka")]
    extras = set(aiokafka.partition("[")[2].partition("]")[0].split(","))
    assert {"snappy", "lz4", "zstd"} <= extras
