"""URLs of the demo project: the Ninja API, the DRF API and the admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from shop.api import api
from shop.rest import router

urlpatterns: list[URLPattern | URLResolver] = [
    path("", RedirectView.as_view(url="/api/docs")),
    path("api/", api.urls),
    path("drf/", include(router.urls)),
    path("admin/", admin.site.urls),
    # Static files for the admin and Swagger UI under uvicorn (only when DEBUG is on).
    *staticfiles_urlpatterns(),
]
