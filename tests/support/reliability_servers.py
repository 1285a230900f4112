"""Real ASGI servers for the reliability tests: uvicorn in a thread of the test process, or
in a process of its own, on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from . import REPO_ROOT

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0
ROOT = REPO_ROOT


def _listening_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only on sockets that say
    # so, and with it on every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yield its base URL; stop it after."""
    sock = _listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@dataclass
class ServerProcess:
    """A uvicorn process serving the Django project of ``DJANGO_SETTINGS_MODULE``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(SHUTDOWN_TIMEOUT)


def start_server_process(env: Mapping[str, str], log: Path) -> ServerProcess:
    """Start ``uvicorn`` on a free port; return without waiting for it to serve."""
    return _start_server(
        lambda port: [
            "uvicorn",
            "--factory",
            "django.core.asgi:get_asgi_application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
        log,
    )


def start_wsgi_server_process(env: Mapping[str, str], log: Path) -> ServerProcess:
    """Start gunicorn (one sync worker) on a free port; return without waiting for it."""
    return _start_server(
        lambda port: [
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
            "django.core.wsgi:get_wsgi_application()",
        ],
        env,
        log,
    )


def _start_server(
    arguments: Callable[[int], list[str]], env: Mapping[str, str], log: Path
) -> ServerProcess:
    """Run ``python -m <arguments(port)>`` on a free port of 127.0.0.1, output to ``log``."""
    port = _free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter, fixed arguments)
            [sys.executable, "-m", *arguments(port)],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(process, f"http://127.0.0.1:{port}", log)


def wait_until_serving(server: ServerProcess, probe_path: str) -> None:
    """Wait until ``probe_path`` answers at all (any status), or fail with the server's output."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{server.output()}")
        try:
            httpx.get(server.url + probe_path, timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{server.output()}") from None
            time.sleep(0.05)
