"""``manage.py revokeapikey PREFIX...``: revoke keys by prefix; revoking twice is harmless."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from async_api_key.commands import KeyCommand, revoke_keys


class Command(KeyCommand):
    # As with ``changepassword``: scripts read this command's output, so the project's
    # system-check report (run it with ``manage.py check``) is not mixed into it.
    requires_system_checks = ()
    help = (
        "Revoke the API keys with the given prefixes. Idempotent; if any prefix is unknown, "
        "nothing is revoked."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefixes", nargs="+", metavar="PREFIX", help="A key's prefix.")
        super().add_arguments(parser)

    async def ahandle(self, *args: Any, **options: Any) -> None:
        results = await revoke_keys(options["prefixes"], model=options["model"])
        for result in results:
            if result.newly_revoked:
                self.stdout.write(f"Revoked {result.api_key}.")
            else:
                self.stdout.write(f"{result.api_key} was already revoked.")
