"""System checks: a misconfigured ``ASYNC_API_KEY`` is reported at start-up, not on a request."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import CheckMessage, Error, Info, Warning, register
from django.utils.module_loading import import_string

from .conf import api_key_settings
from .hashing import FAST_HASH_ALGORITHMS
from .keys import is_valid_namespace
from .reporting import APIKeyExceptionReporterFilter, key_meta_names

__all__ = [
    "check_caches_for_several_processes",
    "check_error_reports_mask_key_headers",
    "check_forwarded_for_comes_from_trusted_proxies",
    "check_rate_limit_cache",
    "check_rate_limit_cache_is_shared",
    "check_settings",
]


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``settings.ASYNC_API_KEY`` (and the upstream ``API_KEY_CUSTOM_HEADER``)."""
    problems = api_key_settings.problems()
    if problems:
        # One error per wrong setting, each naming it: all are said at once.
        return [Error(problem.message, id="async_api_key.E001") for problem in problems]
    errors: list[CheckMessage] = []
    namespace = api_key_settings.namespace
    if not is_valid_namespace(namespace):
        errors.append(
            Error(
                f"ASYNC_API_KEY['NAMESPACE'] = {namespace!r} cannot start a key.",
                hint="Use letters and digits with at most one inner '_', such as 'acme_live'.",
                id="async_api_key.E002",
            )
        )
    if api_key_settings.hash_algorithm not in FAST_HASH_ALGORITHMS:
        errors.append(
            Error(
                f"ASYNC_API_KEY['HASH_ALGORITHM'] = {api_key_settings.hash_algorithm!r} "
                "is not supported.",
                hint=f"Use one of: {', '.join(FAST_HASH_ALGORITHMS)}.",
                id="async_api_key.E003",
            )
        )
    keyword = api_key_settings.keyword
    if not keyword or any(character.isspace() for character in keyword):
        errors.append(
            Error(
                "ASYNC_API_KEY['KEYWORD'] must be one non-empty word, such as 'Api-Key'.",
                id="async_api_key.E004",
            )
        )
    shared_alias = api_key_settings.shared_cache_alias
    if shared_alias is not None and shared_alias not in settings.CACHES:
        errors.append(
            Error(
                f"ASYNC_API_KEY['SHARED_CACHE_ALIAS'] = {shared_alias!r} names no cache in CACHES.",
                hint=f"Use one of: {', '.join(map(repr, settings.CACHES))}, or None.",
                id="async_api_key.E006",
            )
        )
    return errors


