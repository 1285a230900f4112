"""Revocation propagation across real processes, and what the mechanism costs each process.

Each configuration is a deployment of ``tests/support/propagation_harness.py``: an ASGI server
(uvicorn), a WSGI server (gunicorn, one sync worker) and a third process that changes keys,
sharing one database, all on 127.0.0.1 and stopped by PID afterwards. Configurations: a
SQLite file (no push channel); PostgreSQL (changes also pushed by ``LISTEN``/``NOTIFY``);
PostgreSQL with Redis as the shared cache tier. The PostgreSQL ones run when PostgreSQL
(and Redis) answer at ``DATABASE_URL`` / ``REDIS_URL``, by default the local servers the
test suite uses; otherwise their rows say why they were skipped.

Propagation: a key is created by the changer and made hot in both servers; one endpoint per
server is then probed continuously with it (a request every few milliseconds, from a thread
each), and after a random pause of up to ``MAX_STALENESS`` (so that the change falls at any
point of the servers' log-reading cycle) the changer revokes it. The delay of an endpoint is
the time from the start of the revocation until its first refusal arrives at the probe: it
includes the revocation's own duration and one request round trip.

Cost: each server's change-feed counters (``GET /propagation/stats``, a test-only endpoint
of ``tests/support/propagation_urls.py``) read before and after a window of a few seconds without
requests, and a window in which a hot key is requested continuously at a bounded rate.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from tests.support.propagation_harness import Deployment

CONFIGURATIONS = ("sqlite", "sqlite+redis", "postgresql", "postgresql+redis")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
#: ``MAX_STALENESS`` of the deployments: the library's default, set explicitly.
BOUND = 1.0
REVOCATIONS = 40
#: Hard limit, whatever the command line says.
MAX_REVOCATIONS = 200
#: Seconds of each cost window (idle, then under load).
WINDOW_SECONDS = 5.0
#: Requests per second per server, at most, in the load window.
LOAD_RATE = 100.0
#: The endpoint probed on each server: the async Ninja one on the ASGI server, the sync DRF
#: one on the WSGI server.
PROBED: dict[str, tuple[str, ...]] = {"asgi": ("/ninja/plain",), "wsgi": ("/drf/plain",)}
PROBED_DESCRIPTION = "Ninja's `/ninja/plain` on uvicorn, DRF's `/drf/plain` on gunicorn"
SERVER_NAMES = {"asgi": "uvicorn", "wsgi": "gunicorn"}
SERVER_LABELS = {
    "asgi": "uvicorn (ASGI), Ninja",
    "wsgi": "gunicorn (WSGI, 1 sync worker), DRF",
}
STATS_PATH = "/propagation/stats"
REACH_TIMEOUT = 3.0


@dataclass(frozen=True)
class Stats:
    """One reading of a server's change-feed counters."""

    pid: int
    reads: int
    failed_reads: int
    notifications: int
    listening: bool
    at: float

    @classmethod
    def read(cls, client: httpx.Client, base_url: str) -> Stats:
        response = client.get(base_url + STATS_PATH)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return cls(
            pid=int(data["pid"]),
            reads=int(data["reads"]),
            failed_reads=int(data["failed_reads"]),
            notifications=int(data["notifications"]),
            listening=bool(data["listening"]),
            at=time.monotonic(),
        )


@dataclass(frozen=True)
class Window:
    """What one server process did between two readings of its counters."""

    seconds: float
    reads: int
    failed_reads: int
    notifications: int
    #: Requests the benchmark sent to this server's protected endpoint during the window.
    requests: int
    listening_before: bool
    listening_after: bool

    @classmethod
    def between(cls, before: Stats, after: Stats, requests: int) -> Window:
        if before.pid != after.pid:
            raise RuntimeError(f"the server process changed ({before.pid} -> {after.pid})")
        return cls(
            seconds=after.at - before.at,
            reads=after.reads - before.reads,
            failed_reads=after.failed_reads - before.failed_reads,
            notifications=after.notifications - before.notifications,
            requests=requests,
            listening_before=before.listening,
            listening_after=after.listening,
        )

    @property
    def reads_per_second(self) -> float:
        return self.reads / self.seconds if self.seconds > 0 else float("nan")

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class ProcessCost:
    server: str
    during_changes: Window
    idle: Window
    load: Window
    #: Median round trip of the load window's requests, in ms.
    load_round_trip_ms: float


