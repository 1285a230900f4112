"""Key models and managers: creation, revocation and the fields a project relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from async_api_key import models as models_module
from async_api_key.changes import record_change
from async_api_key.keys import GeneratedKey, generate_key
from async_api_key.models import APIKey
from tests.support.key_factories import with_bad_checksum
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db


def test_create_key_returns_the_saved_key_and_the_raw_key_once() -> None:
    api_key, raw = APIKey.objects.create_key(name="ci")
    stored = APIKey.objects.get(pk=api_key.pk)
    assert raw.startswith("ak_")
    assert stored.prefix == raw.split("_")[1]
    assert raw not in stored.hashed_key
    assert stored.hashed_key.startswith("sha512$$")
    assert stored.is_valid(raw)
    assert not stored.is_valid(with_bad_checksum(raw))


def test_namespace_and_algorithm_come_from_settings(settings: object) -> None:
    from django.test import override_settings

    with override_settings(ASYNC_API_KEY={"NAMESPACE": "acme_live", "HASH_ALGORITHM": "sha256"}):
        api_key, raw = APIKey.objects.create_key(name="x")
    assert raw.startswith("acme_live_")
    assert api_key.hashed_key.startswith("sha256$$")
    assert APIKey.objects.is_valid(raw)


def test_create_key_without_name_fails_at_the_database() -> None:
    with pytest.raises(IntegrityError):
        APIKey.objects.create_key()
    assert APIKey.objects.count() == 0


def test_create_key_refuses_to_take_generated_fields() -> None:
    with pytest.raises(TypeError, match="prefix"):
        APIKey.objects.create_key(name="x", prefix="abc")
    with pytest.raises(TypeError, match="hashed_key"):
        APIKey.objects.create_key(name="x", hashed_key="sha512$$00")


def test_create_key_validates_scopes() -> None:
    with pytest.raises(ValueError, match="'bad scope'"):
        APIKey.objects.create_key(name="x", scopes=["orders:read", "bad scope"])
    api_key, _ = APIKey.objects.create_key(name="x", scopes=["orders:read", "orders:read"])
    assert api_key.scopes == ["orders:read"]


def test_create_key_retries_a_lookup_id_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, _ = APIKey.objects.create_key(name="first")
    fresh = generate_key("ak")
    forced = iter([GeneratedKey(lookup=taken.prefix, raw="ak_collision"), fresh])
    monkeypatch.setattr(models_module, "generate_key", lambda namespace: next(forced))
    api_key, raw = APIKey.objects.create_key(name="second")
    assert raw == fresh.raw
    assert api_key.prefix == fresh.lookup
    assert APIKey.objects.count() == 2


def test_create_key_gives_up_after_repeated_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, _ = APIKey.objects.create_key(name="first")
    monkeypatch.setattr(
        models_module, "generate_key", lambda namespace: GeneratedKey(taken.prefix, "ak_x")
    )
    with pytest.raises(RuntimeError, match="unused lookup id"):
        APIKey.objects.create_key(name="second")
    assert APIKey.objects.count() == 1


def test_str_and_repr_name_the_key_without_its_secret() -> None:
    api_key, raw = APIKey.objects.create_key(name="partner")
    assert str(api_key) == "partner"
    assert raw not in repr(api_key)
    assert api_key.hashed_key not in repr(api_key)


def test_has_expired() -> None:
    now = timezone.now()
    assert not APIKey(name="x").has_expired
    assert not APIKey(name="x", expiry_date=now + timedelta(minutes=1)).has_expired
    assert APIKey(name="x", expiry_date=now - timedelta(seconds=1)).has_expired


def test_get_usable_keys_excludes_revoked_and_expired_keys() -> None:
    APIKey.objects.create_key(name="usable")
    APIKey.objects.create_key(name="later", expiry_date=timezone.now() + timedelta(days=1))
    APIKey.objects.create_key(name="expired", expiry_date=timezone.now() - timedelta(days=1))
    revoked, _ = APIKey.objects.create_key(name="revoked")
    revoked.revoke()
    assert sorted(APIKey.objects.get_usable_keys().values_list("name", flat=True)) == [
        "later",
        "usable",
    ]


def test_revoke_is_recorded_idempotent_and_writes_only_its_columns() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    api_key.revoke()
    first_revoked_at = APIKey.objects.get(pk=api_key.pk).revoked_at
    assert first_revoked_at is not None
    APIKey.objects.get(pk=api_key.pk).revoke()
    stored = APIKey.objects.get(pk=api_key.pk)
    assert stored.revoked
    assert stored.revoked_at == first_revoked_at
    assert not APIKey.objects.is_valid(raw)


def test_revocation_cannot_be_undone() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    api_key.revoke()
    stored = APIKey.objects.get(pk=api_key.pk)
    stored.revoked = False
    with pytest.raises(ValidationError, match="cannot be undone"):
        stored.save()
    with pytest.raises(ValidationError, match="cannot be undone"):
        stored.full_clean()
    assert APIKey.objects.get(pk=api_key.pk).revoked


def test_saving_a_stale_instance_does_not_undo_a_concurrent_revocation() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    stale = APIKey.objects.get(pk=api_key.pk)
    api_key.revoke()
    stale.name = "renamed"
    stale.save()
    stored = APIKey.objects.get(pk=api_key.pk)
    assert stored.name == "renamed"
    assert stored.revoked
    assert not APIKey.objects.is_valid(raw)


def test_saving_with_revoked_true_revokes_and_stamps_the_time() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    api_key.revoked = True
    api_key.save()
    stored = APIKey.objects.get(pk=api_key.pk)
    assert stored.revoked
    assert stored.revoked_at is not None
    assert not APIKey.objects.is_valid(raw)


def test_explicit_update_fields_cannot_write_guarded_columns() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    api_key.hashed_key = "sha512$$" + "0" * 128
    api_key.name = "renamed"
    api_key.save(update_fields=["name", "hashed_key"])
    stored = APIKey.objects.get(pk=api_key.pk)
    assert stored.name == "renamed"
    assert stored.is_valid(raw)


def test_unknown_update_fields_are_still_reported_by_django() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    with pytest.raises(ValueError, match="nope"):
        api_key.save(update_fields=["nope"])  # type: ignore[misc]


def test_clean_validates_scopes() -> None:
    api_key = APIKey(name="x", prefix="p", hashed_key="h", scopes=["ok", "not ok"])
    with pytest.raises(ValidationError) as excinfo:
        api_key.full_clean()
    assert "scopes" in excinfo.value.message_dict
    api_key.scopes = "orders:read"
    with pytest.raises(ValidationError) as excinfo:
        api_key.full_clean()
    assert "scopes" in excinfo.value.message_dict


def test_granted_scopes_ignores_garbage_in_the_column() -> None:
    assert APIKey(name="x", scopes=["a", 3, "b"]).granted_scopes == ("a", "b")
    assert APIKey(name="x", scopes="a").granted_scopes == ()


def test_custom_key_model_with_an_owner() -> None:
    organization = Organization.objects.create(name="Acme")
    api_key, raw = OrganizationAPIKey.objects.create_key(name="acme", organization=organization)
    found = OrganizationAPIKey.objects.get_from_key(raw)
    assert found.pk == api_key.pk
    assert found.organization == organization
    organization.active = False
    organization.save()
    # The owner is not the key: a cached verification holds until the change is recorded.
    assert OrganizationAPIKey.objects.is_valid(raw)
    record_change(OrganizationAPIKey, [api_key.prefix])
    assert not OrganizationAPIKey.objects.is_valid(raw)
    with pytest.raises(OrganizationAPIKey.DoesNotExist):
        OrganizationAPIKey.objects.get_from_key(raw)


@pytest.mark.django_db(transaction=True)
async def test_async_twins_create_find_and_revoke() -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="async")
    assert await APIKey.objects.ais_valid(raw)
    found = await APIKey.objects.aget_from_key(raw)
    assert found.pk == api_key.pk
    await found.arevoke()
    assert not await APIKey.objects.ais_valid(raw)
    with pytest.raises(APIKey.DoesNotExist):
        await APIKey.objects.aget_from_key(raw)
