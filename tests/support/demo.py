"""The demo as ``make demo`` runs it (``demo/run.py``), for the end-to-end tests: a real
process on a free port of 127.0.0.1 with its own temporary SQLite file, stopped at the end."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support import REPO_ROOT

START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _read_lines(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DEMO_ADMIN_PASSWORD": "demo-test-password",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(  # noqa: S603  (our own script, fixed arguments)
        [sys.executable, str(REPO_ROOT / "demo" / "run.py"), "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = RunningDemo(process)
    received: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process, received), daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not running.lines or running.lines[-1] != "Stop with Ctrl+C.":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"the demo did not start in {START_TIMEOUT} s:\n{running.output}")
            try:
                line = received.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"the demo exited early:\n{running.output}")
            running.lines.append(line)
        yield running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
