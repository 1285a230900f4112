"""Whether a cached key may be served: one behaviour per test, each one that a mutation of
the cache, the change feed or the verifier's cache path once got past the suite.

Time is a stand-in clock where a test depends on ``MAX_STALENESS`` or ``CACHE_TTL``, so that
no test sleeps and none depends on the machine's speed.
"""

from __future__ import annotations

import logging
import os
import threading
import time as real_time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.signals import post_init
from django.test import override_settings
from django.utils import timezone

from async_api_key import cache as cache_module
from async_api_key import propagation
from async_api_key.cache import clear_local
from async_api_key.changelog import ChangeClock, KeyChange
from async_api_key.changes import arecord_change, change_committed, encode_push, record_change
from async_api_key.conf import api_key_settings
from async_api_key.hashing import hash_key
from async_api_key.keys import generate_key
from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.propagation import ChangeFeed, change_feed
from async_api_key.verification import Reason, Verifier
from tests.conftest import QueryLog
from tests.support.key_factories import wrong_secret_for
from tests.support.remote_changes import remote_change_log_entry, remote_revoke
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db

SHARED = {"SHARED_CACHE_ALIAS": "default", "PUSH_CHANGES": False}


class Clock:
    """Stands in for the ``time`` module of the cache and of the change feed."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._monotonic = real_time.monotonic()
        self._wall = real_time.time()

    def monotonic(self) -> float:
        return self._monotonic + self.offset

    def time(self) -> float:
        return self._wall + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(cache_module, "time", fake)
    monkeypatch.setattr(propagation, "time", fake)
    return fake


class SharedReads:
    """Counts reads of the shared tier."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def shared_reads(monkeypatch: pytest.MonkeyPatch) -> SharedReads:
    reads = SharedReads()
    shared = caches["default"]
    original = shared.get_many

    def counting(keys: Any, *args: Any, **kwargs: Any) -> Any:
        reads.count += 1
        return original(keys, *args, **kwargs)

    monkeypatch.setattr(shared, "get_many", counting)
    return reads


def _shared_entry_key(api_key: APIKey) -> str:
    return f"async_api_key:v2:async_api_key.apikey:entry:{api_key.prefix}"


def _failing_set_many(*args: Any, **kwargs: Any) -> None:
    raise ConnectionError("the shared tier is down")


# The shared tier ------------------------------------------------------------------------


@override_settings(ASYNC_API_KEY=SHARED)
def test_a_wrong_secret_is_refused_even_when_the_shared_tier_holds_the_key() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored in the shared tier
    clear_local()  # another process: only the shared tier knows the key
    outcome = verifier.verify(wrong_secret_for(api_key.prefix))
    assert outcome.reason is Reason.INVALID_SECRET


@override_settings(ASYNC_API_KEY={**SHARED, "MAX_STALENESS": 1})
@pytest.mark.django_db(transaction=True)
def test_a_revocation_learned_from_the_log_retires_the_shared_entry(clock: Clock) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # cached in both tiers
    remote_revoke(api_key)
    clock.advance(1.5)  # the local entry needs the log, which names the key
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY=SHARED)
@pytest.mark.django_db(transaction=True)
def test_a_local_copy_of_a_shared_entry_is_dropped_by_a_change_to_its_key() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored in both tiers
    clear_local()
    assert verifier.verify(raw).is_valid  # a shared hit, copied into this process
    api_key.revoke()
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={**SHARED, "MAX_STALENESS": 1})
@pytest.mark.django_db(transaction=True)
def test_a_local_copy_of_a_shared_entry_needs_the_log_past_the_bound(clock: Clock) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clear_local()
    assert verifier.verify(raw).is_valid  # a shared hit, copied into this process
    remote_revoke(api_key)
    clock.advance(1.5)
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={**SHARED, "MAX_STALENESS": 1})
@pytest.mark.django_db(transaction=True)
def test_a_shared_entry_is_not_served_once_the_log_read_is_older_than_the_bound(
    clock: Clock,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clear_local()  # nothing held locally: nothing makes the next verification read the log
    remote_revoke(api_key)
    clock.advance(1.5)
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY=SHARED)
@pytest.mark.django_db(transaction=True)
def test_a_revocation_that_could_not_reach_the_shared_tier_is_still_refused_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    monkeypatch.setattr(caches["default"], "set_many", _failing_set_many)
    api_key.revoke()  # the shared entry keeps its versions
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY=SHARED)
@pytest.mark.django_db(transaction=True)
def test_a_change_to_every_key_that_could_not_reach_the_shared_tier_is_still_refused_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    monkeypatch.setattr(caches["default"], "set_many", _failing_set_many)
    with transaction.atomic():
        APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)
        record_change(APIKey, None)  # every key of the model
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY=SHARED)
@pytest.mark.django_db(transaction=True)
def test_a_failed_shared_invalidation_is_logged_as_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    monkeypatch.setattr(caches["default"], "set_many", _failing_set_many)
    with caplog.at_level(logging.ERROR, logger="async_api_key"):
        api_key.revoke()
    assert any(record.levelno == logging.ERROR for record in caplog.records)


