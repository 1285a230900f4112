"""Endpoints of the propagation suite's servers: the reliability endpoints (``APIKey`` on
Ninja and DRF), the same for the custom ``OrganizationAPIKey`` (whose owner can be deleted,
cascading to its keys), the admin that the changing process drives, and
``/propagation/stats``: this process's change-feed counters, read by
``benchmarks/propagation.py``. Test-only: it has no auth.
"""

from __future__ import annotations

import os
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from async_api_key import drf, ninja
from async_api_key.propagation import change_feed
from tests.support.reliability_urls import urlpatterns as reliability_urlpatterns
from tests.support.testapp.models import OrganizationAPIKey

organization_api = NinjaAPI(urls_namespace="async_api_key_propagation")


@organization_api.get("/plain", auth=ninja.APIKeyAuth(model=OrganizationAPIKey))
async def organization_plain(request: HttpRequest) -> dict[str, Any]:
    return {"key": request.auth.prefix}  # type: ignore[attr-defined]


class HasOrganizationAPIKey(drf.BaseHasAPIKey):
    model = OrganizationAPIKey


class OrganizationDRFPlain(APIView):
    permission_classes = [HasOrganizationAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


def propagation_stats(request: HttpRequest) -> JsonResponse:
    """This process's change-feed counters, and whether its push listener holds a connection.
    It verifies no key, so reading it changes none of them."""
    return JsonResponse(
        {
            "pid": os.getpid(),
            "reads": change_feed.reads,
            "failed_reads": change_feed.failed_reads,
            "notifications": change_feed.notifications,
            "listening": change_feed.is_listening("default"),
        }
    )


urlpatterns: list[URLPattern | URLResolver] = [
    *reliability_urlpatterns,
    path("org/ninja/", organization_api.urls),
    path("org/drf/plain", OrganizationDRFPlain.as_view()),
    path("admin/", admin.site.urls),
    path("propagation/stats", propagation_stats),
]
