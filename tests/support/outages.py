"""Outages for tests: a cache alias whose server is not there, a database that refuses writes."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper

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


def refuse_sql_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``UPDATE`` fail as on a read-only database (a replica, a locked SQLite file):
    the writes of bookkeeping, not the reads of a verification."""
    real = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def refuse_updates(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.lstrip().upper().startswith("UPDATE"):
            raise OperationalError("database is read-only")
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse_updates)
