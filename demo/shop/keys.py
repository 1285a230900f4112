"""Self-service keys: what a signed-in customer may do on "My API keys" (/account/keys/).

One policy, served by the Ninja API at /api/keys (which the page calls) and by DRF at
/drf/keys/.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from async_api_key.selfservice import SelfServicePolicy

from .models import CustomerAPIKey

#: The scopes a customer may give their keys.
CUSTOMER_SCOPES = frozenset({"orders:read", "orders:write"})


def grantable_scopes(owner: Any) -> frozenset[str]:
    return CUSTOMER_SCOPES


policy = SelfServicePolicy(
    model=CustomerAPIKey,
    owner_field="user",  # the signed-in user owns their keys
    grantable_scopes=grantable_scopes,
    max_active_keys=5,
    max_lifetime=timedelta(days=90),  # a key made without an expiry lasts 90 days
    max_grace_period=timedelta(days=1),
)
