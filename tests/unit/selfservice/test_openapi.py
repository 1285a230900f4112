"""The self-service API in OpenAPI: Ninja's schema and drf-spectacular's describe the same
operations, bodies and ways in, and neither shows a key's hash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema

import async_api_key.contrib.drf_spectacular  # noqa: F401  (registers the key scheme)
from tests.support.selfservice_urls import api, router

OPERATIONS = {
    ("/keys", "get"): (200, "list"),
    ("/keys", "post"): (201, "create"),
    ("/keys/{prefix}", "get"): (200, "retrieve"),
    ("/keys/{prefix}", "patch"): (200, "update"),
    ("/keys/{prefix}/rotate", "post"): (201, "rotate"),
    ("/keys/{prefix}/revoke", "post"): (200, "revoke"),
}
KEY_FIELDS = {
    "prefix",
    "name",
    "scopes",
    "status",
    "created",
    "expiry_date",
    "last_used_at",
    "revoked_at",
    "rotated_from",
}


def ninja_schema() -> dict[str, Any]:
    """As served at ``openapi.json`` (status codes as strings)."""
    schema: dict[str, Any] = json.loads(json.dumps(api.get_openapi_schema(path_prefix="/")))
    return schema


def spectacular_schema(oas_version: str = "3.0.3") -> dict[str, Any]:
    with (
        override_settings(
            REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
        ),
        patched_settings({"OAS_VERSION": oas_version}),
    ):
        generator = SchemaGenerator(  # type: ignore[no-untyped-call]
            patterns=[path("", include(router.urls))]
        )
        schema: dict[str, Any] = generator.get_schema(  # type: ignore[no-untyped-call]
            request=None, public=True
        )
    return schema


def _resolve(schema: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        item = schema["components"]["schemas"][item["$ref"].rsplit("/", 1)[1]]
    return item


def _response_schema(schema: dict[str, Any], operation: dict[str, Any], status: int) -> Any:
    return _resolve(
        schema, operation["responses"][str(status)]["content"]["application/json"]["schema"]
    )


@pytest.mark.parametrize("variant", ["ninja", "drf"])
def test_every_operation_is_described_with_its_answers(variant: str) -> None:
    schema = ninja_schema() if variant == "ninja" else spectacular_schema()
    for (url, method), (status, _name) in OPERATIONS.items():
        path_ = url if variant == "ninja" else f"{url}/"
        operation = schema["paths"][path_][method]
        assert operation["tags"] == ["API keys"]
        assert {str(status), "400", "403", "404", "409"} <= set(operation["responses"])
        if "{prefix}" in url:
            assert [p["name"] for p in operation["parameters"]] == ["prefix"]
    assert "/keys/{prefix}" + ("" if variant == "ninja" else "/") in schema["paths"]
    put = schema["paths"]["/keys/{prefix}" + ("" if variant == "ninja" else "/")]
    assert "put" not in put
    assert "delete" not in put


@pytest.mark.parametrize("variant", ["ninja", "drf"])
def test_the_bodies_are_the_same_on_both_variants(variant: str) -> None:
    schema = ninja_schema() if variant == "ninja" else spectacular_schema()
    suffix = "" if variant == "ninja" else "/"
    listed = _response_schema(schema, schema["paths"][f"/keys{suffix}"]["get"], 200)
    assert set(_resolve(schema, listed["items"])["properties"]) == KEY_FIELDS
    created = _response_schema(schema, schema["paths"][f"/keys{suffix}"]["post"], 201)
    assert set(created["properties"]) == {"key", "api_key"}
    rotated = _response_schema(
        schema, schema["paths"][f"/keys/{{prefix}}/rotate{suffix}"]["post"], 201
    )
    assert set(rotated["properties"]) == {"key", "api_key", "replaced"}
    request = _resolve(
        schema,
        schema["paths"][f"/keys{suffix}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ],
    )
    assert set(request["properties"]) == {"name", "scopes", "expiry_date"}
    assert request["required"] == ["name"]
    assert "hashed_key" not in str(schema)


def test_ninja_documents_each_way_in() -> None:
    schema = ninja_schema()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["SessionAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    assert schema["paths"]["/keys"]["post"]["security"] == [
        {"SessionAuth": []},
        {"APIKeyAuth_selfservice_app.UserAPIKey": []},
    ]
    assert schema["paths"]["/team-keys"]["post"]["security"] == [{"SessionAuth": []}]


def test_ninja_operation_ids_are_named_per_router() -> None:
    ids = [
        operation["operationId"]
        for item in ninja_schema()["paths"].values()
        for operation in item.values()
    ]
    assert len(ids) == len(set(ids)) == 12
    assert "api_keys_create" in ids
    assert "team_keys_create" in ids


def test_drf_spectacular_documents_each_way_in() -> None:
    schema = spectacular_schema()
    security = schema["paths"]["/keys/"]["post"]["security"]
    assert {"cookieAuth": []} in security
    assert {"APIKeyAuthentication_selfservice_app.UserAPIKey": []} in security


@pytest.mark.parametrize("oas_version", ["3.0.3", "3.1.0"])
def test_the_drf_spectacular_schema_is_valid(oas_version: str) -> None:
    validate_schema(spectacular_schema(oas_version))  # type: ignore[no-untyped-call]


def test_drf_spectacular_builds_it_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    spectacular_schema()
    assert "Warning" not in capsys.readouterr().err