# A deployment check: on a developer's machine nothing stands in front of runserver.
@register(deploy=True)
def check_forwarded_for_comes_from_trusted_proxies(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when ``X-Forwarded-For`` is believed from any connection, not only proxies'."""
    try:
        count, proxies = api_key_settings.trusted_proxy_count, api_key_settings.trusted_proxies
    except ValueError:
        return []  # reported by check_settings
    if count == 0 or proxies:
        return []
    return [
        Warning(
            f"ASYNC_API_KEY['TRUSTED_PROXY_COUNT'] = {count} believes X-Forwarded-For from "
            "any connection: a client that reaches the application directly, not through "
            "your proxies, chooses the address that IP allowlists check.",
            hint="Set ASYNC_API_KEY['TRUSTED_PROXIES'] to your proxies' networks, such as "
            "['10.0.0.0/8'].",
            id="async_api_key.W003",
        )
    ]


@register()
def check_error_reports_mask_key_headers(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when Django's error reports would show a header that carries keys."""
    try:
        # Not Django's cached get_default_exception_reporter_filter(): the check must see
        # the setting as it is now.
        reporter_filter = import_string(settings.DEFAULT_EXCEPTION_REPORTER_FILTER)()
        names = key_meta_names()
    except (ValueError, ImportError):
        return []  # reported by check_settings, or by Django's own checks
    if isinstance(reporter_filter, APIKeyExceptionReporterFilter):
        return []
    hidden = getattr(reporter_filter, "hidden_settings", None)
    exposed = [name for name in names if hidden is None or not hidden.search(name)]
    if not exposed:
        return []
    return [
        Warning(
            f"Error reports would show the API key header(s) {', '.join(exposed)}.",
            hint="Set DEFAULT_EXCEPTION_REPORTER_FILTER = "
            "'async_api_key.reporting.APIKeyExceptionReporterFilter'.",
            id="async_api_key.W001",
        )
    ]


#: Cache backends whose ``incr()`` is a read followed by a write: concurrent requests
#: can lose increments, so rate limits are not enforced exactly.
_NON_ATOMIC_BACKENDS = (
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _rate_limit_cache() -> tuple[str, BaseCache]:
    alias = api_key_settings.rate_limit_cache_alias
    return alias, caches[alias]


@register()
def check_rate_limit_cache(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Say when the rate-limit cache cannot be used or cannot count atomically."""
    try:
        alias, cache = _rate_limit_cache()
    except (ValueError, InvalidCacheBackendError) as exc:
        return [Error(f"Rate limit cache: {exc}", id="async_api_key.E005")]
    backend = f"{type(cache).__module__}.{type(cache).__qualname__}"
    if backend in _NON_ATOMIC_BACKENDS:
        return [
            Warning(
                f"The rate limit cache {alias!r} ({backend}) cannot count atomically: "
                "concurrent requests may exceed per-key rate limits.",
                hint="Point ASYNC_API_KEY['RATE_LIMIT_CACHE_ALIAS'] at a Redis or Memcached cache.",
                id="async_api_key.W002",
            )
        ]
    return []


# A deployment check (``manage.py check --deploy``): a local-memory cache is right for one
# process, such as runserver, the tests or a management command, so saying it on every
# ``migrate``, ``check`` or command would be noise.
@register(deploy=True)
def check_rate_limit_cache_is_shared(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Say, when checking a deployment, that a local-memory cache counts per process."""
    try:
        alias, cache = _rate_limit_cache()
    except (ValueError, InvalidCacheBackendError):
        return []  # reported by check_rate_limit_cache
    if not isinstance(cache, LocMemCache):
        return []
    return [
        Info(
            f"The rate limit cache {alias!r} is local memory: each process counts its own "
            "requests, so N processes allow N times a key's rate.",
            hint="Use a Redis or Memcached cache when running several processes.",
            id="async_api_key.I001",
        )
    ]


def _is_redis(cache: BaseCache) -> bool:
    return type(cache).__module__.startswith("django.core.cache.backends.redis")


@register(deploy=True)
def check_caches_for_several_processes(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Say, when checking a deployment, which cache setup serves several processes badly.

    - a shared tier that lives in each process shares nothing (W004);
    - a Redis cache without ``socket_timeout`` makes requests wait as long as the operating
      system lets a dead connection hang (W005): the verification and the counting wait;
    - the admin's one-time handoff of a new key in a local-memory cache may miss the
      process the browser is redirected to (I002).
    """
    messages: list[CheckMessage] = []
    shared_alias = api_key_settings.shared_cache_alias
    used = {api_key_settings.rate_limit_cache_alias}
    if shared_alias is not None:
        used.add(shared_alias)
        try:
            if isinstance(caches[shared_alias], LocMemCache):
                messages.append(
                    Warning(
                        f"The shared cache tier {shared_alias!r} is local memory: it shares "
                        "nothing between processes and only doubles this process's own tier.",
                        hint="Point ASYNC_API_KEY['SHARED_CACHE_ALIAS'] at a Redis cache, or "
                        "set it to None.",
                        id="async_api_key.W004",
                    )
                )
        except InvalidCacheBackendError:
            pass  # reported by check_settings (E006)
    for alias in sorted(used):
        try:
            cache = caches[alias]
        except InvalidCacheBackendError:
            continue  # reported by check_settings or check_rate_limit_cache
        options = settings.CACHES.get(alias, {}).get("OPTIONS", {})
        if _is_redis(cache) and "socket_timeout" not in options:
            messages.append(
                Warning(
                    f"The Redis cache {alias!r} has no socket_timeout: if Redis stops "
                    "answering, API key verifications and rate counting wait for it.",
                    hint=f"Set CACHES[{alias!r}]['OPTIONS'] = "
                    "{'socket_timeout': 0.5, 'socket_connect_timeout': 0.5}.",
                    id="async_api_key.W005",
                )
            )
    for alias in sorted(_admin_handoff_aliases()):
        try:
            local = isinstance(caches[alias], LocMemCache)
        except InvalidCacheBackendError:
            continue  # Django reports the admin's own misconfiguration when it is used
        if local:
            messages.append(
                Info(
                    f"The admin hands a new key to the page that shows it through the cache "
                    f"{alias!r}, which is local memory: with several processes, that page may "
                    "be served by another one and say the key was already shown.",
                    hint="Use a shared cache (Redis, Memcached), or set "
                    "APIKeyModelAdmin.key_handoff = KeyHandoff(cache_alias=...).",
                    id="async_api_key.I002",
                )
            )
    return messages


def _admin_handoff_aliases() -> set[str]:
    """The caches the key admins registered on Django's admin site hand new keys through."""
    if not apps.is_installed("django.contrib.admin"):
        return set()
    from django.contrib import admin as django_admin

    from .admin import APIKeyModelAdmin

    return {
        model_admin.key_handoff.cache_alias
        for model_admin in django_admin.site._registry.values()
        if isinstance(model_admin, APIKeyModelAdmin)
    }
