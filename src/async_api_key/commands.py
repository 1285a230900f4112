"""The logic of the management commands as async functions a project's own scripts can reuse.

``createapikey``, ``listapikeys``, ``revokeapikey`` and ``rotateapikey`` are thin wrappers:
they parse their options, await one of these functions and print the result. Bad input raises
:class:`~django.core.management.CommandError` before anything is written, and no message ever
quotes back what could be most of a key (see :func:`redact`)::

    from async_api_key.commands import create_key

    async def issue_partner_key() -> str:
        created = await create_key(name="partner", expires_in=timedelta(days=30))
        return created.raw_key
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.core.management import CommandError
from django.core.management.base import CommandParser
from django.db import IntegrityError, router
from django.utils import timezone

from . import field_rules
from .exceptions import KeyNotRotatable
from .field_rules import InvalidFieldValue, policy_field_errors
from .keys import parse_key
from .management import AsyncCommand
from .models import AbstractAPIKey, AbstractStringIdAPIKey, BaseAPIKeyManager
from .redaction import quoted, redact
from .status import KeyStatus, filter_by_status, key_status

if TYPE_CHECKING:
    from django.db.models import Field, Model

__all__ = [
    "CreatedKey",
    "KeyCommand",
    "RevokedKey",
    "RotatedKey",
    "create_key",
    "list_keys",
    "redact",
    "revoke_keys",
    "rotate_key",
]

_T = TypeVar("_T")

#: The key model the commands use unless ``--model`` names another one.
DEFAULT_MODEL_LABEL = "async_api_key.APIKey"


def add_model_argument(parser: CommandParser) -> None:
    """Add the ``--model APP_LABEL.MODEL`` option every key command takes."""
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL_LABEL,
        metavar="APP_LABEL.MODEL",
        help=f"The key model (default: {DEFAULT_MODEL_LABEL}).",
    )


# ``<namespace>_<lookup>_...``: the start of a key, even a mistyped one.
_KEY_START_RE = re.compile(r"(?:\A|[^0-9A-Za-z])[0-9A-Za-z]+_(?P<lookup>[0-9A-Za-z]{12})_")


class KeyCommand(AsyncCommand):
    """The base of the key commands: a ``--model`` option, the whole command in one
    transaction on the key model's database, and argument errors that never echo a key."""

    def add_arguments(self, parser: CommandParser) -> None:
        add_model_argument(parser)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        report_error = parser.error

        def report_redacted_error(message: str) -> NoReturn:
            report_error(redact(message))
            raise AssertionError("unreachable: CommandParser.error() raises or exits")

        # argparse quotes unexpected arguments back ("unrecognized arguments: ..."), such as
        # the key of ``rotateapikey Api-Key <key>``; the parser offers no other hook.
        parser.error = report_redacted_error  # type: ignore[method-assign]
        return parser

    def transaction_database(self, options: dict[str, Any]) -> str | None:
        return router.db_for_write(resolve_key_model(options["model"]))


@dataclass(frozen=True)
class CreatedKey:
    """A freshly created key and its raw value, which exists nowhere else."""

    api_key: AbstractAPIKey
    raw_key: str = field(repr=False)


@dataclass(frozen=True)
class RotatedKey:
    """A rotation: the old key (its new expiry set), its successor and the successor's raw
    value, which exists nowhere else."""

    old_key: AbstractAPIKey
    api_key: AbstractAPIKey
    raw_key: str = field(repr=False)


@dataclass(frozen=True)
class RevokedKey:
    """One key named in a revocation; ``newly_revoked`` is False if it was revoked already."""

    api_key: AbstractAPIKey
    newly_revoked: bool


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h`` or ``90m`` into a positive :class:`~datetime.timedelta`."""
    return _for_the_command_line(field_rules.parse_duration, text)


def parse_grace_period(text: str) -> timedelta:
    """Parse a rotation's grace period: ``0`` (none) or a duration such as ``24h`` or ``30m``."""
    return _for_the_command_line(field_rules.parse_grace_period, text)


def _for_the_command_line(parse: Callable[[str], _T], text: str) -> _T:
    """The field rules' errors, as the commands raise them."""
    try:
        return parse(text)
    except InvalidFieldValue as exc:
        raise CommandError(str(exc)) from None


