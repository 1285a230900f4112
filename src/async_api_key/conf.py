"""The library's settings: one object, read in one place, with documented defaults.

Projects configure the library with one dictionary in their Django settings::

    ASYNC_API_KEY = {"NAMESPACE": "acme_live", "LAST_USED_INTERVAL": 300}

Values are looked up when used (and re-read when Django's ``setting_changed``
signal fires), so ``override_settings`` in a project's tests takes effect.
The upstream setting ``API_KEY_CUSTOM_HEADER`` of djangorestframework-api-key is
honoured too, so migrating projects keep their configuration.

Every value is checked for its type and range where the settings are first read: the
system check ``async_api_key.E001`` names each unknown or wrong setting at start-up, and
the settings refuse to be used (``ValueError``) rather than let a request meet them.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "DEFAULTS",
    "APIKeySettings",
    "SettingProblem",
    "api_key_settings",
]

SETTINGS_NAME: Final = "ASYNC_API_KEY"
UPSTREAM_CUSTOM_HEADER_SETTING: Final = "API_KEY_CUSTOM_HEADER"

DEFAULTS: Final[dict[str, Any]] = {
    # The human-readable start of every new key: ``<NAMESPACE>_<lookup>_<secret><checksum>``.
    "NAMESPACE": "ak",
    # Fast hash for new keys: "sha512" (the upstream format) or "sha256".
    "HASH_ALGORITHM": "sha512",
    # ``Authorization: <KEYWORD> <key>``; compared case-insensitively.
    "KEYWORD": "Api-Key",
    # A second header the key may come in; None to accept the Authorization header only.
    "HEADER": "X-API-Key",
    # ``last_used_at`` is written at most once per this many seconds per key; None disables it.
    "LAST_USED_INTERVAL": 60,
    # The verification cache (see async_api_key.cache): False turns both tiers off.
    "CACHE_ENABLED": True,
    # Seconds a verified key stays cached (both tiers). It bounds only changes the library
    # cannot see (raw SQL without record_change(), an owner deactivated); 0 turns caching off.
    "CACHE_TTL": 10,
    # Seconds after a change to a key commits within which every process refuses the
    # changed key: each process reads the change log at most about once per this interval.
    "MAX_STALENESS": 1.0,
    # On PostgreSQL, also listen for changes (LISTEN/NOTIFY): they then apply in milliseconds.
    "PUSH_CHANGES": True,
    "CACHE_MAX_ENTRIES": 10_000,
    # Seconds an unknown lookup id is remembered (a repeated fake key costs no query).
    "NEGATIVE_CACHE_TTL": 10,
    "NEGATIVE_CACHE_MAX_ENTRIES": 10_000,
    # A Django cache alias (e.g. "default" on Redis) shared by all processes; None for none.
    "SHARED_CACHE_ALIAS": None,
    "SHARED_CACHE_TTL": 60,
    # Which address is the client's (see async_api_key.networks.client_address):
    # how many reverse proxies in front of the app append to X-Forwarded-For, and the
    # networks (CIDR) they connect from. Both unset: REMOTE_ADDR, X-Forwarded-For ignored.
    "TRUSTED_PROXY_COUNT": 0,
    "TRUSTED_PROXIES": (),
    # The Django cache alias that counts requests for per-key rate limits.
    "RATE_LIMIT_CACHE_ALIAS": "default",
    # What the secret scanning endpoint does with a live leaked key: "revoke" it at once,
    # or "notify" only (record the leak, send api_key_leaked).
    "LEAK_POLICY": "revoke",
    # Self-service keys (async_api_key.selfservice), unless a policy says otherwise: the
    # active keys an owner may hold (None: no limit), whether a new key needs an expiry,
    # and the longest lifetime of a new key in seconds (None: no limit).
    "SELF_SERVICE_MAX_ACTIVE_KEYS": 10,
    "SELF_SERVICE_REQUIRE_EXPIRY": False,
    "SELF_SERVICE_MAX_LIFETIME": None,
}


#: The longest ``CACHE_TTL``: changes are kept in the log far longer than any entry lives.
MAX_CACHE_TTL: Final = 3600.0

#: The longest ``MAX_STALENESS``.
MAX_STALENESS_LIMIT: Final = 60.0

#: More seconds than any setting means: a larger number (or infinity) is a mistake, and
#: would overflow a ``timedelta``.
_FOREVER: Final = 1e9

#: A header name (an RFC 9110 token), as ``HEADER`` must be.
_HEADER_NAME_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: A ``request.META`` name, as ``API_KEY_CUSTOM_HEADER`` must be (``HTTP_X_API_KEY``).
_META_NAME_RE: Final = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class SettingProblem:
    """A setting that is unknown, of the wrong type or out of range."""

    #: The setting as a project writes it: ``ASYNC_API_KEY['CACHE_TTL']``.
    setting: str
    #: A sentence that names the setting and says what it must be.
    message: str


#: A rule returns what a value must be (``"True or False"``), or ``None`` if it is right.
_Rule = Callable[[Any], str | None]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(highest: float = _FOREVER, *, more_than_zero: bool = False) -> _Rule:
    lowest = "more than 0" if more_than_zero else "from 0"
    expected = (
        f"a number of seconds, {lowest} to {highest:g}"
        if highest < _FOREVER
        else f"a number of seconds, {'more than 0' if more_than_zero else '0 or more'}"
    )

    def rule(value: Any) -> str | None:
        if not _is_number(value) or not value <= highest or value < 0:
            return expected
        return expected if more_than_zero and value == 0 else None

    return rule


def _optional(rule: _Rule) -> _Rule:
    def optional_rule(value: Any) -> str | None:
        expected = None if value is None else rule(value)
        return None if expected is None else f"{expected}, or None"

    return optional_rule


def _whole_number(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "a whole number, 0 or more"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _cache_alias(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "the name of a cache in CACHES"


def _leak_policy(value: Any) -> str | None:
    return None if value in ("revoke", "notify") else "'revoke' or 'notify'"


def _header_name(value: Any) -> str | None:
    ok = isinstance(value, str) and _HEADER_NAME_RE.fullmatch(value)
    return None if ok else "a header name such as 'X-API-Key'"


def _meta_name(value: Any) -> str | None:
    ok = isinstance(value, str) and _META_NAME_RE.fullmatch(value)
    return None if ok else "a request.META name such as 'HTTP_X_API_KEY'"


def _networks(value: Any) -> str | None:
    expected = "a list of networks in CIDR notation, such as ['10.0.0.0/8']"
    if not isinstance(value, (list, tuple)):
        return expected
    for network in value:
        try:
            ipaddress.ip_network(network.strip(), strict=False)
        except (AttributeError, ValueError):
            return f"{expected} ({network!r} is not a network)"
    return None


#: The rule of every setting in ``ASYNC_API_KEY`` (a test holds it to :data:`DEFAULTS`).
#: What a rule cannot see (a namespace's shape, a cache alias that names no cache) is
#: checked by ``async_api_key.checks``.
_RULES: Final[dict[str, _Rule]] = {
    "NAMESPACE": _text,
    "HASH_ALGORITHM": _text,
    "KEYWORD": _text,
    "HEADER": _optional(_header_name),
    "LAST_USED_INTERVAL": _optional(_seconds()),
    "CACHE_ENABLED": _boolean,
    "CACHE_TTL": _seconds(MAX_CACHE_TTL),
    "MAX_STALENESS": _seconds(MAX_STALENESS_LIMIT, more_than_zero=True),
    "PUSH_CHANGES": _boolean,
    "CACHE_MAX_ENTRIES": _whole_number,
    "NEGATIVE_CACHE_TTL": _seconds(),
    "NEGATIVE_CACHE_MAX_ENTRIES": _whole_number,
    "SHARED_CACHE_ALIAS": _optional(_cache_alias),
    "SHARED_CACHE_TTL": _seconds(),
    "TRUSTED_PROXY_COUNT": _whole_number,
    "TRUSTED_PROXIES": _networks,
    "RATE_LIMIT_CACHE_ALIAS": _cache_alias,
    "LEAK_POLICY": _leak_policy,
    "SELF_SERVICE_MAX_ACTIVE_KEYS": _optional(_whole_number),
    "SELF_SERVICE_REQUIRE_EXPIRY": _boolean,
    "SELF_SERVICE_MAX_LIFETIME": _optional(_seconds(more_than_zero=True)),
}


def _problems(user_values: object, custom_header: object) -> list[SettingProblem]:
    """Every unknown setting and every value of the wrong type or out of range."""
    if not isinstance(user_values, Mapping):
        return [
            SettingProblem(
                SETTINGS_NAME,
                f"{SETTINGS_NAME} must be a dict, not {type(user_values).__name__}.",
            )
        ]
    problems: list[SettingProblem] = []
    for name, value in user_values.items():
        setting = f"{SETTINGS_NAME}[{name!r}]"
        if name not in _RULES:
            close = difflib.get_close_matches(str(name), _RULES, n=1)
            did_you_mean = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(SettingProblem(setting, f"{setting} is not a setting.{did_you_mean}"))
            continue
        expected = _RULES[name](value)
        if expected is not None:
            problems.append(
                SettingProblem(setting, f"{setting} must be {expected}, not {value!r}.")
            )
    expected = _optional(_meta_name)(custom_header)
    if expected is not None:
        setting = UPSTREAM_CUSTOM_HEADER_SETTING
        problems.append(
            SettingProblem(setting, f"{setting} must be {expected}, not {custom_header!r}.")
        )
    return problems


def _read_django_settings() -> tuple[Any, Any]:
    # getattr() of an unset setting raises and catches inside Django's lazy settings, which
    # costs microseconds: read these only when the settings are (re)loaded, never per request.
    user_values = getattr(settings, SETTINGS_NAME, None)
    custom_header = getattr(settings, UPSTREAM_CUSTOM_HEADER_SETTING, None)
    return ({} if user_values is None else user_values), custom_header


def _ready_made(merged: dict[str, Any]) -> dict[str, Any]:
    """The settings read on every request, as :class:`APIKeySettings` keeps them."""
    return {
        "caching": bool(merged["CACHE_ENABLED"]) and float(merged["CACHE_TTL"]) > 0,
        "max_staleness": float(merged["MAX_STALENESS"]),
        "keyword": str(merged["KEYWORD"]),
        "custom_header_meta_name": merged[UPSTREAM_CUSTOM_HEADER_SETTING],
    }


class APIKeySettings:
    """Typed access to ``settings.ASYNC_API_KEY`` merged over :data:`DEFAULTS`."""

    # Read on every request or every cache hit, so plain attributes of the instance (a
    # property is a Python call, which shows on a hot verification). Until the first read,
    # and after ``reload()``, they are missing, and ``__getattr__`` sets them all.
    #: ``CACHE_ENABLED`` and a positive ``CACHE_TTL``: whether verifications are cached.
    caching: bool
    max_staleness: float
    keyword: str
    #: The upstream ``API_KEY_CUSTOM_HEADER`` (a ``META`` name), if the project sets it.
    custom_header_meta_name: str | None

    #: The names :func:`_ready_made` sets.
    _READY_MADE: Final = ("caching", "max_staleness", "keyword", "custom_header_meta_name")

    def __init__(self) -> None:
        self._merged: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        # Only reached when an attribute is missing: a ready-made value before the first read.
        if name in APIKeySettings._READY_MADE:
            # Answered from this call's own values: a reload() in another thread may remove
            # the attributes again at any moment.
            ready_made = _ready_made(self._values())
            self.__dict__.update(ready_made)
            return ready_made[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _values(self) -> dict[str, Any]:
        if self._merged is None:
            user_values, custom_header = _read_django_settings()
            problems = _problems(user_values, custom_header)
            if problems:
                raise ValueError(" ".join(problem.message for problem in problems))
            merged = {**DEFAULTS, **user_values}
            merged["TRUSTED_PROXIES"] = tuple(
                str(ipaddress.ip_network(network.strip(), strict=False))
                for network in merged["TRUSTED_PROXIES"]
            )
            merged[UPSTREAM_CUSTOM_HEADER_SETTING] = custom_header
            self._merged = merged
        return self._merged

    def problems(self) -> list[SettingProblem]:
        """Every setting that is unknown, of the wrong type or out of range, read afresh
        from Django's settings (the system check ``async_api_key.E001`` reports them)."""
        return _problems(*_read_django_settings())

    def reload(self) -> None:
        """Forget cached values; the next access reads Django's settings again."""
        self._merged = None
        for name in APIKeySettings._READY_MADE:
            self.__dict__.pop(name, None)

    @property
    def namespace(self) -> str:
        return str(self._values()["NAMESPACE"])

    @property
    def hash_algorithm(self) -> str:
        return str(self._values()["HASH_ALGORITHM"])

    @property
    def header(self) -> str | None:
        header = self._values()["HEADER"]
        return None if header is None else str(header)

    @property
    def last_used_interval(self) -> timedelta | None:
        seconds = self._values()["LAST_USED_INTERVAL"]
        return None if seconds is None else timedelta(seconds=float(seconds))

    @property
    def cache_enabled(self) -> bool:
        return bool(self._values()["CACHE_ENABLED"])

    @property
    def cache_ttl(self) -> float:
        return float(self._values()["CACHE_TTL"])

    @property
    def push_changes(self) -> bool:
        return bool(self._values()["PUSH_CHANGES"])

    @property
    def cache_max_entries(self) -> int:
        return int(self._values()["CACHE_MAX_ENTRIES"])

    @property
    def negative_cache_ttl(self) -> float:
        return float(self._values()["NEGATIVE_CACHE_TTL"])

    @property
    def negative_cache_max_entries(self) -> int:
        return int(self._values()["NEGATIVE_CACHE_MAX_ENTRIES"])

    @property
    def shared_cache_alias(self) -> str | None:
        alias = self._values()["SHARED_CACHE_ALIAS"]
        return None if alias is None else str(alias)

    @property
    def shared_cache_ttl(self) -> float:
        return float(self._values()["SHARED_CACHE_TTL"])

    @property
    def trusted_proxy_count(self) -> int:
        return int(self._values()["TRUSTED_PROXY_COUNT"])

    @property
    def trusted_proxies(self) -> tuple[str, ...]:
        """The networks of trusted reverse proxies, normalised (``"10.0.0.0/8"``)."""
        networks: tuple[str, ...] = self._values()["TRUSTED_PROXIES"]
        return networks

    @property
    def rate_limit_cache_alias(self) -> str:
        return str(self._values()["RATE_LIMIT_CACHE_ALIAS"])

    @property
    def leak_policy(self) -> str:
        return str(self._values()["LEAK_POLICY"])

    @property
    def self_service_max_active_keys(self) -> int | None:
        limit = self._values()["SELF_SERVICE_MAX_ACTIVE_KEYS"]
        return None if limit is None else int(limit)

    @property
    def self_service_require_expiry(self) -> bool:
        return bool(self._values()["SELF_SERVICE_REQUIRE_EXPIRY"])

    @property
    def self_service_max_lifetime(self) -> timedelta | None:
        seconds = self._values()["SELF_SERVICE_MAX_LIFETIME"]
        return None if seconds is None else timedelta(seconds=float(seconds))


api_key_settings = APIKeySettings()


@receiver(setting_changed)
def _reload_api_key_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, UPSTREAM_CUSTOM_HEADER_SETTING):
        api_key_settings.reload()
