"""The secret scanning endpoint with its defaults, for ``include()``::

    path("secret-scanning/github/", include("async_api_key.secret_scanning.urls")),

Its URL name is ``async_api_key_secret_scanning:github``.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from .views import GitHubSecretScanningView

__all__ = [
    "app_name",
    "urlpatterns",
]

app_name = "async_api_key_secret_scanning"

urlpatterns: list[URLPattern] = [
    path("", GitHubSecretScanningView.as_view(), name="github"),
]
