"""The endpoints measured over HTTP: each framework's open endpoint and its protected twins.

Every endpoint answers the same small JSON body; only its protection differs:

- Ninja (async operations): open, ``APIKeyAuth``, and the upstream manager wrapped in
  ``sync_to_async`` (what a Ninja user of djangorestframework-api-key writes today);
- DRF (sync views): open, our ``HasAPIKey`` alone and with ``APIKeyAuthentication``,
  upstream's ``HasAPIKey``, and a floor: the least that any verification cache which gives
  each request a key object of its own can cost (:class:`FloorPermission`).

Every client sends ``Authorization: Api-Key <key>``, the header both libraries read.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.db.models.base import ModelState
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from ninja.security import APIKeyHeader
from rest_framework import permissions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.models import APIKey as UpstreamAPIKey
from rest_framework_api_key.permissions import HasAPIKey as UpstreamHasAPIKey

from async_api_key.drf import APIKeyAuthentication, HasAPIKey
from async_api_key.models import APIKey
from async_api_key.ninja import APIKeyAuth
from async_api_key.verification import get_verifier

BODY = {"ok": True}


class UpstreamManagerAuth(APIKeyHeader):
    """A Ninja auth over djangorestframework-api-key: its sync manager behind one thread hop."""

    param_name = "Authorization"

    async def authenticate(self, request: HttpRequest, key: str | None) -> str | None:
        scheme, _, raw_key = (key or "").partition(" ")
        if scheme.lower() != "api-key" or not raw_key:
            return None
        if await sync_to_async(UpstreamAPIKey.objects.is_valid)(raw_key):
            return raw_key
        return None


api = NinjaAPI(title="benchmarks", urls_namespace="bench-ninja")


@api.get("/open")
async def ninja_open(request: HttpRequest) -> dict[str, bool]:
    return BODY


@api.get("/ours", auth=APIKeyAuth())
async def ninja_ours(request: HttpRequest) -> dict[str, bool]:
    return BODY


@api.get("/upstream", auth=UpstreamManagerAuth())
async def ninja_upstream(request: HttpRequest) -> dict[str, bool]:
    return BODY


class OpenView(APIView):
    authentication_classes: ClassVar[list[type[BaseAuthentication]]] = []
    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        return Response(BODY)


class OursView(OpenView):
    authentication_classes: ClassVar[list[type[BaseAuthentication]]] = [APIKeyAuthentication]
    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [HasAPIKey]


class OursPermissionView(OpenView):
    """Our ``HasAPIKey`` alone: what a djangorestframework-api-key user has after migrating."""

    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [HasAPIKey]


class UpstreamView(OpenView):
    permission_classes: ClassVar[list[Any]] = [UpstreamHasAPIKey]


class FloorPermission(permissions.BasePermission):
    """A reference, not a protection: the least a cached verification can cost when each
    request gets a key object of its own, as ours does (no request may change what another
    sees).

    One SHA-256 of the header, one dictionary lookup, and a new ``APIKey`` instance built
    from the cached field values with fresh lists; no settings, freshness, expiry, policy,
    signals or per-request memo. The first request with a header reads the key from the
    database; nothing is ever invalidated.
    """

    known: ClassVar[dict[bytes, dict[str, Any]]] = {}

    def has_permission(self, request: Request, view: APIView) -> bool:
        header = request._request.META.get("HTTP_AUTHORIZATION", "")
        digest = hashlib.sha256(header.encode()).digest()
        values = self.known.get(digest)
        if values is None:
            found = get_verifier(APIKey).verify(header.partition(" ")[2]).api_key
            if found is None:
                return False
            values = {
                field.attname: getattr(found, field.attname)
                for field in APIKey._meta.concrete_fields
            }
            self.known[digest] = values
        api_key = APIKey.__new__(APIKey)
        attributes = api_key.__dict__
        attributes.update(values)
        attributes["scopes"] = list(values["scopes"])
        attributes["allowed_networks"] = list(values["allowed_networks"])
        state = ModelState()
        state.adding = False
        state.db = "default"
        attributes["_state"] = state
        request._request.floor_key = api_key  # kept for the request, as a memo would be
        return True


class FloorView(OpenView):
    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [FloorPermission]


urlpatterns: list[URLPattern | URLResolver] = [
    path("ninja/", api.urls),
    path("drf/open", OpenView.as_view()),
    path("drf/ours", OursView.as_view()),
    path("drf/ours-permission", OursPermissionView.as_view()),
    path("drf/upstream", UpstreamView.as_view()),
    path("drf/floor", FloorView.as_view()),
]
