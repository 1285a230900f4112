"""Reading the raw key from a request: one function both adapters share.

A client sends the key the same way to a Ninja endpoint and to a DRF view:

- ``Authorization: Api-Key <key>`` (the keyword is ``ASYNC_API_KEY['KEYWORD']``,
  compared case-insensitively), or
- ``X-API-Key: <key>`` (the header is ``ASYNC_API_KEY['HEADER']``; ``None`` turns it off).

When the upstream setting ``API_KEY_CUSTOM_HEADER`` (a ``META`` name such as
``"HTTP_X_API_KEY"``) is set, only that header is read, as in
djangorestframework-api-key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .conf import api_key_settings

__all__ = [
    "header_meta_name",
    "key_from_authorization",
    "key_from_header",
    "key_from_request_meta",
]


def header_meta_name(header: str) -> str:
    """Return the ``request.META`` name of an HTTP header (``X-API-Key`` -> ``HTTP_X_API_KEY``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def key_from_authorization(meta: Mapping[str, Any], keyword: str | None = None) -> str | None:
    """Return the key from ``Authorization: <keyword> <key>``, or ``None``."""
    authorization = meta.get("HTTP_AUTHORIZATION")
    if not isinstance(authorization, str):
        return None
    scheme, separator, credentials = authorization.lstrip().partition(" ")
    wanted = api_key_settings.keyword if keyword is None else keyword
    if not separator or (scheme != wanted and scheme.lower() != wanted.lower()):
        return None
    return credentials.strip()


def key_from_header(meta: Mapping[str, Any], meta_name: str) -> str | None:
    """Return the key from the header whose ``META`` name is ``meta_name``, or ``None``."""
    value = meta.get(meta_name)
    if not isinstance(value, str):
        return None
    return value.strip()


def key_from_request_meta(
    meta: Mapping[str, Any], *, keyword: str | None = None, header: str | None = None
) -> str | None:
    """Return the raw key a request carries, or ``None`` if it carries none.

    ``keyword`` and ``header`` override the settings for one adapter instance.
    A present but empty credential is returned as ``""`` (the verifier calls it
    malformed), so "sent nothing" and "sent garbage" stay distinguishable.
    """
    custom_meta_name = api_key_settings.custom_header_meta_name
    if custom_meta_name is not None and header is None:
        return key_from_header(meta, custom_meta_name)
    key = key_from_authorization(meta, keyword)
    if key is not None:
        return key
    header_name = api_key_settings.header if header is None else header
    if header_name:
        return key_from_header(meta, header_meta_name(header_name))
    return None
