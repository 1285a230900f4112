"""The admin of the custom key model, as a project would register it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from async_api_key.admin import APIKeyModelAdmin

from .models import Organization, OrganizationAPIKey

if TYPE_CHECKING:
    _OrganizationAdminBase = admin.ModelAdmin[Organization]
else:
    _OrganizationAdminBase = admin.ModelAdmin


@admin.register(Organization)
class OrganizationAdmin(_OrganizationAdminBase):
    search_fields = ("name",)


@admin.register(OrganizationAPIKey)
class OrganizationAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "organization")
    list_filter = (*APIKeyModelAdmin.list_filter, "organization")
    search_fields = (*APIKeyModelAdmin.search_fields, "organization__name")
