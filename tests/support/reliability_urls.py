"""Endpoints for the reliability tests (``@pytest.mark.urls("tests.support.reliability_urls")``),
and, through ``propagation_urls``, of the server processes of ``reliability/test_propagation.py``.

- ``/ninja/plain`` (async) and ``/drf/plain``: protected by an API key, answer its prefix;
- ``/ninja/fails`` and ``/drf/fails``: protected, then fail in the view;
- ``/drf/permission-only`` (``HasAPIKey`` alone), ``/drf/throttled`` (``APIKeyRateThrottle``
  alone) and ``/drf/failing-user`` (an ``APIKeyAuthentication`` whose ``get_user()`` fails):
  each DRF class that reads a key, on its own;
- ``/ninja/revoke/{prefix}``: revokes a key *inside the serving process*, so that the
  two-process test revokes in one server and asks the other. Test-only: it has no auth.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from async_api_key import drf, ninja
from async_api_key.models import APIKey

api = NinjaAPI(urls_namespace="async_api_key_reliability")
ninja.register_error_handler(api)


class ViewFailed(RuntimeError):
    """Raised by the ``fails`` endpoints after the key was accepted."""


@api.get("/plain", auth=ninja.APIKeyAuth())
async def ninja_plain(request: HttpRequest) -> dict[str, Any]:
    return {"key": request.auth.prefix}  # type: ignore[attr-defined]


@api.get("/fails", auth=ninja.APIKeyAuth())
async def ninja_fails(request: HttpRequest) -> dict[str, Any]:
    raise ViewFailed("the view failed after authentication")


@api.post("/revoke/{prefix}")
async def ninja_revoke(request: HttpRequest, prefix: str) -> dict[str, Any]:
    api_key = await APIKey.objects.aget(prefix=prefix)
    await api_key.arevoke()
    return {"revoked": prefix}


class DRFPlain(APIView):
    authentication_classes = [drf.APIKeyAuthentication]
    permission_classes = [drf.HasAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"key": request.auth.prefix})  # type: ignore[union-attr]


class DRFFails(DRFPlain):
    def get(self, request: Request) -> Response:
        raise ViewFailed("the view failed after authentication")


class DRFPermissionOnly(APIView):
    authentication_classes: list[type[BaseAuthentication]] = []
    permission_classes = [drf.HasAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class DRFThrottled(DRFPermissionOnly):
    permission_classes = [AllowAny]
    throttle_classes = [drf.APIKeyRateThrottle]


class FailingUserAuthentication(drf.APIKeyAuthentication):
    def get_user(self, api_key: Any) -> Any:
        raise ViewFailed("the project's get_user() failed")


class DRFFailingUser(DRFPermissionOnly):
    authentication_classes = [FailingUserAuthentication]
    permission_classes = [AllowAny]


urlpatterns: list[URLPattern | URLResolver] = [
    path("ninja/", api.urls),
    path("drf/plain", DRFPlain.as_view()),
    path("drf/fails", DRFFails.as_view()),
    path("drf/permission-only", DRFPermissionOnly.as_view()),
    path("drf/throttled", DRFThrottled.as_view()),
    path("drf/failing-user", DRFFailingUser.as_view()),
]
