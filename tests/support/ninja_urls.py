"""URLs serving the Ninja test APIs.

Select them with ``@pytest.mark.urls("tests.support.ninja_urls")``.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from tests.support.ninja_app import api, bare_api

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/", api.urls),
    path("bare/", bare_api.urls),
]
