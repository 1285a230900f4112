"""The DRF adapter on adrf async views: the same classes, and the ORM never on the event loop.

Django raises ``SynchronousOnlyOperation`` if the ORM runs on the event loop, so every
allowed request below also proves that the verification ran in adrf's worker thread.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import AsyncClient, override_settings
from django.utils import timezone

from async_api_key.models import APIKey
from async_api_key.verification import Verifier
from tests.conftest import QueryLog
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.support.drf_urls")]


def _auth(raw: str) -> dict[str, str]:
    return {"Authorization": f"Api-Key {raw}"}


async def test_valid_key_is_allowed_and_becomes_request_auth() -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="async")
    response = await AsyncClient().get("/async/authenticated/", headers=_auth(raw))
    assert response.status_code == 200
    assert response.json() == {"prefix": api_key.prefix, "name": "async"}


async def test_verification_runs_off_the_event_loop_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    _, raw = await APIKey.objects.acreate_key(name="thread")
    threads: list[threading.Thread] = []
    original = Verifier._verify

    def recording(self: Verifier[Any], *args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return original(self, *args, **kwargs)

    # The DRF adapter calls the unmasked body: its own memo frame is masked.
    monkeypatch.setattr(Verifier, "_verify", recording)
    response = await AsyncClient().get("/async/authenticated/", headers=_auth(raw))
    assert response.status_code == 200
    assert threads
    assert threading.current_thread() not in threads


async def test_bad_key_is_401_with_a_challenge() -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="revoked")
    await api_key.arevoke()
    response = await AsyncClient().get("/async/authenticated/", headers=_auth(raw))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'
    assert response.json() == {"detail": "Invalid or missing API key.", "code": "invalid_api_key"}


async def test_missing_key_is_401() -> None:
    response = await AsyncClient().get("/async/authenticated/")
    assert response.status_code == 401


async def test_expired_key_is_refused_by_the_permission_alone() -> None:
    _, raw = await APIKey.objects.acreate_key(
        name="old", expiry_date=timezone.now() - timedelta(seconds=1)
    )
    response = await AsyncClient().get("/async/permission-only/", headers=_auth(raw))
    assert response.status_code == 403


async def test_permission_alone_allows_a_valid_key() -> None:
    _, raw = await APIKey.objects.acreate_key(name="ok")
    response = await AsyncClient().get("/async/permission-only/", headers=_auth(raw))
    assert response.status_code == 200


async def test_scopes_through_adrf_async_operators() -> None:
    _, granted = await APIKey.objects.acreate_key(name="r", scopes=["orders:read"])
    _, ungranted = await APIKey.objects.acreate_key(name="w", scopes=["orders:write"])
    client = AsyncClient()
    assert (await client.get("/async/orders/", headers=_auth(granted))).status_code == 200
    refused = await client.get("/async/orders/", headers=_auth(ungranted))
    assert refused.status_code == 403


async def test_or_lets_a_logged_in_user_through() -> None:
    user = await sync_to_async(User.objects.create_user)("bob")  # no acreate_user on 4.2
    client = AsyncClient()
    await sync_to_async(client.force_login)(user)  # no aforce_login on Django 4.2
    assert (await client.get("/async/key-or-user/")).status_code == 200
    assert (await AsyncClient().get("/async/key-or-user/")).status_code == 401


async def test_custom_key_model_with_owner() -> None:
    organization = await Organization.objects.acreate(name="Acme")
    _, raw = await OrganizationAPIKey.objects.acreate_key(name="acme", organization=organization)
    response = await AsyncClient().get("/async/organization/", headers=_auth(raw))
    assert response.status_code == 200
    assert response.json() == {"organization_id": organization.pk}


@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None})
async def test_authentication_and_permissions_verify_the_key_once(queries: QueryLog) -> None:
    _, raw = await APIKey.objects.acreate_key(name="once", scopes=["orders:read"])
    with queries.capture():
        response = await AsyncClient().get("/async/orders/", headers=_auth(raw))
    assert response.status_code == 200
    assert queries.count == 1


async def test_key_store_outage_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    _, raw = await APIKey.objects.acreate_key(name="outage")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)
    response = await AsyncClient().get("/async/authenticated/", headers=_auth(raw))
    assert response.status_code == 503
    assert response.json()["code"] == "api_key_verification_unavailable"
