"""Why a verification ended as it did: the stable reasons that logs, signals and answers use.

A module of its own so that the verifier (which decides) and the refusal table (which says
how each reason is answered over HTTP) share one definition without importing each other.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["POLICY_REASONS", "Reason"]


class Reason(str, Enum):
    """Why a verification ended as it did. The values are stable: log and match on them."""

    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    INVALID_SECRET = "invalid_secret"  # noqa: S105  (a reason, not a secret)
    REVOKED = "revoked"
    EXPIRED = "expired"
    #: The key is genuine but the manager's ``get_usable_keys()`` leaves it out.
    UNUSABLE = "unusable"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    #: The key is genuine but the request comes from outside its allowed networks.
    IP_NOT_ALLOWED = "ip_not_allowed"
    #: The key store could not be reached; nothing was decided about the key.
    UNAVAILABLE = "unavailable"

    def __str__(self) -> str:
        return self.value


#: Reasons for which the presented key is genuine and usable, but the request is refused
#: by policy: adapters answer 403 and stop trying other authentication methods.
POLICY_REASONS: Final = frozenset({Reason.INSUFFICIENT_SCOPE, Reason.IP_NOT_ALLOWED})
