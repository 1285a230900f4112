"""``manage.py createapikey``: create a key and print only it, once.

So ``KEY=$(python manage.py createapikey --name ci)`` works.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from async_api_key.commands import (
    KeyCommand,
    create_key,
    key_metadata,
    parse_duration,
    parse_expiry_date,
)
from async_api_key.field_rules import split_networks, split_scopes


class Command(KeyCommand):
    # As with ``changepassword``: scripts read this command's output, so the project's
    # system-check report (run it with ``manage.py check``) is not mixed into it.
    requires_system_checks = ()
    help = (
        "Create an API key and print it on stdout, once: it is stored only as a hash. "
        "With --json, print one JSON object with the key and its metadata."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="A free-form name for the key.")
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-in", metavar="DURATION", help="Lifetime such as 30d, 12h or 90m."
        )
        expiry.add_argument(
            "--expiry-date",
            metavar="ISO_DATE",
            help="Expiry as ISO 8601; without an offset, in the project's TIME_ZONE.",
        )
        parser.add_argument(
            "--scopes", default="", help="Comma-separated scopes, such as orders:read,orders:*."
        )
        parser.add_argument(
            "--rate",
            default="",
            metavar="RATE",
            help="A rate limit for the key, such as 100/min or 5000/day (default: none).",
        )
        parser.add_argument(
            "--allowed-networks",
            default="",
            metavar="CIDRS",
            help=(
                "Comma-separated client networks allowed to use the key, such as "
                "10.0.0.0/8,2001:db8::/32 (default: any address)."
            ),
        )
        super().add_arguments(parser)
        parser.add_argument(
            "--owner", metavar="PK", help="Primary key of the owner of a custom key model."
        )
        parser.add_argument(
            "--owner-field",
            metavar="FIELD",
            help="The owner foreign key, if the key model has several.",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    async def ahandle(self, *args: Any, **options: Any) -> None:
        expires_in = options["expires_in"]
        expiry_date = options["expiry_date"]
        created = await create_key(
            name=options["name"],
            model=options["model"],
            expires_in=None if expires_in is None else parse_duration(expires_in),
            expiry_date=None if expiry_date is None else parse_expiry_date(expiry_date),
            scopes=split_scopes(options["scopes"]),
            rate_limit=options["rate"],
            allowed_networks=split_networks(options["allowed_networks"]),
            owner=options["owner"],
            owner_field=options["owner_field"],
        )
        if options["json"]:
            payload = {"key": created.raw_key, **key_metadata(created.api_key)}
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(created.raw_key)
