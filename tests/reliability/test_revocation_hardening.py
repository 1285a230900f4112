"""Revocation under attack, round two: holes an adversarial review found in the change log
design, each first shown failing, then fixed. The first round is in
``test_revocation_attacks.py``; real processes in ``test_propagation.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test import override_settings

from async_api_key.cache import clear_local
from async_api_key.changelog import KeyChange
from async_api_key.changes import record_change
from async_api_key.checks import check_settings
from async_api_key.conf import api_key_settings
from async_api_key.exceptions import KeyNotRotatable
from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.propagation import change_feed, redis_channel, redis_location
from async_api_key.verification import Reason, Verifier
from tests.conftest import QueryLog
from tests.support.remote_changes import remote_revoke
from tests.support.testapp.models import Organization, OrganizationAPIKey
from tests.support.threads import run_concurrently

FAST = {"MAX_STALENESS": 0.2, "PUSH_CHANGES": False}


def _wait_until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


@contextmanager
def _rolled_back(kind: str) -> Iterator[None]:
    """A transaction that ends in a rollback: ``atomic()``, or autocommit turned off by hand."""
    if kind == "atomic":
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
        return
    transaction.set_autocommit(False)
    try:
        yield
        assert not connection.in_atomic_block
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)


@pytest.mark.parametrize("kind", ["atomic", "manual"])
@override_settings(ASYNC_API_KEY=FAST)
@pytest.mark.django_db(transaction=True)
def test_a_log_read_inside_a_rolled_back_transaction_does_not_hide_a_later_change(
    kind: str,
) -> None:
    victim, raw_victim = APIKey.objects.create_key(name="victim")
    _, raw_other = APIKey.objects.create_key(name="other")
    third, _ = APIKey.objects.create_key(name="third")
    record_change(APIKey, ["seedseedseed"])  # a clock row exists, as in production
    verifier = Verifier(APIKey)
    assert verifier.verify(raw_victim).is_valid  # first log read, then cached
    assert verifier.verify(raw_other).is_valid  # cached
    time.sleep(0.3)  # entries now need the log to confirm them
    with _rolled_back(kind):
        third.name = "renamed"
        third.save()  # records generation g, uncommitted
        # a verification in the same transaction reads the log: on this connection it
        # would see its own uncommitted generation g and move the cursor to g
        assert verifier.verify(raw_other).is_valid
    remote_revoke(victim)  # another process's revocation now takes generation g
    time.sleep(0.3)  # > MAX_STALENESS after the revocation committed
    assert verifier.verify(raw_victim).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={**FAST, "SHARED_CACHE_ALIAS": "default"})
@pytest.mark.django_db(transaction=True)
def test_a_new_process_ignores_a_shared_entry_older_than_its_start_after_a_redis_blip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored in both tiers
    shared = caches["default"]

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis blip")

    with monkeypatch.context() as blip:
        blip.setattr(shared, "set_many", down)
        api_key.revoke()  # committed; the shared versions could not be replaced
    time.sleep(0.3)  # > MAX_STALENESS
    # A worker that starts now (gunicorn max_requests, a deploy): fresh feed, empty local tier.
    change_feed.reset()
    clear_local()
    assert verifier.verify(raw).reason is Reason.REVOKED


class SelectingManager(BaseAPIKeyManager[OrganizationAPIKey]):
    """The docs' advice for async views: select_related the owner in get_queryset()."""

    def get_queryset(self) -> QuerySet[OrganizationAPIKey]:  # type: ignore[override]
        return super().get_queryset().select_related("organization")

    def cache_scope(self) -> str:
        return "selecting"


@pytest.mark.django_db
def test_related_objects_of_a_cached_key_are_not_shared_between_requests() -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="k", organization=organization)
    manager = SelectingManager()
    manager.model = OrganizationAPIKey
    verifier = Verifier(OrganizationAPIKey, manager=manager)
    first = verifier.verify(raw).api_key  # cold path: the loaded instance itself
    assert first is not None
    first.organization.name = "changed by request 1"  # request 1 edits its own object...
    first.organization.active = False
    second = verifier.verify(raw).api_key  # ...request 2, a cache hit
    assert second is not None
    assert second.organization.name == "Acme"
    assert second.organization.active is True


def test_a_manager_bound_to_another_database_has_its_own_cache_scope() -> None:
    """A key cached through the default database's manager is never served through a
    manager bound to another one (db_manager): their scopes differ."""
    default_scope = APIKey.objects.cache_scope()
    other_scope = APIKey.objects.db_manager("tenant_b").cache_scope()
    assert default_scope is not None
    assert other_scope is not None
    assert other_scope != default_scope


