"""What another process's change writes, for tests that play that process in this one."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from async_api_key.changelog import ChangeClock, KeyChange
from async_api_key.models import APIKey


def remote_change_log_entry(prefix: str) -> None:
    """The change-log row another process writes for the key ``prefix`` of ``APIKey`` (``""``:
    every key of the model); call it inside that process's transaction."""
    if not ChangeClock.objects.filter(pk=1).update(generation=F("generation") + 1):
        ChangeClock.objects.create(id=1, generation=1)
    KeyChange.objects.create(
        generation=ChangeClock.objects.get(pk=1).generation,
        model_label="async_api_key.apikey",
        prefix=prefix,
        recorded_at=timezone.now(),
    )


def remote_revoke(api_key: APIKey) -> None:
    """The rows another process's ``revoke()`` writes, in one transaction: the key row and the
    change log. No signal reaches this process's caches and the shared tier is not told
    (as if that process's Redis write failed): this process can learn of it from the log alone.
    """
    with transaction.atomic():
        remote_change_log_entry(api_key.prefix)
        APIKey._base_manager.filter(pk=api_key.pk).update(revoked=True)
