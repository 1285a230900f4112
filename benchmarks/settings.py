"""Django settings of the benchmark project: the smallest stack both adapters run on.

The database is a SQLite file whose path the runner puts in ``BENCH_SQLITE_PATH`` (a
temporary directory), or ``DATABASE_URL`` when it is set. No middleware: every endpoint
pays the same bare Django request cycle, so an authentication cost shows at its largest.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import dj_database_url

SECRET_KEY = "benchmarks-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WSGI_APPLICATION = "benchmarks.wsgi.application"
ASGI_APPLICATION = "benchmarks.asgi.application"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_api_key",
    "async_api_key",
]
MIDDLEWARE: list[str] = []

_sqlite_path = os.environ.get("BENCH_SQLITE_PATH") or str(
    Path(tempfile.gettempdir()) / "async-api-key-bench.sqlite3"
)
# Persistent connections (what a production deployment configures) for every contender:
# with CONN_MAX_AGE=0 each request that touches the database would also open a connection.
DATABASES: dict[str, Any] = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{_sqlite_path}"), conn_max_age=600
    )
}
CACHES: dict[str, Any] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

# The library's defaults (verification cache on, CACHE_TTL 10 s, last_used_at written at
# most once a minute): what a project gets without configuring anything.
ASYNC_API_KEY: dict[str, Any] = {}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"async_api_key": {"level": "WARNING"}},
}
