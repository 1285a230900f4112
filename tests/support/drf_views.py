"""DRF views protected by the adapter, as a project would write them; sync and adrf async."""

from __future__ import annotations

from typing import Any

from adrf.views import APIView as AsyncAPIView  # type: ignore[import-untyped]
from rest_framework.authentication import (
    BaseAuthentication,
    BasicAuthentication,
    SessionAuthentication,
)
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from async_api_key.drf import (
    APIKeyAuthentication,
    BaseHasAPIKey,
    HasAPIKey,
    HasScopes,
    KeyParser,
)
from tests.support.testapp.models import OrganizationAPIKey


def _describe(request: Request) -> dict[str, Any]:
    api_key = request.auth
    return {"prefix": getattr(api_key, "prefix", None), "name": getattr(api_key, "name", None)}


class PermissionOnlyView(APIView):
    """djangorestframework-api-key style: a permission and no authentication class."""

    authentication_classes = ()
    permission_classes = (HasAPIKey,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class PermissionBehindSessionView(APIView):
    """The permission alone, behind DRF's usual authentication classes (no challenge: 403)."""

    authentication_classes: tuple[type[BaseAuthentication], ...] = (SessionAuthentication,)
    permission_classes = (HasAPIKey,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class PermissionBehindBasicView(PermissionBehindSessionView):
    """The first authentication class names a scheme: DRF answers 401 with its challenge."""

    authentication_classes = (BasicAuthentication, SessionAuthentication)


class AuthenticatedView(APIView):
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey,)

    def get(self, request: Request) -> Response:
        return Response(_describe(request))


class SessionFirstView(APIView):
    """The key's own challenge keeps a bad key a 401 even behind a scheme-less authenticator."""

    authentication_classes = (SessionAuthentication, APIKeyAuthentication)
    permission_classes = (HasAPIKey,)

    def get(self, request: Request) -> Response:
        return Response(_describe(request))


class BearerKeyParser(KeyParser):
    keyword = "Bearer"


class BearerAuthentication(APIKeyAuthentication):
    key_parser = BearerKeyParser()


class HasAPIKeyAsBearer(HasAPIKey):
    key_parser = BearerKeyParser()


class BearerView(APIView):
    authentication_classes = (BearerAuthentication,)
    permission_classes = (HasAPIKeyAsBearer,)

    def get(self, request: Request) -> Response:
        return Response(_describe(request))


PARTNER_KEY_PARSER = KeyParser(header="X-Partner-Key")


class PartnerAuthentication(APIKeyAuthentication):
    """Keys in another header: another OpenAPI scheme."""

    key_parser = PARTNER_KEY_PARSER


class PartnerHasScopes(HasScopes):
    key_parser = PARTNER_KEY_PARSER


class PartnerReportView(APIView):
    authentication_classes = (PartnerAuthentication,)
    permission_classes = (PartnerHasScopes.require("reports:read"),)

    def get(self, request: Request) -> Response:
        return Response(_describe(request))


class KeyOrUserView(APIView):
    authentication_classes = (APIKeyAuthentication, SessionAuthentication)
    permission_classes = (HasAPIKey | IsAuthenticated,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class KeyWithScopeView(APIView):
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey & HasScopes.require("orders:read"),)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class WithoutKeyView(APIView):
    authentication_classes = ()
    permission_classes = (~HasAPIKey,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class HasOrganizationAPIKey(BaseHasAPIKey):
    model = OrganizationAPIKey


class OrganizationAPIKeyAuthentication(APIKeyAuthentication):
    model = OrganizationAPIKey


class OrganizationView(APIView):
    authentication_classes = (OrganizationAPIKeyAuthentication,)
    permission_classes = (HasOrganizationAPIKey,)

    def get(self, request: Request) -> Response:
        assert isinstance(request.auth, OrganizationAPIKey)
        return Response({"organization": request.auth.organization.name})


class OrderListView(APIView):
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasScopes.require("orders:read"),)

    def get(self, request: Request) -> Response:
        return Response(_describe(request))


class InvoiceView(APIView):
    """Scopes from the view's ``required_scopes``."""

    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasScopes,)
    required_scopes = ("billing:invoices:read", "billing:invoices:write")

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class ScopesForgottenView(APIView):
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasScopes,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class OrganizationHasScopes(HasScopes):
    model = OrganizationAPIKey


class OrganizationReportView(APIView):
    authentication_classes = (OrganizationAPIKeyAuthentication,)
    permission_classes = (OrganizationHasScopes.require("reports:read"),)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AsyncAuthenticatedView(AsyncAPIView):  # type: ignore[misc]
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey,)

    async def get(self, request: Request) -> Response:
        return Response(_describe(request))


class AsyncPermissionOnlyView(AsyncAPIView):  # type: ignore[misc]
    authentication_classes = ()
    permission_classes = (HasAPIKey,)

    async def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AsyncOrderListView(AsyncAPIView):  # type: ignore[misc]
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey & HasScopes.require("orders:read"),)

    async def get(self, request: Request) -> Response:
        return Response(_describe(request))


class AsyncKeyOrUserView(AsyncAPIView):  # type: ignore[misc]
    authentication_classes = (APIKeyAuthentication, SessionAuthentication)
    permission_classes = (HasAPIKey | IsAuthenticated,)

    async def get(self, request: Request) -> Response:
        return Response({"ok": True})


class AsyncOrganizationView(AsyncAPIView):  # type: ignore[misc]
    authentication_classes = (OrganizationAPIKeyAuthentication,)
    permission_classes = (HasOrganizationAPIKey,)

    async def get(self, request: Request) -> Response:
        # The key and its owner were loaded by the authentication class, in adrf's worker thread.
        assert isinstance(request.auth, OrganizationAPIKey)
        return Response({"organization_id": request.auth.organization_id})