@pytest.mark.django_db
def test_record_change_refuses_a_single_string_instead_of_recording_its_characters() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    with pytest.raises(TypeError, match="not one string"):
        record_change(APIKey, api_key.prefix)
    assert not KeyChange.objects.filter(prefix__in=list(api_key.prefix)).exists()


def _clone(api_key: APIKey, **fields: Any) -> APIKey:
    """A new instance built with a stored key's primary key, as a sync job builds one."""
    return APIKey(
        pk=api_key.pk,
        prefix=api_key.prefix,
        hashed_key=api_key.hashed_key,
        name=api_key.name,
        created=api_key.created,
        **fields,
    )


@pytest.mark.django_db
def test_saving_a_new_instance_over_a_revoked_key_cannot_unrevoke_it() -> None:
    api_key, _ = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    api_key.revoke()
    with pytest.raises(ValidationError):
        _clone(api_key, scopes=["*"]).save()
    api_key.refresh_from_db()
    assert api_key.revoked
    assert api_key.scopes == ["orders:read"]


@pytest.mark.django_db
def test_saving_a_new_instance_over_a_stored_key_is_a_recorded_update() -> None:
    api_key, raw = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    before = KeyChange.objects.count()
    _clone(api_key, scopes=["orders:write"]).save()
    assert KeyChange.objects.filter(prefix=api_key.prefix).count() == 1
    assert KeyChange.objects.count() == before + 1
    assert verifier.verify(raw, scopes=["orders:read"]).reason is Reason.INSUFFICIENT_SCOPE


@pytest.mark.django_db
def test_a_queryset_update_reads_its_keys_after_locking_the_change_clock(
    queries: QueryLog,
) -> None:
    """Read before the lock, the list of keys could miss one that a concurrent (recorded)
    change moved into the filter and committed in between."""
    APIKey.objects.create_key(name="batch")
    with queries.capture():
        APIKey.objects.filter(name="batch").update(revoked=True)
    ran = [sql.lstrip().upper() for sql in queries.everything]
    clock_locked = next(
        i for i, sql in enumerate(ran) if sql.startswith("UPDATE") and "CHANGECLOCK" in sql
    )
    keys_read = next(
        i for i, sql in enumerate(ran) if sql.startswith("SELECT") and "ASYNC_API_KEY_APIKEY" in sql
    )
    assert clock_locked < keys_read


@override_settings(ASYNC_API_KEY=FAST)
@pytest.mark.django_db(transaction=True)
def test_a_log_read_inside_a_repeatable_read_transaction_sees_the_latest_changes() -> None:
    """A long transaction at REPEATABLE READ (a job, a streaming view) verifies a key: its log
    read sees its old snapshot, yet marks the whole process's cache as confirmed *now*."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL isolation levels")
    victim, raw_victim = APIKey.objects.create_key(name="victim")
    _, raw_job = APIKey.objects.create_key(name="job")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw_victim).is_valid
    assert verifier.verify(raw_job).is_valid
    snapshot_taken = threading.Event()
    revoked = threading.Event()
    job_done = threading.Event()

    def job() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    cursor.execute("SELECT 1 FROM async_api_key_changeclock")
                snapshot_taken.set()
                revoked.wait(5)
                time.sleep(0.3)
                assert verifier.verify(raw_job).is_valid  # reads the log in the old snapshot
            job_done.set()
        finally:
            connection.close()

    thread = threading.Thread(target=job)
    thread.start()
    snapshot_taken.wait(5)
    remote_revoke(victim)  # commits
    revoked.set()
    thread.join()
    assert job_done.is_set()
    # > MAX_STALENESS after the revocation committed; served from the cache "confirmed" by the job
    assert verifier.verify(raw_victim).reason is Reason.REVOKED


@pytest.mark.django_db(transaction=True)
def test_bookkeeping_in_an_atomic_request_does_not_deadlock_with_a_revocation() -> None:
    """An ATOMIC_REQUESTS view verifies a key (its last_used_at is due), then rotates it;
    meanwhile an admin revokes it. The bookkeeping write waits for the commit, so no key row
    is locked before the change clock and neither side deadlocks: the rotation either runs
    first or finds the key revoked."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks")
    api_key, raw = APIKey.objects.create_key(name="x")
    row_locked = threading.Event()

    def request() -> None:
        with transaction.atomic():  # ATOMIC_REQUESTS
            outcome = APIKey.objects.verifier.verify(raw)  # last_used_at is due
            row_locked.set()
            time.sleep(0.5)  # the admin's revoke() runs now
            assert outcome.api_key is not None
            outcome.api_key.rotate()

    def admin() -> None:
        row_locked.wait(5)
        APIKey.objects.get(pk=api_key.pk).revoke()

    errors = run_concurrently(request, admin)
    assert all(isinstance(error, KeyNotRotatable) for error in errors), errors


