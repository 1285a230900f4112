#!/usr/bin/env python
"""Run the demo: migrate, create users and one API key, serve on 127.0.0.1, print curls.

``make demo`` runs this inside the project's virtual environment. Options:

- ``--port 8000`` (``0`` picks a free port; the banner shows the real one);
- ``DATABASE_URL`` switches from ``demo/db.sqlite3`` to another database (PostgreSQL, or
  another SQLite file);
- ``DEMO_ADMIN_PASSWORD`` sets the password of the ``admin`` user; without it a new random
  password is set and printed on every run. ``DEMO_CUSTOMER_PASSWORD`` does the same for
  ``customer``, an ordinary user who manages their own keys on "My API keys".

The API key is printed once, in the banner, and stored only as a hash.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import threading
import time
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"
ADMIN_USERNAME = "admin"
CUSTOMER_USERNAME = "customer"
KEY_SCOPES = ["orders:read"]


def setup_django() -> None:
    sys.path.insert(0, str(DEMO_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    import django

    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def ensure_admin() -> str:
    """Create or update the ``admin`` superuser; return its password."""
    from django.contrib.auth import get_user_model

    password = os.environ.get("DEMO_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    user_model = get_user_model()
    user, _created = user_model.objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": "admin@example.com"}
    )
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    return password


def ensure_customer() -> str:
    """Create or update ``customer``, a user who is not staff; return its password."""
    from django.contrib.auth import get_user_model

    password = os.environ.get("DEMO_CUSTOMER_PASSWORD") or secrets.token_urlsafe(12)
    user, _created = get_user_model().objects.get_or_create(username=CUSTOMER_USERNAME)
    user.set_password(password)
    user.save()
    return password


def create_api_key() -> str:
    """Create the demo key with the library's own ``createapikey`` command; return the raw key."""
    from django.core.management import call_command, get_commands

    name = f"demo {time.strftime('%Y-%m-%d %H:%M:%S')}"
    if "createapikey" in get_commands():
        stdout = io.StringIO()
        call_command("createapikey", name=name, scopes=",".join(KEY_SCOPES), stdout=stdout)
        return stdout.getvalue().strip()
    from async_api_key.models import APIKey

    return APIKey.objects.create_key(name=name, scopes=KEY_SCOPES)[1]


def banner(base: str, key: str, password: str, customer_password: str) -> str:
    with_key = f'-H "Authorization: Api-Key {key}"'
    other_header = f'-H "X-API-Key: {key}"'
    lines = [
        "",
        "The demo shop is running. This API key is shown once and stored only as a hash:",
        "",
        f"    {key}",
        "",
        "Try it (paste into another terminal):",
        "",
        "  Django-Ninja (async) at /api/:",
        f"    curl {with_key} {base}/api/products   # -> 200",
        f"    curl {other_header} {base}/api/orders   # -> 200 (scope orders:read)",
        f"    curl {base}/api/products   # -> 401 (no key)",
        f"    curl -X POST {with_key} -H 'Content-Type: application/json'"
        f' -d \'{{"product_id": 1, "quantity": 1}}\' {base}/api/orders'
        "   # -> 403 (the key lacks orders:write)",
        "",
        "  Django REST framework at /drf/:",
        f"    curl {with_key} {base}/drf/products/   # -> 200",
        f"    curl {base}/drf/products/   # -> 401 (no key)",
        "",
        "  OpenAPI:",
        f"    curl {base}/api/openapi.json   # -> 200",
        f"    interactive docs: {base}/api/docs   (Authorize with the key above)",
        "",
        f"  Admin: {base}/admin/   user {ADMIN_USERNAME!r}, password {password!r}",
        "",
        "  A customer's own keys (create, rotate, revoke; the JSON API is /api/keys):",
        f"    My API keys: {base}/account/keys/   user {CUSTOMER_USERNAME!r},"
        f" password {customer_password!r}",
        "",
        "Stop with Ctrl+C.",
        "",
    ]
    return "\n".join(lines)


def serve(port: int, key: str, password: str, customer_password: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        "demo_project.asgi:application", host=HOST, port=port, lifespan="off", log_level="info"
    )
    server = uvicorn.Server(config)

    def announce_when_ready() -> None:
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.05)
        bound_port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://{HOST}:{bound_port}"
        print(banner(base, key, password, customer_password), flush=True)

    threading.Thread(target=announce_when_ready, daemon=True).start()
    server.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args(argv)

    setup_django()
    print("Migrating the database...", flush=True)
    migrate()
    password = ensure_admin()
    customer_password = ensure_customer()
    key = create_api_key()
    serve(args.port, key, password, customer_password)


if __name__ == "__main__":
    main()
