"""The library's settings: one object, read in one place, with documented defaults.

Projects configure the library with one dictionary in their Django settings::

    ASYNC_API_KEY = {"NAMESPACE": "acme_live", "LAST_USED_INTERVAL": 300}

Values are looked up when used (and re-read when Django's ``setting_changed``
signal fires), so ``override_settings`` in a project's tests takes effect.
The upstream setting ``API_KEY_CUSTOM_HEADER`` of djangorestframework-api-key is
honoured too, so migrating projects keep their configuration.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = [
    "DEFAULTS",
    "APIKeySettings",
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
    # How many reverse proxies in front of the app append to X-Forwarded-For (0: use REMOTE_ADDR).
    "TRUSTED_PROXY_COUNT": 0,
    # The Django cache alias that counts requests for per-key rate limits.
    "RATE_LIMIT_CACHE_ALIAS": "default",
}


class APIKeySettings:
    """Typed access to ``settings.ASYNC_API_KEY`` merged over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._merged: dict[str, Any] | None = None
        # Read on every cache hit, so kept ready-made (set with ``_merged``).
        self._caching = False
        self._max_staleness = 0.0

    def _values(self) -> dict[str, Any]:
        if self._merged is None:
            user_values: dict[str, Any] = dict(getattr(settings, SETTINGS_NAME, None) or {})
            unknown = sorted(set(user_values) - set(DEFAULTS))
            if unknown:
                raise ValueError(f"Unknown {SETTINGS_NAME} settings: {', '.join(unknown)}.")
            merged = {**DEFAULTS, **user_values}
            _validate_numbers(merged)
            self._caching = bool(merged["CACHE_ENABLED"]) and float(merged["CACHE_TTL"]) > 0
            self._max_staleness = float(merged["MAX_STALENESS"])
            self._merged = merged
            # Read once here: getattr() of an unset setting raises and catches inside
            # Django's lazy settings, which costs microseconds on every request.
            custom = getattr(settings, UPSTREAM_CUSTOM_HEADER_SETTING, None)
            self._merged[UPSTREAM_CUSTOM_HEADER_SETTING] = None if custom is None else str(custom)
        return self._merged

    def reload(self) -> None:
        """Forget cached values; the next access reads Django's settings again."""
        self._merged = None

    @property
    def namespace(self) -> str:
        return str(self._values()["NAMESPACE"])

    @property
    def hash_algorithm(self) -> str:
        return str(self._values()["HASH_ALGORITHM"])

    @property
    def keyword(self) -> str:
        return str(self._values()["KEYWORD"])

    @property
    def header(self) -> str | None:
        header = self._values()["HEADER"]
        return None if header is None else str(header)

    @property
    def custom_header_meta_name(self) -> str | None:
        """The upstream ``API_KEY_CUSTOM_HEADER`` (a ``META`` name), if the project sets it."""
        value: str | None = self._values()[UPSTREAM_CUSTOM_HEADER_SETTING]
        return value

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
    def caching(self) -> bool:
        """Whether verifications are cached at all (``CACHE_ENABLED`` and a positive TTL)."""
        if self._merged is None:
            self._values()
        return self._caching

    @property
    def max_staleness(self) -> float:
        if self._merged is None:
            self._values()
        return self._max_staleness

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
    def rate_limit_cache_alias(self) -> str:
        return str(self._values()["RATE_LIMIT_CACHE_ALIAS"])


#: The longest ``CACHE_TTL``: changes are kept in the log far longer than any entry lives.
MAX_CACHE_TTL: Final = 3600.0


def _validate_numbers(values: dict[str, Any]) -> None:
    """Refuse settings of the wrong type or out of range, where they are first read (and so
    in ``manage.py check``, ``async_api_key.E001``), never on a request."""
    for name, upper in (("CACHE_TTL", MAX_CACHE_TTL), ("MAX_STALENESS", 60.0)):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{SETTINGS_NAME}['{name}'] must be a number of seconds.")
        if not 0 <= value <= upper:
            raise ValueError(f"{SETTINGS_NAME}['{name}'] must be between 0 and {upper:g} seconds.")
    if values["MAX_STALENESS"] <= 0:
        raise ValueError(f"{SETTINGS_NAME}['MAX_STALENESS'] must be more than 0 seconds.")
    for name in ("NEGATIVE_CACHE_TTL", "SHARED_CACHE_TTL"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise ValueError(f"{SETTINGS_NAME}['{name}'] must be a number of seconds, 0 or more.")
    for name in ("CACHE_MAX_ENTRIES", "NEGATIVE_CACHE_MAX_ENTRIES", "TRUSTED_PROXY_COUNT"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{SETTINGS_NAME}['{name}'] must be a whole number, 0 or more.")
    interval = values["LAST_USED_INTERVAL"]
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0
    ):
        raise ValueError(
            f"{SETTINGS_NAME}['LAST_USED_INTERVAL'] must be a number of seconds, 0 or more, "
            "or None."
        )
    for name in ("CACHE_ENABLED", "PUSH_CHANGES"):
        if not isinstance(values[name], bool):
            raise ValueError(f"{SETTINGS_NAME}['{name}'] must be True or False.")


api_key_settings = APIKeySettings()


@receiver(setting_changed)
def _reload_api_key_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, UPSTREAM_CUSTOM_HEADER_SETTING):
        api_key_settings.reload()
