"""DRF's APIKeyRateThrottle without APIKeyAuthentication, and BaseHasAPIKey misconfigured."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from async_api_key.drf import APIKeyRateThrottle, BaseHasAPIKey, HasAPIKey
from tests.support.key_factories import unknown_key, valid_key

pytestmark = pytest.mark.django_db


class TwoPerMinute(APIKeyRateThrottle):
    rate = "2/min"


class _OkView(APIView):
    authentication_classes = ()

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class PermissionAndThrottleView(_OkView):
    """What an upstream user has after migrating, plus a throttle: no authentication class."""

    permission_classes = (HasAPIKey,)
    throttle_classes = (TwoPerMinute,)


class OpenThrottledView(_OkView):
    """Open to all; requests that carry a usable key are counted against it."""

    permission_classes = (permissions.AllowAny,)
    throttle_classes = (TwoPerMinute,)


class OwnLimitsOnlyView(_OkView):
    permission_classes = (HasAPIKey,)
    throttle_classes = (APIKeyRateThrottle,)


def _get(view: type[APIView], raw_key: str | None = None) -> Any:
    factory = APIRequestFactory()
    if raw_key is None:
        return view.as_view()(factory.get("/"))
    return view.as_view()(factory.get("/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}"))


def _statuses(view: type[APIView], raw_key: str | None, count: int) -> list[int]:
    return [_get(view, raw_key).status_code for _ in range(count)]


def test_the_throttle_counts_keys_that_the_permission_verified() -> None:
    raw = valid_key()
    assert _statuses(PermissionAndThrottleView, raw, 2) == [200, 200]
    refused = _get(PermissionAndThrottleView, raw)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert _statuses(PermissionAndThrottleView, valid_key(), 2) == [200, 200]


def test_on_an_open_view_only_requests_with_a_usable_key_are_counted() -> None:
    assert _statuses(OpenThrottledView, None, 4) == [200] * 4
    assert _statuses(OpenThrottledView, unknown_key(), 4) == [200] * 4
    assert _statuses(OpenThrottledView, valid_key(), 3) == [200, 200, 429]


def test_without_a_default_rate_only_keys_with_their_own_limit_are_throttled() -> None:
    assert _statuses(OwnLimitsOnlyView, valid_key(), 5) == [200] * 5
    assert _statuses(OwnLimitsOnlyView, valid_key(rate_limit="1/min"), 2) == [200, 429]


def test_a_base_permission_without_a_model_is_a_configuration_error() -> None:
    class NoModel(BaseHasAPIKey):
        pass

    request = Request(APIRequestFactory().get("/"))
    with pytest.raises(ImproperlyConfigured, match="must set `model`"):
        NoModel().has_permission(request, PermissionAndThrottleView())
