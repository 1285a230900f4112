"""``manage.py secretscanning``: print what to register with GitHub's secret scanning partner
program (token type, pattern, alert URL) so that leaked keys are reported to this project."""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "Command",
]

from django.core.management.base import BaseCommand, CommandError, CommandParser

from async_api_key.keys import is_valid_namespace
from async_api_key.secret_scanning.registration import registration


class Command(BaseCommand):
    requires_system_checks = ()
    help = (
        "Print the token type, the regular expression and the alert URL to register with "
        "GitHub's secret scanning partner program."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--namespace", help="The key namespace to find (default: the NAMESPACE setting)."
        )
        parser.add_argument(
            "--base-url",
            default="",
            help="The public origin of this site, such as https://api.example.com.",
        )
        parser.add_argument(
            "--token-type", help="The token type name (default: <namespace>_api_key)."
        )
        parser.add_argument("--json", action="store_true", help="Print a JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        namespace = options["namespace"]
        if namespace is not None and not is_valid_namespace(namespace):
            raise CommandError(f"Not a key namespace: {namespace!r}.")
        details = registration(
            namespace, base_url=options["base_url"], token_type=options["token_type"]
        )
        if options["json"]:
            self.stdout.write(json.dumps(details.as_dict()))
            return
        alert_url = details.alert_url or (
            'not mounted: add path("secret-scanning/github/", '
            'include("async_api_key.secret_scanning.urls")) to your URLconf'
        )
        self.stdout.write(f"Token type:  {details.token_type}")
        self.stdout.write(f"Pattern:     {details.pattern}")
        self.stdout.write(f"Alert URL:   {alert_url}")
        self.stdout.write(f"Public keys: {details.public_keys_url}")
