"""Keeping keys out of Django's error reports.

Django's ``SafeExceptionReporterFilter`` already masks ``request.META`` entries whose
names contain ``API``, ``AUTH``, ``KEY``, ``TOKEN``, ... so ``Authorization`` and the
default ``X-API-Key`` header are hidden. A header configured under another name
(``ASYNC_API_KEY["HEADER"] = "X-Partner-Credential"``) is not: use this filter then::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "async_api_key.reporting.APIKeyExceptionReporterFilter"

System check ``async_api_key.W001`` says when it is needed.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

from .conf import api_key_settings
from .headers import header_meta_name


def key_meta_names() -> list[str]:
    """The ``request.META`` names that can carry a key under the current settings."""
    names = ["HTTP_AUTHORIZATION"]
    if api_key_settings.header:
        names.append(header_meta_name(api_key_settings.header))
    if api_key_settings.custom_header_meta_name:
        names.append(api_key_settings.custom_header_meta_name)
    return names


class APIKeyExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's safe filter, plus every header this library reads a key from."""

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta: dict[str, Any] = super().get_safe_request_meta(request)
        for name in key_meta_names():
            if name in meta:
                meta[name] = self.cleansed_substitute
        return meta
