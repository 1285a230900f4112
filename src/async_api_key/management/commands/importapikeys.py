"""``manage.py importapikeys``: copy djangorestframework-api-key's keys into this library's table.

Keys keep their prefix and stored hash, so clients keep their keys; names, revocation, expiry
and creation dates are carried over. The copy runs in one transaction and can run again: a key
already imported is never duplicated, and a later run only tightens it (a revocation or an
earlier expiry made upstream since), never loosens it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from async_api_key.models import AbstractAPIKey, AbstractStringIdAPIKey

UPSTREAM_MODEL_LABEL = "rest_framework_api_key.APIKey"
TARGET_MODEL_LABEL = "async_api_key.APIKey"

#: Columns copied explicitly, or that only this library has and sets itself.
_NOT_COPIED_AS_IS = frozenset(
    {"prefix", "hashed_key", "name", "revoked", "expiry_date", "created"}
    | {"revoked_at", "last_used_at", "scopes", "rotated_from"}
)


@dataclass
class ImportSummary:
    """What one import did, key by key."""

    imported: int = 0
    unchanged: int = 0
    tightened: int = 0

    def describe(self, source: str, target: str, *, dry_run: bool) -> str:
        verb = "Would import" if dry_run else "Imported"
        return (
            f"{verb} {self.imported} key(s) from {source} into {target}; "
            f"{self.unchanged + self.tightened} already there "
            f"({self.tightened} tightened: revoked or expiring earlier upstream)."
        )


def import_keys(
    source: type[models.Model], target: type[AbstractAPIKey], *, dry_run: bool = False
) -> ImportSummary:
    """Copy every key of ``source`` (a djangorestframework-api-key model) into ``target``."""
    shared_fields = _shared_fields(source, target)
    summary = ImportSummary()
    with transaction.atomic(using=target._base_manager.db):
        existing = {
            api_key.prefix: api_key
            for api_key in target._base_manager.filter(
                prefix__in=source._base_manager.values("prefix")
            )
        }
        upstream: Any  # a djangorestframework-api-key model instance; it has no stubs
        for upstream in source._base_manager.order_by("created").iterator():
            present = existing.get(upstream.prefix)
            if present is None:
                _copy(upstream, target, shared_fields)
                summary.imported += 1
            elif _tighten(upstream, present):
                summary.tightened += 1
            else:
                summary.unchanged += 1
        if dry_run:
            transaction.set_rollback(True, using=target._base_manager.db)
    return summary


def _shared_fields(
    source: type[models.Model], target: type[AbstractAPIKey]
) -> list[tuple[str, str]]:
    """``(target attname, source attname)`` of the other columns both models have, by name,
    such as an ``organization`` foreign key."""
    pairs = []
    for field in target._meta.concrete_fields:
        if field.primary_key or field.name in _NOT_COPIED_AS_IS:
            continue
        try:
            source_field = source._meta.get_field(field.name)
        except FieldDoesNotExist:
            continue
        if (
            isinstance(source_field, models.Field)
            and source_field.concrete
            and not source_field.primary_key
        ):
            pairs.append((field.attname, source_field.attname))
    return pairs


def _copy(
    upstream: Any, target: type[AbstractAPIKey], shared_fields: list[tuple[str, str]]
) -> None:
    api_key = target(
        prefix=upstream.prefix,
        hashed_key=upstream.hashed_key,
        name=upstream.name,
        revoked=upstream.revoked,
        expiry_date=upstream.expiry_date,
        **{ours: getattr(upstream, theirs) for ours, theirs in shared_fields},
    )
    if isinstance(api_key, AbstractStringIdAPIKey):
        # The same primary key as upstream's row, so that references to it stay true.
        api_key.id = upstream.pk
    api_key.save(force_insert=True)
    # ``created`` is set on insert (auto_now_add); keep the upstream date instead.
    target._base_manager.filter(pk=api_key.pk).update(created=upstream.created)


def _tighten(upstream: Any, present: AbstractAPIKey) -> bool:
    """Carry over what can only restrict a key already imported; tell whether anything changed."""
    changed = False
    if upstream.revoked and not present.revoked:
        present.revoke()
        changed = True
    if upstream.expiry_date is not None and (
        present.expiry_date is None or upstream.expiry_date < present.expiry_date
    ):
        present.expiry_date = upstream.expiry_date
        present.save(update_fields=["expiry_date"])
        changed = True
    return changed


def _get_model(label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise CommandError(f"Unknown model {label!r}: expected APP_LABEL.MODEL ({exc}).") from exc


class Command(BaseCommand):
    help = (
        "Copy the keys of djangorestframework-api-key into this library's key table, keeping "
        "their prefix and hash so clients keep their keys. Transactional; safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from",
            dest="source",
            default=UPSTREAM_MODEL_LABEL,
            metavar="APP_LABEL.MODEL",
            help=f"The upstream key model to read (default: {UPSTREAM_MODEL_LABEL}).",
        )
        parser.add_argument(
            "--model",
            default=TARGET_MODEL_LABEL,
            metavar="APP_LABEL.MODEL",
            help=f"This library's key model to write (default: {TARGET_MODEL_LABEL}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be imported, and write nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = _get_model(options["source"])
        target = _get_model(options["model"])
        if not issubclass(target, AbstractAPIKey):
            raise CommandError(f"{options['model']} is not an API key model of async_api_key.")
        if issubclass(source, AbstractAPIKey):
            raise CommandError(f"{options['source']} is already an async_api_key model.")
        missing = [
            name
            for name in ("prefix", "hashed_key", "name", "revoked", "expiry_date", "created")
            if not _has_field(source, name)
        ]
        if missing:
            raise CommandError(
                f"{options['source']} does not look like a djangorestframework-api-key model "
                f"(no {', '.join(missing)})."
            )
        summary = import_keys(source, target, dry_run=options["dry_run"])
        self.stdout.write(
            summary.describe(options["source"], options["model"], dry_run=options["dry_run"])
        )


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True
