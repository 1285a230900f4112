"""``manage.py issuekeys NAME...``: a project's async command, as docs/admin-and-commands.md
shows it: one key per name, created concurrently, printed once all exist."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import CommandError, CommandParser

from async_api_key.management import AsyncCommand
from async_api_key.models import APIKey


class Command(AsyncCommand):
    help = "Create one API key per name and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME")
        parser.add_argument(
            "--fail-on",
            metavar="NAME",
            help="Fail once the key of this name exists (what a bug halfway would do).",
        )

    async def ahandle(self, *args: Any, **options: Any) -> None:
        async def issue(name: str) -> tuple[APIKey, str]:
            created = await APIKey.objects.acreate_key(name=name)
            if name == options["fail_on"]:
                raise CommandError(f"Could not finish issuing the key named {name}.")
            return created

        created = await asyncio.gather(*(issue(name) for name in options["names"]))
        for api_key, raw_key in created:
            self.stdout.write(f"{api_key.name}: {raw_key}")