@pytest.mark.parametrize("read", ["get", "iterator"])
@pytest.mark.django_db(transaction=True)
def test_select_for_update_then_revoke_does_not_deadlock_with_a_concurrent_save(
    read: str,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks")
    api_key, _ = APIKey.objects.create_key(name="x")
    row_locked = threading.Event()

    def locker() -> None:
        with transaction.atomic():
            locked = APIKey.objects.filter(pk=api_key.pk).select_for_update()
            key = locked.get() if read == "get" else next(locked.iterator())
            row_locked.set()
            time.sleep(0.5)  # the other transaction's save() runs now
            key.revoke()

    def other() -> None:
        row_locked.wait(5)
        key = APIKey.objects.get(pk=api_key.pk)
        key.name = "renamed"
        key.save()

    assert run_concurrently(locker, other) == []


@dataclass
class _Listening:
    api_key: APIKey
    raw: str
    verifier: Verifier[APIKey]
    db: str


def _a_listening_process() -> _Listening:
    """A key verified once (its cold path starts the push listener), and the listener up."""
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY")
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    db = APIKey.objects.db
    _wait_until(lambda: change_feed.is_listening(db))
    return _Listening(api_key, raw, verifier, db)


@override_settings(ASYNC_API_KEY={"PUSH_CHANGES": True, "MAX_STALENESS": 30})
@pytest.mark.django_db(transaction=True)
def test_a_malformed_notification_does_not_stop_the_push_listener() -> None:
    db = _a_listening_process().db
    with connection.cursor() as cursor:  # any role that can connect may NOTIFY
        cursor.execute(
            "SELECT pg_notify('async_api_key_changes', %s)",
            ['{"model": "async_api_key.apikey", "prefixes": 5}'],
        )
    time.sleep(1.0)
    assert change_feed.is_listening(db), "listener died on a malformed payload"


@pytest.mark.parametrize(
    "values",
    [
        {"CACHE_MAX_ENTRIES": -1},
        {"NEGATIVE_CACHE_MAX_ENTRIES": 1.5},
        {"CACHE_TTL": float("nan")},
        {"CACHE_TTL": 86_400},
        {"MAX_STALENESS": 0},
        {"SHARED_CACHE_TTL": -1},
    ],
)
def test_cache_settings_out_of_range_are_refused_with_a_clear_error(values: dict[str, Any]) -> None:
    with override_settings(ASYNC_API_KEY=values), pytest.raises(ValueError, match="ASYNC_API_KEY"):
        api_key_settings.caching  # noqa: B018  (settings are read, and checked, on first use)


@override_settings(ASYNC_API_KEY={"PUSH_CHANGES": True, "MAX_STALENESS": 0.3})
@pytest.mark.django_db(transaction=True)
def test_when_the_push_channel_dies_the_change_log_still_bounds_staleness() -> None:
    process = _a_listening_process()
    db = process.db
    with connection.cursor() as cursor:  # the push channel's connection is cut
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN %%' AND pid <> pg_backend_pid()"
        )
    _wait_until(lambda: not change_feed.is_listening(db))
    remote_revoke(process.api_key)  # another process's revocation: no push reaches this one
    time.sleep(0.4)  # past MAX_STALENESS
    assert process.verifier.verify(process.raw).reason is Reason.REVOKED


@pytest.mark.parametrize("values", [{"CACHE_TTL": "abc"}, {"MAX_STALENESS": -1}])
def test_manage_py_check_reports_cache_settings_out_of_range(values: dict[str, Any]) -> None:
    with override_settings(ASYNC_API_KEY=values):
        errors = check_settings()
    assert [error.id for error in errors] == ["async_api_key.E001"]
    assert "ASYNC_API_KEY" in errors[0].msg


@pytest.mark.parametrize(
    ("cache", "expected"),
    [
        (
            {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": "redis://r:6379/1",
            },
            "redis://r:6379/1",
        ),
        (
            {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": ["rediss://a/0", "rediss://b/0"],
            },
            "rediss://a/0",
        ),
        ({"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}, None),
        ({"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": []}, None),
    ],
)
def test_changes_are_pushed_through_the_shared_tier_only_when_it_is_redis(
    cache: dict[str, Any], expected: str | None
) -> None:
    with override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "shared": cache,
        },
        ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "shared"},
    ):
        assert redis_location() == expected


def test_two_key_stores_on_one_redis_push_on_channels_of_their_own() -> None:
    channel = redis_channel("default")
    assert channel.startswith("async_api_key_changes:")
    name = connection.settings_dict["NAME"]
    try:
        connection.settings_dict["NAME"] = f"{name}-other"
        assert redis_channel("default") != channel
    finally:
        connection.settings_dict["NAME"] = name
