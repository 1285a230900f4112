"""Hundreds of concurrent requests through a real ASGI server (uvicorn on 127.0.0.1, in a
thread of the test process so that it shares the test database) to a Django-Ninja async
endpoint: every answer is right, none is an error, no thread or database connection is left
behind, and once ``arevoke()`` has returned no later request with that key gets in.

Django's ASGI handler gives each request a thread of its own for sync work (the verifier's
one hop), so each request that reaches the database opens a connection in that thread and
must close it when the request ends (``CONN_MAX_AGE = 0``).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application
from django.db import connection
from django.test import override_settings

from async_api_key.models import APIKey
from tests.support.key_factories import unknown_key, wrong_secret_for
from tests.support.reliability_servers import serve_in_thread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.support.reliability_urls"),
]

REQUESTS = 300
CONCURRENCY = 24  # requests in flight at once (and so at most this many database connections)
SETTLE_TIMEOUT = 5.0
TRAFFIC_TIMEOUT = 30.0
#: While it serves: uvicorn's thread, and its event loop's default executor (a bounded pool
#: that Django uses for non-thread-sensitive work such as reading request bodies). Django's
#: per-request threads must all be gone once the answers are in.
SERVER_THREADS = 1 + min(32, (os.cpu_count() or 1) + 4)


def _settings(**values: Any) -> dict[str, Any]:
    """``ASYNC_API_KEY`` for the traffic. On SQLite, no ``last_used_at`` writes: its shared
    in-memory test database fails a write that meets a concurrent read or write at once
    ("database table is locked") instead of waiting as PostgreSQL (or a SQLite file with a
    busy timeout) does, so concurrent writes there would test SQLite, not the library."""
    if connection.vendor == "sqlite":
        values["LAST_USED_INTERVAL"] = None
    return values


@pytest.fixture
def server_url() -> Iterator[str]:
    with serve_in_thread(get_asgi_application()) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        yield client


@dataclass(frozen=True)
class Presented:
    """A key to send and the answer it must get: the key's prefix, or ``None`` for a 401."""

    raw: str
    accepted_as: str | None

    @property
    def answer(self) -> tuple[int, dict[str, str]]:
        if self.accepted_as is None:
            return 401, {"detail": "Invalid or missing API key.", "code": "invalid_api_key"}
        return 200, {"key": self.accepted_as}


async def _mixed_keys() -> list[Presented]:
    presented: list[Presented] = []
    for index in range(6):
        api_key, raw = await APIKey.objects.acreate_key(name=f"valid-{index}")
        presented.append(Presented(raw, api_key.prefix))
    for index in range(3):
        api_key, raw = await APIKey.objects.acreate_key(name=f"revoked-{index}")
        await api_key.arevoke()
        presented.append(Presented(raw, None))
    for _ in range(3):
        presented.append(Presented(unknown_key(), None))
    api_key, _ = await APIKey.objects.acreate_key(name="wrong-secret")
    presented.append(Presented(wrong_secret_for(api_key.prefix), None))
    presented.append(Presented("not-a-key", None))
    return presented


def _database_connections() -> int:
    """Connections to the test database, other than the one asking (PostgreSQL only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


async def _settles(measure: Any, at_most: int) -> int:
    """Poll ``measure`` until it is at most ``at_most`` (cleanup after a response is async)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        value: int = await measure()
        if value <= at_most or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def _threads() -> int:
    return threading.active_count()


