"""Settings for outage tests: a cache alias whose server is not there."""

from __future__ import annotations

from typing import Any

#: ``CACHES`` with a working local-memory default and ``"broken"``, a Redis cache on a port
#: nothing listens on (connections are refused at once).
CACHES_WITH_A_BROKEN_ALIAS: dict[str, Any] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "broken": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2},
    },
}
