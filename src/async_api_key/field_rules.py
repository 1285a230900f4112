"""The rules of a key's policy fields and of the durations operators type, in one place.

How text splits into scopes and networks, how ``scopes``, ``allowed_networks`` and
``rate_limit`` are validated and normalised, and how a duration or a rotation's grace period
is read. The model's ``save()`` and ``create_key``, the admin's form, the commands and the
import all use these, and each turns :class:`InvalidFieldValue` into its own kind of error
(``ValidationError``, ``CommandError``) in one place. Messages never echo what could be most
of a key (:func:`~async_api_key.redaction.redact`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final

from .networks import validate_networks
from .ratelimit import validate_rate
from .redaction import quoted
from .scopes import validate_scopes

__all__ = [
    "POLICY_FIELDS",
    "InvalidFieldValue",
    "clean_policy_field",
    "parse_duration",
    "parse_grace_period",
    "policy_field_errors",
    "split_networks",
    "split_scopes",
]

#: The key fields whose stored value decides a request's fate beyond the key itself.
POLICY_FIELDS: Final = ("scopes", "allowed_networks", "rate_limit")

_SCOPE_SEPARATORS_RE: Final = re.compile(r"[,\n\r]+")
_NETWORK_SEPARATORS_RE: Final = re.compile(r"[,\s]+")
_DURATION_RE: Final = re.compile(r"\A\s*(?P<amount>[0-9]+)\s*(?P<unit>[dhm])\s*\Z")
_ZERO_DURATION_RE: Final = re.compile(r"\A\s*0+\s*[dhm]?\s*\Z")
_DURATION_UNITS: Final = {"d": "days", "h": "hours", "m": "minutes"}


class InvalidFieldValue(ValueError):
    """A value a key field cannot take; ``field`` names the field (or ``"duration"``...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def split_scopes(text: str) -> list[str]:
    """Split comma- or line-separated scopes, dropping blanks (not validated)."""
    return [part.strip() for part in _SCOPE_SEPARATORS_RE.split(text) if part.strip()]


def split_networks(text: str) -> list[str]:
    """Split networks separated by commas, spaces or lines, dropping blanks (not validated)."""
    return [part for part in _NETWORK_SEPARATORS_RE.split(text) if part]


def _clean_list(validate: Callable[[list[Any]], list[str]]) -> Callable[[object], object]:
    def clean(value: object) -> object:
        if not isinstance(value, list | tuple):
            raise ValueError("Enter a list of strings.")
        return validate(list(value))

    return clean


def _clean_rate(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('Enter a rate such as "100/min", or nothing.')
    return validate_rate(value)


_CLEANERS: Final[dict[str, Callable[[object], object]]] = {
    "scopes": _clean_list(validate_scopes),
    "allowed_networks": _clean_list(validate_networks),
    "rate_limit": _clean_rate,
}


def clean_policy_field(name: str, value: object) -> Any:
    """Return ``value`` validated and normalised for the policy field ``name``, or raise
    :class:`InvalidFieldValue`."""
    try:
        return _CLEANERS[name](value)
    except InvalidFieldValue:
        raise
    except ValueError as exc:
        raise InvalidFieldValue(name, str(exc)) from None


def policy_field_errors(values: Mapping[str, object]) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean every policy field present in ``values``: ``(cleaned values, errors by field)``."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in POLICY_FIELDS:
        if name in values:
            try:
                cleaned[name] = clean_policy_field(name, values[name])
            except InvalidFieldValue as exc:
                errors[name] = str(exc)
    return cleaned, errors


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h`` or ``90m`` into a positive :class:`~datetime.timedelta`."""
    match = _DURATION_RE.match(text)
    if match is None or int(match["amount"]) == 0:
        raise InvalidFieldValue(
            "duration",
            f"Invalid duration {quoted(text)}: use a positive number of days, hours or minutes, "
            "such as 30d, 12h or 90m.",
        )
    return timedelta(**{_DURATION_UNITS[match["unit"]]: int(match["amount"])})


def parse_grace_period(text: str) -> timedelta:
    """Parse a rotation's grace period: ``0`` (none) or a duration such as ``24h`` or ``30m``."""
    if _ZERO_DURATION_RE.match(text):
        return timedelta(0)
    match = _DURATION_RE.match(text)
    if match is None:
        raise InvalidFieldValue(
            "grace_period",
            f"Invalid grace period {quoted(text)}: use 0 or a number of days, hours or minutes, "
            "such as 24h, 30m or 7d.",
        )
    return timedelta(**{_DURATION_UNITS[match["unit"]]: int(match["amount"])})
