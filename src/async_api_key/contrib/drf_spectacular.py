"""drf-spectacular support: :class:`~async_api_key.drf.APIKeyAuthentication` in OpenAPI schemas.

Import this module once (for example in an ``AppConfig.ready()``) so drf-spectacular registers
the extension. Each authentication class becomes a security scheme named after it, describing
every way the server accepts a key: ``Authorization: <keyword> <key>`` and, when configured,
the ``ASYNC_API_KEY["HEADER"]`` header; or only the ``API_KEY_CUSTOM_HEADER`` header. Under
OpenAPI 3.1 the security requirement also lists the scopes the view's permissions require.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from rest_framework.permissions import AND

from async_api_key.conf import api_key_settings
from async_api_key.drf import APIKeyAuthentication, HasScopes

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

__all__ = [
    "APIKeyAuthenticationScheme",
]


# drf-spectacular's registration hooks carry no annotations.
class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Describes :class:`~async_api_key.drf.APIKeyAuthentication` and its subclasses."""

    target_class = "async_api_key.drf.APIKeyAuthentication"
    match_subclasses = True

    def __init__(self, target: APIKeyAuthentication) -> None:
        super().__init__(target)  # type: ignore[no-untyped-call]
        # One scheme per authentication class: a subclass with another keyword or key model
        # must not collapse into the base class's scheme.
        base_name = type(target).__name__
        self._definitions = _definitions(target)
        self.name = [
            base_name if index == 0 else f"{base_name}Header"
            for index in range(len(self._definitions))
        ]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return self._definitions

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list[Any]]]:
        scopes = _required_scopes(auto_schema) if _lists_scopes() else []
        # Alternatives: any one of the ways of sending the key will do.
        return [{name: list(scopes)} for name in self.name]


def _definitions(target: APIKeyAuthentication) -> list[dict[str, Any]]:
    custom_meta_name = api_key_settings.custom_header_meta_name
    if custom_meta_name is not None:
        return [_header_definition(_header_from_meta_name(custom_meta_name))]
    keyword = target.key_parser.keyword
    definitions: list[dict[str, Any]] = [
        {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f'API key sent as "Authorization: {keyword} <key>".',
        }
    ]
    if api_key_settings.header:
        definitions.append(_header_definition(api_key_settings.header))
    return definitions


def _header_definition(header: str) -> dict[str, Any]:
    return {
        "type": "apiKey",
        "in": "header",
        "name": header,
        "description": f'API key sent as "{header}: <key>".',
    }


def _header_from_meta_name(meta_name: str) -> str:
    """``HTTP_X_API_KEY`` -> ``X-Api-Key`` (header names are case-insensitive)."""
    name = meta_name.removeprefix("HTTP_")
    return "-".join(part.capitalize() for part in name.split("_"))


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
