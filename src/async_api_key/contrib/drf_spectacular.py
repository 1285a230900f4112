"""drf-spectacular support: :class:`~async_api_key.drf.APIKeyAuthentication` in OpenAPI schemas.

Import this module once (for example in an ``AppConfig.ready()``) so drf-spectacular registers
the extension. Authentication classes that read keys of one model from one
:class:`~async_api_key.headers.KeySource` share one ``apiKey`` security scheme, the one the
Ninja adapter documents, so Swagger's "Authorize" asks for the key once. Under OpenAPI 3.1
each operation's security requirement lists the scopes the view's permissions require; with
:class:`APIKeyAutoSchema` as the schema class, each operation's description says them too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import spectacular_settings
from rest_framework.permissions import AND

from async_api_key.drf import APIKeyAuthentication, HasScopes
from async_api_key.headers import describe_required_scopes
from async_api_key.models import APIKey

__all__ = [
    "APIKeyAuthenticationScheme",
    "APIKeyAutoSchema",
]


# drf-spectacular's registration hooks carry no annotations.
class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Describes :class:`~async_api_key.drf.APIKeyAuthentication` and its subclasses."""

    target_class = "async_api_key.drf.APIKeyAuthentication"
    match_subclasses = True

    def __init__(self, target: APIKeyAuthentication) -> None:
        super().__init__(target)  # type: ignore[no-untyped-call]
        source = target.key_parser.key_source
        model_label = None if target.model is APIKey else target.model._meta.label
        self._definition = source.openapi_scheme(model_label)
        # Named after what it describes, not after the class: a subclass that only changes,
        # say, get_user() reads the same keys and shares the scheme.
        self._scheme_name = source.scheme_name("APIKeyAuthentication", model_label)
        self.name = self._scheme_name

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return self._definition

    def get_security_requirement(self, auto_schema: AutoSchema) -> dict[str, list[str]]:
        scopes = _required_scopes(auto_schema) if _lists_scopes() else []
        return {self._scheme_name: scopes}


class APIKeyAutoSchema(AutoSchema):
    """drf-spectacular's ``AutoSchema``, plus the scopes an operation requires in its description.

    Set it as ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` (or mix it into your own schema class).
    OpenAPI 3.0 has no other place for them: its security requirements list scopes only for
    OAuth2 schemes.
    """

    # drf-spectacular overrides DRF's get_description(path, method) the same way.
    def get_description(self) -> str:  # type: ignore[override]
        description: str = super().get_description()
        scopes = _required_scopes(self)
        if not scopes:
            return description
        sentence = describe_required_scopes([("", scopes)])
        return f"{description}\n\n{sentence}" if description else sentence


def _lists_scopes() -> bool:
    # OpenAPI 3.0 allows scopes in a requirement only for OAuth2 and OpenID Connect schemes.
    return str(spectacular_settings.OAS_VERSION).startswith("3.1")


def _required_scopes(auto_schema: AutoSchema) -> list[str]:
    view = auto_schema.view
    scopes: dict[str, None] = {}
    for permission in _required_permissions(view.get_permissions()):
        if isinstance(permission, HasScopes):
            try:
                scopes.update(dict.fromkeys(permission.get_required_scopes(view.request, view)))
            except ImproperlyConfigured:
                continue
    return list(scopes)


def _required_permissions(permissions: Any) -> Iterator[Any]:
    """The permissions that must all pass: the view's own and both sides of each ``&``."""
    for permission in permissions:
        if isinstance(permission, AND):
            yield from _required_permissions([permission.op1, permission.op2])  # type: ignore[attr-defined]
        else:
            yield permission
