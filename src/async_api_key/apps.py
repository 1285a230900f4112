"""Django app configuration for ``async_api_key``."""

from __future__ import annotations

from importlib import import_module

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

__all__ = [
    "AsyncAPIKeyConfig",
]


class AsyncAPIKeyConfig(AppConfig):
    name = "async_api_key"
    label = "async_api_key"
    verbose_name = _("API keys")
    default_auto_field = "django.db.models.BigAutoField"

    def import_models(self) -> None:
        super().import_models()
        # The leak report's model lives with the rest of secret scanning, not in models.py:
        # registered here, in the phase where Django imports every app's models.
        import_module(f"{self.name}.secret_scanning.models")

    def ready(self) -> None:
        from django.apps import apps

        from . import checks  # noqa: F401  (registers system checks)

        if apps.is_installed("drf_spectacular"):
            # Registers the OpenAPI extension; projects need not import it themselves.
            from .contrib import drf_spectacular  # noqa: F401

        if apps.is_installed("django.contrib.admin"):
            from .secret_scanning import admin  # noqa: F401  (registers the leak report)
