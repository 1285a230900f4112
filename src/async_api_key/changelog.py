"""The change log: a table of key changes that every process reads to keep its cache true.

Each change to a key (revocation, update, deletion, rotation, ...) adds rows here in the
same transaction as the change itself, so a change and its record become visible together,
when the transaction commits, and vanish together if it rolls back. Processes read the rows
added since they last looked (:mod:`async_api_key.propagation`).

Rows are numbered by a single counter row (:class:`ChangeClock`) that each recording
transaction increments. The increment locks that row until commit, so generations become
visible in the order they were taken: a reader that has seen generation *n* has seen every
change before it. (An auto-increment id would not do: on PostgreSQL a transaction that took
id 10 can commit after one that took id 11, and a reader past 11 would never see 10.)
"""

from __future__ import annotations

from django.db import models

__all__ = [
    "ChangeClock",
    "KeyChange",
]

#: The primary key of the one :class:`ChangeClock` row.
CLOCK_ID = 1
#: A recorded change whose ``prefix`` is this stands for every key of its model.
EVERY_KEY = ""


class ChangeClock(models.Model):
    """One row: the generation of the latest recorded change."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    generation = models.BigIntegerField(default=0)

    class Meta:
        app_label = "async_api_key"
        db_table = "async_api_key_changeclock"

    def __str__(self) -> str:
        return f"generation {self.generation}"


class KeyChange(models.Model):
    """A key whose cached verifications must be dropped, recorded with its change."""

    id = models.BigAutoField(primary_key=True)
    generation = models.BigIntegerField(db_index=True)
    #: ``app_label.modelname`` of the key model.
    model_label = models.CharField(max_length=200)
    #: The key's public lookup id, or :data:`EVERY_KEY`.
    prefix = models.CharField(max_length=255, blank=True)  # custom models may widen theirs
    recorded_at = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "async_api_key"
        db_table = "async_api_key_keychange"

    def __str__(self) -> str:
        return f"{self.model_label} {self.prefix or '*'} @ {self.generation}"