def parse_expiry_date(text: str) -> datetime:
    """Parse an ISO 8601 date or date-time; a naive value is in the project's time zone."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"Invalid expiry date {quoted(text)}: use ISO 8601, such as 2030-01-31 or "
            "2030-01-31T18:00:00+00:00."
        ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def resolve_key_model(model: type[AbstractAPIKey] | str | None = None) -> type[AbstractAPIKey]:
    """Return the key model named ``app_label.ModelName`` (default: ``APIKey``)."""
    if model is not None and not isinstance(model, str):
        return model
    label = DEFAULT_MODEL_LABEL if model is None else model
    try:
        resolved = apps.get_model(label)
    except (LookupError, ValueError):
        raise CommandError(f"Unknown model {quoted(label)}: use app_label.ModelName.") from None
    if not issubclass(resolved, AbstractAPIKey):
        raise CommandError(f"{label} is not an API key model (a subclass of AbstractAPIKey).")
    return resolved


def key_metadata(api_key: AbstractAPIKey) -> dict[str, Any]:
    """Describe a key as JSON-ready data: never its secret or its hash."""
    data: dict[str, Any] = {
        "id": _shown_id(type(api_key), api_key.pk),
        "model": api_key._meta.label,
        "prefix": api_key.prefix,
        "name": api_key.name,
        "status": key_status(api_key).value,
        "created": _isoformat(api_key.created),
        "expiry_date": _isoformat(api_key.expiry_date),
        "last_used_at": _isoformat(api_key.last_used_at),
        "revoked_at": _isoformat(api_key.revoked_at),
        "scopes": list(api_key.granted_scopes),
        "rate_limit": api_key.rate_limit or None,
        "allowed_networks": _string_list(api_key.allowed_networks),
    }
    for relation in _foreign_keys(type(api_key)):
        value = getattr(api_key, relation.attname)
        data[relation.attname] = _shown_id(relation.related_model, value)
    return data


def _shown_id(model: Any, pk: Any) -> Any:
    """A primary key as the commands print it: a string-id key model's embeds the stored hash
    (``"<prefix>.<hashed key>"``), so only its lookup-id part is shown."""
    if pk is not None and isinstance(model, type) and issubclass(model, AbstractStringIdAPIKey):
        return str(pk).partition(".")[0]
    return pk


async def create_key(
    *,
    name: str,
    model: type[AbstractAPIKey] | str | None = None,
    expires_in: timedelta | None = None,
    expiry_date: datetime | None = None,
    scopes: Iterable[str] = (),
    rate_limit: str = "",
    allowed_networks: Iterable[str] = (),
    owner: object = None,
    owner_field: str | None = None,
) -> CreatedKey:
    """Create a key as the manager's base ``create_key`` does (never a project's override
    of it, whose signature is its own).

    ``rate_limit`` is a rate such as ``"100/min"`` (empty: the throttle's default);
    ``allowed_networks`` are CIDR networks (none: any address). ``owner`` is the primary
    key of the object a custom key model's foreign key points to; ``owner_field`` names
    that foreign key when the model has several.
    """
    key_model = resolve_key_model(model)
    fields: dict[str, Any] = {"name": _checked_name(key_model, name)}
    if expires_in is not None and expiry_date is not None:
        raise CommandError("Give either an expiry duration or an expiry date, not both.")
    if expires_in is not None:
        fields["expiry_date"] = timezone.now() + expires_in
    elif expiry_date is not None:
        if expiry_date <= timezone.now():
            raise CommandError("The expiry date is in the past: the key would never work.")
        fields["expiry_date"] = expiry_date
    given = {
        "scopes": list(scopes),
        "rate_limit": rate_limit,
        "allowed_networks": list(allowed_networks),
    }
    cleaned, errors = policy_field_errors(given)
    if errors:
        raise CommandError(redact(" ".join(errors.values())))
    fields.update(cleaned)
    fields.update(await _owner_fields(key_model, owner, owner_field))
    manager: BaseAPIKeyManager[Any] = key_model._default_manager
    try:
        # The base create_key, not the manager's: a project's override may have a signature
        # of its own (create_key(self, project)), and these fields are complete.
        api_key, raw_key = await sync_to_async(manager._insert_new_key)(fields)
    except IntegrityError as exc:
        raise CommandError(redact(f"Could not create the key: {exc}")) from None
    return CreatedKey(api_key=api_key, raw_key=raw_key)


async def list_keys(
    *, model: type[AbstractAPIKey] | str | None = None, include_inactive: bool = False
) -> list[AbstractAPIKey]:
    """Return the active keys (with ``include_inactive``, the revoked and expired ones too)."""
    key_model = resolve_key_model(model)
    queryset = key_model._default_manager.all()
    if not include_inactive:
        queryset = filter_by_status(queryset, KeyStatus.ACTIVE)
    return [api_key async for api_key in queryset]


async def revoke_keys(
    prefixes: Iterable[str], *, model: type[AbstractAPIKey] | str | None = None
) -> list[RevokedKey]:
    """Revoke the keys with these prefixes. Idempotent; if a prefix is unknown, none is revoked."""
    key_model = resolve_key_model(model)
    wanted = list(dict.fromkeys(prefixes))
    if not wanted:
        raise CommandError("Give the prefix of at least one key to revoke.")
    found = {
        api_key.prefix: api_key
        async for api_key in key_model._default_manager.filter(prefix__in=wanted)
    }
    unknown = [prefix for prefix in wanted if prefix not in found]
    if unknown:
        raise CommandError(
            f"No {key_model._meta.label} with prefix: {', '.join(map(_quoted_prefix, unknown))}."
        )
    revoked: list[RevokedKey] = []
    for prefix in wanted:
        api_key = found[prefix]
        was_revoked = api_key.revoked
        await api_key.arevoke()
        revoked.append(RevokedKey(api_key=api_key, newly_revoked=not was_revoked))
    return revoked


def _quoted_prefix(text: str) -> str:
    """Quote a would-be prefix back to the operator; a key, even mistyped, shows its prefix.

    A key pasted where its prefix belongs must not be echoed into a terminal or a CI log.
    """
    parsed = parse_key(text.strip())
    if parsed is not None:
        return f"(a whole API key, not its prefix: pass {parsed.lookup})"
    key_start = _KEY_START_RE.search(text)
    if key_start is not None:
        return f"{quoted(text)} (an API key, not its prefix: pass {key_start['lookup']})"
    shown = redact(text)
    return shown if shown == text and text.isalnum() else repr(shown)


async def rotate_key(
    prefix: str,
    *,
    grace_period: timedelta = timedelta(0),
    model: type[AbstractAPIKey] | str | None = None,
) -> RotatedKey:
    """Rotate the key with this prefix through the manager's ``arotate_key``.

    The successor copies the old key's name, scopes, limits, owner and expiry; the old
    key then expires at ``min(now + grace_period, its own expiry)``. A revoked, expired
    or already rotated key is refused (nothing is written).
    """
    key_model = resolve_key_model(model)
    if grace_period < timedelta(0):
        raise CommandError("The grace period cannot be negative.")
    manager = key_model._default_manager
    api_key = await manager.filter(prefix=prefix.strip()).afirst()
    if api_key is None:
        raise CommandError(f"No {key_model._meta.label} with prefix: {_quoted_prefix(prefix)}.")
    try:
        successor, raw_key = await manager.arotate_key(api_key, grace_period)
    except KeyNotRotatable as exc:
        raise CommandError(redact(str(exc))) from None
    return RotatedKey(old_key=api_key, api_key=successor, raw_key=raw_key)


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _checked_name(key_model: type[AbstractAPIKey], name: str) -> str:
    max_length = key_model._meta.get_field("name").max_length
    if not name.strip():
        raise CommandError("The key needs a name: pass --name.")
    if max_length is not None and len(name) > max_length:
        raise CommandError(f"The name is too long: at most {max_length} characters.")
    return name


def _foreign_keys(key_model: type[AbstractAPIKey]) -> list[Field[Any, Any]]:
    return [
        relation
        for relation in key_model._meta.concrete_fields
        if relation.is_relation and (relation.many_to_one or relation.one_to_one)
    ]


def _owner_candidates(key_model: type[AbstractAPIKey]) -> list[Field[Any, Any]]:
    # A link from key to key (such as a rotation's predecessor) is not an owner.
    return [
        relation
        for relation in _foreign_keys(key_model)
        if not (
            isinstance(relation.related_model, type)
            and issubclass(relation.related_model, AbstractAPIKey)
        )
    ]


def _owner_relation(
    key_model: type[AbstractAPIKey], owner_field: str | None
) -> Field[Any, Any] | None:
    label = key_model._meta.label
    if owner_field is not None:
        try:
            relation = key_model._meta.get_field(owner_field)
        except FieldDoesNotExist:
            raise CommandError(f"{label} has no field {quoted(owner_field)}.") from None
        if relation not in _foreign_keys(key_model):
            raise CommandError(f"{label}.{owner_field} is not a foreign key.")
        return relation
    candidates = _owner_candidates(key_model)
    if len(candidates) > 1:
        names = ", ".join(relation.name for relation in candidates)
        raise CommandError(f"{label} has several foreign keys ({names}): pass --owner-field.")
    return candidates[0] if candidates else None


async def _owner_fields(
    key_model: type[AbstractAPIKey], owner: object, owner_field: str | None
) -> dict[str, Any]:
    label = key_model._meta.label
    relation = _owner_relation(key_model, owner_field)
    if relation is None:
        if owner is not None:
            raise CommandError(f"{label} has no owner foreign key: --owner does not apply.")
        return {}
    # A concrete foreign key's related model is resolved once the app registry is ready.
    related_model = cast("type[Model]", relation.related_model)
    related_name = related_model._meta.verbose_name
    if owner is None:
        if relation.null or relation.has_default():
            return {}
        raise CommandError(
            f"{label} needs an owner: pass --owner with the primary key of a {related_name}."
        )
    target = relation.target_field  # type: ignore[attr-defined]
    try:
        value = target.to_python(owner)
        owner_object = await related_model._default_manager.aget(**{target.name: value})
    except (ValidationError, ValueError, ObjectDoesNotExist):
        raise CommandError(f"No {related_name} with {target.name} {quoted(str(owner))}.") from None
    return {relation.name: owner_object}
