"""The cold path's query: compiled once, it loads exactly what the ORM loads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from async_api_key.cache import clear_local
from async_api_key.lookup import KeyLoader
from async_api_key.models import AbstractAPIKey, APIKey, BaseAPIKeyManager
from async_api_key.verification import Reason, Verifier
from tests.conftest import QueryLog
from tests.support.testapp import models as testapp_models
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db


def _field_values(api_key: AbstractAPIKey) -> dict[str, Any]:
    return {
        field.attname: getattr(api_key, field.attname) for field in api_key._meta.concrete_fields
    }


def _load_both_ways(manager: BaseAPIKeyManager[Any], lookup: str) -> tuple[Any, Any]:
    loader = KeyLoader(manager, manager.key_filters())
    compiled = loader.load(lookup)
    assert loader._compiled[manager.db] is not None  # the compiled query ran, not the ORM
    return compiled, loader._load_with_orm(lookup)


def test_the_compiled_query_loads_what_the_orm_loads() -> None:
    predecessor, _ = APIKey.objects.create_key(name="old")
    api_key, _ = APIKey.objects.create_key(
        name="every field",
        scopes=["orders:read", "orders:write"],
        allowed_networks=["10.0.0.0/8", "2001:db8::/32"],
        rate_limit="100/min",
        expiry_date=timezone.now() + timedelta(days=3),
        rotated_from=predecessor,
    )
    APIKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    compiled, built = _load_both_ways(APIKey.objects, api_key.prefix)
    assert compiled is not None
    assert _field_values(compiled) == _field_values(built)
    assert compiled.scopes == ["orders:read", "orders:write"]
    assert compiled.expiry_date.tzinfo is not None
    assert compiled._state.db == built._state.db == "default"
    assert not compiled._state.adding


def test_the_compiled_query_loads_a_custom_model_with_an_owner() -> None:
    organization = Organization.objects.create(name="Acme")
    api_key, _ = OrganizationAPIKey.objects.create_key(name="x", organization=organization)
    compiled, built = _load_both_ways(OrganizationAPIKey.plain, api_key.prefix)
    assert _field_values(compiled) == _field_values(built)
    assert compiled.organization == organization


def test_an_unknown_lookup_id_loads_nothing(queries: QueryLog) -> None:
    APIKey.objects.create_key(name="x")
    loader = KeyLoader(APIKey.objects, APIKey.objects.key_filters())
    with queries.capture():
        assert loader.load("NoSuchLookup") is None
        assert loader.load("NoSuchLookup") is None
    assert queries.count == 2


def test_the_lookup_id_is_a_query_parameter_not_sql() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    loader = KeyLoader(APIKey.objects, APIKey.objects.key_filters())
    assert loader.load("' OR '1'='1") is None
    assert loader.load(api_key.prefix) is not None
    assert APIKey.objects.count() == 1
    assert connection.is_usable()


def test_a_manager_that_narrows_its_queryset_is_asked_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="hidden", organization=organization)
    verifier = Verifier(OrganizationAPIKey, manager=OrganizationAPIKey.visible)
    assert verifier.verify(raw).reason is Reason.UNKNOWN
    monkeypatch.setattr(testapp_models, "HIDDEN_KEY_NAMES", set())
    clear_local()  # the negative cache remembers the lookup id as unknown
    assert verifier.verify(raw).is_valid


def test_a_query_that_cannot_be_compiled_is_built_by_the_orm(
    monkeypatch: pytest.MonkeyPatch, queries: QueryLog
) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    monkeypatch.setattr("async_api_key.lookup._compile_lookup", lambda manager, db: None)
    loader = KeyLoader(APIKey.objects, APIKey.objects.key_filters())
    with queries.capture():
        loaded = loader.load(api_key.prefix)
        assert loader.load("NoSuchLookup") is None
    assert loaded is not None
    assert loaded.pk == api_key.pk
    assert queries.count == 2
