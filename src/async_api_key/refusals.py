"""The one table from a verification's outcome to its HTTP answer.

Every outcome has one refusal kind, and the kind decides the status, the ``WWW-Authenticate``
challenge, and the body's shape; the reason decides the words. Both adapters answer from this
table, each mapping the kinds to its framework's exceptions in one place, so that a request
gets the same status, body and headers from a Django-Ninja operation and from a DRF view.

==============  ======  ===========================  ==========================================
kind            status  challenge                    body
==============  ======  ===========================  ==========================================
``NONE``        200     no                           (the request proceeds)
``CHALLENGE``   401     ``Api-Key realm="api"``      no key: ``{"detail"}`` in DRF's own words;
                                                     a bad key: ``{"detail", "code"}``
``FORBIDDEN``   403     no                           ``{"detail", "code"}`` (``missing_scopes``
                                                     for a scope refusal)
``UNAVAILABLE`` 503     no                           ``{"detail", "code"}``
==============  ======  ===========================  ==========================================

Every bad key gets the one code ``invalid_api_key``: a client cannot tell an unknown key from
a revoked or expired one (no oracle).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Final

from .reasons import POLICY_REASONS, Reason

__all__ = [
    "NOT_PROVIDED_DETAIL",
    "REALM",
    "RefusalKind",
    "challenge",
    "error_body",
    "error_code",
    "error_detail",
    "refusal_kind",
    "status_code",
]

#: The realm of the ``WWW-Authenticate`` challenge.
REALM: Final = "api"

#: DRF's own answer to a request without credentials, which DRF sends whatever the
#: authentication classes: the Ninja adapter answers a missing key in the same words.
NOT_PROVIDED_DETAIL: Final = "Authentication credentials were not provided."


class RefusalKind(str, Enum):
    """How a verification's outcome is answered over HTTP."""

    #: Accepted: the request proceeds.
    NONE = "none"
    #: No usable key (missing, malformed, unknown, revoked, ...): 401 with a challenge.
    CHALLENGE = "challenge"
    #: A genuine key that policy refuses here (a scope, an address): 403.
    FORBIDDEN = "forbidden"
    #: The key store could not be reached; nothing was decided: 503.
    UNAVAILABLE = "unavailable"


_STATUS: Final = {
    RefusalKind.NONE: 200,
    RefusalKind.CHALLENGE: 401,
    RefusalKind.FORBIDDEN: 403,
    RefusalKind.UNAVAILABLE: 503,
}


def refusal_kind(reason: Reason) -> RefusalKind:
    """The kind of answer ``reason`` gets."""
    if reason is Reason.VALID:
        return RefusalKind.NONE
    if reason in POLICY_REASONS:
        return RefusalKind.FORBIDDEN
    if reason is Reason.UNAVAILABLE:
        return RefusalKind.UNAVAILABLE
    return RefusalKind.CHALLENGE


def status_code(reason: Reason) -> int:
    """The HTTP status both adapters answer with: 200, 401, 403 or 503."""
    return _STATUS[refusal_kind(reason)]


def error_code(reason: Reason) -> str:
    """The machine-readable code of a refusal, the same on both adapters."""
    kind = refusal_kind(reason)
    if kind is RefusalKind.FORBIDDEN or kind is RefusalKind.NONE:
        return reason.value
    if kind is RefusalKind.UNAVAILABLE:
        return "api_key_verification_unavailable"
    return "invalid_api_key"


def error_detail(reason: Reason, missing_scopes: Sequence[str] = ()) -> str:
    """A human-readable message for a refused request, safe to send to the client."""
    if reason is Reason.INSUFFICIENT_SCOPE:
        return "This API key lacks the required scope(s): " + ", ".join(missing_scopes)
    if reason is Reason.IP_NOT_ALLOWED:
        return "This API key may not be used from this address."
    if reason is Reason.UNAVAILABLE:
        return "API key verification is temporarily unavailable. Try again later."
    if reason is Reason.VALID:
        return ""
    if reason is Reason.MISSING:
        return NOT_PROVIDED_DETAIL
    return "Invalid or missing API key."


def error_body(reason: Reason, missing_scopes: Sequence[str] = ()) -> dict[str, object]:
    """The JSON body both adapters send with a refusal (see the table above)."""
    body: dict[str, object] = {"detail": error_detail(reason, missing_scopes)}
    if reason is Reason.MISSING:
        return body  # as DRF words it: no code
    body["code"] = error_code(reason)
    if reason is Reason.INSUFFICIENT_SCOPE:
        body["missing_scopes"] = list(missing_scopes)
    return body


def challenge(keyword: str, realm: str = REALM) -> str:
    """The ``WWW-Authenticate`` value of a 401: ``Api-Key realm="api"``."""
    return f'{keyword} realm="{realm}"'