@override_settings(ASYNC_API_KEY={**SHARED, "MAX_STALENESS": 30})
def test_a_shared_hit_is_kept_locally(queries: QueryLog, shared_reads: SharedReads) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clear_local()
    assert verifier.verify(raw).is_valid  # from the shared tier
    shared_reads.count = 0
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.everything == []
    assert shared_reads.count == 0


@override_settings(ASYNC_API_KEY={**SHARED, "CACHE_TTL": 10, "MAX_STALENESS": 60})
def test_a_shared_entry_kept_locally_expires_when_the_shared_entry_does(
    clock: Clock, shared_reads: SharedReads
) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored at t=0
    clock.advance(8)
    clear_local()  # a process that finds the 8 seconds old entry
    assert verifier.verify(raw).is_valid
    clock.advance(3)  # 11 seconds after the database read: past CACHE_TTL
    shared_reads.count = 0
    assert verifier.verify(raw).is_valid
    assert shared_reads.count == 1  # not served from the local copy


@override_settings(ASYNC_API_KEY={**SHARED, "CACHE_TTL": 5})
def test_a_shared_entry_lives_no_longer_than_the_cache_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = caches["default"]
    timeouts: list[Any] = []
    original = shared.set

    def recording(key: str, value: Any, timeout: Any = None, **kwargs: Any) -> Any:
        timeouts.append(timeout)
        return original(key, value, timeout, **kwargs)

    monkeypatch.setattr(shared, "set", recording)
    _, raw = APIKey.objects.create_key(name="x")
    assert Verifier(APIKey).verify(raw).is_valid
    assert timeouts
    assert all(timeout is not None and 0 < timeout <= 5 for timeout in timeouts)


@override_settings(ASYNC_API_KEY=SHARED)
def test_a_malformed_shared_entry_falls_back_to_the_database() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    shared = caches["default"]
    entry = shared.get(_shared_entry_key(api_key))
    assert isinstance(entry, dict)
    shared.set(_shared_entry_key(api_key), {**entry, "digest": "not a digest"}, 60)
    clear_local()
    assert verifier.verify(raw).is_valid


