"""Settings of every process in the propagation suite (``tests/reliability/test_propagation.py``):
the ASGI server, the WSGI server and the process that changes keys.

All three share one database (``PROPAGATION_DATABASE_URL``: a SQLite file, or a PostgreSQL
database of its own) and, when ``PROPAGATION_REDIS_URL`` is set, one Redis as the shared
cache tier. ``PROPAGATION_SETTINGS`` holds extra ``ASYNC_API_KEY`` values as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import dj_database_url

from tests.support.settings import *  # noqa: F403

ROOT_URLCONF = "tests.support.propagation_urls"
DATABASES = {
    "default": dj_database_url.parse(os.environ["PROPAGATION_DATABASE_URL"], conn_max_age=0)
}
_redis_url = os.environ.get("PROPAGATION_REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _redis_url}
        if _redis_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
ASYNC_API_KEY: dict[str, Any] = {
    **({"SHARED_CACHE_ALIAS": "default"} if _redis_url else {}),
    **json.loads(os.environ.get("PROPAGATION_SETTINGS", "{}")),
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"async_api_key": {"level": "WARNING", "handlers": ["console"]}},
}
