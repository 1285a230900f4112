"""The alert endpoint of GitHub's secret scanning partner program: a plain Django view.

Mount it with one line, either with the defaults::

    path("secret-scanning/github/", include("async_api_key.secret_scanning.urls")),

or configured::

    path("secret-scanning/github/", GitHubSecretScanningView.as_view(policy="notify")),

One request, top to bottom: size (413) -> signature headers (401) -> the publisher's key
(401 if unknown after one refresh, 503 if it cannot be fetched) -> signature over the raw
body (401) -> JSON (400) -> each match (one thread hop; 503 if the database fails) -> 200
with the feedback array. Nothing is read from the body or the database before the
signature holds, so an unsigned request never revokes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import Error as DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from async_api_key.conf import api_key_settings
from async_api_key.models import AbstractAPIKey
from async_api_key.reporting import masks_key_locals

from .alerts import (
    DEFAULT_KEY_MODEL,
    LeakPolicy,
    MalformedAlert,
    parse_alert,
    report_leaks,
)
from .publisher_keys import PublisherKeySource, PublisherKeysUnavailable, github_publisher_keys
from .signatures import is_signed_by, load_publisher_key

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "GitHubSecretScanningView",
    "leak_policy",
]

logger = logging.getLogger("async_api_key")

#: The largest alert accepted, in bytes: GitHub sends matches in small batches.
DEFAULT_MAX_BODY_BYTES = 1_000_000
#: Longest key identifier looked up; longer ones are refused unread.
_MAX_KEY_IDENTIFIER_LENGTH = 200


def leak_policy(value: LeakPolicy | str | None) -> LeakPolicy:
    """The policy a view applies: its own, or else the ``LEAK_POLICY`` setting's."""
    return LeakPolicy(api_key_settings.leak_policy if value is None else value)


def _refusal(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


@method_decorator(csrf_exempt, name="dispatch")
class GitHubSecretScanningView(View):
    """Receive GitHub's secret scanning alerts for our keys (POST only).

    Every attribute below can be given to :meth:`as_view`.
    """

    http_method_names = ["post"]  # noqa: RUF012  (Django's own attribute, a list)
    #: Recorded on each leak, and sent with ``api_key_leaked``.
    publisher: str = "github"
    #: Where the signing keys come from; ``None``: GitHub's published keys, fetched and cached.
    key_source: PublisherKeySource | None = None
    #: The key models a token may belong to (models or ``"app_label.ModelName"`` labels).
    key_models: Sequence[type[AbstractAPIKey] | str] = (DEFAULT_KEY_MODEL,)
    #: ``"revoke"`` (revoke live keys at once) or ``"notify"`` (record and signal only);
    #: ``None``: the ``LEAK_POLICY`` setting (default ``"revoke"``), read on each alert.
    policy: LeakPolicy | str | None = None
    #: Bodies larger than this many bytes are refused (413) before they are read.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Mistakes surface when the URLconf loads, not when the first alert arrives.
        policy = initkwargs.get("policy", cls.policy)
        if policy is not None and policy not in {p.value for p in LeakPolicy}:
            raise ImproperlyConfigured(f"policy must be 'revoke' or 'notify', not {policy!r}.")
        max_body_bytes = initkwargs.get("max_body_bytes", cls.max_body_bytes)
        if not isinstance(max_body_bytes, int) or max_body_bytes <= 0:
            raise ImproperlyConfigured("max_body_bytes must be a positive whole number.")
        return super().as_view(**initkwargs)

    @masks_key_locals
    async def post(self, request: HttpRequest) -> HttpResponse:
        body = self._read_body(request)
        if body is None:
            return _refusal(413, f"The body is larger than {self.max_body_bytes} bytes.")
        key_identifier = request.headers.get("Github-Public-Key-Identifier", "")
        signature = request.headers.get("Github-Public-Key-Signature", "")
        if not key_identifier or not signature:
            return _refusal(401, "The alert is not signed.")
        if len(key_identifier) > _MAX_KEY_IDENTIFIER_LENGTH:
            return _refusal(401, "The alert is signed by an unknown key.")
        source = self.key_source if self.key_source is not None else github_publisher_keys
        try:
            # May fetch the keys over the network: a thread of its own, not the one the ORM uses.
            pem = await sync_to_async(source.public_key, thread_sensitive=False)(key_identifier)
        except PublisherKeysUnavailable as exc:
            logger.error("Secret scanning alert refused: %s", exc)
            return _refusal(503, "The publisher's keys are unavailable; try again later.")
        public_key = None if pem is None else load_publisher_key(pem)
        if public_key is None:
            return _refusal(401, "The alert is signed by an unknown key.")
        if not is_signed_by(public_key, body, signature):
            logger.warning("Secret scanning alert refused: the signature does not match.")
            return _refusal(401, "The signature does not match the body.")
        try:
            matches = parse_alert(body)
        except MalformedAlert as exc:
            return _refusal(400, str(exc))
        try:
            feedback = await sync_to_async(report_leaks)(
                matches,
                key_models=self.key_models,
                policy=leak_policy(self.policy),
                publisher=self.publisher,
            )
        except DatabaseError as exc:
            logger.error(
                "Secret scanning alert not processed: the key store is unavailable (%s)",
                type(exc).__name__,
            )
            return _refusal(503, "The key store is unavailable; try again later.")
        return JsonResponse(feedback, safe=False)

    def _read_body(self, request: HttpRequest) -> bytes | None:
        """The raw body, or ``None`` if it is over the bound: a declared length over it is
        refused unread, and no more than one byte past it is ever read."""
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > self.max_body_bytes:
            return None
        body = request.read(self.max_body_bytes + 1)
        return None if len(body) > self.max_body_bytes else body