# The log: what confirms a local entry --------------------------------------------------


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_hot_key_past_the_bound_costs_one_log_read_and_no_key_query(
    clock: Clock, queries: QueryLog
) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clock.advance(1.5)
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.statements == []
    assert len(queries.change_log) == 1


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_key_read_from_the_database_needs_no_log_read_within_the_bound_of_its_read(
    clock: Clock, queries: QueryLog
) -> None:
    _, first = APIKey.objects.create_key(name="first")
    _, second = APIKey.objects.create_key(name="second")
    verifier = Verifier(APIKey)
    assert verifier.verify(first).is_valid  # the log is read now
    clock.advance(0.9)
    assert verifier.verify(second).is_valid  # read from the database, not the log
    clock.advance(0.6)  # the log read is past the bound, the key's own read is not
    with queries.capture():
        assert verifier.verify(second).is_valid
    assert queries.everything == []


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_log_reads_after_a_change_keep_the_other_cached_keys(
    clock: Clock, queries: QueryLog
) -> None:
    victim, raw_victim = APIKey.objects.create_key(name="victim")
    _, raw_other = APIKey.objects.create_key(name="other")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw_victim).is_valid
    assert verifier.verify(raw_other).is_valid
    remote_revoke(victim)
    clock.advance(1.5)
    assert verifier.verify(raw_victim).reason is Reason.REVOKED  # learned from the log
    clock.advance(1.5)
    with queries.capture():  # the next log read has nothing new: the other key stays
        assert verifier.verify(raw_other).is_valid
    assert queries.statements == []
    assert len(queries.change_log) == 1


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_change_to_every_key_learned_from_the_log_drops_every_cached_key(clock: Clock) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    with transaction.atomic():  # another process: record_change(APIKey, None)
        remote_change_log_entry("")  # "" stands for every key of the model
        APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)
    clock.advance(1.5)
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_change_log_that_went_back_drops_everything_cached(clock: Clock) -> None:
    """A database restored from a backup: its clock is behind this process's position."""
    api_key, raw = APIKey.objects.create_key(name="x")
    record_change(APIKey, ["somethingelse"])  # the clock is at 1
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # position 1
    ChangeClock.objects.filter(pk=1).update(generation=0)  # the restore
    APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)  # as the backup had it
    clock.advance(1.5)
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={"PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_key_read_while_the_log_cannot_be_read_is_not_cached(
    monkeypatch: pytest.MonkeyPatch, queries: QueryLog
) -> None:
    def unreadable(*args: Any) -> Any:
        raise DatabaseError("no such table: async_api_key_keychange")

    monkeypatch.setattr(propagation, "_read_changes", unreadable)
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 1


def test_a_cold_verification_counts_as_activity_for_the_push_listener() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    assert Verifier(APIKey).verify(raw).is_valid
    assert change_feed.idle_for() < 5


# Caching turned off ----------------------------------------------------------------------


def test_turning_caching_off_stops_serving_cached_keys(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # cached
    with override_settings(ASYNC_API_KEY={"CACHE_ENABLED": False}), queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 1


def test_turning_caching_off_stops_answering_from_remembered_unknown_keys(
    queries: QueryLog,
) -> None:
    raw = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).reason is Reason.UNKNOWN  # remembered
    with override_settings(ASYNC_API_KEY={"CACHE_ENABLED": False}), queries.capture():
        assert verifier.verify(raw).reason is Reason.UNKNOWN
    assert queries.count >= 1


@override_settings(ASYNC_API_KEY={"CACHE_ENABLED": False})
def test_with_caching_off_no_verification_reads_the_change_log(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    with queries.capture():
        assert Verifier(APIKey).verify(raw).is_valid
    assert queries.change_log == []


# Unknown lookup ids ----------------------------------------------------------------------


def test_a_recorded_change_to_every_key_forgets_unknown_lookup_ids() -> None:
    generated = generate_key("ak")
    verifier = Verifier(APIKey)
    assert verifier.verify(generated.raw).reason is Reason.UNKNOWN  # remembered
    imported = APIKey(
        name="imported",
        prefix=generated.lookup,
        hashed_key=hash_key(generated.raw, api_key_settings.hash_algorithm),
    )
    APIKey.objects.bulk_create([imported])  # an import: no change is announced
    record_change(APIKey, None)  # as the docs say to do after one
    assert verifier.verify(generated.raw).is_valid


@override_settings(ASYNC_API_KEY={"NEGATIVE_CACHE_MAX_ENTRIES": 2})
def test_the_negative_cache_drops_the_least_recently_used_lookup_id(queries: QueryLog) -> None:
    first, second, third = (generate_key("ak").raw for _ in range(3))
    verifier = Verifier(APIKey)
    assert verifier.verify(first).reason is Reason.UNKNOWN
    assert verifier.verify(second).reason is Reason.UNKNOWN
    assert verifier.verify(first).reason is Reason.UNKNOWN  # used again: the second is older
    assert verifier.verify(third).reason is Reason.UNKNOWN  # the second goes
    with queries.capture():
        assert verifier.verify(first).reason is Reason.UNKNOWN
        assert verifier.verify(third).reason is Reason.UNKNOWN
    assert queries.count == 0
    with queries.capture():
        assert verifier.verify(second).reason is Reason.UNKNOWN
    assert queries.count >= 1


@override_settings(ASYNC_API_KEY={"NEGATIVE_CACHE_TTL": 1})
def test_a_negative_ttl_of_one_second_still_remembers_unknown_keys(queries: QueryLog) -> None:
    raw = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).reason is Reason.UNKNOWN
    with queries.capture():
        assert verifier.verify(raw).reason is Reason.UNKNOWN
    assert queries.count == 0


