"""A deployment for the propagation suite: one database, an ASGI server (uvicorn, Ninja and
DRF endpoints), a WSGI server (gunicorn, the same URLconf) and a third process that changes
keys (``tests/support/propagation_changer.py``), all on 127.0.0.1 and stopped by PID afterwards.

Four configurations: a SQLite file (the default deployment, no push channel), SQLite with
Redis as the shared cache tier (Redis pushes changes), PostgreSQL (``LISTEN``/``NOTIFY``
pushes changes), and PostgreSQL with Redis as the shared cache tier.
``benchmarks/propagation.py`` measures propagation with the same deployments.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.support.reliability_servers import (
    ROOT,
    ServerProcess,
    start_server_process,
    start_wsgi_server_process,
    wait_until_serving,
)

#: Where each server answers for each key model: Ninja and DRF, ``APIKey`` and the custom model.
ENDPOINTS = {
    "apikey": ("/ninja/plain", "/drf/plain"),
    "organization": ("/org/ninja/plain", "/org/drf/plain"),
}
COMMAND_TIMEOUT = 30.0
#: A refusal: 401, or 403 from a DRF view protected by a permission alone (as upstream's).
REFUSED = frozenset({401, 403})


def configurations() -> list[str]:
    """The configurations this machine can run: SQLite always; SQLite with Redis (which then
    pushes changes) when ``REDIS_URL`` is set; PostgreSQL when ``DATABASE_URL`` names one,
    with Redis too when both are set."""
    found = ["sqlite"]
    redis = bool(os.environ.get("REDIS_URL"))
    if redis:
        found.append("sqlite+redis")
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        found.append("postgresql")
        if redis:
            found.append("postgresql+redis")
    return found


def pushes_changes(configuration: str) -> bool:
    """Whether changes are pushed (PostgreSQL's NOTIFY, or Redis for SQLite)."""
    return configuration != "sqlite"


class Changer:
    """The process that changes keys; one JSON command a line, one JSON answer a line."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.propagation_changer"],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def do(self, action: str, **arguments: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write((json.dumps({"do": action, **arguments}) + "\n").encode())
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], COMMAND_TIMEOUT)
        if not ready:
            raise RuntimeError(f"the changer did not answer {action!r}:\n{self._output()}")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the changer exited:\n{self._output()}")
        answer: dict[str, Any] = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"{action} failed in the changer: {answer['error']}")
        return answer

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._stderr.close()

    def _output(self) -> str:
        self._stderr.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Deployment:
    configuration: str
    env: dict[str, str]
    servers: dict[str, ServerProcess]
    changer: Changer
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def urls(
        self, model: str = "apikey", paths: Mapping[str, Sequence[str]] | None = None
    ) -> list[str]:
        """Every endpoint of every server for ``model``'s keys; or, given ``paths`` (server
        name to paths, e.g. ``{"asgi": ["/ninja/plain"]}``), only those."""
        if paths is not None:
            return [self.servers[name].url + path for name, some in paths.items() for path in some]
        return [server.url + path for server in self.servers.values() for path in ENDPOINTS[model]]

    def status(self, url: str, raw: str) -> int:
        client = self.clients.get(url)
        if client is None:
            client = self.clients[url] = httpx.Client(timeout=10)
        return client.get(url, headers={"X-API-Key": raw}).status_code

    def warm(self, raw: str, model: str = "apikey") -> None:
        """Make ``raw`` hot in every server: each endpoint accepts it twice."""
        for url in self.urls(model):
            assert [self.status(url, raw), self.status(url, raw)] == [200, 200], url

    @contextmanager
    def probing(
        self, raw: str, model: str = "apikey", paths: Mapping[str, Sequence[str]] | None = None
    ) -> Iterator[Probes]:
        """Probe every endpoint (or those ``paths`` name, see :meth:`urls`) with ``raw``, each
        from a thread of its own, from before the block runs until each endpoint refuses the
        key (or the block's probes time out)."""
        probes = Probes(self.urls(model, paths), raw)
        probes.start()
        try:
            yield probes
        finally:
            probes.stop()

    def refusal_delays(
        self,
        raw: str,
        change: str,
        model: str = "apikey",
        *,
        paths: Mapping[str, Sequence[str]] | None = None,
        **arguments: Any,
    ) -> dict[str, float]:
        """Make ``change`` in the changer while every endpoint (or those ``paths`` name) is
        being probed; return, for each endpoint, the seconds from the change's commit to the
        arrival of the endpoint's first refusal."""
        with self.probing(raw, model, paths) as probes:
            committed_at = self.changer.do(change, **arguments)["committed_at"]
            assert committed_at is not None, f"{change} committed nothing"
            return probes.delays_after(committed_at)

    def statuses_for(self, raw: str, seconds: float, model: str = "apikey") -> set[int]:
        """Every status the endpoints answer ``raw`` with during ``seconds``."""
        seen: set[int] = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.update(self.status(url, raw) for url in self.urls(model))
            time.sleep(0.02)
        return seen

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


class Probes:
    """Threads that send ``raw`` to each URL every few milliseconds until it is refused."""

    INTERVAL = 0.005
    TIMEOUT = 15.0

    def __init__(self, urls: list[str], raw: str) -> None:
        self.raw = raw
        #: The wall-clock arrival time of each endpoint's first refusal.
        self.refused_at: dict[str, float] = {}
        self.errors: list[str] = []
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._probe, args=(url,), daemon=True) for url in urls
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(self.TIMEOUT)

    #: The commit time is taken just after the commit returned in the changer, while a server
    #: may already have been told: a refusal this much earlier still counts as after it.
    CLOCK_SLACK = 0.05

    def delays_after(self, committed_at: float) -> dict[str, float]:
        deadline = time.monotonic() + self.TIMEOUT
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not self.errors, self.errors
        pending = [t.name for t in self._threads if t.name not in self.refused_at]
        assert not pending, f"still accepted the key after {self.TIMEOUT}s: {pending}"
        early = {
            url: round(committed_at - at, 3)
            for url, at in self.refused_at.items()
            if at < committed_at - self.CLOCK_SLACK
        }
        assert not early, f"refused this many seconds before the change committed: {early}"
        return {url: max(0.0, at - committed_at) for url, at in self.refused_at.items()}

    def _probe(self, url: str) -> None:
        threading.current_thread().name = url
        deadline = time.monotonic() + self.TIMEOUT
        with httpx.Client(timeout=10) as client:
            while not self._stopping.is_set() and time.monotonic() < deadline:
                status = client.get(url, headers={"X-API-Key": self.raw}).status_code
                if status in REFUSED:
                    self.refused_at[url] = time.time()
                    return
                if status != 200:
                    self.errors.append(f"{url} answered {status}")
                    return
                time.sleep(self.INTERVAL)


