"""Changes that once escaped the change log (an adversarial review, round two): through a proxy
model, an instance built from a primary key, a stale in-memory lookup id, an upsert, a fixture,
and a manager copied per request. Each test failed before its fix."""

from __future__ import annotations

import copy
import json
from typing import Any, ClassVar

import pytest
from django.core import serializers

from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.verification import Reason
from tests.support.testapp.models import Organization, OrganizationAPIKey


class ServiceKey(APIKey):
    """A proxy, as a project adds one for a second admin or a different manager."""

    objects: ClassVar[BaseAPIKeyManager[ServiceKey]] = BaseAPIKeyManager()  # type: ignore[assignment]

    class Meta:
        proxy = True
        app_label = "testapp"


@pytest.mark.django_db
def test_revocation_through_the_concrete_model_reaches_a_proxy_verifier() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = ServiceKey.objects.verifier
    assert verifier.verify(raw).is_valid  # cached under label testapp.servicekey
    api_key.revoke()  # records async_api_key.apikey
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.django_db
def test_revocation_through_a_proxy_reaches_the_concrete_verifier() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    ServiceKey.objects.get(pk=api_key.pk).revoke()  # records testapp.servicekey
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.django_db
def test_revoke_by_primary_key_without_loading_the_row_is_recorded() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    APIKey(pk=api_key.pk).revoke()  # prefix "" in memory: record_change([""]) records nothing
    assert APIKey.objects.get(pk=api_key.pk).revoked
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.django_db
def test_delete_by_primary_key_without_loading_the_row_is_recorded() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    APIKey(pk=api_key.pk).delete()
    assert not APIKey.objects.filter(pk=api_key.pk).exists()
    assert verifier.verify(raw).reason is Reason.UNKNOWN


@pytest.mark.django_db
def test_save_with_a_stale_in_memory_prefix_is_recorded_under_the_stored_prefix() -> None:
    api_key, raw = APIKey.objects.create_key(name="x", scopes=["*"])
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw, scopes=["admin"]).is_valid
    api_key.prefix = "somethingelse"  # guarded: never written, but recorded
    api_key.scopes = []
    api_key.save()
    assert APIKey.objects.get(pk=api_key.pk).scopes == []
    assert verifier.verify(raw, scopes=["admin"]).reason is Reason.INSUFFICIENT_SCOPE


@pytest.mark.django_db
def test_bulk_create_upsert_of_an_existing_key_is_recorded() -> None:
    api_key, raw = APIKey.objects.create_key(name="x", scopes=["*"])
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    clone = APIKey(prefix=api_key.prefix, hashed_key=api_key.hashed_key, name="x", revoked=True)
    APIKey.objects.bulk_create(
        [clone], update_conflicts=True, unique_fields=["prefix"], update_fields=["revoked"]
    )
    assert APIKey.objects.get(pk=api_key.pk).revoked
    assert verifier.verify(raw).reason is Reason.REVOKED


@pytest.mark.django_db
def test_loaddata_over_an_existing_key_is_recorded() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    data = json.loads(serializers.serialize("json", [api_key]))
    data[0]["fields"]["revoked"] = True
    for obj in serializers.deserialize("json", json.dumps(data)):
        obj.save()  # what `manage.py loaddata` does
    assert APIKey.objects.get(pk=api_key.pk).revoked
    assert verifier.verify(raw).reason is Reason.REVOKED


class TenantManager(BaseAPIKeyManager[OrganizationAPIKey]):
    """A manager narrowed to one organization, made per request like db_manager() is."""

    organization_id: int = 0

    def for_organization(self, organization: Organization) -> TenantManager:
        manager = copy.copy(self)
        manager.organization_id = organization.pk
        return manager

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(organization_id=self.organization_id)


@pytest.mark.django_db
def test_a_per_request_manager_copy_does_not_reuse_another_tenants_verifier() -> None:
    acme = Organization.objects.create(name="Acme")
    evil = Organization.objects.create(name="Evil")
    _, raw_acme = OrganizationAPIKey.objects.create_key(name="k", organization=acme)
    base = TenantManager()
    base.model = OrganizationAPIKey
    base.name = "tenant"
    assert base.for_organization(acme).is_valid(raw_acme)
    # Evil's endpoint must not accept Acme's key
    assert not base.for_organization(evil).is_valid(raw_acme)
