"""The verification cache: hot keys cost no query and no thread hop, and every change
that can affect validity is seen at once in this process."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property, wraps
from typing import Any

import pytest
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone

from async_api_key import cache as cache_module
from async_api_key import propagation
from async_api_key.cache import key_digest
from async_api_key.keys import generate_key
from async_api_key.models import AbstractAPIKey, APIKey
from async_api_key.verification import Reason, Verifier
from tests.conftest import HopCounter, QueryLog
from tests.support.key_factories import wrong_secret_for
from tests.support.outages import CACHES_WITH_A_BROKEN_ALIAS

pytestmark = pytest.mark.django_db


def _verify_twice(raw: str, queries: QueryLog) -> int:
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    with queries.capture():
        outcome = verifier.verify(raw)
    assert outcome.is_valid
    return queries.count


def test_hot_key_costs_zero_queries(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    assert _verify_twice(raw, queries) == 0


def test_cache_can_be_turned_off(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    with override_settings(ASYNC_API_KEY={"CACHE_ENABLED": False}):
        assert _verify_twice(raw, queries) == 1


@pytest.mark.django_db(transaction=True)
async def test_hot_key_on_the_async_path_costs_no_hop_and_no_query(
    thread_hops: HopCounter, queries: QueryLog
) -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="x", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    assert (await verifier.averify(raw)).is_valid
    thread_hops.count = 0
    with queries.capture():
        outcome = await verifier.averify(raw, scopes=["orders:read"])
        refused = await verifier.averify(raw, scopes=["orders:write"])
    assert outcome.is_valid
    assert outcome.api_key is not None
    assert outcome.api_key.pk == api_key.pk
    assert refused.reason is Reason.INSUFFICIENT_SCOPE
    assert thread_hops.count == 0
    assert queries.count == 0


@pytest.mark.django_db(transaction=True)
async def test_a_hot_keys_allowlist_is_enforced_on_the_async_path() -> None:
    _, raw = await APIKey.objects.acreate_key(name="x", allowed_networks=["10.0.0.0/8"])
    verifier = Verifier(APIKey)
    inside, outside = {"REMOTE_ADDR": "10.1.2.3"}, {"REMOTE_ADDR": "203.0.113.9"}
    assert (await verifier.averify(raw, request_meta=inside)).is_valid
    refused = await verifier.averify(raw, request_meta=outside)  # from the cache
    assert refused.reason is Reason.IP_NOT_ALLOWED
    assert (await verifier.averify(raw, request_meta=inside)).is_valid


def test_each_hit_returns_its_own_instance() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    verifier.verify(raw)
    first, second = verifier.verify(raw).api_key, verifier.verify(raw).api_key
    assert first is not None
    assert second is not None
    assert first is not second
    first.name = "mutated by one request"
    assert second.name == "x"
    assert not first._state.adding


def test_a_wrong_secret_for_a_cached_lookup_id_is_still_refused() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    verifier.verify(raw)
    assert verifier.verify(wrong_secret_for(api_key.prefix)).reason is Reason.INVALID_SECRET


def _revoke(api_key: APIKey) -> None:
    api_key.revoke()


def _revoke_by_save(api_key: APIKey) -> None:
    api_key.revoked = True
    api_key.save()


def _expire_by_save(api_key: APIKey) -> None:
    api_key.expiry_date = timezone.now() - timedelta(seconds=1)
    api_key.save()


def _expire_by_queryset(api_key: APIKey) -> None:
    APIKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now())


def _revoke_by_queryset(api_key: APIKey) -> None:
    APIKey.objects.filter(name=api_key.name).update(revoked=True)


def _delete(api_key: APIKey) -> None:
    api_key.delete()


def _delete_by_queryset(api_key: APIKey) -> None:
    APIKey.objects.filter(pk=api_key.pk).delete()


def _rotate(api_key: APIKey) -> None:
    api_key.rotate()


CHANGES = [
    (_revoke, Reason.REVOKED),
    (_revoke_by_save, Reason.REVOKED),
    (_expire_by_save, Reason.EXPIRED),
    (_expire_by_queryset, Reason.EXPIRED),
    (_revoke_by_queryset, Reason.REVOKED),
    (_delete, Reason.UNKNOWN),
    (_delete_by_queryset, Reason.UNKNOWN),
    (_rotate, Reason.EXPIRED),
]


@pytest.mark.parametrize(("change", "expected"), CHANGES, ids=[c[0].__name__ for c in CHANGES])
def test_changes_are_seen_at_once_despite_the_cache(change: Any, expected: Reason) -> None:
    api_key, raw = APIKey.objects.create_key(name="cached")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    assert verifier.verify(raw).is_valid  # served from the cache
    change(api_key)
    assert verifier.verify(raw).reason is expected


def test_scope_changes_are_seen_at_once() -> None:
    api_key, raw = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw, scopes=["orders:read"]).is_valid
    api_key.scopes = []
    api_key.save()
    assert verifier.verify(raw, scopes=["orders:read"]).reason is Reason.INSUFFICIENT_SCOPE


@pytest.mark.django_db(transaction=True)
async def test_arevoke_is_seen_at_once_on_the_async_path() -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="x")
    verifier = Verifier(APIKey)
    assert (await verifier.averify(raw)).is_valid
    assert (await verifier.averify(raw)).is_valid
    await api_key.arevoke()
    assert (await verifier.averify(raw)).reason is Reason.REVOKED


def test_a_key_with_an_expiry_date_is_served_from_the_cache(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x", expiry_date=timezone.now() + timedelta(hours=1))
    assert _verify_twice(raw, queries) == 0


def test_a_key_that_expires_while_cached_is_refused() -> None:
    soon = timezone.now() + timedelta(seconds=30)
    api_key, raw = APIKey.objects.create_key(name="x", expiry_date=soon)
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    APIKey.objects.filter(pk=api_key.pk).update(expiry_date=timezone.now() - timedelta(seconds=1))
    assert verifier.verify(raw).reason is Reason.EXPIRED


def test_a_key_whose_expiry_passes_while_it_is_cached_is_refused_by_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No change to the row at all: only time passes the key's expiry_date."""
    expiry = timezone.now() + timedelta(seconds=5)
    _, raw = APIKey.objects.create_key(name="x", expiry_date=expiry)
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    monkeypatch.setattr(timezone, "now", lambda: expiry + timedelta(seconds=1))
    assert verifier.verify(raw).reason is Reason.EXPIRED
    assert len(cache_module._positive) == 0


