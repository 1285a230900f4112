"""A revocation in one server process, seen by another: two uvicorn processes sharing one
PostgreSQL and one Redis, with the shared cache tier on (``SHARED_CACHE_ALIAS``).

What holds, precisely: the process that revokes refuses the key as soon as ``arevoke()`` has
returned. Every other process refuses it once its own local tier no longer holds the key,
that is at most ``CACHE_TTL`` seconds after ``arevoke()`` returned (the local entry was made
before the revocation and is never extended by hits); with ``CACHE_TTL = 0`` the local tier
is off and the shared tier's tombstone and the database refuse the key at once.

The servers need a database both they and the test see, so this runs on PostgreSQL with
Redis only (CI sets ``DATABASE_URL`` and ``REDIS_URL``); the test commits its keys
(``transaction=True``) in the test database, which the servers are pointed at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from async_api_key.models import APIKey
from tests.reliability_servers import ServerProcess, start_server_process, wait_until_serving

pytestmark = pytest.mark.django_db(transaction=True)

#: The local tier's lifetime in the process that may lag behind.
LAGGING_CACHE_TTL = 2.0
#: Slack for scheduling on a busy machine, added to the bound when asserting it.
MARGIN = 0.25
PROBE_INTERVAL = 0.05


@pytest.fixture(scope="module")
def servers(
    django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    """``revoker`` runs with the default ``CACHE_TTL``, ``immediate`` with 0, ``lagging`` with
    a short one."""
    if connection.vendor != "postgresql" or not getattr(settings, "REDIS_URL", None):
        pytest.skip(
            "two server processes need a database and a cache they share with the test: "
            "set DATABASE_URL to PostgreSQL and REDIS_URL (CI sets both)"
        )
    logs = tmp_path_factory.mktemp("servers")
    started: dict[str, ServerProcess] = {}
    try:
        for name, ttl in [("revoker", 10.0), ("immediate", 0.0), ("lagging", LAGGING_CACHE_TTL)]:
            started[name] = start_server_process(
                {
                    "DJANGO_SETTINGS_MODULE": "tests.reliability_settings",
                    "RELIABILITY_DATABASE_NAME": str(connection.settings_dict["NAME"]),
                    "RELIABILITY_CACHE_TTL": str(ttl),
                },
                Path(logs / f"{name}.log"),
            )
        for server in started.values():
            wait_until_serving(server, "/ninja/plain")
        yield started
    finally:
        for server in started.values():
            server.stop()


def _status(server: ServerProcess, raw: str) -> int:
    return httpx.get(
        f"{server.url}/ninja/plain", headers={"X-API-Key": raw}, timeout=10
    ).status_code


def _revoke_in(server: ServerProcess, api_key: APIKey) -> float:
    """Revoke ``api_key`` inside ``server``; return when the revocation has returned there."""
    response = httpx.post(f"{server.url}/ninja/revoke/{api_key.prefix}", timeout=10)
    assert response.status_code == 200, response.text
    return time.monotonic()


def test_with_no_local_tier_another_process_refuses_a_revoked_key_at_once(
    servers: dict[str, ServerProcess],
) -> None:
    api_key, raw = APIKey.objects.create_key(name="two processes")
    revoker, other = servers["revoker"], servers["immediate"]
    assert _status(revoker, raw) == 200  # cached in both tiers by the revoker
    assert _status(revoker, raw) == 200  # answered from its local tier
    assert _status(other, raw) == 200  # served from the shared tier

    _revoke_in(revoker, api_key)

    assert _status(revoker, raw) == 401  # the revoking process: at once, despite its cache
    assert [_status(other, raw) for _ in range(10)] == [401] * 10


def test_another_process_refuses_a_revoked_key_within_its_cache_ttl(
    servers: dict[str, ServerProcess],
) -> None:
    api_key, raw = APIKey.objects.create_key(name="two processes")
    revoker, lagging = servers["revoker"], servers["lagging"]
    assert _status(revoker, raw) == 200
    cached_by = time.monotonic()  # the lagging process's entry expires before this + its TTL
    assert _status(lagging, raw) == 200  # now in the lagging process's local tier

    revoked_at = _revoke_in(revoker, api_key)
    assert _status(revoker, raw) == 401

    probes: list[tuple[float, int]] = []  # (seconds after the revocation, status)
    while not probes or probes[-1][0] < LAGGING_CACHE_TTL + MARGIN + 0.5:
        sent = time.monotonic() - revoked_at
        probes.append((sent, _status(lagging, raw)))
        time.sleep(PROBE_INTERVAL)
    late = [status for sent, status in probes if sent > LAGGING_CACHE_TTL + MARGIN]
    assert late
    assert set(late) == {401}, probes
    # The window is real, not just allowed: while the lagging process's entry is surely
    # fresh, it still accepts the revoked key (what docs/security.md tells users to size).
    surely_fresh = cached_by + LAGGING_CACHE_TTL - MARGIN - revoked_at
    if probes[0][0] < surely_fresh:
        assert probes[0][1] == 200, probes
