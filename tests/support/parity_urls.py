"""One endpoint per protection, served by Django-Ninja (async) and by DRF (sync), for the
parity table in ``tests/parity/test_auth.py``:
``@pytest.mark.urls("tests.support.parity_urls")``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from async_api_key import drf, ninja

RATE = "2/min"

api = NinjaAPI(urls_namespace="async_api_key_parity")
ninja.register_error_handler(api)


@api.get("/plain", auth=ninja.APIKeyAuth())
async def ninja_plain(request: HttpRequest) -> dict[str, Any]:
    return {"key": request.auth.prefix}  # type: ignore[attr-defined]


@api.get("/scoped", auth=ninja.APIKeyAuth(scopes=["orders:read"]))
async def ninja_scoped(request: HttpRequest) -> dict[str, Any]:
    return {"key": request.auth.prefix}  # type: ignore[attr-defined]


@api.get(
    "/throttled",
    auth=ninja.APIKeyAuth(rate_limit=RATE),
    throttle=ninja.APIKeyRateThrottle(RATE),
)
async def ninja_throttled(request: HttpRequest) -> dict[str, Any]:
    return {"key": request.auth.prefix}  # type: ignore[attr-defined]


class DRFPlain(APIView):
    authentication_classes = [drf.APIKeyAuthentication]
    permission_classes = [drf.HasAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"key": request.auth.prefix})  # type: ignore[union-attr]


class DRFScoped(DRFPlain):
    permission_classes = [drf.HasScopes.require("orders:read")]


class ParityThrottle(drf.APIKeyRateThrottle):
    rate = RATE


class DRFThrottled(DRFPlain):
    throttle_classes = [ParityThrottle]


urlpatterns: list[URLPattern | URLResolver] = [
    path("ninja/", api.urls),
    path("drf/plain", DRFPlain.as_view()),
    path("drf/scoped", DRFScoped.as_view()),
    path("drf/throttled", DRFThrottled.as_view()),
]
