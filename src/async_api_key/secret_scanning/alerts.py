"""Reading a secret scanning alert and acting on each match: find the key, revoke it (or flag
it), record the leak, announce it, and answer the publisher whether the find was real.

A leak report is not a use of the key: keys are found here without the verifier, so nothing
counts as a verification (no ``last_used_at``, no verification signal, no cache entry).
Sync (the ORM); the endpoint runs :func:`report_leaks` in one thread hop.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from django.apps import apps
from django.db import router, transaction

from async_api_key.conf import api_key_settings
from async_api_key.hashing import check_key
from async_api_key.keys import parse_key
from async_api_key.models import AbstractAPIKey
from async_api_key.reporting import masks_key_locals
from async_api_key.signals import api_key_leaked

from .models import KeyLeak, LeakAction

__all__ = [
    "DEFAULT_KEY_MODEL",
    "LeakPolicy",
    "MalformedAlert",
    "Match",
    "find_leaked_key",
    "key_owner",
    "parse_alert",
    "report_leaks",
]

logger = logging.getLogger("async_api_key")

DEFAULT_KEY_MODEL = "async_api_key.APIKey"

#: Longest value kept of a match's ``url``, ``source`` and ``type`` (the leak row's columns).
_FIELD_LENGTHS = {"url": 2000, "source": 100, "type": 100}


class LeakPolicy(str, Enum):
    """What to do with a live key that was found in public."""

    #: Revoke it at once (the default).
    REVOKE = "revoke"
    #: Record the leak and send ``api_key_leaked``; leave the key working.
    NOTIFY = "notify"


class MalformedAlert(ValueError):
    """The alert's body is not a JSON array of matches (each with a string ``token``)."""


