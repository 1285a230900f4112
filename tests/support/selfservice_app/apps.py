from __future__ import annotations

from django.apps import AppConfig

__all__ = ["SelfServiceAppConfig"]


class SelfServiceAppConfig(AppConfig):
    name = "tests.support.selfservice_app"
    label = "selfservice_app"
    default_auto_field = "django.db.models.BigAutoField"
