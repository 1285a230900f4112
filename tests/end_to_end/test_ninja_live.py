"""A real ASGI server (uvicorn on 127.0.0.1) serving a Ninja async endpoint, called over HTTP.

The server runs in a thread of the test process, so it shares the test database: SQLite's
test database is a shared-memory one that every thread of the process opens, and
``transaction=True`` commits what the test writes.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from django.core.asgi import get_asgi_application

from async_api_key.models import APIKey
from tests.support.reliability_servers import serve_in_thread


@pytest.fixture
def live_server_url() -> Iterator[str]:
    """Serve ``tests.support.ninja_urls`` with uvicorn on a free port of 127.0.0.1."""
    with serve_in_thread(get_asgi_application()) as url:
        yield url


@pytest.mark.urls("tests.support.ninja_urls")
@pytest.mark.django_db(transaction=True)
async def test_live_async_endpoint_accepts_a_key_and_refuses_it_once_revoked(
    live_server_url: str,
) -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="live")
    url = f"{live_server_url}/api/async/whoami"
    async with httpx.AsyncClient(timeout=10.0) as http:
        accepted = await http.get(url, headers={"Authorization": f"Api-Key {raw}"})
        assert accepted.status_code == 200
        assert accepted.json() == {"auth": str(api_key), "auth_type": "APIKey"}

        assert (await http.get(url, headers={"X-API-Key": raw})).status_code == 200

        missing = await http.get(url)
        assert missing.status_code == 401
        assert missing.json() == {"detail": "Authentication credentials were not provided."}
        assert missing.headers["WWW-Authenticate"] == 'Api-Key realm="api"'

        await api_key.arevoke()
        revoked = await http.get(url, headers={"Authorization": f"Api-Key {raw}"})
        assert revoked.status_code == 401
        assert revoked.json() == {
            "detail": "Invalid or missing API key.",
            "code": "invalid_api_key",
        }
        assert revoked.headers["WWW-Authenticate"] == 'Api-Key realm="api"'
