"""The endpoints measured over HTTP: each framework's open endpoint and its protected twins.

Every endpoint answers the same small JSON body; only its protection differs:

- Ninja (async operations): open, ``APIKeyAuth``, the upstream manager wrapped in
  ``sync_to_async`` (what a Ninja user of djangorestframework-api-key writes today), and a
  floor (:class:`FloorAuth`);
- DRF (sync views): open, our ``HasAPIKey`` alone and with ``APIKeyAuthentication``,
  upstream's ``HasAPIKey``, and a floor (:class:`FloorPermission`).

A floor endpoint is a reference, not a protection: the least that any verification cache
which gives each request a key object of its own can cost (:func:`floor_key`), with the
framework's own machinery for a protected endpoint around it.

Every client sends ``Authorization: Api-Key <key>``, the header both libraries read.

Every endpoint is found at the same cost. Django tries URL patterns in order, and each pattern
tried in vain costs a request time (about 0.4 µs in a DRF request, measured in process): with
one pattern per endpoint, an endpoint listed after the open one would pay for that position as
if it were the cost of its protection. So one pattern per framework takes the endpoint's name,
and a dictionary finds its view.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.db.models.base import ModelState
from django.http import Http404, HttpRequest, HttpResponseBase
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


class FloorAuth(APIKeyHeader):
    """:func:`floor_key` as a Ninja auth: what Ninja's own auth machinery costs, plus the least
    a cached verification can cost. Reads ``request.META`` as ``APIKeyAuth`` does (Ninja's
    ``APIKeyHeader`` would build ``request.headers``)."""

    param_name = "Authorization"

    def _get_key(self, request: HttpRequest) -> str | None:
        header: str | None = request.META.get("HTTP_AUTHORIZATION")
        return header

    async def authenticate(self, request: HttpRequest, key: str | None) -> APIKey | None:
        api_key = floor_key(key or "", False)
        if api_key is None:  # not read yet (or not a key): the database, in a thread
            api_key = await sync_to_async(floor_key)(key or "")
        return api_key


@api.get("/floor", auth=FloorAuth())
async def ninja_floor(request: HttpRequest) -> dict[str, bool]:
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


_floor_values: dict[bytes, dict[str, Any]] = {}


def floor_key(header: str, may_read: bool = True) -> APIKey | None:
    """A reference, not a protection: the least a cached verification can cost when each
    request gets a key object of its own, as ours does (no request may change what another
    sees).

    One BLAKE2b hash of the ``Authorization`` header (the hash the library's own cache
    uses), one dictionary lookup, and a new ``APIKey`` instance built from the cached field
    values with fresh lists; no settings, freshness, expiry, policy, signals or per-request
    memo. The first request with a header reads the key from the database (sync code: with
    ``may_read`` false, a header not read yet gives ``None``); nothing is ever invalidated.
    """
    digest = hashlib.blake2b(header.encode()).digest()
    values = _floor_values.get(digest)
    if values is None:
        if not may_read:
            return None
        found = get_verifier(APIKey).verify(header.partition(" ")[2]).api_key
        if found is None:
            return None
        values = {
            field.attname: getattr(found, field.attname) for field in APIKey._meta.concrete_fields
        }
        _floor_values[digest] = values
    api_key = APIKey.__new__(APIKey)
    attributes = api_key.__dict__
    attributes.update(values)
    attributes["scopes"] = list(values["scopes"])
    attributes["allowed_networks"] = list(values["allowed_networks"])
    state = ModelState()
    state.adding = False
    state.db = "default"
    attributes["_state"] = state
    return api_key


class FloorPermission(permissions.BasePermission):
    """:func:`floor_key` as a DRF permission; the key is kept for the request, as a memo is."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = floor_key(request._request.META.get("HTTP_AUTHORIZATION", ""))
        request._request.floor_key = api_key
        return api_key is not None


class FloorView(OpenView):
    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [FloorPermission]


#: Each framework's endpoints by name, each found with one dictionary lookup.
_NINJA_VIEWS: dict[str, Callable[..., Awaitable[HttpResponseBase]]] = {
    str(pattern.pattern): pattern.callback
    for pattern in api.urls[0]
    if isinstance(pattern, URLPattern)
    and str(pattern.pattern) in {"open", "ours", "upstream", "floor"}
}
_DRF_VIEWS: dict[str, Callable[[HttpRequest], HttpResponseBase]] = {
    "open": OpenView.as_view(),
    "ours": OursView.as_view(),
    "ours-permission": OursPermissionView.as_view(),
    "upstream": UpstreamView.as_view(),
    "floor": FloorView.as_view(),
}


async def ninja_endpoint(request: HttpRequest, endpoint: str) -> HttpResponseBase:
    view = _NINJA_VIEWS.get(endpoint)
    if view is None:
        raise Http404(endpoint)
    return await view(request)


def drf_endpoint(request: HttpRequest, endpoint: str) -> HttpResponseBase:
    view = _DRF_VIEWS.get(endpoint)
    if view is None:
        raise Http404(endpoint)
    return view(request)


urlpatterns: list[URLPattern | URLResolver] = [
    path("ninja/<str:endpoint>", ninja_endpoint),
    path("drf/<str:endpoint>", drf_endpoint),
]
