"""A real ASGI server (uvicorn on 127.0.0.1) serving a Ninja async endpoint, called over HTTP.

The server runs in a thread of the test process, so it shares the test database: SQLite's
test database is a shared-memory one that every thread of the process opens, and
``transaction=True`` commits what the test writes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from django.core.asgi import get_asgi_application

from async_api_key.models import APIKey

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0


@pytest.fixture
def live_server_url() -> Iterator[str]:
    """Serve the Django project (``tests.ninja_urls``) with uvicorn on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        get_asgi_application(), lifespan="off", log_level="warning", access_log=False
    )
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


@pytest.mark.urls("tests.ninja_urls")
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
        assert missing.json() == {"detail": "Unauthorized"}

        await api_key.arevoke()
        revoked = await http.get(url, headers={"Authorization": f"Api-Key {raw}"})
        assert revoked.status_code == 401
        assert revoked.json() == {"detail": "Unauthorized"}
