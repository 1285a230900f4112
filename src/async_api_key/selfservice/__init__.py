"""Self-service key management: an API for a product's own users to list, create, edit,
rotate and revoke the keys they own.

The rules live in :mod:`async_api_key.selfservice.core` (one :class:`SelfServicePolicy`);
:mod:`async_api_key.selfservice.ninja` serves them as a Django-Ninja ``Router`` and
:mod:`async_api_key.selfservice.drf` as a DRF ``ViewSet``, with the same answers.
"""

from __future__ import annotations

from .core import FROM_SETTINGS, SelfServicePolicy, api_key_edited

__all__ = [
    "FROM_SETTINGS",
    "SelfServicePolicy",
    "api_key_edited",
]
