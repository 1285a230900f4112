"""Fixtures shared by the whole suite.

- ``queries``: counts SQL statements on every thread (the async path runs the ORM in
  a worker thread, where Django's own query capture does not look).
- ``thread_hops``: counts ``sync_to_async`` hops the verifier makes.
- ``_no_raw_key_in_logs`` (autouse): fails any test in which a raw key created during
  the test shows up in a log record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db.backends.utils import CursorWrapper

from async_api_key import keys, models

#: Tables of the change log: statements on them are counted apart (``change_log``).
CHANGE_LOG_TABLES = ("async_api_key_keychange", "async_api_key_changeclock", "pg_notify")


class QueryLog:
    """SQL statements executed while :meth:`capture` is active, on any thread.

    ``statements`` are those on keys; reads and writes of the change log (recording a
    change, or learning of changes) are kept apart in ``change_log``.
    """

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.change_log: list[str] = []
        #: Both, in the order they ran.
        self.everything: list[str] = []
        self.active = False

    @contextmanager
    def capture(self) -> Iterator[QueryLog]:
        self.statements.clear()
        self.change_log.clear()
        self.everything.clear()
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    @property
    def count(self) -> int:
        return len(self.statements)

    def writes(self) -> list[str]:
        return [sql for sql in self.statements if sql.lstrip().upper().startswith("UPDATE")]


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> QueryLog:
    log = QueryLog()
    original = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def recording(self: CursorWrapper, sql: str, params: Any, many: bool, executor: Any) -> Any:
        if log.active:
            on_log = any(table in sql for table in CHANGE_LOG_TABLES)
            (log.change_log if on_log else log.statements).append(sql)
            log.everything.append(sql)
        return original(self, sql, params, many, executor)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", recording)
    return log


class HopCounter:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> HopCounter:
    counter = HopCounter()
    original = sync_to_async

    def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return original(func, *args, **kwargs)

    monkeypatch.setattr("async_api_key.verification.sync_to_async", counting)
    return counter


class _RecordsEverything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.texts.append(text)


@pytest.fixture(autouse=True)
def _no_raw_key_in_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every raw key generated in the test; fail if one appears in any log record."""
    created: list[str] = []
    original = keys.generate_key

    def recording(namespace: str) -> keys.GeneratedKey:
        generated = original(namespace)
        created.append(generated.raw)
        return generated

    monkeypatch.setattr(models, "generate_key", recording)
    handler = _RecordsEverything()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield created
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    leaked = [key for key in created if any(key in text for text in handler.texts)]
    assert not leaked, "a raw API key appeared in a log record"


@pytest.fixture(scope="session", autouse=True)
def _close_worker_thread_connections(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Close the connection opened by ``sync_to_async``'s shared thread before the test
    database is dropped (outside a request, Django has no signal that would close it)."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    with django_db_blocker.unblock():
        SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _empty_verification_cache() -> Iterator[None]:
    """Each test starts with empty caches: the local tier, as a fresh process would, and the
    test cache (local memory, or the test Redis database when REDIS_URL is set)."""
    from django.core.cache import caches

    from async_api_key.cache import clear_local
    from async_api_key.password_hash_budget import password_hash_budget
    from async_api_key.propagation import change_feed

    change_feed.stop()
    change_feed.reset()
    clear_local()
    password_hash_budget.reset()
    caches["default"].clear()  # rate-limit counters and shared-tier entries of earlier tests
    yield
    change_feed.stop()
    clear_local()


@pytest.fixture
def shared_tier() -> Iterator[None]:
    """The shared cache tier on, in the test cache, which starts and ends empty."""
    from django.core.cache import cache
    from django.test import override_settings

    cache.clear()
    with override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"}):
        yield
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _second_database_features_known(django_db_setup: None, django_db_blocker: Any) -> None:
    """Django 6.1's model checks ask every database whether it supports ``JSONField``, which
    on SQLite is a query. Ask the suite's second database once, up front, so that a check run
    by a test that uses only ``default`` does not reach it."""
    from django.db import connections

    with django_db_blocker.unblock():
        assert connections["second"].features.supports_json_field
