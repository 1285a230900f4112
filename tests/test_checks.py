"""System checks report a misconfigured ASYNC_API_KEY at start-up."""

from __future__ import annotations

import pytest
from django.test import override_settings

from async_api_key.checks import check_settings
from async_api_key.conf import api_key_settings


def _ids() -> list[str | None]:
    return [message.id for message in check_settings()]


def test_default_settings_pass() -> None:
    assert _ids() == []


@pytest.mark.parametrize(
    ("value", "expected_id"),
    [
        ({"NAMESPACE": "a-b"}, "async_api_key.E002"),
        ({"HASH_ALGORITHM": "md5"}, "async_api_key.E003"),
        ({"KEYWORD": "Api Key"}, "async_api_key.E004"),
        ({"KEYWORD": ""}, "async_api_key.E004"),
        ({"NAMESPCE": "typo"}, "async_api_key.E001"),
    ],
)
def test_bad_settings_are_reported(value: dict[str, object], expected_id: str) -> None:
    with override_settings(ASYNC_API_KEY=value):
        assert _ids() == [expected_id]


def test_settings_are_reread_when_overridden() -> None:
    assert api_key_settings.namespace == "ak"
    with override_settings(ASYNC_API_KEY={"NAMESPACE": "acme"}):
        assert api_key_settings.namespace == "acme"
    assert api_key_settings.namespace == "ak"
    with override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None, "HEADER": None}):
        assert api_key_settings.last_used_interval is None
        assert api_key_settings.header is None
