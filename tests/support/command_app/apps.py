from __future__ import annotations

from django.apps import AppConfig


class CommandAppConfig(AppConfig):
    name = "tests.support.command_app"
    label = "command_app"