# clear_local() ---------------------------------------------------------------------------


def test_clear_local_forgets_unknown_lookup_ids(queries: QueryLog) -> None:
    raw = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).reason is Reason.UNKNOWN
    clear_local()
    with queries.capture():
        assert verifier.verify(raw).reason is Reason.UNKNOWN
    assert queries.count >= 1


@override_settings(ASYNC_API_KEY={**SHARED, "MAX_STALENESS": 30})
@pytest.mark.django_db(transaction=True)
def test_clear_local_forgets_the_changes_this_process_has_seen(queries: QueryLog) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    api_key.name = "renamed"
    api_key.save()  # a committed change: the shared tier is not trusted for it here
    assert verifier.verify(raw).is_valid  # read from the database, stored in both tiers
    clear_local()  # a new process has seen no change
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 0  # from the shared tier


# What a hit hands out --------------------------------------------------------------------


def test_a_cached_dict_value_is_served_as_a_dict_of_its_own() -> None:
    """A JSON field holding a dict (here ``scopes``, as a custom model's metadata would)."""
    api_key, raw = APIKey.objects.create_key(name="x")
    APIKey._base_manager.filter(pk=api_key.pk).update(scopes={"orders": "read"})  # not cached yet
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    first = verifier.verify(raw).api_key  # from the cache
    assert first is not None
    assert first.scopes == {"orders": "read"}
    first.scopes["orders"] = "write"
    second = verifier.verify(raw).api_key
    assert second is not None
    assert second.scopes == {"orders": "read"}


def test_a_cached_nested_value_shares_nothing_between_hits() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    APIKey._base_manager.filter(pk=api_key.pk).update(scopes=[["orders", "read"]])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    first = verifier.verify(raw).api_key
    assert first is not None
    first.scopes[0].append("write")
    second = verifier.verify(raw).api_key
    assert second is not None
    assert second.scopes == [["orders", "read"]]


def test_a_cached_key_belongs_to_the_database_it_was_read_from() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cached = verifier.verify(raw).api_key
    assert cached is not None
    assert cached._state.db == APIKey.objects.db


def test_a_key_served_from_the_cache_can_be_changed_and_saved() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cached = verifier.verify(raw).api_key  # a hit: built without __init__
    assert cached is not None
    cached.name = "renamed"
    cached.save()
    assert APIKey.objects.get(pk=cached.pk).name == "renamed"


def test_a_key_that_cannot_be_encoded_is_refused_as_malformed() -> None:
    assert Verifier(APIKey).verify("ak_\ud800").reason is Reason.MALFORMED  # a lone surrogate


class _SelectingManager(BaseAPIKeyManager[OrganizationAPIKey]):
    def get_queryset(self) -> QuerySet[OrganizationAPIKey]:  # type: ignore[override]
        return super().get_queryset().select_related("organization")

    def cache_scope(self) -> str:
        return "selecting"


def test_a_cached_key_keeps_its_selected_related_objects(queries: QueryLog) -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="k", organization=organization)
    manager = _SelectingManager()
    manager.model = OrganizationAPIKey
    verifier = Verifier(OrganizationAPIKey, manager=manager)
    assert verifier.verify(raw).is_valid
    with queries.capture():
        cached = verifier.verify(raw).api_key
        assert cached is not None
        assert cached.organization.name == "Acme"
    assert queries.count == 0


def test_a_related_object_changed_by_one_request_is_not_seen_by_the_next() -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="k", organization=organization)
    manager = _SelectingManager()
    manager.model = OrganizationAPIKey
    verifier = Verifier(OrganizationAPIKey, manager=manager)
    assert verifier.verify(raw).is_valid
    first = verifier.verify(raw).api_key  # a hit
    assert first is not None
    first.organization.name = "changed by one request"
    second = verifier.verify(raw).api_key
    assert second is not None
    assert second.organization.name == "Acme"