#: Names of keys whose trial the proxies below say is over: a rule of the project's own,
#: decided outside the row.
TRIALS_OVER: set[str] = set()


@contextmanager
def _trial_over(name: str) -> Iterator[None]:
    TRIALS_OVER.add(name)
    try:
        yield
    finally:
        TRIALS_OVER.discard(name)


class TrialKey(APIKey):
    """A proxy whose keys expire by a rule of its own, with no ``expiry_date``."""

    class Meta:
        proxy = True
        app_label = "testapp"

    @property
    def has_expired(self) -> bool:
        return self.name in TRIALS_OVER or super().has_expired


class SnapshotTrialKey(APIKey):
    """A proxy whose rule is not a property: each copy of a key decides once."""

    class Meta:
        proxy = True
        app_label = "testapp"

    @cached_property
    def has_expired(self) -> bool:
        return self.name in TRIALS_OVER


def _also_trial_over(rule: Callable[[Any], bool]) -> Callable[[Any], bool]:
    @wraps(rule)  # takes the library's rule's name and module
    def has_expired(api_key: Any) -> bool:
        return api_key.name in TRIALS_OVER or rule(api_key)

    return has_expired


class WrappedRuleKey(APIKey):
    """A proxy whose rule wraps the library's: a rule of its own all the same."""

    class Meta:
        proxy = True
        app_label = "testapp"

    has_expired = property(_also_trial_over(vars(AbstractAPIKey)["has_expired"].fget))


