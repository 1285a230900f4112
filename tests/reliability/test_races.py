"""Races on the real database: threads, each with its own PostgreSQL connection, creating,
verifying and revoking keys at the same time.

- concurrent ``create_key`` calls whose lookup ids are forced to collide all succeed, with
  distinct ids, and each raw key belongs to the key it was returned with;
- legacy-hash upgrades racing with revocations never un-revoke a key, and once ``revoke()``
  has returned no verification started later succeeds (the process cache included);
- ``last_used_at`` never moves backwards, however verifications interleave.

SQLite serialises writers (its in-memory test database even refuses a second one at once),
so these run on PostgreSQL only; CI runs them with ``DATABASE_URL``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from async_api_key import verification
from async_api_key.hashing import check_key, hash_key
from async_api_key.keys import GeneratedKey, checksum, generate_key, random_base62
from async_api_key.models import APIKey
from async_api_key.verification import Reason, Verifier
from tests.support.threads import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs this with DATABASE_URL)")


def _run_in_threads(*targets: Callable[[], None]) -> None:
    """Start ``targets`` together, each in a thread with its own connection; re-raise errors."""
    errors = run_concurrently(*targets)
    if errors:
        raise errors[0]


@pytest.fixture
def recorded_raw_keys(_no_raw_key_in_logs: list[str]) -> list[str]:
    """The raw keys the suite checks the logs for (see ``tests/conftest.py``)."""
    return _no_raw_key_in_logs


def test_concurrent_create_key_with_colliding_lookup_ids_all_succeed_with_distinct_ids(
    monkeypatch: pytest.MonkeyPatch, recorded_raw_keys: list[str]
) -> None:
    colliding = [random_base62(12) for _ in range(3)]  # every thread tries these first
    attempts = threading.local()

    def colliding_first(namespace: str) -> GeneratedKey:
        tried: int = getattr(attempts, "tried", 0)
        attempts.tried = tried + 1
        if tried < len(colliding):
            body = f"{namespace}_{colliding[tried]}_{random_base62(32)}"
            generated = GeneratedKey(lookup=colliding[tried], raw=body + checksum(body))
        else:
            generated = generate_key(namespace)
        recorded_raw_keys.append(generated.raw)  # so the suite's log check covers it
        return generated

    monkeypatch.setattr("async_api_key.models.generate_key", colliding_first)
    created: list[tuple[APIKey, str]] = []

    def create(index: int) -> Callable[[], None]:
        return lambda: created.append(APIKey.objects.create_key(name=f"racer {index}"))

    _run_in_threads(*(create(index) for index in range(8)))

    assert len(created) == 8
    assert len({api_key.pk for api_key, _ in created}) == 8
    prefixes = [api_key.prefix for api_key, _ in created]
    assert len(set(prefixes)) == 8
    assert set(colliding) <= set(prefixes)  # each colliding lookup id went to exactly one
    assert APIKey.objects.count() == 8
    for api_key, raw in created:
        outcome = Verifier(APIKey).verify(raw)
        assert outcome.is_valid
        assert outcome.api_key is not None
        assert outcome.api_key.pk == api_key.pk


def _legacy_key() -> tuple[APIKey, str]:
    """A key as djangorestframework-api-key < 3.0 stored it: a Django password hash."""
    raw = f"{random_base62(8)}.{random_base62(32)}"
    api_key = APIKey(name="legacy", prefix=raw[:8], hashed_key=make_password(raw, hasher="md5"))
    api_key.save()
    return api_key, raw


def test_concurrent_legacy_upgrades_and_revocations_never_unrevoke_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow_check(*args: Any, **kwargs: Any) -> Any:
        # Widen the window between reading the row and writing the upgraded hash.
        result = check_key(*args, **kwargs)
        time.sleep(random.uniform(0, 0.004))
        return result

    monkeypatch.setattr("async_api_key.verification.check_key", slow_check)
    for _round in range(6):
        api_key, raw = _legacy_key()
        verifications: list[tuple[float, Reason]] = []  # (when it started, outcome)
        revoked_at: list[float] = []

        def verify(
            raw: str = raw, verifications: list[tuple[float, Reason]] = verifications
        ) -> None:
            for _ in range(6):
                started = time.monotonic()
                verifications.append((started, Verifier(APIKey).verify(raw).reason))

        def revoke(pk: int = api_key.pk, revoked_at: list[float] = revoked_at) -> None:
            time.sleep(random.uniform(0, 0.01))
            APIKey.objects.get(pk=pk).revoke()
            revoked_at.append(time.monotonic())

        _run_in_threads(verify, verify, verify, revoke)

        stored = APIKey.objects.get(pk=api_key.pk)
        assert stored.revoked
        assert stored.revoked_at is not None
        assert stored.hashed_key in {api_key.hashed_key, hash_key(raw)}
        late = [reason for started, reason in verifications if started > revoked_at[0]]
        assert Reason.VALID not in late
        assert Verifier(APIKey).verify(raw).reason is Reason.REVOKED  # nor cached as valid


@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": 0, "CACHE_ENABLED": False})
def test_last_used_at_never_moves_backwards_under_concurrent_verifications(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="busy")
    stamps: list[datetime] = []  # every "now" a verification meant to write

    class LaggingClock:
        """``timezone.now`` for the verifier, with a delay before the write that follows,
        so that an older time often reaches the database after a newer one."""

        @staticmethod
        def now() -> datetime:
            value = timezone.now()
            stamps.append(value)
            time.sleep(random.uniform(0, 0.003))
            return value

    monkeypatch.setattr(verification, "timezone", LaggingClock)
    observed: list[datetime | None] = []
    verifiers = 4
    finished: list[None] = []  # one entry per verifier done (list.append is atomic)

    def verify() -> None:
        try:
            for _ in range(15):
                assert Verifier(APIKey).verify(raw).is_valid
        finally:
            finished.append(None)

    def observe() -> None:
        while len(finished) < verifiers:
            observed.append(
                APIKey.objects.filter(pk=api_key.pk).values_list("last_used_at", flat=True).get()
            )

    _run_in_threads(*[verify] * verifiers, observe)

    seen = [value for value in observed if value is not None]
    assert seen == sorted(seen)
    final = APIKey.objects.get(pk=api_key.pk).last_used_at
    assert final == max(stamps)
