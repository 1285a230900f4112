"""Self-service key management as a Django REST framework ``ViewSet`` (sync)::

    class MyAPIKeys(APIKeyViewSet):
        policy = SelfServicePolicy(model=UserAPIKey, owner_field="user")

    router = DefaultRouter()
    router.register("keys", MyAPIKeys, basename="api-key")

It answers as the Ninja router does (:mod:`async_api_key.selfservice.ninja`), from the same
rules: ``GET keys/``, ``POST keys/`` (201, the raw key once), ``GET keys/{prefix}/``,
``PATCH keys/{prefix}/``, ``POST keys/{prefix}/rotate/`` (201) and
``POST keys/{prefix}/revoke/``. The project's ``DEFAULT_AUTHENTICATION_CLASSES`` decide who
is signed in (DRF's ``SessionAuthentication`` checks CSRF); add
:class:`~async_api_key.drf.APIKeyAuthentication` (for the policy's model) to let keys that
hold the policy's scopes call it too. With drf-spectacular installed, every operation is
described in its schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.util import find_spec
from typing import Any, ClassVar, Final

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from async_api_key.models import AbstractAPIKey
from async_api_key.selfservice import core
from async_api_key.selfservice.core import (
    OPERATION_DOCS,
    READ,
    WRITE,
    InvalidInput,
    SelfServiceError,
    SelfServicePolicy,
    UnsupportedBody,
)

__all__ = [
    "APIKeyViewSet",
    "CreatedKeySerializer",
    "ErrorSerializer",
    "IsUserOrAPIKey",
    "JSONBodies",
    "KeyCreateSerializer",
    "KeyRotateSerializer",
    "KeySerializer",
    "KeyUpdateSerializer",
    "RotatedKeySerializer",
]

NO_STORE: Final = "no-store"


class JSONBodies(DefaultContentNegotiation):
    """Reads a body sent without a ``Content-Type`` as JSON, as the Ninja router does."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        parsers = list(parsers)
        if core.is_json_media_type(request.content_type):
            return next((parser for parser in parsers if isinstance(parser, JSONParser)), None)
        return super().select_parser(request, parsers)


