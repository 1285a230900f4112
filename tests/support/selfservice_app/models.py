"""Key models a product gives its users: keys a user owns, and keys a team owns."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models

from async_api_key.models import AbstractAPIKey, BaseAPIKeyManager

__all__ = ["Team", "TeamAPIKey", "TeamAPIKeyManager", "UserAPIKey", "UserAPIKeyManager"]


class Team(models.Model):
    name = models.CharField(max_length=100)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teams")

    def __str__(self) -> str:
        return self.name


class UserAPIKeyManager(BaseAPIKeyManager["UserAPIKey"]):
    pass


class TeamAPIKeyManager(BaseAPIKeyManager["TeamAPIKey"]):
    pass


class UserAPIKey(AbstractAPIKey):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )

    objects: ClassVar[UserAPIKeyManager] = UserAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False


class TeamAPIKey(AbstractAPIKey):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")

    objects: ClassVar[TeamAPIKeyManager] = TeamAPIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False
