"""The drf-spectacular extension: API key authentication shows up in generated schemas."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema

import async_api_key.contrib.drf_spectacular  # noqa: F401  (registers the extension)
from tests import drf_views

SPECTACULAR = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

PATTERNS = [
    path("authenticated/", drf_views.AuthenticatedView.as_view()),
    path("bearer/", drf_views.BearerView.as_view()),
    path("orders/", drf_views.OrderListView.as_view()),
    path("key-with-scope/", drf_views.KeyWithScopeView.as_view()),
    path("key-or-user/", drf_views.KeyOrUserView.as_view()),
]

AUTHORIZATION_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": 'API key sent as "Authorization: Api-Key <key>".',
}
HEADER_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-API-Key",
    "description": 'API key sent as "X-API-Key: <key>".',
}


def _schema(oas_version: str = "3.0.3") -> dict[str, Any]:
    with (
        override_settings(REST_FRAMEWORK=SPECTACULAR),
        patched_settings({"OAS_VERSION": oas_version}),
    ):
        generator = SchemaGenerator(patterns=PATTERNS)  # type: ignore[no-untyped-call]
        schema: dict[str, Any] = generator.get_schema(  # type: ignore[no-untyped-call]
            request=None, public=True
        )
    return schema


def test_scheme_describes_both_ways_of_sending_a_key() -> None:
    schemes = _schema()["components"]["securitySchemes"]
    assert schemes["APIKeyAuthentication"] == AUTHORIZATION_SCHEME
    assert schemes["APIKeyAuthenticationHeader"] == HEADER_SCHEME


def test_operation_accepts_either_way() -> None:
    operation = _schema()["paths"]["/authenticated/"]["get"]
    assert operation["security"] == [
        {"APIKeyAuthentication": []},
        {"APIKeyAuthenticationHeader": []},
    ]


def test_subclass_with_another_keyword_gets_its_own_scheme() -> None:
    schema = _schema()
    bearer = schema["components"]["securitySchemes"]["BearerAuthentication"]
    assert bearer["description"] == 'API key sent as "Authorization: Bearer <key>".'
    assert {"BearerAuthentication": []} in schema["paths"]["/bearer/"]["get"]["security"]


def test_other_authenticators_of_the_view_stay_alternatives() -> None:
    security = _schema()["paths"]["/key-or-user/"]["get"]["security"]
    assert {"APIKeyAuthentication": []} in security
    assert {"cookieAuth": []} in security


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM_KEY")
def test_custom_header_setting_is_the_only_scheme() -> None:
    schemes = _schema()["components"]["securitySchemes"]
    assert schemes["APIKeyAuthentication"]["name"] == "X-Custom-Key"
    assert "APIKeyAuthenticationHeader" not in schemes


def test_openapi_3_0_schema_is_valid_and_lists_no_scopes() -> None:
    schema = _schema()
    validate_schema(schema)  # type: ignore[no-untyped-call]
    assert schema["paths"]["/orders/"]["get"]["security"][0] == {"APIKeyAuthentication": []}


@pytest.mark.parametrize("url", ["/orders/", "/key-with-scope/"])
def test_openapi_3_1_requirement_lists_the_required_scopes(url: str) -> None:
    security = _schema("3.1.0")["paths"][url]["get"]["security"]
    assert security[0] == {"APIKeyAuthentication": ["orders:read"]}
