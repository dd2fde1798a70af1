"""A worker as a child process: used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.broker import die_with_parent, free_port
from streams.security.shredding import new_key


@functools.cache
def run_keys() -> dict[str, str]:
    """Sealing keys for the workers this process starts (demo, tests, benchmarks), made up once
    per run so that a restarted worker, or one taking over, opens what another sealed. The
    environment's own keys win. Nothing sealed with these is readable after the run."""
    return {"CONSENT_DATA_KEYS": f"run:{new_key()}", "CONSENT_IDENTIFIER_KEY": new_key()}


class WorkerProcess:
    def __init__(
        self,
        bootstrap: str,
        app_id: str,
        data_dir: Path,
        log_path: Path,
        *,
        web_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.app_id = app_id
        self.data_dir = data_dir
        self.log_path = log_path
        self.web_port = web_port or free_port()
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, ready_timeout: float = 60.0) -> WorkerProcess:
        env = {
            **run_keys(),
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CONSENT_APP_ID": self.app_id,
            "CONSENT_DATA_DIR": str(self.data_dir),
            "CONSENT_WEB_PORT": str(self.web_port),
            "CONSENT_SESSION_TIMEOUT": "6",
            "CONSENT_LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the parent, which stops the worker in order
            preexec_fn=die_with_parent,  # and a parent killed outright takes the worker along
        )
        log.close()
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no chance to flush or commit anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def restarts_seen(self) -> int:
        return self.log_path.read_text(errors="replace").count("[^Worker]: Starting")
