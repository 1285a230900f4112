"""``manage.py issuekeysnaively NAME...``: the trap the docs warn against, ``asyncio.run()``
inside ``handle()``, kept to show what it breaks."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from async_api_key.models import APIKey


class Command(BaseCommand):
    help = "Create one API key per name with asyncio.run() (do not copy this)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        async def issue_all() -> list[tuple[APIKey, str]]:
            return list(
                await asyncio.gather(
                    *(APIKey.objects.acreate_key(name=name) for name in options["names"])
                )
            )

        for api_key, raw_key in asyncio.run(issue_all()):
            self.stdout.write(f"{api_key.name}: {raw_key}")
