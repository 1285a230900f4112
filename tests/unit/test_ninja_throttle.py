"""Ninja's APIKeyRateThrottle on its own: it counts requests itself (sync operations).

On async operations the parity table covers the setup the docs recommend, with
``APIKeyAuth(rate_limit=...)`` counting off the event loop; here the throttle is the only
one counting, as on a sync operation.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest
from django.test import override_settings
from ninja import NinjaAPI
from ninja.security import HttpBearer
from ninja.testing import TestClient

from async_api_key.ninja import APIKeyAuth, APIKeyRateThrottle, register_error_handler
from tests.support.key_factories import valid_key
from tests.support.outages import CACHES_WITH_A_BROKEN_ALIAS

pytestmark = pytest.mark.django_db


class StaticBearer(HttpBearer):
    """Authenticates ``Authorization: Bearer service-token``: something that is not a key."""

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        return token if token == "service-token" else None


api = NinjaAPI(urls_namespace="async_api_key_ninja_throttle")
register_error_handler(api)


@api.get("/limited", auth=APIKeyAuth(), throttle=APIKeyRateThrottle("2/min"))
def limited(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


@api.get("/own-limits-only", auth=APIKeyAuth(), throttle=APIKeyRateThrottle())
def own_limits_only(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


@api.get("/either", auth=[StaticBearer(), APIKeyAuth()], throttle=APIKeyRateThrottle("1/min"))
def either(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


client = TestClient(api)


def _statuses(path: str, headers: dict[str, str], count: int) -> list[int]:
    return [client.get(path, headers=headers).status_code for _ in range(count)]


def _key_header(**fields: Any) -> dict[str, str]:
    return {"Authorization": f"Api-Key {valid_key(**fields)}"}


def test_the_throttle_alone_counts_each_key_and_answers_429_with_retry_after() -> None:
    first, second = _key_header(), _key_header()
    assert _statuses("/limited", first, 3) == [200, 200, 429]
    refused = client.get("/limited", headers=first)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert _statuses("/limited", second, 2) == [200, 200]  # another key has its own count


def test_a_key_own_limit_applies_where_the_throttle_has_no_default() -> None:
    assert _statuses("/own-limits-only", _key_header(rate_limit="1/min"), 2) == [200, 429]
    assert _statuses("/own-limits-only", _key_header(), 5) == [200] * 5


def test_requests_authenticated_otherwise_are_left_to_other_throttles() -> None:
    service = {"Authorization": "Bearer service-token"}
    assert _statuses("/either", service, 3) == [200, 200, 200]
    assert _statuses("/either", _key_header(), 2) == [200, 429]


@override_settings(
    CACHES=CACHES_WITH_A_BROKEN_ALIAS, ASYNC_API_KEY={"RATE_LIMIT_CACHE_ALIAS": "broken"}
)
def test_a_counting_store_outage_refuses_rather_than_lets_through(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = client.get("/limited", headers=_key_header())
    assert response.status_code == 429  # all a Ninja throttle can answer: fail closed
    assert "Retry-After" not in response.headers
    assert any("rate limit cache unavailable" in record.getMessage() for record in caplog.records)
