from __future__ import annotations

from django.apps import AppConfig


class AdminCustomAppConfig(AppConfig):
    name = "tests.support.admin_custom_app"
    label = "admin_custom_app"
    default_auto_field = "django.db.models.BigAutoField"
