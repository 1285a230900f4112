"""URLs of the demo project: the Ninja API, the DRF API, the admin, and a customer's
"My API keys" page (with a sign-in page)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView
from shop.api import api
from shop.rest import router
from shop.views import my_api_keys

urlpatterns: list[URLPattern | URLResolver] = [
    path("", RedirectView.as_view(url="/api/docs")),
    path("api/", api.urls),
    path("drf/", include(router.urls)),
    path("admin/", admin.site.urls),
    path("account/keys/", my_api_keys, name="my-api-keys"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # Static files for the admin and Swagger UI under uvicorn (only when DEBUG is on).
    *staticfiles_urlpatterns(),
]