@dataclass(frozen=True)
class Match:
    """One token a scanner found; the token itself is kept out of ``repr()``."""

    token: str = field(repr=False)
    token_type: str
    url: str
    source: str

    @property
    def token_hash(self) -> str:
        """SHA-256 of the token, in hex: how the feedback names it."""
        return hashlib.sha256(self.token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_alert(body: bytes) -> list[Match]:
    """Read an alert: a JSON array of ``{"token", "type", "url", "source"}`` objects.

    ``token`` and ``type`` must be strings; ``url`` and ``source`` may be left out (empty).
    Anything else raises :class:`MalformedAlert`, whose message never quotes a token.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedAlert("The body is not JSON.") from None
    if not isinstance(document, list):
        raise MalformedAlert("The body is not a JSON array.")
    matches = []
    for position, item in enumerate(document):
        if not isinstance(item, dict):
            raise MalformedAlert(f"Match {position} is not an object.")
        token, token_type = item.get("token"), item.get("type")
        if not isinstance(token, str) or not isinstance(token_type, str):
            raise MalformedAlert(f"Match {position} needs a string token and type.")
        url, source = item.get("url", ""), item.get("source", "")
        if not isinstance(url, str) or not isinstance(source, str):
            raise MalformedAlert(f"Match {position} has a url or source that is not a string.")
        matches.append(Match(token=token, token_type=token_type, url=url, source=source))
    return matches


@masks_key_locals
def report_leaks(
    matches: Iterable[Match],
    *,
    key_models: Sequence[type[AbstractAPIKey] | str] = (DEFAULT_KEY_MODEL,),
    policy: LeakPolicy = LeakPolicy.REVOKE,
    publisher: str = "github",
) -> list[dict[str, str]]:
    """Act on each match; return the feedback the publisher gets, one entry per match.

    A token that is a genuine key of one of ``key_models`` (live, expired or already revoked)
    is a ``true_positive``: each find (key, URL, source) is recorded once, the key revoked if
    ``policy`` says so and it is live, and ``api_key_leaked`` sent for each new find once it
    commits. Anything else is a
    ``false_positive``. A replayed alert gets the same answer and changes nothing.
    """
    models = [_key_model(model) for model in key_models]
    # A token may come several times (found at several URLs): looked up, and acted on, once.
    found: dict[str, tuple[AbstractAPIKey, LeakAction] | None] = {}
    feedback = []
    for match in matches:
        digest = match.token_hash
        if digest not in found:
            api_key = find_leaked_key(models, match.token)
            found[digest] = None if api_key is None else (api_key, _action(api_key, policy))
            if api_key is None:
                logger.info(
                    "A reported token is not one of our keys: publisher=%s type=%s source=%s",
                    publisher,
                    match.token_type,
                    match.source,
                )
        genuine = found[digest]
        if genuine is not None:
            _record_leak(*genuine, match, publisher)
        feedback.append(
            {
                "token_hash": digest,
                "token_type": match.token_type,
                "label": "false_positive" if genuine is None else "true_positive",
            }
        )
    return feedback


def _action(api_key: AbstractAPIKey, policy: LeakPolicy) -> LeakAction:
    if api_key.revoked:
        return LeakAction.ALREADY_REVOKED
    return LeakAction.REVOKED if policy is LeakPolicy.REVOKE else LeakAction.FLAGGED


@masks_key_locals
def find_leaked_key(models: Iterable[type[AbstractAPIKey]], token: str) -> AbstractAPIKey | None:
    """The stored key ``token`` is, in any state (revoked and expired too), or ``None``.

    The checksum is checked first, then the lookup id and the stored hash, in every row of
    the table (``_base_manager``: a manager's narrower notion of usable keys does not apply
    to a key found in public). Nothing is written.
    """
    parsed = parse_key(token)
    if parsed is None:
        return None
    for model in models:
        db = router.db_for_write(model)
        stored = model._base_manager.using(db).filter(prefix=parsed.lookup).order_by().first()
        if stored is None:
            continue
        if check_key(parsed.raw, stored.hashed_key, api_key_settings.hash_algorithm).matches:
            return stored
    return None


def key_owner(api_key: AbstractAPIKey) -> Any:
    """The object the key model's owner foreign key points to, or ``None`` if it has none,
    or several (links from key to key, such as a rotation's predecessor, are no owner)."""
    relations = [
        relation
        for relation in api_key._meta.concrete_fields
        if relation.is_relation
        and (relation.many_to_one or relation.one_to_one)
        and not (
            isinstance(relation.related_model, type)
            and issubclass(relation.related_model, AbstractAPIKey)
        )
    ]
    if len(relations) != 1:
        return None
    return getattr(api_key, relations[0].name)


@masks_key_locals
def _record_leak(api_key: AbstractAPIKey, action: LeakAction, match: Match, publisher: str) -> None:
    """Record one find of a genuine key and, the first time it is reported, act on it."""
    model = type(api_key)
    label = model._meta.label_lower
    url = match.url[: _FIELD_LENGTHS["url"]]
    source = match.source[: _FIELD_LENGTHS["source"]]
    fingerprint = hashlib.sha256(
        json.dumps([publisher, label, api_key.prefix, url, source]).encode()
    ).hexdigest()
    db = router.db_for_write(model, instance=api_key)
    with transaction.atomic(using=db):
        _leak, created = KeyLeak.objects.using(db).get_or_create(
            fingerprint=fingerprint,
            defaults={
                "key_model": label,
                "prefix": api_key.prefix,
                "publisher": publisher,
                "token_type": match.token_type[: _FIELD_LENGTHS["type"]],
                "url": url,
                "source": source,
                "action": action,
            },
        )
        if not created:
            return  # a replay, or the same find reported again: already acted on
        if action is LeakAction.REVOKED:
            api_key.revoke()  # idempotent: a second URL in the same alert changes nothing
    logger.warning(
        "A leaked API key was reported: publisher=%s prefix=%s action=%s source=%s url=%s",
        publisher,
        api_key.prefix,
        action.value,
        source,
        url,
    )
    if api_key_leaked.has_listeners(model):
        announce = partial(
            _announce_leak,
            model,
            api_key=api_key,
            prefix=api_key.prefix,
            owner=key_owner(api_key),
            url=url,
            source=source,
            publisher=publisher,
            action=action,
        )
        transaction.on_commit(announce, using=db)


def _announce_leak(model: type[AbstractAPIKey], **payload: Any) -> None:
    """Send ``api_key_leaked`` once the leak is recorded. A receiver that fails is logged and
    does not fail the alert: the publisher's answer and the other receivers do not depend on
    it, and a replay would not send the signal again."""
    for receiver, result in api_key_leaked.send_robust(model, **payload):
        if isinstance(result, Exception):
            logger.error(
                "An api_key_leaked receiver failed (%r): %s: %s; prefix=%s",
                receiver,
                type(result).__name__,
                result,
                payload["prefix"],
            )


def _key_model(model: type[AbstractAPIKey] | str) -> type[AbstractAPIKey]:
    resolved = apps.get_model(model) if isinstance(model, str) else model
    if not issubclass(resolved, AbstractAPIKey):
        raise TypeError(f"{resolved._meta.label} is not an API key model.")
    return resolved
