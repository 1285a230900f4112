"""A project that used djangorestframework-api-key with a custom key model, after its
migration in place: the import changed to ``AbstractStringIdAPIKey`` and ``makemigrations``
wrote ``0002`` (the ``0001`` migration is what it wrote for djangorestframework-api-key 3.1)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from async_api_key.models import AbstractStringIdAPIKey, BaseAPIKeyManager


class Project(models.Model):
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.slug


class ProjectAPIKeyManager(BaseAPIKeyManager["ProjectAPIKey"]):
    """A manager with its own ``create_key`` signature, as real projects write them."""

    def create_key(  # type: ignore[override]
        self, project: Project, **fields: Any
    ) -> tuple[ProjectAPIKey, str]:
        return super().create_key(name=f"{project.slug} token", project=project, **fields)


class ProjectAPIKey(AbstractStringIdAPIKey):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")

    objects: ClassVar[ProjectAPIKeyManager] = ProjectAPIKeyManager()

    class Meta(AbstractStringIdAPIKey.Meta):
        abstract = False


class Delivery(models.Model):
    """Something of the project's own that points at a key."""

    api_key = models.ForeignKey(ProjectAPIKey, on_delete=models.CASCADE, related_name="deliveries")
    target = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.target