def _create_postgresql_database(name: str) -> str:
    import psycopg

    base = urlsplit(os.environ["DATABASE_URL"])
    with psycopg.connect(urlunsplit(base), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(base._replace(path=f"/{name}"))


def _drop_postgresql_database(name: str) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def deploy(
    configuration: str, workdir: Path, settings: Mapping[str, Any] | None = None
) -> Iterator[Deployment]:
    """Start a deployment of ``configuration``; stop every process it started afterwards."""
    database = None
    if configuration.startswith("sqlite"):
        database_url = f"sqlite:///{workdir / 'propagation.sqlite3'}"
    else:
        database = f"async_api_key_propagation_{os.getpid()}_{configuration.replace('+', '_')}"
        database_url = _create_postgresql_database(database)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.support.propagation_settings",
        "PROPAGATION_DATABASE_URL": database_url,
        "PROPAGATION_SETTINGS": json.dumps(dict(settings or {})),
    }
    env.pop("PROPAGATION_REDIS_URL", None)
    if configuration.endswith("+redis"):
        env["PROPAGATION_REDIS_URL"] = os.environ["REDIS_URL"]
    servers: dict[str, ServerProcess] = {}
    changer: Changer | None = None
    deployment: Deployment | None = None
    try:
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        servers["asgi"] = start_server_process(env, workdir / f"{configuration}-asgi.log")
        servers["wsgi"] = start_wsgi_server_process(env, workdir / f"{configuration}-wsgi.log")
        for server in servers.values():
            wait_until_serving(server, "/ninja/plain")
        changer = Changer(env, workdir / f"{configuration}-changer.log")
        deployment = Deployment(configuration, env, servers, changer)
        yield deployment
    finally:
        if deployment is not None:
            deployment.close()
        if changer is not None:
            changer.stop()
        for server in servers.values():
            server.stop()
        if database is not None:
            _drop_postgresql_database(database)
