"""The one path for key changes: every change that can affect whether a key verifies is
recorded here, and every cache listens.

:func:`record_change` does three things for a change:

1. it tells this process's caches at once (the :data:`keys_changed` signal, ``committed``
   false), so that the changing code never sees its own change undone by a cache;
2. it adds rows to the change log (:mod:`async_api_key.changelog`) *in the current
   transaction*, and on PostgreSQL a ``NOTIFY``: other processes learn of the change when,
   and only when, it commits;
3. it tells this process's caches again once the transaction commits (``committed``
   true): a verification that read the key between the change and the commit saw the
   old row, and what it cached is dropped then.

The models call it for ``save()``, ``delete()`` (cascades included), queryset
``update()`` and ``delete()``, ``revoke()`` and rotation, so the admin, the commands and
imports are covered too. A change made any other way (raw SQL, ``_base_manager``, a change
to an owner that ``get_usable_keys()`` looks at) is made visible by calling
:func:`record_change` in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from functools import partial
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from .changelog import CLOCK_ID, EVERY_KEY, ChangeClock, KeyChange

__all__ = [
    "PUSH_CHANNEL",
    "announce_new_key",
    "arecord_change",
    "change_committed",
    "key_store_label",
    "keys_changed",
    "lock_clock",
    "record_change",
]

#: Sent for every change. ``sender`` is the key model's label (``"app_label.modelname"``);
#: ``prefixes`` is a tuple of lookup ids, or ``None`` for every key of that model;
#: ``committed`` is false for the announcement made before the change commits (this
#: process only) and true once the change is committed, here or in another process;
#: ``created`` (optional, default false) says the keys are new: nothing cached can be stale.
keys_changed: Final = Signal()

#: Sent once a change this process recorded has committed, for what pushes changes to other
#: processes. ``sender`` is the key model's label; ``prefixes`` as for :data:`keys_changed`;
#: ``using`` is the database alias the change was written to.
change_committed: Final = Signal()

#: The PostgreSQL ``LISTEN``/``NOTIFY`` channel that carries changes between processes.
PUSH_CHANNEL: Final = "async_api_key_changes"

#: How long recorded changes are kept. A process that has not read the log for longer
#: holds no cache entry old enough to be affected (``CACHE_TTL`` is capped far below).
RETENTION: Final = timedelta(days=1)

#: Past this many keys, one change stands for every key of the model (one row, one message).
MAX_PREFIXES_PER_CHANGE: Final = 500

#: Old rows are pruned by one change in this many.
_PRUNE_EVERY: Final = 64

#: PostgreSQL refuses ``NOTIFY`` payloads of 8000 bytes or more.
_MAX_PAYLOAD_BYTES: Final = 7900


def key_store_label(model: type[Any]) -> str:
    """The label that names a key model's rows in the change log and the caches: the
    concrete model's, so that a proxy model and its concrete model share their changes."""
    return str(model._meta.concrete_model._meta.label_lower)


def record_change(
    model: type[Any], prefixes: Iterable[str] | None = None, *, using: str | None = None
) -> None:
    """Record that the keys of ``model`` with these lookup ids (``prefix``) changed.

    ``prefixes=None`` stands for every key of the model. ``prefixes`` may be a lazy queryset
    (``Key.objects.filter(owner=o).values_list("prefix", flat=True)``): it is read after the
    change clock is locked, so no concurrent recorded change can slip between the read and
    the change. ``using`` is the database alias the change is written to (default: the
    router's choice for ``model``). Call it inside the transaction that makes the change:
    the record commits, or rolls back, with it.
    """
    if isinstance(prefixes, str):
        raise TypeError("record_change() takes an iterable of lookup ids, not one string.")
    label = key_store_label(model)
    db = using or router.db_for_write(model)
    with transaction.atomic(using=db):
        generation = _advance_clock(db)
        chosen = None if prefixes is None else tuple(sorted({p for p in prefixes if p}))
        if chosen is not None and not chosen:
            return
        if chosen is not None and len(chosen) > MAX_PREFIXES_PER_CHANGE:
            chosen = None
        keys_changed.send(label, prefixes=chosen, committed=False)
        now = timezone.now()
        KeyChange.objects.using(db).bulk_create(
            KeyChange(generation=generation, model_label=label, prefix=prefix, recorded_at=now)
            for prefix in (chosen or (EVERY_KEY,))
        )
        if generation % _PRUNE_EVERY == 0:
            KeyChange.objects.using(db).filter(recorded_at__lt=now - RETENTION).delete()
        _notify(db, label, chosen)
        transaction.on_commit(partial(_announce_committed, label, chosen, db), using=db)


def lock_clock(using: str) -> None:
    """Lock the change clock of ``using`` until the current transaction ends.

    Recorded changes lock the clock before any key row, so that two of them never wait for
    each other in a circle. Code that locks key rows itself and then changes them
    (``select_for_update()`` then ``revoke()``) calls this first; the key queryset's
    ``select_for_update()`` does it on its own.
    """
    if not transaction.get_connection(using).in_atomic_block:
        return
    _advance_clock(using)


async def arecord_change(
    model: type[Any], prefixes: Iterable[str] | None = None, *, using: str | None = None
) -> None:
    """Async twin of :func:`record_change` (a lazy queryset is read in the worker thread)."""
    await sync_to_async(record_change)(model, prefixes, using=using)


def _announce_committed(label: str, prefixes: tuple[str, ...] | None, db: str) -> None:
    keys_changed.send(label, prefixes=prefixes, committed=True)
    change_committed.send(label, prefixes=prefixes, using=db)


def _advance_clock(db: str) -> int:
    """Increment the change clock in the current transaction; return the new generation.

    The row stays locked until the transaction ends, which orders generations by commit.
    """
    clocks = ChangeClock.objects.using(db)
    if not clocks.filter(pk=CLOCK_ID).update(generation=F("generation") + 1):
        try:
            with transaction.atomic(using=db):
                clocks.create(id=CLOCK_ID, generation=1)
        except IntegrityError:  # created meanwhile by another transaction
            clocks.filter(pk=CLOCK_ID).update(generation=F("generation") + 1)
    generation: int = clocks.filter(pk=CLOCK_ID).values_list("generation", flat=True).get()
    return generation


def encode_push(label: str, prefixes: tuple[str, ...] | None) -> str:
    """The ``NOTIFY`` payload for a change; every key of the model if the list is too long."""
    payload = json.dumps({"model": label, "prefixes": prefixes})
    if prefixes is not None and len(payload.encode()) > _MAX_PAYLOAD_BYTES:
        payload = json.dumps({"model": label, "prefixes": None})
    return payload


def _notify(db: str, label: str, prefixes: tuple[str, ...] | None) -> None:
    connection = connections[db]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # Delivered by PostgreSQL when (and only if) the transaction commits.
        cursor.execute("SELECT pg_notify(%s, %s)", [PUSH_CHANNEL, encode_push(label, prefixes)])


def announce_new_key(model: type[Any], prefix: str) -> None:
    """A key with this lookup id was just created: this process stops remembering that
    the lookup id matched nothing. (Other processes remember it ``NEGATIVE_CACHE_TTL``
    seconds at most, and refuse meanwhile: no change to an existing key is involved.)"""
    keys_changed.send(key_store_label(model), prefixes=(prefix,), committed=False, created=True)
