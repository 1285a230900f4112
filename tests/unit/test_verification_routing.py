"""Where a verification's bookkeeping writes go (``last_used_at``, a legacy hash's upgrade):
where Django's router sends writes for the key, which without a router is the database the
key was read from; and, inside a transaction on that database, only once it commits.

The suite's settings have a second database (``second``) for these tests.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.test import override_settings

from async_api_key.hashing import hash_key
from async_api_key.models import APIKey
from async_api_key.verification import Reason, Verifier

pytestmark = pytest.mark.django_db(databases=["default", "second"], transaction=True)

#: An upstream (djangorestframework-api-key) key, stored below with a pre-3.0 password hash.
LEGACY_RAW = "Lg7qWnaT.z8YvK3mPq9XcR2tB5nH4jL6sD1fG0wE"


class ReadFromSecondRouter:
    """A read replica for the library's models: keys are read from ``second``, and written
    to ``default``; other models are left to the next router."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return "second" if model._meta.app_label == "async_api_key" else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return "default" if model._meta.app_label == "async_api_key" else None


def _stored(database: str, api_key: APIKey) -> APIKey:
    return APIKey._base_manager.using(database).get(pk=api_key.pk)


def _legacy_key_in(*databases: str) -> APIKey:
    prefix = LEGACY_RAW.split(".", maxsplit=1)[0]
    hashed = make_password(LEGACY_RAW, hasher="pbkdf2_sha256")
    api_key = APIKey(name="legacy", prefix=prefix, hashed_key=hashed)
    for database in databases:
        api_key.save(using=database, force_insert=True)
    return api_key


def test_a_key_read_from_another_database_records_its_use_there() -> None:
    second = APIKey.objects.db_manager("second")
    api_key, raw = second.create_key(name="kept in second")
    APIKey.objects.create_key(name="kept in default")  # a row that could take a stray write
    assert second.verifier.verify(raw).is_valid
    assert _stored("second", api_key).last_used_at is not None


def test_a_legacy_key_read_from_another_database_is_upgraded_there() -> None:
    api_key = _legacy_key_in("second")
    assert Verifier(APIKey, manager=APIKey.objects.db_manager("second")).verify(LEGACY_RAW).is_valid
    assert _stored("second", api_key).hashed_key == hash_key(LEGACY_RAW)


@override_settings(DATABASE_ROUTERS=[f"{__name__}.ReadFromSecondRouter"])
def test_behind_a_read_replica_the_use_is_recorded_on_the_primary() -> None:
    api_key, raw = APIKey.objects.db_manager("default").create_key(name="replicated")
    api_key.save(using="second", force_insert=True)  # the replica's copy
    assert Verifier(APIKey).verify(raw).is_valid
    assert _stored("default", api_key).last_used_at is not None
    assert _stored("second", api_key).last_used_at is None


@override_settings(DATABASE_ROUTERS=[f"{__name__}.ReadFromSecondRouter"])
def test_behind_a_read_replica_a_legacy_hash_is_upgraded_on_the_primary() -> None:
    api_key = _legacy_key_in("default", "second")
    legacy_hash = api_key.hashed_key
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    assert _stored("default", api_key).hashed_key == hash_key(LEGACY_RAW)
    assert _stored("second", api_key).hashed_key == legacy_hash


def test_inside_a_transaction_on_the_keys_database_the_use_is_recorded_at_commit() -> None:
    second = APIKey.objects.db_manager("second")
    api_key, raw = second.create_key(name="in a transaction")
    with transaction.atomic(using="second"):
        assert second.verifier.verify(raw).is_valid
        assert _stored("second", api_key).last_used_at is None  # no row lock held meanwhile
    assert _stored("second", api_key).last_used_at is not None


def test_inside_a_transaction_on_the_keys_database_an_upgrade_waits_for_commit() -> None:
    api_key = _legacy_key_in("second")
    legacy_hash = api_key.hashed_key
    verifier = Verifier(APIKey, manager=APIKey.objects.db_manager("second"))
    with transaction.atomic(using="second"):
        assert verifier.verify(LEGACY_RAW).is_valid
        assert _stored("second", api_key).hashed_key == legacy_hash
    assert _stored("second", api_key).hashed_key == hash_key(LEGACY_RAW)


def test_a_rolled_back_transaction_records_no_use_and_the_key_stays_valid() -> None:
    second = APIKey.objects.db_manager("second")
    api_key, raw = second.create_key(name="rolled back")

    def verify_then_fail() -> None:
        with transaction.atomic(using="second"):
            assert second.verifier.verify(raw).is_valid
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        verify_then_fail()
    assert _stored("second", api_key).last_used_at is None
    assert second.verifier.verify(raw).reason is Reason.VALID