@pytest.mark.django_db(databases=["default", "second"])
def test_an_unknown_lookup_id_is_remembered_for_each_database_it_was_missing_from(
    queries: QueryLog,
) -> None:
    raw = generate_key("ak").raw
    in_default = Verifier(APIKey)
    in_second = Verifier(APIKey, manager=APIKey.objects.db_manager("second"))
    for verifier in (in_default, in_second):  # this process starts following each database
        verifier.verify(generate_key("ak").raw)
    assert in_default.verify(raw).reason is Reason.UNKNOWN
    assert in_second.verify(raw).reason is Reason.UNKNOWN
    with queries.capture():
        assert in_default.verify(raw).reason is Reason.UNKNOWN
        assert in_second.verify(raw).reason is Reason.UNKNOWN
    assert queries.count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_tier")
def test_a_change_to_one_key_leaves_the_shared_entries_of_the_others(queries: QueryLog) -> None:
    changed, changed_raw = APIKey.objects.create_key(name="changed")
    _, other_raw = APIKey.objects.create_key(name="other")
    verifier = Verifier(APIKey)
    assert verifier.verify(changed_raw).is_valid
    assert verifier.verify(other_raw).is_valid
    changed.revoke()
    clear_local()  # what another process sees
    with queries.capture():
        assert verifier.verify(other_raw).is_valid
    assert queries.count == 0  # the change log may be read, the key table is not
    assert verifier.verify(changed_raw).reason is Reason.REVOKED


