"""System checks report a misconfigured ASYNC_API_KEY at start-up."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import override_settings

from async_api_key.checks import check_settings
from async_api_key.conf import api_key_settings

ROOT = Path(__file__).resolve().parent.parent
CHECK_ID_RE = re.compile(r"""id=["'](async_api_key\.[EWI]\d{3})["']""")


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


def _reported_ids(*, deploy: bool = False) -> set[str | None]:
    return {message.id for message in run_checks(include_deployment_checks=deploy)}


def test_a_plain_check_says_nothing_about_a_local_memory_rate_limit_cache() -> None:
    # The suite's cache is local memory, as in most projects' development settings.
    out, err = StringIO(), StringIO()
    call_command("check", stdout=out, stderr=err)

    assert "async_api_key" not in out.getvalue() + err.getvalue()
    assert not {name for name in _reported_ids() if name and name.startswith("async_api_key.")}


def test_a_deployment_check_says_that_a_local_memory_cache_counts_per_process() -> None:
    assert "async_api_key.I001" in _reported_ids(deploy=True)
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    ):
        assert "async_api_key.I001" not in _reported_ids(deploy=True)


def _ids_in_the_code() -> set[str]:
    sources = (ROOT / "src" / "async_api_key").rglob("*.py")
    return {found for path in sources for found in CHECK_ID_RE.findall(path.read_text())}


def _ids_in_the_settings_page() -> set[str]:
    table = (ROOT / "docs" / "settings.md").read_text().split("## System checks", 1)[1]
    return set(re.findall(r"^\| `(async_api_key\.[EWI]\d{3})` \|", table, re.M))


def test_every_check_id_is_listed_on_the_settings_page() -> None:
    in_code = _ids_in_the_code()

    assert {"async_api_key.E001", "async_api_key.I001"} <= in_code
    assert _ids_in_the_settings_page() == in_code