@dataclass(frozen=True)
class ConfigurationResult:
    configuration: str
    #: Why the configuration did not run, or failed; empty when it ran.
    skipped: str = ""
    #: Seconds from the start of each revocation to each probed endpoint's first refusal.
    delays: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: Seconds each revocation took in the changer (start to answer received).
    change_seconds: tuple[float, ...] = ()
    costs: tuple[ProcessCost, ...] = ()

    @property
    def all_delays(self) -> list[float]:
        return [delay for delays in self.delays.values() for delay in delays]


@dataclass(frozen=True)
class PropagationResults:
    revocations: int
    window_seconds: float
    load_rate: float
    bound: float
    database: str
    redis: str
    configurations: tuple[ConfigurationResult, ...]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _where(url: str) -> str:
    """``host:port/path`` of a URL: no user name or password in the report."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"


def _unreachable(configuration: str) -> str:
    """Why ``configuration`` cannot run on this machine, or ``""`` when it can."""
    if configuration == "sqlite":
        return ""
    if configuration.startswith("postgresql"):
        database_url = os.environ["DATABASE_URL"]
        try:
            import psycopg

            psycopg.connect(database_url, connect_timeout=int(REACH_TIMEOUT)).close()
        except Exception as exc:  # any failure means: not here
            return f"PostgreSQL at {_where(database_url)} did not answer ({type(exc).__name__})"
    if configuration.endswith("+redis"):
        redis_url = os.environ["REDIS_URL"]
        try:
            import redis

            client = redis.Redis.from_url(
                redis_url, socket_connect_timeout=REACH_TIMEOUT, socket_timeout=REACH_TIMEOUT
            )
            client.ping()
            client.close()
        except Exception as exc:  # any failure means: not here
            return f"Redis at {_where(redis_url)} did not answer ({type(exc).__name__})"
    return ""


@contextmanager
def _harness_environment() -> Iterator[tuple[str, str]]:
    """``DATABASE_URL`` (a PostgreSQL one) and ``REDIS_URL`` for the harness, defaulting to
    the local servers; the process's environment is restored afterwards."""
    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "REDIS_URL")}
    database_url = saved["DATABASE_URL"] or ""
    if not database_url.startswith(("postgres://", "postgresql://")):
        database_url = DEFAULT_DATABASE_URL
    redis_url = saved["REDIS_URL"] or DEFAULT_REDIS_URL
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    try:
        yield database_url, redis_url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _revoke_while_probing(
    deployment: Deployment, rng: random.Random
) -> tuple[dict[str, float], float]:
    """One revocation of a hot key, probed; returns (delay by endpoint, the change's seconds).

    The same measurement as ``Deployment.refusal_delays``, with the probes started a random
    pause before the change (the key stays hot meanwhile) and the change's duration kept.
    """
    created = deployment.changer.do("create")
    raw, prefix = str(created["raw"]), str(created["prefix"])
    deployment.warm(raw)
    with deployment.probing(raw, paths=PROBED) as probes:
        time.sleep(rng.uniform(0.0, BOUND))
        started_at = float(deployment.changer.do("revoke", prefix=prefix)["started_at"])
        answered_at = time.time()
        delays = probes.delays_after(started_at)
    return delays, answered_at - started_at


