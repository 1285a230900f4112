"""URLs for the admin tests: the admin and one endpoint protected by an API key."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, path

from async_api_key.headers import key_from_request_meta
from async_api_key.models import APIKey
from async_api_key.verification import get_verifier


def protected(request: HttpRequest) -> JsonResponse:
    outcome = get_verifier(APIKey).verify(key_from_request_meta(request.META))
    return JsonResponse({"reason": outcome.reason.value}, status=outcome.status_code)


urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("protected/", protected),
]
