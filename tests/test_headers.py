"""Reading the key from a request: the one parser both adapters share."""

from __future__ import annotations

import pytest
from django.test import override_settings

from async_api_key.headers import header_meta_name, key_from_request_meta

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


def test_header_meta_name() -> None:
    assert header_meta_name("X-API-Key") == "HTTP_X_API_KEY"