def _load(deployment: Deployment, raw: str, seconds: float) -> dict[str, tuple[int, float]]:
    """Request ``raw`` on each probed endpoint for ``seconds``, at most ``LOAD_RATE`` a second
    per server, one thread each; returns (requests, median round trip in ms) by server."""
    results: dict[str, tuple[int, float]] = {}
    errors: list[str] = []

    def run(server: str, url: str) -> None:
        round_trips: list[float] = []
        started = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < started + seconds:
                sent = time.perf_counter()
                status = client.get(url, headers={"X-API-Key": raw}).status_code
                round_trips.append(time.perf_counter() - sent)
                if status != 200:
                    errors.append(f"{url} answered {status}")
                    break
                next_at = started + len(round_trips) / LOAD_RATE
                time.sleep(max(0.0, next_at - time.monotonic()))
        results[server] = (len(round_trips), statistics.median(round_trips) * 1000)

    threads = [
        threading.Thread(
            target=run, args=(server, deployment.servers[server].url + paths[0]), daemon=True
        )
        for server, paths in PROBED.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    if errors or len(results) != len(threads):
        raise RuntimeError(f"the load window failed: {errors or 'a load thread did not finish'}")
    return results


def _measure(
    deployment: Deployment, revocations: int, progress: Callable[[str], None]
) -> ConfigurationResult:
    configuration = deployment.configuration
    rng = random.Random(f"propagation-{configuration}")  # noqa: S311 - pauses, not secrets
    servers = list(PROBED)
    with httpx.Client(timeout=10) as client:

        def stats() -> dict[str, Stats]:
            return {name: Stats.read(client, deployment.servers[name].url) for name in servers}

        urls = {name: deployment.servers[name].url + PROBED[name][0] for name in servers}
        delays: dict[str, list[float]] = {name: [] for name in servers}
        change_seconds: list[float] = []
        start = stats()
        for number in range(1, revocations + 1):
            measured, took = _revoke_while_probing(deployment, rng)
            change_seconds.append(took)
            for name in servers:
                delays[name].append(measured[urls[name]])
            if number % 10 == 0 or number == revocations:
                every = [d for server_delays in delays.values() for d in server_delays]
                progress(
                    f"propagation {configuration}: {number}/{revocations} revocations, "
                    f"p50 {percentile(every, 50) * 1000:.1f} ms, "
                    f"max {max(every) * 1000:.1f} ms so far"
                )
        after_changes = stats()

        time.sleep(WINDOW_SECONDS)  # idle: no request at all
        after_idle = stats()

        created = deployment.changer.do("create")
        hot = str(created["raw"])
        deployment.warm(hot)
        before_load = stats()
        loaded = _load(deployment, hot, WINDOW_SECONDS)
        after_load = stats()

    costs = tuple(
        ProcessCost(
            server=name,
            during_changes=Window.between(start[name], after_changes[name], 0),
            idle=Window.between(after_changes[name], after_idle[name], 0),
            load=Window.between(before_load[name], after_load[name], loaded[name][0]),
            load_round_trip_ms=loaded[name][1],
        )
        for name in servers
    )
    for cost in costs:
        progress(
            f"propagation {configuration} {cost.server}: log reads/s idle "
            f"{cost.idle.reads_per_second:.2f}, under load {cost.load.reads_per_second:.2f} "
            f"({cost.load.requests_per_second:.0f} req/s); notifications during the "
            f"revocations {cost.during_changes.notifications}; listening after idle "
            f"{cost.idle.listening_after}, under load {cost.load.listening_after}"
        )
    return ConfigurationResult(
        configuration=configuration,
        delays={name: tuple(values) for name, values in delays.items()},
        change_seconds=tuple(change_seconds),
        costs=costs,
    )


def run(
    workdir: Path, progress: Callable[[str], None], revocations: int = REVOCATIONS
) -> PropagationResults:
    """Every configuration in turn; one that cannot run, or fails, gets a reason instead."""
    from tests.support.propagation_harness import deploy

    revocations = max(1, min(revocations, MAX_REVOCATIONS))
    results: list[ConfigurationResult] = []
    with _harness_environment() as (database_url, redis_url):
        for configuration in CONFIGURATIONS:
            reason = _unreachable(configuration)
            if reason:
                progress(f"propagation {configuration}: skipped: {reason}")
                results.append(ConfigurationResult(configuration, skipped=reason))
                continue
            progress(f"propagation {configuration}: starting the servers and the changer")
            directory = workdir / f"propagation-{configuration.replace('+', '-')}"
            directory.mkdir(parents=True, exist_ok=True)
            try:
                with deploy(configuration, directory, {"MAX_STALENESS": BOUND}) as deployment:
                    results.append(_measure(deployment, revocations, progress))
            except Exception as exc:  # reported in the table; the other configurations go on
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                reason = f"failed: {type(exc).__name__}: {first_line}"
                progress(f"propagation {configuration}: {reason}")
                results.append(ConfigurationResult(configuration, skipped=reason))
    return PropagationResults(
        revocations=revocations,
        window_seconds=WINDOW_SECONDS,
        load_rate=LOAD_RATE,
        bound=BOUND,
        database=_where(database_url),
        redis=_where(redis_url),
        configurations=tuple(results),
    )


def describe(configuration: str) -> str:
    return {
        "sqlite": "SQLite file, no push channel",
        "sqlite+redis": "SQLite file + Redis shared cache tier (push by Redis pub/sub)",
        "postgresql": "PostgreSQL, push by `LISTEN`/`NOTIFY`",
        "postgresql+redis": "PostgreSQL (push) + Redis shared cache tier",
    }.get(configuration, configuration)


__all__ = [
    "CONFIGURATIONS",
    "PROBED",
    "PROBED_DESCRIPTION",
    "SERVER_LABELS",
    "SERVER_NAMES",
    "ConfigurationResult",
    "ProcessCost",
    "PropagationResults",
    "Window",
    "describe",
    "percentile",
    "run",
]
