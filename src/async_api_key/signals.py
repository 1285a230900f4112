"""Audit signals. Payloads carry key objects and public prefixes, never a raw key.

==========================  ====================================================
signal                      keyword arguments (besides ``sender``, the key model)
==========================  ====================================================
``api_key_created``         ``api_key``
``api_key_revoked``         ``api_key``
``api_key_rotated``         ``api_key`` (the old key), ``new_api_key``
``verification_succeeded``  ``api_key``, ``prefix``
``verification_failed``     ``reason`` (a :class:`~async_api_key.verification.Reason`),
                            ``prefix`` (``None`` for a malformed key)
``api_key_leaked``          ``api_key``, ``prefix``, ``owner`` (the object of the key
                            model's one owner foreign key, or ``None``), ``url``,
                            ``source``, ``publisher``, ``action`` (a
                            :class:`~async_api_key.secret_scanning.models.LeakAction`)
==========================  ====================================================

The three change signals and ``api_key_leaked`` are sent once the change commits (at
once outside a transaction): a change that is rolled back, such as a dry run, sends
nothing.
Verification signals are sent for every presented key except a missing one. On
the async path sync receivers run through ``sync_to_async`` (one extra thread hop
when any is connected); async receivers (Django >= 5.0) run on the event loop.
Keep receivers fast: they run on the request path.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.dispatch import Signal

__all__ = [
    "api_key_created",
    "api_key_leaked",
    "api_key_revoked",
    "api_key_rotated",
    "send_on_commit",
    "verification_failed",
    "verification_succeeded",
]

api_key_created = Signal()
api_key_revoked = Signal()
api_key_rotated = Signal()
verification_succeeded = Signal()
verification_failed = Signal()
#: A secret scanner reported a genuine key found in public (see ``async_api_key.secret_scanning``).
api_key_leaked = Signal()


async def asend(signal: Signal, sender: Any, **payload: Any) -> None:
    """Send ``signal`` from async code without running sync receivers on the event loop."""
    if not signal.receivers or not signal.has_listeners(sender):
        return
    if hasattr(signal, "asend"):  # Django >= 5.0
        await signal.asend(sender, **payload)
    else:  # pragma: no cover - Django 4.2
        await sync_to_async(signal.send)(sender, **payload)


def send_on_commit(signal: Signal, sender: Any, using: str, **payload: Any) -> None:
    """Send ``signal`` once the transaction on ``using`` commits (at once in autocommit):
    an audit signal must never report a change that was rolled back."""
    if signal.has_listeners(sender):
        transaction.on_commit(partial(signal.send, sender, **payload), using=using)