class IsUserOrAPIKey(permissions.BasePermission):
    """Allows a signed-in user, or a request authenticated with an API key."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, AbstractAPIKey):
            return True
        return bool(request.user and request.user.is_authenticated)


# Serializers describe the bodies for schema generators; core checks the input.


class KeySerializer(serializers.Serializer[Any]):
    prefix = serializers.CharField(
        help_text="The key's public lookup id; it names the key in URLs."
    )
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="active, expired or revoked")
    created = serializers.DateTimeField()
    expiry_date = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Approximate.")
    revoked_at = serializers.DateTimeField(allow_null=True)
    rotated_from = serializers.CharField(
        allow_null=True, help_text="The prefix of the key this one replaced."
    )


class CreatedKeySerializer(serializers.Serializer[Any]):
    key = serializers.CharField(help_text="The API key itself. It is shown once: store it now.")
    api_key = KeySerializer()


class RotatedKeySerializer(CreatedKeySerializer):
    replaced = KeySerializer(help_text="The old key, with the end of its grace period.")


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    code = serializers.CharField()
    # A declared field, which DRF's metaclass takes off the class: it does not hide
    # Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="400: the error(s) per field.",
    )
    scopes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="403: the scopes that cannot be granted.",
    )
    missing_scopes = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="403: scopes the API key lacks."
    )
    limit = serializers.IntegerField(required=False, help_text="409: the most active keys allowed.")


class KeyCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=50)
    scopes = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Within the scopes you may grant."
    )
    expiry_date = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="Required when the project requires expiry; at most its lifetime.",
    )


class KeyUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=50, required=False)
    scopes = serializers.ListField(child=serializers.CharField(), required=False)


class KeyRotateSerializer(serializers.Serializer[Any]):
    grace_period = serializers.IntegerField(
        min_value=0,
        required=False,
        help_text="Seconds the old key keeps working (at most the project's limit).",
    )


class APIKeyViewSet(viewsets.ViewSet):
    """List, create, edit, rotate and revoke the keys of the caller's owner.

    Set ``policy`` on a subclass. Keys are named by their prefix (``lookup_field``).
    """

    policy: ClassVar[SelfServicePolicy[Any] | None] = None
    permission_classes: ClassVar[list[type[permissions.BasePermission]]] = [IsUserOrAPIKey]  # type: ignore[misc]
    parser_classes: ClassVar[list[type[JSONParser]]] = [JSONParser]  # type: ignore[misc]
    content_negotiation_class = JSONBodies
    lookup_field = "prefix"
    lookup_value_regex = "[^/]+"

    def list(self, request: Request) -> Response:
        return self._answer(request, READ, lambda caller: core.list_keys(self._policy(), caller))

    def create(self, request: Request) -> Response:
        return self._answer(
            request,
            WRITE,
            lambda caller: core.create_key(self._policy(), caller, self._data(request)),
            status.HTTP_201_CREATED,
        )

    def retrieve(self, request: Request, prefix: str) -> Response:
        return self._answer(
            request, READ, lambda caller: core.get_key(self._policy(), caller, prefix)
        )

    def partial_update(self, request: Request, prefix: str) -> Response:
        return self._answer(
            request,
            WRITE,
            lambda caller: core.update_key(self._policy(), caller, prefix, self._data(request)),
        )

    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, prefix: str) -> Response:
        return self._answer(
            request,
            WRITE,
            lambda caller: core.rotate_key(self._policy(), caller, prefix, self._data(request)),
            status.HTTP_201_CREATED,
        )

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, prefix: str) -> Response:
        return self._answer(
            request, WRITE, lambda caller: core.revoke_key(self._policy(), caller, prefix)
        )

    # The one path of every operation.

    def _policy(self) -> SelfServicePolicy[Any]:
        if self.policy is None:
            raise ImproperlyConfigured(f"{type(self).__name__} must set `policy`.")
        return self.policy

    def _answer(
        self,
        request: Request,
        kind: str,
        operation: Callable[[core.Caller], Any],
        success: int = status.HTTP_200_OK,
    ) -> Response:
        principal = request.auth if isinstance(request.auth, AbstractAPIKey) else request.user
        caller = core.resolve_caller(self._policy(), request, principal, kind)
        response = Response(operation(caller), status=success)
        if success == status.HTTP_201_CREATED:
            response["Cache-Control"] = NO_STORE
        return response

    @staticmethod
    def _data(request: Request) -> dict[str, Any]:
        return core.require_object(request.data)

    def handle_exception(self, exc: Exception) -> Response:
        # The refusals of core, and DRF's own body errors, in core's words: the same status
        # and body as the Ninja router's.
        if isinstance(exc, (exceptions.ParseError, RecursionError)):
            exc = InvalidInput({}, "The request body is not valid JSON.")
        elif isinstance(exc, exceptions.UnsupportedMediaType):
            exc = UnsupportedBody()
        if isinstance(exc, SelfServiceError):
            return Response(exc.body(), status=exc.status_code)
        return super().handle_exception(exc)


if find_spec("drf_spectacular") is not None:
    from drf_spectacular.extensions import OpenApiViewExtension
    from drf_spectacular.utils import (
        OpenApiParameter,
        extend_schema,
        extend_schema_view,
    )

    _PREFIX = OpenApiParameter(
        "prefix", str, OpenApiParameter.PATH, description="The key's public lookup id."
    )

    def _operation(
        name: str,
        request: type[serializers.Serializer[Any]] | None,
        response: type[serializers.Serializer[Any]] | serializers.Serializer[Any],
        success: int = status.HTTP_200_OK,
        *,
        detail: bool = True,
    ) -> Any:
        errors = dict.fromkeys((400, 403, 404, 409), ErrorSerializer)
        summary, description = OPERATION_DOCS[name]
        return extend_schema(
            summary=summary,
            description=description,
            request=request,
            responses={success: response, **errors},
            tags=["API keys"],
            parameters=[_PREFIX] if detail else [],
        )

    class APIKeyViewSetSchema(OpenApiViewExtension):  # type: ignore[no-untyped-call]
        """Describes every :class:`APIKeyViewSet` in drf-spectacular's schema.

        An extension rather than ``@extend_schema`` on the methods: drf-spectacular then
        applies it with the schema class of the project's settings when it builds the schema,
        whatever the settings were when this module was imported.
        """

        target_class = APIKeyViewSet
        match_subclasses = True

        def view_replacement(self) -> type[APIKeyViewSet]:
            view: type[APIKeyViewSet] = type(self.target.__name__, (self.target,), {})
            described: type[APIKeyViewSet] = extend_schema_view(
                list=_operation("list", None, KeySerializer(many=True), detail=False),
                create=_operation(
                    "create",
                    KeyCreateSerializer,
                    CreatedKeySerializer,
                    status.HTTP_201_CREATED,
                    detail=False,
                ),
                retrieve=_operation("retrieve", None, KeySerializer),
                partial_update=_operation("update", KeyUpdateSerializer, KeySerializer),
                rotate=_operation(
                    "rotate",
                    KeyRotateSerializer,
                    RotatedKeySerializer,
                    status.HTTP_201_CREATED,
                ),
                revoke=_operation("revoke", None, KeySerializer),
            )(view)
            return described
