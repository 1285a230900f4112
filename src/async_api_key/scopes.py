"""Scope strings: what they may look like and which granted scope satisfies which required one.

A scope is one or more segments joined by ``:`` (``orders``, ``orders:read``,
``billing:invoices:write``); a segment is letters, digits, ``_``, ``-`` or ``.``.
A granted scope may end in the wildcard segment ``*``:

- ``*`` grants every scope;
- ``orders:*`` grants every scope that starts with ``orders:`` (``orders:read``,
  ``orders:items:write``), but not ``orders`` itself;
- any other granted scope grants exactly itself.

A key with no scopes satisfies only endpoints that require none (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

__all__ = [
    "WILDCARD",
    "grants",
    "is_valid_scope",
    "missing_scopes",
    "validate_scopes",
]

WILDCARD: Final = "*"
MAX_SCOPE_LENGTH: Final = 100
_SCOPE_RE: Final = re.compile(r"\A(?:\*|[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)*(?::\*)?)\Z", re.ASCII)


def is_valid_scope(scope: object) -> bool:
    """Tell whether ``scope`` is a well-formed scope string."""
    return (
        isinstance(scope, str) and len(scope) <= MAX_SCOPE_LENGTH and bool(_SCOPE_RE.match(scope))
    )


def validate_scopes(scopes: Iterable[object]) -> list[str]:
    """Return ``scopes`` as a list of unique scope strings, or raise :class:`ValueError`.

    The error names every bad entry, so a caller can show it as it is.
    """
    if isinstance(scopes, str):
        raise ValueError("Scopes must be a list of strings, not a single string.")
    values = list(scopes)
    bad = [scope for scope in values if not is_valid_scope(scope)]
    if bad:
        raise ValueError(
            "Invalid scope(s): "
            + ", ".join(repr(scope) for scope in bad)
            + ". A scope is segments of letters, digits, '_', '-' or '.' joined by ':', "
            "optionally ending in ':*' (or just '*')."
        )
    return [str(scope) for scope in dict.fromkeys(values)]


def grants(granted: str, required: str) -> bool:
    """Tell whether the granted scope ``granted`` satisfies the required scope ``required``."""
    if granted in (WILDCARD, required):
        return True
    if granted.endswith(":" + WILDCARD):
        return required.startswith(granted[:-1])
    return False


def missing_scopes(granted: Sequence[str], required: Iterable[str]) -> tuple[str, ...]:
    """Return the required scopes that no granted scope satisfies, in the order required."""
    return tuple(
        scope for scope in required if not any(grants(candidate, scope) for candidate in granted)
    )
