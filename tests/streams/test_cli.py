"""The command line: clear errors, and Ctrl-C stops worker and embedded broker cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.broker import free_port


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_commands_and_configuration() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for word in ("worker", "demo", "check-policy", "KAFKA_BOOTSTRAP_SERVERS", "CONSENT_WEB_HOST"):
        assert word in result.stdout


def test_invalid_policy_stops_with_the_line_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[controllers.acme]\nname = "Acme"\n\n[controllers.acme.purposes.news]\n'
        'legal_basis = "consent"\ncategories = ["direct_marketing"]\nchannels = ["fax"]\n'
        "destinations = []\n"
    )
    result = cli("worker", env={"CONSENT_POLICY_FILE": str(policy)})
    assert result.returncode == 2
    assert str(policy) in result.stderr
    assert "controllers.acme.purposes.news.channels" in result.stderr
    assert ":7:" in result.stderr  # the line of `channels`


def test_invalid_setting_names_the_variable() -> None:
    result = cli("check-policy", env={"CONSENT_WEB_PORT": "not-a-port"})
    assert result.returncode == 2 and "CONSENT_WEB_PORT" in result.stderr


def test_check_policy_lists_the_shipped_purposes() -> None:
    result = cli("check-policy", env={"CONSENT_POLICY_FILE": ""})
    assert result.returncode == 0
    assert "hms-se" in result.stdout and "newsletter" in result.stdout


@pytest.mark.integration
def test_ctrl_c_stops_worker_and_embedded_broker(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(CONSENT_WEB_PORT=str(port), CONSENT_SESSION_TIMEOUT="6")
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "worker.log").open("wb"),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.3)
        children = _children(process.pid)
        assert any("tansu" in name for name in children.values()), children
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=60) == 0
        assert not any(_alive(pid) for pid in children), "broker left running"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = name
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.integration
def test_demo_plays_the_scenario_and_shows_what_the_worker_decided() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["CONSENT_WEB_PORT"] = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--exit"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Dead letters (1)" in out
    # Anna's confirmation allowed the newsletter, then her global unsubscribe suppressed it.
    assert (
        "| hms-se         | hms-c-1001 | newsletter             | email   | allow    | consent"
        in out
    )
    assert "| nl-gus     | newsletter             | email   | no      | consent_withdrawn" in out
    assert "as the worker answers them" in out and out.rstrip().endswith("Stopped.")