@pytest.mark.parametrize(
    "cache_enabled", [True, False], ids=["cache on", "cache off: every request queries"]
)
async def test_hundreds_of_concurrent_requests_are_all_answered_right_and_leak_nothing(
    cache_enabled: bool, http: httpx.AsyncClient
) -> None:
    presented = await _mixed_keys()
    schedule = [presented[i % len(presented)] for i in range(REQUESTS)]
    random.Random(9).shuffle(schedule)
    on_postgresql = connection.vendor == "postgresql"
    count_connections = sync_to_async(_database_connections)
    threads_before = threading.active_count()
    connections_before = await count_connections() if on_postgresql else 0

    with (
        override_settings(ASYNC_API_KEY=_settings(CACHE_ENABLED=cache_enabled)),
        serve_in_thread(get_asgi_application()) as url,
    ):
        in_flight = asyncio.Semaphore(CONCURRENCY)  # queue here: httpx's pool queues slowly

        async def call(key: Presented) -> tuple[Presented, int, Any]:
            async with in_flight:
                response = await http.get(f"{url}/ninja/plain", headers={"X-API-Key": key.raw})
            return key, response.status_code, response.json()

        answers = await asyncio.gather(*(call(key) for key in schedule))
        threads_after_run = await _settles(_threads, threads_before + SERVER_THREADS)
        connections_after_run = (
            await _settles(count_connections, connections_before) if on_postgresql else 0
        )
    threads_after_close = await _settles(_threads, threads_before)
    connections_after_close = (
        await _settles(count_connections, connections_before) if on_postgresql else 0
    )

    wrong = [(key, status, body) for key, status, body in answers if (status, body) != key.answer]
    assert wrong == []
    assert sum(status == 200 for _, status, _ in answers) == sum(
        key.accepted_as is not None for key in schedule
    )
    assert threads_after_run <= threads_before + SERVER_THREADS
    assert threads_after_close <= threads_before
    assert connections_after_run <= connections_before
    assert connections_after_close <= connections_before


@pytest.mark.parametrize("cache_enabled", [True, False], ids=["cache on", "cache off"])
async def test_once_arevoke_has_returned_no_later_request_gets_in(
    cache_enabled: bool, server_url: str, http: httpx.AsyncClient
) -> None:
    if not cache_enabled and connection.vendor == "sqlite":
        pytest.skip(
            "on SQLite's shared in-memory test database the revocation's write fails at once "
            "when it meets a concurrent read; PostgreSQL (CI) runs this"
        )
    revoked_key, revoked_raw = await APIKey.objects.acreate_key(name="revoked mid-traffic")
    other_key, other_raw = await APIKey.objects.acreate_key(name="stays valid")
    url = f"{server_url}/ninja/plain"
    results: list[tuple[str, float, int]] = []  # (which key, when the request was sent, status)
    revoked_at = float("inf")
    warmed_up, enough_after, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def traffic(raw: str, which: str) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            response = await http.get(url, headers={"Authorization": f"Api-Key {raw}"})
            results.append((which, sent, response.status_code))
            if len(results) >= 50:
                warmed_up.set()
            if sum(sent > revoked_at for _, sent, _ in results[-100:]) >= 100:
                enough_after.set()

    with override_settings(ASYNC_API_KEY=_settings(CACHE_ENABLED=cache_enabled)):
        assert (await http.get(url, headers={"X-API-Key": revoked_raw})).status_code == 200
        workers = [
            asyncio.create_task(traffic(*pair))
            for pair in [(revoked_raw, "revoked"), (other_raw, "other")] * (CONCURRENCY // 2)
        ]
        try:
            await asyncio.wait_for(warmed_up.wait(), TRAFFIC_TIMEOUT)
            await revoked_key.arevoke()
            revoked_at = time.monotonic()
            await asyncio.wait_for(enough_after.wait(), TRAFFIC_TIMEOUT)
        finally:
            stop.set()
            await asyncio.gather(*workers)

    before = [status for which, sent, status in results if which == "revoked" and sent < revoked_at]
    after = [status for which, sent, status in results if which == "revoked" and sent > revoked_at]
    other = [status for which, _, status in results if which == "other"]
    assert 200 in before  # the key was in use (and hot in the cache) when it was revoked
    assert after
    assert set(after) == {401}
    assert set(other) == {200}
    assert other_key.prefix != revoked_key.prefix
