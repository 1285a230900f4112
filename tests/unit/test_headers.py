"""Where a key comes from: the one key source both adapters, error reports and schemas share."""

from __future__ import annotations

import pytest
from django.test import override_settings

from async_api_key.headers import (
    KeySource,
    header_meta_name,
    key_from_authorization,
    key_from_header,
    key_from_request_meta,
)

KEY = "ak_abcdefghijkl_" + "x" * 38


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({}, None),
        ({"HTTP_AUTHORIZATION": f"Api-Key {KEY}"}, KEY),
        ({"HTTP_AUTHORIZATION": f"api-key {KEY}"}, KEY),
        ({"HTTP_AUTHORIZATION": f"API-KEY   {KEY}  "}, KEY),
        ({"HTTP_AUTHORIZATION": f"Bearer {KEY}"}, None),
        ({"HTTP_AUTHORIZATION": "Api-Key"}, None),
        ({"HTTP_AUTHORIZATION": "Api-Key "}, ""),
        ({"HTTP_X_API_KEY": KEY}, KEY),
        ({"HTTP_X_API_KEY": f" {KEY} "}, KEY),
        ({"HTTP_X_API_KEY": ""}, ""),
        ({"HTTP_AUTHORIZATION": f"Api-Key {KEY}", "HTTP_X_API_KEY": "other"}, KEY),
        ({"HTTP_AUTHORIZATION": "Bearer jwt", "HTTP_X_API_KEY": KEY}, KEY),
        ({"HTTP_AUTHORIZATION": 42}, None),
    ],
)
def test_key_is_read_from_authorization_or_the_api_key_header(
    meta: dict[str, object], expected: str | None
) -> None:
    assert key_from_request_meta(meta) == expected


def test_keyword_and_header_follow_settings() -> None:
    meta = {"HTTP_AUTHORIZATION": f"Bearer {KEY}", "HTTP_X_PARTNER_KEY": "p"}
    with override_settings(ASYNC_API_KEY={"KEYWORD": "Bearer", "HEADER": "X-Partner-Key"}):
        assert key_from_request_meta(meta) == KEY
        assert key_from_request_meta({"HTTP_X_PARTNER_KEY": "p"}) == "p"
    with override_settings(ASYNC_API_KEY={"HEADER": None}):
        assert key_from_request_meta({"HTTP_X_API_KEY": KEY}) is None


def test_per_call_keyword_and_header_override_settings() -> None:
    assert key_from_request_meta({"HTTP_AUTHORIZATION": f"Token {KEY}"}, keyword="Token") == KEY
    assert key_from_request_meta({"HTTP_X_SVC": KEY}, header="X-Svc") == KEY


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM")
def test_upstream_custom_header_setting_is_the_only_place_read() -> None:
    assert key_from_request_meta({"HTTP_X_CUSTOM": KEY}) == KEY
    assert key_from_request_meta({"HTTP_AUTHORIZATION": f"Api-Key {KEY}"}) is None
    assert key_from_request_meta({"HTTP_X_API_KEY": KEY}) is None


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM")
def test_key_from_authorization_reads_that_header_alone() -> None:
    both = {"HTTP_AUTHORIZATION": f"Api-Key {KEY}", "HTTP_X_CUSTOM": "custom"}
    assert key_from_authorization(both) == KEY  # the custom header does not take precedence
    assert key_from_authorization({"HTTP_X_API_KEY": KEY, "HTTP_X_CUSTOM": KEY}) is None
    assert key_from_authorization({"HTTP_AUTHORIZATION": f"  token {KEY} "}, "Token") == KEY
    assert key_from_authorization({"HTTP_AUTHORIZATION": f"Api-Key {KEY}"}, "Token") is None


