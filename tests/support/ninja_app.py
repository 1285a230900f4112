"""Ninja APIs for the adapter's tests: async and sync twins of every kind of protected endpoint.

``api`` registers the structured-refusal handler and documents scopes in its schema;
``bare_api`` does neither, to show what a project gets with no setup at all.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import NinjaAPI, Router
from ninja.security import django_auth

from async_api_key.ninja import APIKeyAuth, document_scopes, register_error_handler
from tests.support.testapp.models import Organization, OrganizationAPIKey

ORDERS_READ = APIKeyAuth(scopes=["orders:read"])
ORGANIZATION_KEY = APIKeyAuth(model=OrganizationAPIKey)
ORGANIZATION_ORDERS_READ = APIKeyAuth(model=OrganizationAPIKey, scopes=["orders:read"])
PARTNER_HEADER = APIKeyAuth(header="X-Partner-Key")

api = NinjaAPI(title="async-api-key tests", urls_namespace="async_api_key_ninja", auth=APIKeyAuth())
register_error_handler(api)
document_scopes(api)


def describe(request: HttpRequest) -> dict[str, Any]:
    """What the endpoint knows about the caller (no query: safe in async views)."""
    auth: Any = request.auth  # type: ignore[attr-defined]
    return {"auth": str(auth), "auth_type": type(auth).__name__}


def describe_organization(request: HttpRequest) -> dict[str, Any]:
    """Sync views may follow the key's foreign key to its owner."""
    key: OrganizationAPIKey = request.auth  # type: ignore[attr-defined]
    return {**describe(request), "organization": key.organization.name}


async def adescribe_organization(request: HttpRequest) -> dict[str, Any]:
    """Async views must not touch the ORM on the loop: the owner is fetched with ``aget``."""
    key: OrganizationAPIKey = request.auth  # type: ignore[attr-defined]
    organization = await Organization.objects.aget(pk=key.organization_id)
    return {**describe(request), "organization": organization.name}


@api.get("/async/whoami")
async def async_whoami(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/sync/whoami")
def sync_whoami(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/async/orders", auth=ORDERS_READ)
async def async_orders(request: HttpRequest) -> dict[str, Any]:
    """List orders."""
    return describe(request)


@api.get("/sync/orders", auth=ORDERS_READ)
def sync_orders(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/async/combined", auth=[APIKeyAuth(), django_auth])
async def async_combined(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/sync/combined", auth=[APIKeyAuth(), django_auth])
def sync_combined(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/async/partner", auth=PARTNER_HEADER)
async def async_partner(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@api.get("/open", auth=None)
async def open_endpoint(request: HttpRequest) -> dict[str, bool]:
    return {"open": True}


organizations = Router(auth=ORGANIZATION_KEY, tags=["organizations"])


@organizations.get("/async/whoami")
async def async_organization_whoami(request: HttpRequest) -> dict[str, Any]:
    return await adescribe_organization(request)


@organizations.get("/sync/whoami")
def sync_organization_whoami(request: HttpRequest) -> dict[str, Any]:
    return describe_organization(request)


@organizations.get("/async/orders", auth=ORGANIZATION_ORDERS_READ)
async def async_organization_orders(request: HttpRequest) -> dict[str, Any]:
    return await adescribe_organization(request)


@organizations.get("/sync/orders", auth=ORGANIZATION_ORDERS_READ)
def sync_organization_orders(request: HttpRequest) -> dict[str, Any]:
    return describe_organization(request)


api.add_router("/organization", organizations)


bare_api = NinjaAPI(urls_namespace="async_api_key_ninja_bare")


@bare_api.get("/async/orders", auth=ORDERS_READ)
async def bare_async_orders(request: HttpRequest) -> dict[str, Any]:
    return describe(request)


@bare_api.get("/sync/orders", auth=ORDERS_READ)
def bare_sync_orders(request: HttpRequest) -> dict[str, Any]:
    return describe(request)
