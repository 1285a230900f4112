"""Custom key models the admin must serve: one whose manager narrows ``create_key``, as
documentation-hosting projects write it (keys are made for a project, with a name and expiry
of the manager's choosing), and one with djangorestframework-api-key's string primary key."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from django.db import models
from django.utils import timezone

from async_api_key.models import AbstractAPIKey, AbstractStringIdAPIKey, BaseAPIKeyManager


class Project(models.Model):
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.slug


class BuildAPIKeyManager(BaseAPIKeyManager["BuildAPIKey"]):
    def create_key(self, project: Project) -> tuple[BuildAPIKey, str]:  # type: ignore[override]
        return super().create_key(
            name=project.slug,
            expiry_date=timezone.now() + timedelta(days=3),
            project=project,
        )


class BuildAPIKey(AbstractAPIKey):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="build_keys")

    objects: ClassVar[BuildAPIKeyManager] = BuildAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False


class LegacyAPIKey(AbstractStringIdAPIKey):
    """Its primary key, ``"<prefix>.<hashed key>"``, is given by ``assign_key``."""

    class Meta(AbstractStringIdAPIKey.Meta):
        abstract = False
