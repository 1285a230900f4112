"""``manage.py rotateapikey PREFIX``: issue a successor to a key and print only the new key, once.

So ``KEY=$(python manage.py rotateapikey 3xQ9fLm2Ab7Z --grace 24h)`` works.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from async_api_key.commands import (
    KeyCommand,
    key_metadata,
    parse_grace_period,
    rotate_key,
)


class Command(KeyCommand):
    # As with ``changepassword``: scripts read this command's output, so the project's
    # system-check report (run it with ``manage.py check``) is not mixed into it.
    requires_system_checks = ()
    help = (
        "Rotate an API key: issue a successor with the same name, scopes, limits, owner and "
        "expiry, print the new key on stdout once, and let the old key work for the grace "
        "period only. With --json, print one JSON object describing both keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", metavar="PREFIX", help="The prefix of the key to rotate.")
        parser.add_argument(
            "--grace",
            default="0",
            metavar="DURATION",
            help=(
                "How long the old key keeps working: 0 (default: it stops at once) or a "
                "duration such as 24h, 30m or 7d. Never beyond the old key's own expiry."
            ),
        )
        super().add_arguments(parser)
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    async def ahandle(self, *args: Any, **options: Any) -> None:
        grace_period = parse_grace_period(options["grace"])
        rotated = await rotate_key(
            options["prefix"], grace_period=grace_period, model=options["model"]
        )
        if options["json"]:
            payload = {
                "key": rotated.raw_key,
                **key_metadata(rotated.api_key),
                "rotated_from": key_metadata(rotated.old_key),
            }
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(rotated.raw_key)