@pytest.mark.parametrize(
    "model",
    [TrialKey, SnapshotTrialKey, WrappedRuleKey],
    ids=["a property", "a cached_property", "a wrapper of the library's rule"],
)
def test_a_cached_key_is_asked_its_models_own_expiry_rule_on_every_hit(
    model: type[APIKey],
) -> None:
    """Only keys of the library's own rule and without an expiry date skip the question."""
    _, raw = model.objects.create_key(name="trial")
    verifier = Verifier(model)
    assert verifier.verify(raw).is_valid
    assert verifier.verify(raw).is_valid  # from the cache
    with _trial_over("trial"):
        assert verifier.verify(raw).reason is Reason.EXPIRED
    assert len(cache_module._positive) == 0


def test_a_proxy_asks_its_own_expiry_rule_of_a_key_its_concrete_model_cached() -> None:
    """Both models read one entry (the same key table and cache scope): the rule of the
    model reading it decides, not that of the model that stored it."""
    _, raw = APIKey.objects.create_key(name="trial")
    assert Verifier(APIKey).verify(raw).is_valid  # stored by APIKey's verifier
    with _trial_over("trial"):
        assert Verifier(TrialKey).verify(raw).reason is Reason.EXPIRED


def test_only_the_librarys_own_expiry_rule_is_known_to_need_a_date() -> None:
    assert cache_module._library_expiry_rule(APIKey)
    assert not cache_module._library_expiry_rule(TrialKey)
    assert not cache_module._library_expiry_rule(SnapshotTrialKey)
    assert not cache_module._library_expiry_rule(WrappedRuleKey)


class _Clock:
    """Stands in for the cache's monotonic clock."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@override_settings(ASYNC_API_KEY={"CACHE_TTL": 10, "NEGATIVE_CACHE_TTL": 5, "MAX_STALENESS": 60})
def test_entries_expire_after_their_ttl(monkeypatch: pytest.MonkeyPatch, queries: QueryLog) -> None:
    clock = _Clock()
    monkeypatch.setattr(cache_module, "time", clock)
    monkeypatch.setattr(propagation, "time", clock)
    _, raw = APIKey.objects.create_key(name="x")
    unknown = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    assert verifier.verify(unknown).reason is Reason.UNKNOWN
    clock.now += 4
    with queries.capture():
        assert verifier.verify(raw).is_valid
        assert verifier.verify(unknown).reason is Reason.UNKNOWN
    assert queries.count == 0
    clock.now += 2  # past the negative TTL only
    with queries.capture():
        assert verifier.verify(raw).is_valid
        assert verifier.verify(unknown).reason is Reason.UNKNOWN
    assert queries.count == 1
    clock.now += 10  # past both
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 1
    assert len(cache_module._positive._by_prefix) == 1


def test_an_entry_invalidated_during_a_hit_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock-free read: an invalidation between finding an entry and using it wins."""
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid

    class RevokingMidRead(OrderedDict[Any, Any]):
        def get(self, key: Any, default: Any = None) -> Any:
            found = super().get(key, default)
            APIKey.objects.filter(pk=api_key.pk).update(revoked=True)
            return found

    racing = RevokingMidRead(cache_module._positive._items)
    monkeypatch.setattr(cache_module._positive, "_items", racing)
    assert verifier.cache.get_local(key_digest(raw), APIKey.objects.cache_scope()) is None
    assert len(racing) == 0
    assert verifier.verify(raw).reason is Reason.REVOKED


def test_revocation_racing_a_database_read_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    real_store = verifier.cache.store

    def revoke_then_store(*args: Any, **kwargs: Any) -> None:
        APIKey.objects.get(pk=api_key.pk).revoke()  # lands after the row was read
        real_store(*args, **kwargs)

    monkeypatch.setattr(verifier.cache, "store", revoke_then_store)
    assert verifier.verify(raw).is_valid  # the read happened before the revocation
    monkeypatch.undo()
    assert verifier.verify(raw).reason is Reason.REVOKED


def test_a_repeated_unknown_key_costs_no_query(queries: QueryLog) -> None:
    raw = generate_key("ak").raw
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).reason is Reason.UNKNOWN
    with queries.capture():
        assert verifier.verify(raw).reason is Reason.UNKNOWN
    assert queries.count == 0


@override_settings(ASYNC_API_KEY={"NEGATIVE_CACHE_MAX_ENTRIES": 3})
def test_the_negative_cache_is_bounded() -> None:
    verifier = Verifier(APIKey)
    for _ in range(10):
        verifier.verify(generate_key("ak").raw)
    assert len(cache_module._negative) == 3


