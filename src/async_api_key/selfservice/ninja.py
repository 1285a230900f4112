"""Self-service key management as a Django-Ninja ``Router`` (async operations)::

    policy = SelfServicePolicy(model=UserAPIKey, owner_field="user")
    api.add_router("/keys", APIKeyRouter(policy))

=======  ==========================  ======================================================
method   path                        answer
=======  ==========================  ======================================================
GET      ``/keys``                   200: the owner's keys
POST     ``/keys``                   201: ``{"key", "api_key"}``, the raw key shown once
GET      ``/keys/{prefix}``          200: one key
PATCH    ``/keys/{prefix}``          200: the key, renamed or with new scopes
POST     ``/keys/{prefix}/rotate``   201: ``{"key", "api_key", "replaced"}``
POST     ``/keys/{prefix}/revoke``   200: the revoked key
=======  ==========================  ======================================================

By default only a signed-in user may call it (:class:`SessionAuth`: Django's session, with
Django's CSRF check). Pass ``auth=`` for other ways in; a request authenticated with an API
key must hold the policy's scopes (``keys:read``, ``keys:write``). Refusals are the same
status and body as the DRF viewset's (see :mod:`async_api_key.selfservice.core`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Field, Router, Schema
from ninja.constants import NOT_SET
from ninja.security.apikey import APIKeyCookie

try:  # django-ninja >= 1.6 deprecates returning a (status, body) tuple
    from ninja import Status as _Status
except ImportError:  # pragma: no cover - older django-ninja
    _Status = None  # type: ignore[assignment,misc]

from async_api_key.selfservice import core
from async_api_key.selfservice.core import (
    OPERATION_DOCS,
    READ,
    WRITE,
    SelfServiceError,
    SelfServicePolicy,
)

__all__ = [
    "APIKeyRouter",
    "CreatedKeyOut",
    "ErrorOut",
    "KeyCreateIn",
    "KeyOut",
    "KeyRotateIn",
    "KeyUpdateIn",
    "RotatedKeyOut",
    "SessionAuth",
]

#: The raw key must not be kept by a browser's or a proxy's cache.
NO_STORE: Final = "no-store"


class SessionAuth(APIKeyCookie):
    """The signed-in user of Django's session; unsafe methods pass Django's CSRF check.

    Ninja's ``django_auth``, but asynchronous: the session and the user are loaded off the
    event loop on every django-ninja version the library supports.
    """

    def __init__(self, csrf: bool = True) -> None:
        # Read here, not on the class: a project's SESSION_COOKIE_NAME is known by now.
        self.param_name = settings.SESSION_COOKIE_NAME
        super().__init__(csrf=csrf)

    async def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        auser = getattr(request, "auser", None)
        if inspect.iscoroutinefunction(auser):  # Django >= 5.0 (a test client's stand-in not)
            user = await auser()
            return user if user.is_authenticated else None
        return await sync_to_async(_signed_in_user)(request)


def _signed_in_user(request: HttpRequest) -> Any:
    user = request.user  # loads the session and the user: a query, so off the event loop
    return user if user.is_authenticated else None


# Schemas: what the operations take and give, for Ninja's OpenAPI schema. The rules that
# check the input are in core, shared with DRF: a bad request is a 400 naming each field.


class KeyOut(Schema):
    prefix: str = Field(description="The key's public lookup id; it names the key in URLs.")
    name: str
    scopes: list[str]
    status: str = Field(description="active, expired or revoked")
    created: datetime
    expiry_date: datetime | None
    last_used_at: datetime | None = Field(description="Approximate.")
    revoked_at: datetime | None
    rotated_from: str | None = Field(description="The prefix of the key this one replaced.")


class CreatedKeyOut(Schema):
    key: str = Field(description="The API key itself. It is shown once: store it now.")
    api_key: KeyOut


class RotatedKeyOut(CreatedKeyOut):
    replaced: KeyOut = Field(description="The old key, with the end of its grace period.")


class ErrorOut(Schema):
    detail: str
    code: str
    errors: dict[str, list[str]] | None = Field(None, description="400: the error(s) per field.")
    scopes: list[str] | None = Field(None, description="403: the scopes that cannot be granted.")
    missing_scopes: list[str] | None = Field(None, description="403: scopes the API key lacks.")
    limit: int | None = Field(None, description="409: the most active keys allowed.")


class KeyCreateIn(Schema):
    name: str = Field(max_length=50)
    scopes: list[str] = Field(default_factory=list, description="Within the scopes you may grant.")
    expiry_date: datetime | None = Field(
        None, description="Required when the project requires expiry; at most its lifetime."
    )


class KeyUpdateIn(Schema):
    name: str | None = Field(None, max_length=50)
    scopes: list[str] | None = None


class KeyRotateIn(Schema):
    grace_period: int = Field(
        0, ge=0, description="Seconds the old key keeps working (at most the project's limit)."
    )


def _body(schema: type[Schema], required: bool) -> dict[str, Any]:
    return {
        "requestBody": {
            "content": {"application/json": {"schema": schema.model_json_schema()}},
            "required": required,
        }
    }


_ERRORS: Final = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut}

#: An operation of core, given the caller and the request's JSON object.
_Operation = Callable[[core.Caller, dict[str, Any]], Any]


class APIKeyRouter(Router):
    """The self-service operations for ``policy``, to mount with ``api.add_router()``.

    ``auth`` defaults to :class:`SessionAuth`; ``name`` prefixes operation ids and URL names
    (mount two routers for two key models with two names).
    """

    def __init__(
        self,
        policy: SelfServicePolicy[Any],
        *,
        auth: Any = NOT_SET,
        tags: list[str] | None = None,
        name: str = "api_keys",
    ) -> None:
        super().__init__(auth=SessionAuth() if auth is NOT_SET else auth, tags=tags or ["API keys"])
        self.policy = policy
        self._add_operations(name)

    async def _answer(
        self,
        request: HttpRequest,
        action: str,
        operation: _Operation,
        *,
        status: int = 200,
        reads_body: bool = False,
    ) -> Any:
        """Resolve the caller, read the body and run the operation, in one thread hop."""
        principal = request.auth  # type: ignore[attr-defined]

        def work() -> Any:
            caller = core.resolve_caller(self.policy, request, principal, action)
            # The header from META: django-ninja < 1.7's test client passes a stand-in request.
            data = (
                core.parse_json_body(request.META.get("CONTENT_TYPE"), request.body)
                if reads_body
                else {}
            )
            return operation(caller, data)

        try:
            body = await sync_to_async(work)()
        except SelfServiceError as refusal:
            return JsonResponse(refusal.body(), status=refusal.status_code)
        return (status, body) if _Status is None else _Status(status, body)

    def _add_operations(self, name: str) -> None:
        policy = self.policy

        @self.get(
            "",
            response={200: list[KeyOut], **_ERRORS},
            summary=OPERATION_DOCS["list"][0],
            description=OPERATION_DOCS["list"][1],
            operation_id=f"{name}_list",
            url_name=f"{name}-list",
        )
        async def list_keys(request: HttpRequest) -> Any:
            return await self._answer(
                request, READ, lambda caller, data: core.list_keys(policy, caller)
            )

        @self.post(
            "",
            response={201: CreatedKeyOut, **_ERRORS},
            summary=OPERATION_DOCS["create"][0],
            description=OPERATION_DOCS["create"][1],
            operation_id=f"{name}_create",
            openapi_extra=_body(KeyCreateIn, required=True),
        )
        async def create_key(request: HttpRequest, response: HttpResponse) -> Any:
            response["Cache-Control"] = NO_STORE
            return await self._answer(
                request,
                WRITE,
                lambda caller, data: core.create_key(policy, caller, data),
                status=201,
                reads_body=True,
            )

        @self.get(
            "/{prefix}",
            response={200: KeyOut, **_ERRORS},
            summary=OPERATION_DOCS["retrieve"][0],
            description=OPERATION_DOCS["retrieve"][1],
            operation_id=f"{name}_retrieve",
            url_name=f"{name}-detail",
        )
        async def get_key(request: HttpRequest, prefix: str) -> Any:
            return await self._answer(
                request, READ, lambda caller, data: core.get_key(policy, caller, prefix)
            )

        @self.patch(
            "/{prefix}",
            response={200: KeyOut, **_ERRORS},
            summary=OPERATION_DOCS["update"][0],
            description=OPERATION_DOCS["update"][1],
            operation_id=f"{name}_update",
            openapi_extra=_body(KeyUpdateIn, required=True),
        )
        async def update_key(request: HttpRequest, prefix: str) -> Any:
            return await self._answer(
                request,
                WRITE,
                lambda caller, data: core.update_key(policy, caller, prefix, data),
                reads_body=True,
            )

        @self.post(
            "/{prefix}/rotate",
            response={201: RotatedKeyOut, **_ERRORS},
            summary=OPERATION_DOCS["rotate"][0],
            description=OPERATION_DOCS["rotate"][1],
            operation_id=f"{name}_rotate",
            url_name=f"{name}-rotate",
            openapi_extra=_body(KeyRotateIn, required=False),
        )
        async def rotate_key(request: HttpRequest, prefix: str, response: HttpResponse) -> Any:
            response["Cache-Control"] = NO_STORE
            return await self._answer(
                request,
                WRITE,
                lambda caller, data: core.rotate_key(policy, caller, prefix, data),
                status=201,
                reads_body=True,
            )

        @self.post(
            "/{prefix}/revoke",
            response={200: KeyOut, **_ERRORS},
            summary=OPERATION_DOCS["revoke"][0],
            description=OPERATION_DOCS["revoke"][1],
            operation_id=f"{name}_revoke",
            url_name=f"{name}-revoke",
        )
        async def revoke_key(request: HttpRequest, prefix: str) -> Any:
            return await self._answer(
                request, WRITE, lambda caller, data: core.revoke_key(policy, caller, prefix)
            )
