"""A custom key model with an owner, as a project would write one."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import QuerySet

from async_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class Organization(models.Model):
    name = models.CharField(max_length=128)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class OrganizationAPIKeyManager(BaseAPIKeyManager["OrganizationAPIKey"]):
    def get_usable_keys(self) -> QuerySet[OrganizationAPIKey]:
        return super().get_usable_keys().filter(organization__active=True)

    def cache_scope(self) -> str:
        return "organization-keys"  # the answer depends on stored data only


#: Key names that ``VisibleKeysManager`` leaves out, read on every query: state of the
#: moment, as a multi-tenant project's current tenant would be.
HIDDEN_KEY_NAMES: set[str] = {"hidden"}


class VisibleKeysManager(BaseAPIKeyManager["OrganizationAPIKey"]):
    """A manager that narrows its queryset by state of the moment."""

    def get_queryset(self) -> QuerySet[OrganizationAPIKey]:  # type: ignore[override]
        return super().get_queryset().exclude(name__in=sorted(HIDDEN_KEY_NAMES))


class PlainKeysManager(BaseAPIKeyManager["OrganizationAPIKey"]):
    """The base notion of usable keys, beside the narrower default manager."""


class OrganizationAPIKey(AbstractAPIKey):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )

    objects: ClassVar[OrganizationAPIKeyManager] = OrganizationAPIKeyManager()
    visible: ClassVar[VisibleKeysManager] = VisibleKeysManager()
    plain: ClassVar[PlainKeysManager] = PlainKeysManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False