@override_settings(ASYNC_API_KEY={"CACHE_MAX_ENTRIES": 2})
def test_the_local_tier_is_bounded_and_drops_the_least_recently_used(queries: QueryLog) -> None:
    raws = [APIKey.objects.create_key(name=f"k{index}")[1] for index in range(3)]
    verifier = Verifier(APIKey)
    for raw in raws:
        assert verifier.verify(raw).is_valid
    with queries.capture():
        assert verifier.verify(raws[2]).is_valid
        assert verifier.verify(raws[1]).is_valid
    assert queries.count == 0
    with queries.capture():
        assert verifier.verify(raws[0]).is_valid  # the oldest was dropped
    assert queries.count == 1
    assert len(cache_module._positive) == 2


@override_settings(ASYNC_API_KEY={"CACHE_MAX_ENTRIES": 2})
def test_dropped_entries_leave_nothing_behind_and_revocation_still_reaches_the_rest() -> None:
    keys = [APIKey.objects.create_key(name=f"k{index}") for index in range(5)]
    verifier = Verifier(APIKey)
    for _ in range(3):
        for _, raw in keys:
            assert verifier.verify(raw).is_valid
    assert len(cache_module._positive._by_prefix) == 2
    for api_key, raw in keys[-2:]:  # the two that are cached
        api_key.revoke()
        assert verifier.verify(raw).reason is Reason.REVOKED
    assert verifier.verify(keys[0][1]).is_valid


def test_a_key_longer_than_any_key_is_refused_without_hashing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    digested: list[str] = []

    def recording_digest(raw: str) -> bytes:
        digested.append(raw)
        return b""

    monkeypatch.setattr(cache_module, "key_digest", recording_digest)
    outcome = Verifier(APIKey).verify("ak_" + "A" * 10_000)
    assert outcome.reason is Reason.MALFORMED
    assert digested == []


def test_a_new_key_is_not_shadowed_by_a_negative_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    generated = generate_key("ak")
    verifier = Verifier(APIKey)
    assert verifier.verify(generated.raw).reason is Reason.UNKNOWN
    monkeypatch.setattr("async_api_key.models.generate_key", lambda namespace: generated)
    APIKey.objects.create_key(name="x")
    assert verifier.verify(generated.raw).is_valid


@pytest.mark.usefixtures("shared_tier")
def test_the_shared_tier_serves_a_second_process(queries: QueryLog) -> None:
    _, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cache_module.clear_local()  # what another process sees
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_tier")
def test_a_revocation_reaches_the_shared_tier() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    api_key.revoke()
    cache_module.clear_local()
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("shared_tier")
def test_a_revocation_during_a_shared_tier_read_is_not_cached_locally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cache_module.clear_local()
    shared = caches["default"]
    read = shared.get_many

    def read_then_revoke(keys: Any) -> Any:
        value = read(keys)
        APIKey.objects.filter(pk=api_key.pk).update(revoked=True)
        return value

    monkeypatch.setattr(shared, "get_many", read_then_revoke)
    verifier.verify(raw)  # concurrent with the revocation: either answer is right
    monkeypatch.undo()
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.usefixtures("shared_tier")
def test_cache_keys_and_values_never_hold_the_raw_key_or_its_hash() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    Verifier(APIKey).verify(raw)
    shared_key = f"async_api_key:v2:async_api_key.apikey:entry:{api_key.prefix}"
    stored = default_cache.get(shared_key)
    assert isinstance(stored, dict)
    assert raw not in repr(stored)
    assert raw not in shared_key
    assert api_key.hashed_key not in shared_key


@override_settings(
    CACHES=CACHES_WITH_A_BROKEN_ALIAS,
    ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "broken"},
)
def test_a_shared_tier_outage_falls_back_to_the_database(caplog: pytest.LogCaptureFixture) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cache_module.clear_local()
    assert verifier.verify(raw).is_valid
    api_key.revoke()
    assert verifier.verify(raw).reason is Reason.REVOKED
    assert any("shared cache unavailable" in record.getMessage() for record in caplog.records)
