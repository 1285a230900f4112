"""Exceptions the library raises to callers of its manager methods."""

from __future__ import annotations

__all__ = [
    "KeyNotRotatable",
    "KeyStoreUnavailable",
]


class KeyStoreUnavailable(Exception):
    """The key store (database) could not be reached, so no key could be verified.

    Raised by ``get_from_key`` / ``is_valid`` and their async twins; the cause is
    chained. Adapters do not raise it: they answer 503. Nothing is granted.
    """

    def __init__(self, message: str = "The API key store is unavailable.") -> None:
        super().__init__(message)


class KeyNotRotatable(Exception):
    """A key cannot be rotated: it is revoked, expired, gone, or already has a successor."""

    def __init__(self, prefix: str, why: str) -> None:
        self.prefix = prefix
        self.why = why
        super().__init__(f"API key {prefix} cannot be rotated: {why}.")
