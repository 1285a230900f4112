"""Raw API keys in every state a test needs, made one way for the whole suite.

Each ``*_key()`` factory saves what it needs to the database (so it wants ``django_db``) and
returns the raw key a client would present. ``fields`` go to ``APIKey.objects.create_key``.
For another key model, or keys made elsewhere, build on :func:`revoke`,
:func:`wrong_secret_for` and :func:`with_bad_checksum`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from async_api_key.keys import checksum, generate_key
from async_api_key.models import AbstractAPIKey, APIKey

#: Not the shape of a key at all.
MALFORMED_KEY = "definitely not a key"

#: The secret :func:`wrong_secret_for` puts in a key unless told otherwise.
WRONG_SECRET = "z" * 32


def a_second_ago() -> datetime:
    """An expiry date that has just passed."""
    return timezone.now() - timedelta(seconds=1)


def valid_key(**fields: Any) -> str:
    """The raw key of a new, usable ``APIKey`` (named ``"valid"`` unless ``name`` is given)."""
    fields.setdefault("name", "valid")
    return APIKey.objects.create_key(**fields)[1]


def unknown_key(namespace: str = "ak") -> str:
    """A well-formed key with a correct checksum whose lookup id no stored key has."""
    return generate_key(namespace).raw


def wrong_secret_for(lookup: str, secret: str = WRONG_SECRET) -> str:
    """A well-formed key with a correct checksum for the stored lookup id ``lookup``
    (a key's ``prefix``), carrying ``secret`` instead of the key's own secret."""
    body = f"ak_{lookup}_{secret}"
    return body + checksum(body)


def wrong_secret_key(**fields: Any) -> str:
    """A new ``APIKey``'s lookup id with a secret that is not its own."""
    fields.setdefault("name", "x")
    return wrong_secret_for(APIKey.objects.create_key(**fields)[0].prefix)


def revoke(issued: tuple[AbstractAPIKey, str]) -> str:
    """Revoke a key just made (``create_key``'s answer) and return its raw key."""
    api_key, raw = issued
    api_key.revoke()
    return raw


def revoked_key(**fields: Any) -> str:
    """The raw key of a new ``APIKey`` that has been revoked."""
    fields.setdefault("name", "x")
    return revoke(APIKey.objects.create_key(**fields))


def expired_key(**fields: Any) -> str:
    """The raw key of a new ``APIKey`` whose expiry date has just passed."""
    fields.setdefault("name", "x")
    return APIKey.objects.create_key(expiry_date=a_second_ago(), **fields)[1]


def with_bad_checksum(raw: str) -> str:
    """``raw`` with its last character (part of the checksum) changed to another one."""
    return raw[:-1] + ("A" if raw[-1] != "A" else "B")
