"""A system under test as a child process: its log lines, timestamped, and its CPU and memory."""

# psutil ships no type information; its calls are confined to this module.
# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import bisect
import contextlib
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import psutil

from bench.peers.args import MARK
from streams.process import run_keys


class Child:
    """Runs ``argv`` with stdout and stderr into ``log_path``; notes when watched lines appear.

    ``seen[text]`` is the wall-clock time the first line containing ``text`` arrived; peers'
    ``BENCH name=value`` lines land in ``marks``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        cwd: Path,
        watch: Sequence[str] = (),
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.watch = tuple(watch)
        self.seen: dict[str, float] = {}
        self.marks: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Child:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._pump = threading.Thread(target=self._read, name="child-log", daemon=True)
        self._pump.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in self.process.stdout:
                now = time.time()
                log.write(raw)
                line = raw.decode(errors="replace")
                if line.startswith(MARK):
                    name, _, value = line[len(MARK) :].strip().partition("=")
                    self.marks.setdefault(name, value)
                for text in self.watch:
                    if text in line and text not in self.seen:
                        self.seen[text] = now

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, timeout: float = 20.0) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._pump is not None:
            self._pump.join(5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Monitor:
    """Samples a process tree's CPU time and resident memory every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)
        self._procs: dict[int, psutil.Process] = {}
        self._last_cpu: dict[int, float] = {}  # per member, kept after it exits

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _tree(self) -> list[psutil.Process]:
        try:
            root = self._procs.get(self.pid) or psutil.Process(self.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        # Keep the same objects so CPU already counted is not lost when one exits.
        for proc in found:
            self._procs.setdefault(proc.pid, proc)
        return [self._procs[p.pid] for p in found]

    def sample(self) -> tuple[float, float, int] | None:
        rss = 0
        tree = self._tree()
        if not tree:
            return None
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                self._last_cpu[proc.pid] = times.user + times.system
                rss += proc.memory_info().rss
        return time.time(), sum(self._last_cpu.values()), rss

    def _run(self) -> None:
        while not self._stop.is_set():
            found = self.sample()
            if found is not None:
                at, cpu, rss = found
                self.times.append(at)
                self.cpu.append(cpu)
                self.rss.append(rss)
            self._stop.wait(self.interval)

    def cpu_at(self, moment: float) -> float:
        """CPU seconds used by ``moment`` (interpolated between samples)."""
        if not self.times:
            return 0.0
        i = bisect.bisect_left(self.times, moment)
        if i <= 0:
            return self.cpu[0]
        if i >= len(self.times):
            return self.cpu[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        c0, c1 = self.cpu[i - 1], self.cpu[i]
        return c0 + (c1 - c0) * (moment - t0) / max(t1 - t0, 1e-9)

    def cpu_between(self, start: float, end: float) -> float:
        return max(0.0, self.cpu_at(end) - self.cpu_at(start))

    @property
    def peak_rss(self) -> int:
        return max(self.rss, default=0)

    def rss_since(self, moment: float) -> list[int]:
        return [r for t, r in zip(self.times, self.rss, strict=True) if t >= moment]


def child_pid_with(text: str) -> int | None:
    """The pid of a direct child of this process whose command line contains ``text``."""
    for child in psutil.Process(os.getpid()).children():
        with contextlib.suppress(psutil.Error):
            if any(text in part for part in child.cmdline()):
                return int(child.pid)
    return None


def memory_total() -> int:
    return int(psutil.virtual_memory().total)


def python_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env = {**run_keys(), **env}  # one set of sealing keys for every worker of the run
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def serves_ready(port: int) -> bool:
    """Whether the worker on ``port`` answers its readiness probe with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