# A new process ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_worker_starts_with_empty_caches_and_no_log_position() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    assert Verifier(APIKey).verify(raw).is_valid
    assert Verifier(APIKey).verify(generate_key("ak").raw).reason is Reason.UNKNOWN
    assert len(cache_module._positive) == 1
    pid = os.fork()
    if pid == 0:  # the child: no assertion may raise here, only the exit code reports
        try:
            tiers = (cache_module._positive, cache_module._negative, cache_module._recently_changed)
            empty = all(len(tier) == 0 for tier in tiers) and not cache_module._positive._by_prefix
            positioned = change_feed.has_position(APIKey.objects.db)
            cache_module._negative.put(("label", "prefix"), True, real_time.monotonic() + 5, 10)
            usable = cache_module._negative.get(("label", "prefix"), real_time.monotonic())
            os._exit(0 if empty and not positioned and usable else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@override_settings(ASYNC_API_KEY={**SHARED, "CACHE_MAX_ENTRIES": 2})
@pytest.mark.django_db(transaction=True)
def test_a_small_cache_does_not_forget_a_change_the_shared_tier_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    others = [APIKey.objects.create_key(name=f"other{index}")[0] for index in range(3)]
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    monkeypatch.setattr(caches["default"], "set_many", _failing_set_many)
    api_key.revoke()
    for other in others:  # more changes than CACHE_MAX_ENTRIES
        other.name = "renamed"
        other.save()
    assert verifier.verify(raw).reason is Reason.REVOKED


# Recording a change ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_arecord_change_drops_the_cached_key() -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="x")
    verifier = Verifier(APIKey)
    assert (await verifier.averify(raw)).is_valid
    await APIKey._base_manager.filter(pk=api_key.pk).aupdate(revoked=True)  # not recorded
    await arecord_change(APIKey, [api_key.prefix])
    assert (await verifier.averify(raw)).reason is Reason.REVOKED


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_announced_for_pushing_to_other_processes() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    announced: list[tuple[Any, Any, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        announced.append((sender, kwargs["prefixes"], kwargs["using"]))

    change_committed.connect(receiver, weak=False)
    try:
        api_key.revoke()
    finally:
        change_committed.disconnect(receiver)
    assert announced == [("async_api_key.apikey", (api_key.prefix,), APIKey.objects.db)]


def test_locking_keys_for_update_locks_the_change_clock_first(queries: QueryLog) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    with queries.capture(), transaction.atomic():
        list(APIKey.objects.select_for_update().filter(pk=api_key.pk))
    ran = [sql.lstrip().upper() for sql in queries.everything]
    clock = [i for i, sql in enumerate(ran) if sql.startswith("UPDATE") and "CHANGECLOCK" in sql]
    keys = [i for i, sql in enumerate(ran) if "ASYNC_API_KEY_APIKEY" in sql]
    assert clock
    assert keys
    assert clock[0] < keys[0]


def test_pruning_the_change_log_keeps_the_change_being_recorded() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    ChangeClock.objects.update_or_create(id=1, defaults={"generation": 63})
    record_change(APIKey, [api_key.prefix])  # generation 64: this change prunes the log
    assert KeyChange.objects.filter(prefix=api_key.prefix, generation=64).exists()


def test_pruning_the_change_log_drops_changes_older_than_the_retention() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    KeyChange.objects.create(
        generation=1,
        model_label="async_api_key.apikey",
        prefix="ancient",
        recorded_at=timezone.now() - timedelta(days=2),
    )
    ChangeClock.objects.update_or_create(id=1, defaults={"generation": 63})
    record_change(APIKey, [api_key.prefix])
    assert not KeyChange.objects.filter(prefix="ancient").exists()


def test_a_clock_created_by_a_concurrent_first_change_still_advances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two first changes race: both find no clock row, one creates it, the other's create
    fails and it must still take a generation of its own."""
    api_key, _ = APIKey.objects.create_key(name="x")
    ChangeClock.objects.update_or_create(id=1, defaults={"generation": 5})
    original = QuerySet.update
    raced: list[bool] = []

    def racing(self: QuerySet[Any], **kwargs: Any) -> int:
        if self.model is ChangeClock and not raced:
            raced.append(True)
            return 0  # the row did not exist yet when this transaction looked
        return original(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", racing)
    record_change(APIKey, [api_key.prefix])
    assert raced
    assert KeyChange.objects.get(prefix=api_key.prefix).generation > 5


def test_a_change_to_every_key_of_a_model_forgets_only_that_models_unknown_lookup_ids(
    queries: QueryLog,
) -> None:
    from async_api_key.changes import keys_changed

    unknown_key, unknown_organization_key = generate_key("ak").raw, generate_key("ak").raw
    keys, organization_keys = Verifier(APIKey), Verifier(OrganizationAPIKey)
    assert keys.verify(unknown_key).reason is Reason.UNKNOWN
    assert organization_keys.verify(unknown_organization_key).reason is Reason.UNKNOWN
    keys_changed.send(APIKey._meta.label_lower, prefixes=None, committed=True)
    with queries.capture():
        assert organization_keys.verify(unknown_organization_key).reason is Reason.UNKNOWN
    assert queries.count == 0  # still remembered
    with queries.capture():
        assert keys.verify(unknown_key).reason is Reason.UNKNOWN
    assert queries.count == 1  # looked up again: a key may have appeared


def test_a_change_that_stands_for_every_model_forgets_every_unknown_lookup_id(
    queries: QueryLog,
) -> None:
    from async_api_key.changes import keys_changed

    unknown = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(unknown).reason is Reason.UNKNOWN
    keys_changed.send(None, prefixes=None, committed=False)  # e.g. a restored database
    with queries.capture():
        assert verifier.verify(unknown).reason is Reason.UNKNOWN
    assert queries.count == 1


@pytest.mark.usefixtures("shared_tier")
def test_with_caching_off_the_shared_tier_is_not_read(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored in both tiers
    clear_local()
    caching_off = override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default", "CACHE_TTL": 0})
    with caching_off, queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count >= 1  # from the database


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_tier")
def test_a_raw_sql_change_recorded_for_the_whole_model_reaches_the_shared_tier() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # stored in both tiers
    table = connection.ops.quote_name(APIKey._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET revoked = %s WHERE prefix = %s", [True, api_key.prefix])  # noqa: S608
    record_change(APIKey)  # the documented call after raw SQL: every key of the model
    clear_local()  # what another process sees
    assert verifier.verify(raw).reason is Reason.REVOKED


def test_a_cold_verification_reads_no_change_log_once_this_process_follows_it(
    queries: QueryLog,
) -> None:
    _, first = APIKey.objects.create_key(name="first")
    _, second = APIKey.objects.create_key(name="second")
    verifier = Verifier(APIKey)
    assert verifier.verify(first).is_valid  # this process now follows the change log
    with queries.capture():
        assert verifier.verify(second).is_valid
    assert queries.change_log == []


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_key_another_process_creates_is_found_once_its_creation_is_read_from_the_log(
    clock: Clock,
) -> None:
    generated = generate_key("ak")
    _, hot = APIKey.objects.create_key(name="hot")
    verifier = Verifier(APIKey)
    assert verifier.verify(hot).is_valid  # a key this process serves from memory
    assert verifier.verify(generated.raw).reason is Reason.UNKNOWN  # remembered as unknown
    with transaction.atomic():  # another process creates a key with that lookup id
        remote_change_log_entry(generated.lookup)
        APIKey._base_manager.bulk_create(
            [APIKey(name="remote", prefix=generated.lookup, hashed_key=hash_key(generated.raw))]
        )
    clock.advance(1.5)
    assert verifier.verify(hot).is_valid  # past MAX_STALENESS: confirmed by reading the log
    assert verifier.verify(generated.raw).is_valid


@pytest.mark.django_db(transaction=True)
def test_a_change_without_a_shared_tier_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    with caplog.at_level(logging.ERROR, logger="async_api_key"):
        with transaction.atomic():
            api_key.revoke()
        assert Verifier(APIKey).verify(raw).reason is Reason.REVOKED
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


# What other processes are pushed ---------------------------------------------------------


def test_a_pushed_change_drops_the_named_key_and_only_it(queries: QueryLog) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    _, other = APIKey.objects.create_key(name="other")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    assert verifier.verify(other).is_valid
    APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)  # another process's
    propagation._apply(encode_push("async_api_key.apikey", (api_key.prefix,)))
    assert verifier.verify(raw).reason is Reason.REVOKED
    with queries.capture():
        assert verifier.verify(other).is_valid
    assert queries.count == 0


def test_a_pushed_change_too_long_for_notify_stands_for_every_key() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)
    many = tuple(f"{index:0>200}" for index in range(60))  # 12,000 bytes of lookup ids
    payload = encode_push("async_api_key.apikey", many)
    assert len(payload.encode()) < 8000  # PostgreSQL refuses longer NOTIFY payloads
    propagation._apply(payload)
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={"PUSH_CHANGES": True, "MAX_STALENESS": 30})
@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_pushed_on_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY")
    api_key, raw = APIKey.objects.create_key(name="x")
    assert Verifier(APIKey).verify(raw).is_valid  # starts the listener
    db = APIKey.objects.db
    deadline = real_time.monotonic() + 5
    while not change_feed.is_listening(db) and real_time.monotonic() < deadline:
        real_time.sleep(0.02)
    assert change_feed.is_listening(db)
    before = change_feed.notifications
    api_key.revoke()
    while change_feed.notifications == before and real_time.monotonic() < deadline:
        real_time.sleep(0.02)
    assert change_feed.notifications > before


@pytest.mark.django_db(transaction=True)
def test_a_change_feed_reads_the_log_straight_from_its_constructor() -> None:
    """The suite resets the process's feed before each test, which would hide a constructor
    that leaves the feed unusable: a new feed must read the log as built."""
    feed = ChangeFeed()
    assert feed.sync(APIKey.objects.db)
    assert feed.has_position(APIKey.objects.db)
    assert feed.reads == 1


# A verification in flight ---------------------------------------------------------------


class _PausedRead:
    """Holds a verification on another thread just after it has read its key from the
    database (Django's ``post_init`` of the row), until :meth:`release`."""

    def __init__(self, verifier: Verifier[APIKey], raw_key: str) -> None:
        self._verifier = verifier
        self._raw_key = raw_key
        self._read = threading.Event()
        self._go_on = threading.Event()
        self.reasons: list[Reason] = []
        self._thread = threading.Thread(target=self._verify)

    def __enter__(self) -> _PausedRead:
        post_init.connect(self._pause, sender=APIKey)
        self._thread.start()
        assert self._read.wait(10), "the verification never read its key"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        post_init.disconnect(self._pause, sender=APIKey)

    def release(self) -> None:
        self._go_on.set()
        self._thread.join(10)

    def _pause(self, **kwargs: Any) -> None:
        if threading.current_thread() is self._thread:
            self._read.set()
            self._go_on.wait(10)

    def _verify(self) -> None:
        try:
            self.reasons.append(self._verifier.verify(self._raw_key).reason)
        finally:
            connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_key_read_before_its_revocation_stays_refused_after_the_cache_is_cleared() -> None:
    """A verification reads the key; before it stores what it read, the key is revoked and
    the local tier is emptied (``clear_local()``, as tests do), more than once. What it read
    was the key before the revocation: it is never served afterwards, however many
    invalidations and clears fell in between."""
    _, warm = APIKey.objects.create_key(name="warm")
    verifier = Verifier(APIKey)
    assert verifier.verify(warm).is_valid  # this process follows the change log
    clear_local()
    api_key, raw = APIKey.objects.create_key(name="x")
    with _PausedRead(verifier, raw) as in_flight:
        api_key.revoke()
        clear_local()
        clear_local()
    assert in_flight.reasons == [Reason.VALID]  # it read the key before the revocation
    assert verifier.verify(raw).reason is Reason.REVOKED
    assert APIKey.objects.is_valid(raw) is False


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_tier")
def test_a_key_read_before_its_revocation_is_not_stored_in_the_shared_tier() -> None:
    """What a verification read before a committed revocation is stored in neither tier:
    the shared tier must not hold an entry for a revoked key, even one its versions refuse."""
    _, warm = APIKey.objects.create_key(name="warm")
    verifier = Verifier(APIKey)
    assert verifier.verify(warm).is_valid
    api_key, raw = APIKey.objects.create_key(name="x")
    with _PausedRead(verifier, raw) as in_flight:
        api_key.revoke()
    assert in_flight.reasons == [Reason.VALID]
    assert caches["default"].get(_shared_entry_key(api_key)) is None
    assert verifier.verify(raw).reason is Reason.REVOKED


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_for_a_hot_key_past_the_bound_read_the_log_once(
    clock: Clock, queries: QueryLog
) -> None:
    """A threaded server under load (DRF views under ASGI, gthread workers): every request
    in flight when the bound lapses misses the local tier together; one read of the log
    confirms the entry for all of them."""
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clock.advance(1.5)
    start = threading.Barrier(8)

    def request() -> bool:
        start.wait(timeout=5)
        try:
            return verifier.verify(raw).is_valid
        finally:
            connection.close()  # this thread's own connection

    with queries.capture(), ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(), range(8)))
    assert answers == [True] * 8
    assert queries.statements == []
    assert len(queries.change_log) == 1


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_request_that_missed_before_another_read_the_log_does_not_read_it_again(
    clock: Clock, queries: QueryLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request misses the local tier as the bound lapses and is held up before its cold
    path begins; meanwhile another request reads the log. The first is then served from the
    entry that read confirmed, without a read of its own."""
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    clock.advance(1.5)
    missed, go_on = threading.Event(), threading.Event()
    original = change_feed.note_activity

    def held_up(db: str) -> None:  # the first step of the cold path
        if threading.current_thread().name == "held-up":
            missed.set()
            go_on.wait(10)
        original(db)

    monkeypatch.setattr(change_feed, "note_activity", held_up)
    reasons: list[Reason] = []

    def request() -> None:
        try:
            reasons.append(verifier.verify(raw).reason)
        finally:
            connection.close()

    first = threading.Thread(target=request, name="held-up")
    with queries.capture():
        first.start()
        assert missed.wait(10)
        assert verifier.verify(raw).is_valid  # reads the log
        clock.advance(0.1)
        go_on.set()
        first.join(10)
    assert reasons == [Reason.VALID]
    assert len(queries.change_log) == 1
    assert queries.statements == []


@override_settings(ASYNC_API_KEY={"MAX_STALENESS": 1, "PUSH_CHANGES": False})
@pytest.mark.django_db(transaction=True)
def test_a_new_key_past_the_bound_costs_its_query_and_no_log_read(
    clock: Clock, queries: QueryLog
) -> None:
    """Only a held entry needs the log: a key read from the database now is as fresh as
    its read."""
    _, hot = APIKey.objects.create_key(name="hot")
    _, new = APIKey.objects.create_key(name="new")
    verifier = Verifier(APIKey)
    assert verifier.verify(hot).is_valid  # the process's first read of the log
    clock.advance(1.5)
    with queries.capture():
        assert verifier.verify(new).is_valid
    assert queries.change_log == []
    assert len([sql for sql in queries.statements if sql.startswith("SELECT")]) == 1
