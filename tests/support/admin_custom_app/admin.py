"""The admin of a key model whose manager narrows ``create_key``, as a project registers it."""

from __future__ import annotations

from django.contrib import admin

from async_api_key.admin import APIKeyModelAdmin

from .models import BuildAPIKey, LegacyAPIKey


@admin.register(BuildAPIKey)
class BuildAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "project")


admin.site.register(LegacyAPIKey, APIKeyModelAdmin)
