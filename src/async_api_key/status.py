"""The status an operator sees for a key (active, expired or revoked): admin and commands.

"Active" means neither revoked nor expired. A custom manager's ``get_usable_keys()``
may narrow usable keys further (for example to keys of active owners); the verifier
applies that, the status does not.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    from .models import AbstractAPIKey

__all__ = [
    "KeyStatus",
    "filter_by_status",
    "key_status",
]

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")


class KeyStatus(str, Enum):
    """Where a key stands; revoked wins over expired."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> _StrPromise:
        return _LABELS[self]


_LABELS = {
    KeyStatus.ACTIVE: _("active"),
    KeyStatus.EXPIRED: _("expired"),
    KeyStatus.REVOKED: _("revoked"),
}


def key_status(api_key: AbstractAPIKey) -> KeyStatus:
    """Return the status of one key."""
    if api_key.revoked:
        return KeyStatus.REVOKED
    if api_key.has_expired:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE


def filter_by_status(queryset: QuerySet[_KeyT], status: KeyStatus) -> QuerySet[_KeyT]:
    """Narrow ``queryset`` to the keys whose :func:`key_status` is ``status``."""
    now = timezone.now()
    if status is KeyStatus.REVOKED:
        return queryset.filter(revoked=True)
    if status is KeyStatus.EXPIRED:
        return queryset.filter(revoked=False, expiry_date__lte=now)
    return queryset.filter(revoked=False).filter(
        Q(expiry_date__isnull=True) | Q(expiry_date__gt=now)
    )
