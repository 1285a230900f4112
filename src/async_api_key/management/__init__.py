"""``AsyncCommand``: a management command whose logic is ``async def ahandle()``.

Django runs a command's ``handle()`` on the main thread, which holds the command's database
connection. ``AsyncCommand.handle()`` runs ``ahandle()`` with ``asgiref``'s ``async_to_sync``,
whose thread-sensitive ``sync_to_async`` calls (the ORM's ``a*`` methods, the library's
``acreate_key``...) come back to that thread, so they use that connection and its transaction.
``asyncio.run()`` would not: its ORM calls run on another thread with a connection of their
own, outside the caller's transaction and outside a test's.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, transaction

__all__ = ["AsyncCommand"]


class AsyncCommand(BaseCommand):
    """A management command whose logic is ``async def ahandle(self, *args, **options)``.

    ``ahandle()`` runs in one transaction on :meth:`transaction_database`: if it raises,
    nothing it wrote stays, so no key is left behind whose raw value was never printed.
    What it returns is printed, as ``handle()``'s return value is.
    """

    def transaction_database(self, options: dict[str, Any]) -> str | None:
        """The database whose transaction holds the whole command (``None``: no transaction).

        ``"default"`` unless overridden; override it when the command writes elsewhere.
        """
        return DEFAULT_DB_ALIAS

    def handle(self, *args: Any, **options: Any) -> str | None:
        using = self.transaction_database(options)
        if using is None:
            return async_to_sync(self.ahandle)(*args, **options)
        with transaction.atomic(using=using):
            return async_to_sync(self.ahandle)(*args, **options)

    async def ahandle(self, *args: Any, **options: Any) -> str | None:
        """The command's logic; awaits the ORM's and the library's async methods."""
        raise NotImplementedError("subclasses of AsyncCommand must provide an ahandle() method")
