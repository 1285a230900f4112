"""Isolation that once leaked (an adversarial review, round two): a probe through another
database, related objects across the shared tier, a Redis blip with no local tier, and a
corrupt stored rate. Each test failed before its fix. (A log read in a manual transaction,
and ``select_for_update().iterator()``, are tested in ``test_revocation_hardening.py``.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.test import override_settings
from ninja import NinjaAPI
from ninja.testing import TestAsyncClient

from async_api_key.cache import VerificationCache, clear_local
from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.ninja import APIKeyAuth, register_error_handler
from async_api_key.verification import Reason, Verifier
from tests.support.testapp.models import Organization, OrganizationAPIKey


def test_a_lookup_id_unknown_in_one_database_is_not_unknown_in_another() -> None:
    """Per-tenant databases: a well-formed fake with a victim's (public) lookup id, sent to
    tenant B's database, must not make tenant A's database refuse the victim's real key."""
    cache = VerificationCache(APIKey)
    cache.remember_unknown("tenant_b", "victimLookup")
    assert cache.is_known_unknown("tenant_b", "victimLookup")
    assert not cache.is_known_unknown("default", "victimLookup")


class SelectingManager(BaseAPIKeyManager[OrganizationAPIKey]):
    def get_queryset(self) -> QuerySet[OrganizationAPIKey]:  # type: ignore[override]
        return super().get_queryset().select_related("organization")

    def cache_scope(self) -> str:
        return "selecting"


async def _owner_name(api_key: OrganizationAPIKey) -> str:
    return api_key.organization.name  # what an async view does with request.auth


@override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"})
@pytest.mark.django_db(transaction=True)
def test_a_shared_tier_hit_keeps_the_select_related_owner() -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="k", organization=organization)
    manager = SelectingManager()
    manager.model = OrganizationAPIKey
    verifier = Verifier(OrganizationAPIKey, manager=manager)
    first = verifier.verify(raw).api_key  # stored in both tiers
    assert first is not None
    assert asyncio.run(_owner_name(first)) == "Acme"
    clear_local()  # another worker (its feed already follows the log)
    second = verifier.verify(raw).api_key  # served by the shared tier
    assert second is not None
    assert "organization" in second._state.fields_cache
    assert asyncio.run(_owner_name(second)) == "Acme"


@override_settings(
    ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default", "CACHE_MAX_ENTRIES": 0, "PUSH_CHANGES": False}
)
@pytest.mark.django_db(transaction=True)
def test_a_revoking_process_refuses_at_once_during_a_redis_blip_with_no_local_tier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid  # shared tier only (local tier holds 0 entries)

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis blip")

    with monkeypatch.context() as blip:
        blip.setattr(caches["default"], "set_many", down)
        api_key.revoke()
    assert verifier.verify(raw).reason is Reason.REVOKED


api = NinjaAPI(urls_namespace="adv2_rate")
register_error_handler(api)


@api.get("/r", auth=APIKeyAuth(rate_limit=True))
async def limited(request: Any) -> dict[str, bool]:
    return {"ok": True}


@pytest.mark.django_db
def test_save_refuses_a_malformed_rate_limit() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    api_key.rate_limit = "100/minutes"
    with pytest.raises(ValidationError) as refused:
        api_key.save()
    assert "rate_limit" in refused.value.message_dict


@pytest.mark.django_db(transaction=True)
def test_a_key_with_a_malformed_stored_rate_limit_is_refused_not_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    # A row written around the validation (raw SQL, another program).
    APIKey._base_manager.filter(pk=api_key.pk).update(rate_limit="100/minutes")
    client = TestAsyncClient(api)
    response = asyncio.run(client.get("/r", headers={"Authorization": f"Api-Key {raw}"}))
    assert response.status_code == 503
    assert any(
        record.levelname == "ERROR" and api_key.prefix in record.getMessage()
        for record in caplog.records
    )
