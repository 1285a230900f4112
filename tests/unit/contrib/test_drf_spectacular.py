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
from tests.support import drf_views

SPECTACULAR = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

PATTERNS = [
    path("authenticated/", drf_views.AuthenticatedView.as_view()),
    path("bearer/", drf_views.BearerView.as_view()),
    path("orders/", drf_views.OrderListView.as_view()),
    path("invoices/", drf_views.InvoiceView.as_view()),
    path("key-with-scope/", drf_views.KeyWithScopeView.as_view()),
    path("key-or-user/", drf_views.KeyOrUserView.as_view()),
    path("partner-reports/", drf_views.PartnerReportView.as_view()),
    path("organization/", drf_views.OrganizationView.as_view()),
]

API_KEY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": "X-API-Key",
    "description": (
        "Send the key in the `X-API-Key` header. `Authorization: Api-Key <key>` is accepted too."
    ),
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


def _security(schema: dict[str, Any], url: str) -> list[dict[str, list[str]]]:
    security: list[dict[str, list[str]]] = schema["paths"][url]["get"]["security"]
    return security


def test_one_scheme_describes_both_ways_of_sending_a_key() -> None:
    schema = _schema()
    assert schema["components"]["securitySchemes"]["APIKeyAuthentication"] == API_KEY_SCHEME
    assert _security(schema, "/authenticated/") == [{"APIKeyAuthentication": []}]


def test_the_scheme_is_the_one_ninja_documents() -> None:
    from async_api_key.ninja import APIKeyAuth

    assert APIKeyAuth().openapi_security_schema == API_KEY_SCHEME


def test_a_parser_with_another_keyword_gets_its_own_scheme() -> None:
    schema = _schema()
    bearer = schema["components"]["securitySchemes"]["APIKeyAuthentication_keyword.Bearer"]
    assert "`Authorization: Bearer <key>`" in bearer["description"]
    assert _security(schema, "/bearer/") == [{"APIKeyAuthentication_keyword.Bearer": []}]


def test_other_authenticators_of_the_view_stay_alternatives() -> None:
    security = _security(_schema(), "/key-or-user/")
    assert {"APIKeyAuthentication": []} in security
    assert {"cookieAuth": []} in security


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM_KEY")
def test_custom_header_setting_is_the_only_header_documented() -> None:
    scheme = _schema()["components"]["securitySchemes"]["APIKeyAuthentication"]
    assert scheme["name"] == "X-Custom-Key"
    assert scheme["description"] == "Send the key in the `X-Custom-Key` header."


def test_openapi_3_0_schema_is_valid_and_lists_no_scopes() -> None:
    schema = _schema()
    validate_schema(schema)  # type: ignore[no-untyped-call]
    assert _security(schema, "/orders/") == [{"APIKeyAuthentication": []}]


@pytest.mark.parametrize("url", ["/orders/", "/key-with-scope/"])
def test_openapi_3_1_requirement_lists_the_required_scopes(url: str) -> None:
    assert _security(_schema("3.1.0"), url) == [{"APIKeyAuthentication": ["orders:read"]}]


def test_operations_with_different_scopes_and_one_header_setup_share_one_scheme() -> None:
    schema = _schema("3.1.0")
    assert _security(schema, "/orders/") == [{"APIKeyAuthentication": ["orders:read"]}]
    assert _security(schema, "/invoices/") == [
        {"APIKeyAuthentication": ["billing:invoices:read", "billing:invoices:write"]}
    ]
    names = [scheme["name"] for scheme in schema["components"]["securitySchemes"].values()]
    assert names.count("X-API-Key") == 3  # default, Bearer keyword, organization keys


def test_two_header_setups_get_two_schemes() -> None:
    schemes = _schema("3.1.0")["components"]["securitySchemes"]
    assert schemes["APIKeyAuthentication"]["name"] == "X-API-Key"
    assert schemes["APIKeyAuthentication_header.X-Partner-Key"]["name"] == "X-Partner-Key"
    security = _security(_schema("3.1.0"), "/partner-reports/")
    assert security == [{"APIKeyAuthentication_header.X-Partner-Key": ["reports:read"]}]


def test_another_key_model_gets_its_own_scheme() -> None:
    schema = _schema()
    name = "APIKeyAuthentication_testapp.OrganizationAPIKey"
    assert (
        "`testapp.OrganizationAPIKey`"
        in schema["components"]["securitySchemes"][name]["description"]
    )
    assert _security(schema, "/organization/") == [{name: []}]


def test_openapi_3_1_schema_is_valid() -> None:
    validate_schema(_schema("3.1.0"))  # type: ignore[no-untyped-call]


def _described(url: str) -> str | None:
    with override_settings(
        REST_FRAMEWORK={
            "DEFAULT_SCHEMA_CLASS": "async_api_key.contrib.drf_spectacular.APIKeyAutoSchema"
        }
    ):
        generator = SchemaGenerator(patterns=PATTERNS)  # type: ignore[no-untyped-call]
        schema: dict[str, Any] = generator.get_schema(  # type: ignore[no-untyped-call]
            request=None, public=True
        )
    description: str | None = schema["paths"][url]["get"].get("description")
    return description


def test_the_auto_schema_says_the_required_scopes_in_the_description() -> None:
    assert _described("/orders/") == "Requires the API key scope(s): `orders:read`."
    assert _described("/invoices/") == (
        "Scopes from the view's ``required_scopes``.\n\n"
        "Requires the API key scope(s): `billing:invoices:read`, `billing:invoices:write`."
    )
    assert _described("/authenticated/") is None