def test_key_from_header_reads_one_meta_name() -> None:
    assert key_from_header({"HTTP_X_SVC": f" {KEY} "}, "HTTP_X_SVC") == KEY
    assert key_from_header({"HTTP_X_SVC": KEY}, "HTTP_X_OTHER") is None
    assert key_from_header({"HTTP_X_SVC": b"bytes"}, "HTTP_X_SVC") is None


def test_header_meta_name() -> None:
    assert header_meta_name("X-API-Key") == "HTTP_X_API_KEY"


def test_a_key_source_reads_the_way_key_from_request_meta_does() -> None:
    meta = {"HTTP_AUTHORIZATION": f"Token {KEY}", "HTTP_X_SVC": "other"}
    assert KeySource(keyword="Token").get_key(meta) == KEY
    assert KeySource(header="X-Svc").get_key(meta) == "other"
    assert KeySource(header="").get_key({"HTTP_X_API_KEY": KEY}) is None


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM")
def test_a_source_given_its_own_header_sets_the_upstream_custom_header_aside() -> None:
    source = KeySource(header="X-Svc")
    assert source.get_key({"HTTP_X_SVC": KEY, "HTTP_X_CUSTOM": "custom"}) == KEY
    assert source.meta_names() == ["HTTP_AUTHORIZATION", "HTTP_X_SVC"]
    assert KeySource().meta_names() == ["HTTP_X_CUSTOM"]


def test_a_source_names_the_meta_entries_it_reads() -> None:
    assert KeySource().meta_names() == ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"]
    assert KeySource(header="").meta_names() == ["HTTP_AUTHORIZATION"]
    with override_settings(ASYNC_API_KEY={"HEADER": "X-Partner-Credential"}):
        assert KeySource().meta_names() == ["HTTP_AUTHORIZATION", "HTTP_X_PARTNER_CREDENTIAL"]


def test_the_openapi_scheme_names_the_header_where_the_bare_key_goes() -> None:
    assert KeySource().openapi_scheme() == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": (
            "Send the key in the `X-API-Key` header. "
            "`Authorization: Api-Key <key>` is accepted too."
        ),
    }
    assert KeySource(keyword="Token", header="").openapi_scheme()["description"] == (
        "Send `Authorization: Token <key>` (in Swagger, enter `Token <key>`)."
    )
    assert KeySource().openapi_scheme("shop.PartnerKey")["description"] == (
        "Send the key in the `X-API-Key` header. "
        "`Authorization: Api-Key <key>` is accepted too. Keys of `shop.PartnerKey`."
    )


@pytest.mark.parametrize(
    ("meta_name", "header"),
    [("HTTP_X_LEGACY_KEY", "X-Legacy-Key"), ("HTTP_X_2FA_TOKEN", "X-2fa-Token")],
)
def test_the_openapi_scheme_names_the_upstream_custom_header(meta_name: str, header: str) -> None:
    with override_settings(API_KEY_CUSTOM_HEADER=meta_name):
        assert KeySource().openapi_scheme() == {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": f"Send the key in the `{header}` header.",
        }


def test_equal_sources_share_a_scheme_name_and_others_are_told_apart() -> None:
    assert KeySource().scheme_name("APIKeyAuth") == "APIKeyAuth"
    assert KeySource().scheme_name("APIKeyAuth") == KeySource().scheme_name("APIKeyAuth")
    assert (
        KeySource(header="X-Partner-Key", keyword="Bearer").scheme_name(
            "APIKeyAuth", "shop.PartnerKey"
        )
        == "APIKeyAuth_shop.PartnerKey_header.X-Partner-Key_keyword.Bearer"
    )
    assert KeySource(header="").scheme_name("APIKeyAuth") == "APIKeyAuth_header.none"


def test_a_scheme_name_is_a_valid_openapi_component_name() -> None:
    """OpenAPI allows letters, digits, '.', '-' and '_' in component names; others become '.'."""
    name = KeySource(keyword="Key/v2 (partner)").scheme_name("APIKeyAuth")
    assert name == "APIKeyAuth_keyword.Key.v2..partner."
