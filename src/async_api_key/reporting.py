"""Keeping keys out of Django's error reports.

Django's ``SafeExceptionReporterFilter`` masks ``request.META`` entries whose names
contain ``API``, ``KEY``, ``TOKEN``, ... (and, from Django 5.0, ``AUTH``), so the default
``X-API-Key`` header is hidden, and ``Authorization`` too on Django 5.0+. Django 4.2 shows
``Authorization``, and a header configured under another name
(``ASYNC_API_KEY["HEADER"] = "X-Partner-Credential"``) is shown on every version: use
this filter then::

    DEFAULT_EXCEPTION_REPORTER_FILTER = "async_api_key.reporting.APIKeyExceptionReporterFilter"

System check ``async_api_key.W001`` says when it is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any, TypeVar

import django
from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter
from django.views.decorators.debug import sensitive_variables

from .headers import KeySource

__all__ = [
    "APIKeyExceptionReporterFilter",
    "masks_key_locals",
]

_FuncT = TypeVar("_FuncT", bound=Callable[..., Any])


def masks_key_locals(func: _FuncT) -> _FuncT:
    """Hide every local variable of ``func`` (and of the frames it calls) in error reports.

    For the functions that hold a raw key or the request's headers: if an exception
    escapes them (a failing signal receiver, say), Django's reports list frame variables
    of unmarked functions. Django < 5.0 cannot mark coroutine functions; there they are
    returned unchanged.
    """
    if iscoroutinefunction(func) and django.VERSION < (5, 0):
        return func  # pragma: no cover - Django 4.2
    masked: _FuncT = sensitive_variables()(func)
    return masked


def key_meta_names() -> list[str]:
    """The ``request.META`` names that can carry a key under the current settings.

    Those the settings' :class:`~async_api_key.headers.KeySource` reads, and ``Authorization``
    always: it carries a credential whatever its scheme.
    """
    return list(dict.fromkeys(["HTTP_AUTHORIZATION", *KeySource().meta_names()]))


class APIKeyExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's safe filter, plus every header this library reads a key from."""

    def get_safe_request_meta(self, request: HttpRequest) -> dict[str, Any]:
        meta: dict[str, Any] = super().get_safe_request_meta(request)
        for name in key_meta_names():
            if name in meta:
                meta[name] = self.cleansed_substitute
        return meta
