"""The migrated project's endpoints: a DRF view behind its own permission subclass, as the
project wrote it for djangorestframework-api-key, and an async Ninja operation."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from async_api_key.drf import BaseHasAPIKey, HasAPIKey
from async_api_key.ninja import APIKeyAuth, register_error_handler

from .models import Project, ProjectAPIKey


class HasProjectAPIKey(BaseHasAPIKey):
    """The project's permission: it overrides ``has_permission`` to remember the project."""

    model = ProjectAPIKey

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not super().has_permission(request, view):
            return False
        key = self.get_key(request)
        assert key is not None
        request.project = ProjectAPIKey.objects.get_from_key(key).project  # type: ignore[attr-defined]
        return True


class ProjectView(APIView):
    permission_classes = [HasProjectAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"project": request.project.slug})  # type: ignore[attr-defined]


class DefaultModelView(APIView):
    """A view of a project that used djangorestframework-api-key's own ``APIKey``."""

    permission_classes = [HasAPIKey]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


api = NinjaAPI(urls_namespace="upstream_project")
register_error_handler(api)


@api.get("/project", auth=APIKeyAuth(model=ProjectAPIKey))
async def project(request: HttpRequest) -> dict[str, str]:
    api_key = request.auth  # type: ignore[attr-defined]
    assert isinstance(api_key, ProjectAPIKey)
    owner = await Project.objects.aget(pk=api_key.project_id)
    return {"project": owner.slug}


@api.get("/default", auth=APIKeyAuth())
async def default_model(request: HttpRequest) -> dict[str, bool]:
    return {"ok": True}


urlpatterns: list[URLPattern | URLResolver] = [
    path("drf/project", ProjectView.as_view()),
    path("drf/default", DefaultModelView.as_view()),
    path("ninja/", api.urls),
]
