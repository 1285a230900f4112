"""``manage.py listapikeys``: list keys with their metadata (scopes, rate limit, allowed
networks...); never a secret or a hash."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from async_api_key.commands import KeyCommand, key_metadata, list_keys

_COLUMNS = (
    ("prefix", "PREFIX"),
    ("name", "NAME"),
    ("status", "STATUS"),
    ("created", "CREATED"),
    ("expiry_date", "EXPIRES"),
    ("last_used_at", "LAST USED"),
    ("scopes", "SCOPES"),
    ("rate_limit", "RATE"),
    ("allowed_networks", "NETWORKS"),
)


class Command(KeyCommand):
    # As with ``changepassword``: scripts read this command's output, so the project's
    # system-check report (run it with ``manage.py check``) is not mixed into it.
    requires_system_checks = ()
    help = "List active API keys (--all: revoked and expired too). Never shows a secret."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print a JSON array.")
        parser.add_argument("--all", action="store_true", help="Include revoked and expired keys.")
        super().add_arguments(parser)

    async def ahandle(self, *args: Any, **options: Any) -> None:
        api_keys = await list_keys(model=options["model"], include_inactive=options["all"])
        rows = [key_metadata(api_key) for api_key in api_keys]
        if options["json"]:
            self.stdout.write(json.dumps(rows))
            return
        if not rows:
            self.stdout.write("No API keys." if options["all"] else "No active API keys.")
            return
        self.stdout.write(_table(rows))


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [[title for _, title in _COLUMNS]]
    cells += [[_cell(row[name]) for name, _ in _COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )
