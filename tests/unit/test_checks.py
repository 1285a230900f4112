"""System checks report a misconfigured ASYNC_API_KEY at start-up."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from async_api_key.checks import check_settings
from async_api_key.conf import DEFAULTS, api_key_settings
from tests.support import REPO_ROOT

ROOT = REPO_ROOT
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


#: One wrong value of every setting, and what the error must say about it.
BAD_VALUES: list[tuple[str, object, str]] = [
    ("NAMESPACE", 42, "must be a string"),
    ("HASH_ALGORITHM", None, "must be a string"),
    ("KEYWORD", b"Api-Key", "must be a string"),
    ("HEADER", "X API Key", "must be a header name"),
    ("HEADER", "", "must be a header name"),
    ("LAST_USED_INTERVAL", "1 minute", "number of seconds, 0 or more, or None"),
    ("LAST_USED_INTERVAL", float("inf"), "number of seconds"),
    ("CACHE_ENABLED", "yes", "True or False"),
    ("CACHE_ENABLED", 1, "True or False"),
    ("CACHE_TTL", "abc", "from 0 to 3600"),
    ("CACHE_TTL", 3601, "from 0 to 3600"),
    ("MAX_STALENESS", 0, "more than 0 to 60"),
    ("MAX_STALENESS", float("nan"), "more than 0 to 60"),
    ("PUSH_CHANGES", None, "True or False"),
    ("CACHE_MAX_ENTRIES", 10.5, "whole number"),
    ("CACHE_MAX_ENTRIES", -1, "whole number"),
    ("NEGATIVE_CACHE_TTL", -1, "0 or more"),
    ("NEGATIVE_CACHE_MAX_ENTRIES", True, "whole number"),
    ("SHARED_CACHE_ALIAS", 0, "name of a cache in CACHES, or None"),
    ("SHARED_CACHE_TTL", "60", "0 or more"),
    ("TRUSTED_PROXY_COUNT", "one", "whole number"),
    ("TRUSTED_PROXIES", "10.0.0.0/8", "list of networks"),
    ("TRUSTED_PROXIES", ["10.0.0.0/8", "proxy.internal"], "'proxy.internal' is not a network"),
    ("RATE_LIMIT_CACHE_ALIAS", None, "name of a cache in CACHES"),
    ("LEAK_POLICY", "delete", "'revoke' or 'notify'"),
    ("SELF_SERVICE_MAX_ACTIVE_KEYS", -1, "whole number, 0 or more, or None"),
    ("SELF_SERVICE_REQUIRE_EXPIRY", "no", "True or False"),
    ("SELF_SERVICE_MAX_LIFETIME", 0, "more than 0, or None"),
]


def test_every_setting_has_a_bad_value_under_test() -> None:
    assert {name for name, _, _ in BAD_VALUES} == set(DEFAULTS)


def test_the_defaults_written_out_pass() -> None:
    with override_settings(ASYNC_API_KEY=dict(DEFAULTS)):
        assert _ids() == []
        assert api_key_settings.trusted_proxies == ()


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES)
def test_manage_py_check_names_a_wrong_setting(name: str, value: object, expected: str) -> None:
    with override_settings(ASYNC_API_KEY={name: value}):
        with pytest.raises(SystemCheckError) as excinfo:
            call_command("check")
        messages = check_settings()
    assert f"(async_api_key.E001) ASYNC_API_KEY['{name}'] must be" in str(excinfo.value)
    assert [message.id for message in messages] == ["async_api_key.E001"]
    assert expected in messages[0].msg


@pytest.mark.parametrize(("name", "value", "expected"), BAD_VALUES)
def test_the_settings_object_refuses_a_wrong_setting(
    name: str, value: object, expected: str
) -> None:
    with override_settings(ASYNC_API_KEY={name: value}):
        with pytest.raises(ValueError, match=rf"ASYNC_API_KEY\['{name}'\] must be"):
            api_key_settings.cache_ttl  # noqa: B018 (any setting: they are read together)
        assert [problem.setting for problem in api_key_settings.problems()] == [
            f"ASYNC_API_KEY['{name}']"
        ]


def test_a_misspelt_setting_is_an_error_that_suggests_the_right_one() -> None:
    with override_settings(ASYNC_API_KEY={"CACHE_TTLL": 30}):
        with pytest.raises(SystemCheckError, match=r"'CACHE_TTLL'\] is not a setting"):
            call_command("check")
        (message,) = check_settings()
        with pytest.raises(ValueError, match="CACHE_TTLL"):
            api_key_settings.cache_ttl  # noqa: B018
    assert message.id == "async_api_key.E001"
    assert message.msg.endswith("Did you mean 'CACHE_TTL'?")


def test_every_wrong_setting_is_reported_at_once() -> None:
    values = {"CACHE_TTL": "abc", "TRUSTED_PROXY_COUNT": -1, "NAMESPCE": "x"}
    with override_settings(ASYNC_API_KEY=values):
        messages = check_settings()
    assert [message.id for message in messages] == ["async_api_key.E001"] * 3
    assert ["CACHE_TTL" in messages[0].msg, "TRUSTED_PROXY_COUNT" in messages[1].msg] == [
        True,
        True,
    ]


@pytest.mark.parametrize("value", [["CACHE_TTL", 5], "CACHE_TTL=5"])
def test_settings_that_are_not_a_dict_are_reported(value: object) -> None:
    with override_settings(ASYNC_API_KEY=value):
        assert [message.msg for message in check_settings()] == [
            f"ASYNC_API_KEY must be a dict, not {type(value).__name__}."
        ]


@pytest.mark.parametrize("value", ["X-Api-Key", "http_x_api_key", "", 42])
def test_the_upstream_custom_header_must_be_a_meta_name(value: object) -> None:
    with override_settings(API_KEY_CUSTOM_HEADER=value):
        with pytest.raises(SystemCheckError, match=r"API_KEY_CUSTOM_HEADER must be a request"):
            call_command("check")
        with pytest.raises(ValueError, match="HTTP_X_API_KEY"):
            api_key_settings.custom_header_meta_name  # noqa: B018


def test_a_shared_cache_alias_must_name_a_cache() -> None:
    with (
        override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "redis"}),
        pytest.raises(SystemCheckError, match=r"async_api_key\.E006"),
    ):
        call_command("check")
    with override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"}):
        assert _ids() == []


def test_a_deployment_check_warns_of_a_proxy_count_without_proxy_networks() -> None:
    with override_settings(ASYNC_API_KEY={"TRUSTED_PROXY_COUNT": 1}):
        assert "async_api_key.W003" in _reported_ids(deploy=True)
        assert "async_api_key.W003" not in _reported_ids()
    proxies = {"TRUSTED_PROXY_COUNT": 1, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    with override_settings(ASYNC_API_KEY=proxies):
        assert "async_api_key.W003" not in _reported_ids(deploy=True)
    assert "async_api_key.W003" not in _reported_ids(deploy=True)


def test_trusted_proxies_are_normalised() -> None:
    with override_settings(ASYNC_API_KEY={"TRUSTED_PROXIES": [" 10.1.2.3/8", "2001:db8::1"]}):
        assert api_key_settings.trusted_proxies == ("10.0.0.0/8", "2001:db8::1/128")


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
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
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


REDIS = "django.core.cache.backends.redis.RedisCache"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
TIMEOUTS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


def test_a_deployment_check_warns_of_a_shared_tier_in_local_memory() -> None:
    local = {"default": {"BACKEND": LOCMEM}}
    with override_settings(CACHES=local, ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"}):
        assert "async_api_key.W004" in _reported_ids(deploy=True)
        assert "async_api_key.W004" not in _reported_ids()
    caches = {"default": {"BACKEND": REDIS, "OPTIONS": TIMEOUTS}}
    with override_settings(CACHES=caches, ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"}):
        assert "async_api_key.W004" not in _reported_ids(deploy=True)
    with override_settings(CACHES=local):
        assert "async_api_key.W004" not in _reported_ids(deploy=True)  # no shared tier


def test_a_deployment_check_warns_of_a_redis_cache_without_a_socket_timeout() -> None:
    """A Redis that stops answering must not hold verifications and counting for minutes."""
    with override_settings(CACHES={"default": {"BACKEND": REDIS}}):
        assert "async_api_key.W005" in _reported_ids(deploy=True)
    with override_settings(CACHES={"default": {"BACKEND": REDIS, "OPTIONS": TIMEOUTS}}):
        assert "async_api_key.W005" not in _reported_ids(deploy=True)
    # Only the caches the library uses: a Redis cache of the project's own is its business.
    caches = {"default": {"BACKEND": LOCMEM}, "sessions": {"BACKEND": REDIS}}
    with override_settings(CACHES=caches):
        assert "async_api_key.W005" not in _reported_ids(deploy=True)


def test_a_deployment_check_says_the_admins_key_handoff_needs_a_shared_cache() -> None:
    # The suite registers APIKeyModelAdmin on the admin site; its handoff uses 'default'.
    with override_settings(CACHES={"default": {"BACKEND": LOCMEM}}):
        assert "async_api_key.I002" in _reported_ids(deploy=True)
        assert "async_api_key.I002" not in _reported_ids()
    with override_settings(CACHES={"default": {"BACKEND": REDIS, "OPTIONS": TIMEOUTS}}):
        assert "async_api_key.I002" not in _reported_ids(deploy=True)


def test_the_recommended_production_settings_pass_the_deployment_checks() -> None:
    """docs/deploying.md's settings module, as written there, leaves check --deploy silent."""
    page = (ROOT / "docs" / "deploying.md").read_text()
    block = page.split("## Recommended settings", 1)[1].split("```python\n", 1)[1]
    recommended: dict[str, Any] = {}
    exec(block.split("```", 1)[0], recommended)  # noqa: S102 - the docs' own example
    with override_settings(
        ASYNC_API_KEY=recommended["ASYNC_API_KEY"],
        CACHES=recommended["CACHES"],
        DEFAULT_EXCEPTION_REPORTER_FILTER=recommended["DEFAULT_EXCEPTION_REPORTER_FILTER"],
    ):
        said = {name for name in _reported_ids(deploy=True) if name}
    assert not {name for name in said if name.startswith("async_api_key.")}


def _read_on_every_request() -> tuple[object, ...]:
    return (
        api_key_settings.keyword,
        api_key_settings.caching,
        api_key_settings.max_staleness,
        api_key_settings.custom_header_meta_name,
    )


def test_the_settings_read_on_every_request_follow_a_change() -> None:
    before = _read_on_every_request()
    changed = {"KEYWORD": "Token", "CACHE_ENABLED": False, "MAX_STALENESS": 0.5}
    with override_settings(ASYNC_API_KEY=changed, API_KEY_CUSTOM_HEADER="HTTP_X_KEY"):
        assert _read_on_every_request() == ("Token", False, 0.5, "HTTP_X_KEY")
    assert _read_on_every_request() == before
    with (
        override_settings(ASYNC_API_KEY={"KEYWORD": 3}),
        pytest.raises(ValueError, match=r"ASYNC_API_KEY\['KEYWORD'\] must be"),
    ):
        api_key_settings.keyword  # noqa: B018
    with pytest.raises(AttributeError, match="not_a_setting"):
        api_key_settings.not_a_setting  # noqa: B018
