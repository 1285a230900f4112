"""The rules of self-service key management, shared by the Ninja router and the DRF viewset.

A :class:`SelfServicePolicy` says which key model holds the keys, who owns a key, which
scopes an owner may grant, and the limits. The operations (:func:`list_keys`,
:func:`create_key`, :func:`update_key`, :func:`rotate_key`, :func:`revoke_key`, and their
``a``-prefixed async twins) take the policy, a :class:`Caller` and the request's JSON data,
and either return the JSON body of the answer or raise a :class:`SelfServiceError` that
carries its status and body. Adapters only read the request and write the answer.
"""

from __future__ import annotations

import inspect
import json
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar, cast

from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from async_api_key.conf import api_key_settings
from async_api_key.exceptions import KeyNotRotatable
from async_api_key.models import AbstractAPIKey
from async_api_key.reasons import Reason
from async_api_key.refusals import error_body
from async_api_key.scopes import grants, missing_scopes, validate_scopes
from async_api_key.signals import send_on_commit

__all__ = [
    "FROM_SETTINGS",
    "OPERATION_DOCS",
    "READ",
    "WRITE",
    "Caller",
    "FromSettings",
    "InvalidInput",
    "KeyLimitReached",
    "KeyNotChangeable",
    "KeyNotFound",
    "NotAllowed",
    "ScopesNotGrantable",
    "SelfServiceError",
    "SelfServicePolicy",
    "UnsupportedBody",
    "acreate_key",
    "aget_key",
    "alist_keys",
    "api_key_edited",
    "aresolve_caller",
    "arevoke_key",
    "arotate_key",
    "aupdate_key",
    "create_key",
    "get_key",
    "is_json_media_type",
    "key_view",
    "list_keys",
    "parse_json_body",
    "require_object",
    "resolve_caller",
    "revoke_key",
    "rotate_key",
    "update_key",
]

_KeyT = TypeVar("_KeyT", bound=AbstractAPIKey)

#: What an operation does: reading needs ``read_scope`` (or ``write_scope``) on a key caller,
#: a change needs ``write_scope``.
READ: Final = "read"
WRITE: Final = "write"

#: Sent once an edit (name, scopes) commits: ``api_key`` and ``changes``, a dict of
#: field name -> ``(old value, new value)``. Creation, rotation and revocation send the
#: library's own signals (``api_key_created``, ``api_key_rotated``, ``api_key_revoked``).
api_key_edited = Signal()

#: Each operation's summary and description, for both adapters' OpenAPI schemas.
OPERATION_DOCS: Final[dict[str, tuple[str, str]]] = {
    "list": ("List your API keys", "Newest first, revoked and expired keys included."),
    "create": (
        "Create an API key",
        "The answer holds the key itself (`key`) once: it is not stored, and cannot be shown "
        "again.",
    ),
    "retrieve": ("Show one of your API keys", "The key is named by its prefix."),
    "update": (
        "Rename an API key or change its scopes",
        "Scopes may be added only if you may grant them.",
    ),
    "rotate": (
        "Rotate an API key",
        "Issues a successor, shown once (`key`); the old key keeps working for "
        "`grace_period` seconds.",
    ),
    "revoke": ("Revoke an API key", "At once, for good. Revoking a revoked key changes nothing."),
}

_ENCODER: Final = DjangoJSONEncoder()


class FromSettings:
    """The default of a policy limit: read from ``ASYNC_API_KEY`` when a request needs it."""

    def __repr__(self) -> str:
        return "FROM_SETTINGS"


FROM_SETTINGS: Final = FromSettings()

# Errors: each carries its HTTP status and the JSON body both adapters send.


class SelfServiceError(Exception):
    """A request the rules refuse; ``status_code`` and :meth:`body` are the HTTP answer."""

    status_code = 400
    code = "invalid"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, object]:
        return {"detail": self.detail, "code": self.code}


class InvalidInput(SelfServiceError):
    """400: the request's data is not what the operation takes; ``errors`` names each field."""

    def __init__(self, errors: Mapping[str, list[str]], detail: str = "Invalid input.") -> None:
        super().__init__(detail)
        self.errors = dict(errors)

    def body(self) -> dict[str, object]:
        return {**super().body(), "errors": self.errors}


class UnsupportedBody(SelfServiceError):
    """415: the request body is not JSON."""

    status_code = 415
    code = "unsupported_media_type"

    def __init__(self) -> None:
        super().__init__("Send a JSON body, with Content-Type: application/json.")


class NotAllowed(SelfServiceError):
    """403: the caller may not manage keys here (no owner, or a key without the scope)."""

    status_code = 403

    def __init__(self, detail: str, code: str, extra: Mapping[str, object] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.extra = dict(extra or {})

    def body(self) -> dict[str, object]:
        return {**super().body(), **self.extra}


class ScopesNotGrantable(SelfServiceError):
    """403: the caller asked for scopes it may not grant; the body names them."""

    status_code = 403
    code = "scopes_not_grantable"

    def __init__(self, scopes: Iterable[str]) -> None:
        self.scopes = list(scopes)
        super().__init__("You may not grant these scopes: " + ", ".join(self.scopes) + ".")

    def body(self) -> dict[str, object]:
        return {**super().body(), "scopes": self.scopes}


class KeyNotFound(SelfServiceError):
    """404: no key of the caller's owner has this prefix (another owner's key included)."""

    status_code = 404
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("No such API key.")


class KeyLimitReached(SelfServiceError):
    """409: the owner already has as many active keys as the policy allows."""

    status_code = 409
    code = "key_limit_reached"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} active API key(s), the most allowed. Revoke one first."
        )

    def body(self) -> dict[str, object]:
        return {**super().body(), "limit": self.limit}


class KeyNotChangeable(SelfServiceError):
    """409: the key's state forbids the change (revoked, expired, already rotated)."""

    status_code = 409

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code


# The policy.

OwnerHook = Callable[[Any, Any], Any]
ScopesHook = Callable[[Any], "Iterable[str] | Awaitable[Iterable[str]]"]


def _owner_is_the_user(request: Any, user: Any) -> Any:
    return user


def _no_scopes(owner: Any) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class SelfServicePolicy(Generic[_KeyT]):
    """What self-service key management may do, for one key model.

    - ``model``: the key model (a subclass of ``AbstractAPIKey`` with an owner foreign key).
    - ``owner_field``: the name of that foreign key (``"user"``, ``"organization"``).
    - ``owner_for(request, user)``: the owner whose keys the signed-in ``user`` manages: the
      user itself by default, or an organisation it belongs to. Sync or ``async def``;
      ``None`` refuses the request (403 ``no_owner``).
    - ``grantable_scopes(owner)``: the scopes keys of ``owner`` may be given (wildcards such
      as ``orders:*`` allow every scope they grant). Sync or ``async def``. By default none.
    - ``max_active_keys``: active keys an owner may hold (``None``: no limit).
    - ``require_expiry``: a new key must be given an ``expiry_date``.
    - ``max_lifetime``: the latest expiry a new key may get, from now; a key created without
      an expiry then expires after this long.
    - ``max_grace_period``: the longest grace period a rotation may ask for.
    - ``read_scope`` / ``write_scope``: what a request authenticated with an API key (rather
      than by a user) must be granted to list keys / to change them. Keys of other models
      are refused.

    The three limits default to ``ASYNC_API_KEY["SELF_SERVICE_MAX_ACTIVE_KEYS"]``,
    ``["SELF_SERVICE_REQUIRE_EXPIRY"]`` and ``["SELF_SERVICE_MAX_LIFETIME"]`` (seconds), read
    when a request needs them.
    """

    model: type[_KeyT]
    owner_field: str
    owner_for: OwnerHook = _owner_is_the_user
    grantable_scopes: ScopesHook = _no_scopes
    max_active_keys: int | FromSettings | None = FROM_SETTINGS
    require_expiry: bool | FromSettings = FROM_SETTINGS
    max_lifetime: timedelta | FromSettings | None = FROM_SETTINGS
    max_grace_period: timedelta = timedelta(days=7)
    read_scope: str = "keys:read"
    write_scope: str = "keys:write"
    _owner_attname: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.model, type) and issubclass(self.model, AbstractAPIKey)):
            raise ImproperlyConfigured("SelfServicePolicy.model must be a key model class.")
        try:
            owner = self.model._meta.get_field(self.owner_field)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{self.model._meta.label} has no field {self.owner_field!r} (owner_field)."
            ) from None
        if not isinstance(owner, models.ForeignKey):
            raise ImproperlyConfigured(
                f"{self.model._meta.label}.{self.owner_field} must be a foreign key to the owner."
            )
        validate_scopes([self.read_scope, self.write_scope])
        if self.max_grace_period < timedelta(0):
            raise ImproperlyConfigured("max_grace_period cannot be negative.")
        object.__setattr__(self, "_owner_attname", owner.attname)

    @property
    def active_key_limit(self) -> int | None:
        value = self.max_active_keys
        if isinstance(value, FromSettings):
            return api_key_settings.self_service_max_active_keys
        return value

    @property
    def expiry_required(self) -> bool:
        value = self.require_expiry
        if isinstance(value, FromSettings):
            return api_key_settings.self_service_require_expiry
        return value

    @property
    def lifetime_limit(self) -> timedelta | None:
        value = self.max_lifetime
        if isinstance(value, FromSettings):
            return api_key_settings.self_service_max_lifetime
        return value

    def keys_of(self, owner_id: Any) -> QuerySet[_KeyT]:
        """Every key of the owner, newest first, through the model's default manager."""
        manager = cast("models.Manager[_KeyT]", self.model._default_manager)
        return manager.filter(**{self._owner_attname: owner_id}).select_related("rotated_from")

    def owner_id_of(self, api_key: AbstractAPIKey) -> Any:
        return getattr(api_key, self._owner_attname)


@dataclass(frozen=True)
class Caller:
    """Who makes a request: the owner whose keys it manages, and the key it came with (if it
    was authenticated by an API key rather than by a user)."""

    owner: Any
    owner_id: Any
    api_key: AbstractAPIKey | None = None


def _call(hook: Callable[..., Any], *args: Any) -> Any:
    """Call a project hook from sync code: an ``async def`` hook is run to completion."""
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004  (a callable object's async __call__)
    ):
        return async_to_sync(hook)(*args)
    return hook(*args)


def resolve_caller(
    policy: SelfServicePolicy[Any], request: Any, principal: Any, action: str
) -> Caller:
    """Work out whose keys the request manages, or raise :class:`NotAllowed`.

    ``principal`` is what authenticated the request: a user (``owner_for`` gives the owner)
    or an API key (its own owner; it must be of the policy's model and grant the scope that
    ``action``, :data:`READ` or :data:`WRITE`, needs).
    """
    if isinstance(principal, AbstractAPIKey):
        return _key_caller(policy, principal, action)
    # Whatever the project's authentication gave (a user, usually); never an anonymous one.
    if principal is None or not getattr(principal, "is_authenticated", True):
        raise NotAllowed("Authentication credentials were not provided.", "not_authenticated")
    owner = _call(policy.owner_for, request, principal)
    if owner is None:
        raise NotAllowed("You have no account that can hold API keys.", "no_owner")
    owner_id = owner.pk if isinstance(owner, models.Model) else owner
    return Caller(owner=owner, owner_id=owner_id)


def _key_caller(policy: SelfServicePolicy[Any], api_key: AbstractAPIKey, action: str) -> Caller:
    if not isinstance(api_key, policy.model):
        raise NotAllowed("This API key cannot manage API keys.", "key_not_allowed")
    granted = api_key.granted_scopes
    if action == READ and not missing_scopes(granted, [policy.read_scope]):
        needed: list[str] = []
    else:
        needed = list(missing_scopes(granted, [policy.write_scope]))
    if needed:
        # The body the adapters send for a key that lacks an endpoint's scope.
        body = error_body(Reason.INSUFFICIENT_SCOPE, needed)
        raise NotAllowed(str(body["detail"]), "insufficient_scope", {"missing_scopes": needed})
    owner_id = policy.owner_id_of(api_key)
    owner = getattr(api_key, policy.owner_field)
    return Caller(owner=owner, owner_id=owner_id, api_key=api_key)


# Input.


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a body of this ``Content-Type`` is read as JSON: a JSON type, or none at all
    (as Ninja reads bodies, and its test client sends them). A form or text is refused."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type in ("", "application/json") or media_type.endswith("+json")


def parse_json_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """The JSON object a request sent; an empty body is ``{}``."""
    if not body.strip():
        return {}
    if not is_json_media_type(content_type):
        raise UnsupportedBody()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InvalidInput({}, "The request body is not valid JSON.") from None
    return require_object(data)


def require_object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput({}, "The request body must be a JSON object.")
    return data


class _Fields:
    """Reads the fields an operation takes from its data, collecting an error per field."""

    def __init__(self, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {
            name: ["Unknown field."] for name in data if name not in allowed
        }

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def name(self, model: type[AbstractAPIKey], required: bool) -> str | None:
        if "name" not in self.data:
            if required:
                self.fail("name", "This field is required.")
            return None
        value = self.data["name"]
        if not isinstance(value, str) or not value.strip():
            self.fail("name", "Enter a name.")
            return None
        value = value.strip()
        if any(unicodedata.category(character) == "Cc" for character in value):
            # A NUL would be a database error on PostgreSQL; no control character is a name.
            self.fail("name", "Enter a name without control characters.")
            return None
        max_length = model._meta.get_field("name").max_length
        if max_length is not None and len(value) > max_length:
            self.fail("name", f"Ensure this field has at most {max_length} characters.")
            return None
        return value

    def scopes(self) -> list[str] | None:
        if "scopes" not in self.data:
            return None
        value = self.data["scopes"]
        if not isinstance(value, list):
            self.fail("scopes", "Enter a list of scopes.")
            return None
        try:
            return validate_scopes(value)
        except ValueError as exc:
            self.fail("scopes", str(exc))
            return None

    def expiry_date(self) -> datetime | None:
        value = self.data.get("expiry_date")
        if value is None:
            return None
        parsed = None
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
        if parsed is None:
            self.fail("expiry_date", "Enter a date and time in ISO 8601 format.")
            return None
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed

    def seconds(self, name: str, maximum: timedelta) -> timedelta:
        value = self.data.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(name, "Enter a whole number of seconds, 0 or more.")
            return timedelta(0)
        if value > maximum.total_seconds():  # before timedelta(), which overflows
            self.fail(
                name,
                f"Enter at most {int(maximum.total_seconds())} seconds ({_describe(maximum)}).",
            )
            return timedelta(0)
        return timedelta(seconds=value)

    def check(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


# Output.


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else str(_ENCODER.default(value))


def _status(api_key: AbstractAPIKey) -> str:
    if api_key.revoked:
        return "revoked"
    return "expired" if api_key.has_expired else "active"


def key_view(api_key: AbstractAPIKey) -> dict[str, Any]:
    """How a key is shown: public facts only, never its hash."""
    predecessor = api_key.rotated_from
    return {
        "prefix": api_key.prefix,
        "name": api_key.name,
        "scopes": list(api_key.granted_scopes),
        "status": _status(api_key),
        "created": _timestamp(api_key.created),
        "expiry_date": _timestamp(api_key.expiry_date),
        "last_used_at": _timestamp(api_key.last_used_at),
        "revoked_at": _timestamp(api_key.revoked_at),
        "rotated_from": None if predecessor is None else predecessor.prefix,
    }


# Operations.


def list_keys(policy: SelfServicePolicy[Any], caller: Caller) -> list[dict[str, Any]]:
    """Every key of the caller's owner, newest first, revoked and expired ones included."""
    return [key_view(api_key) for api_key in policy.keys_of(caller.owner_id)]


def get_key(policy: SelfServicePolicy[Any], caller: Caller, prefix: str) -> dict[str, Any]:
    return key_view(_owned_key(policy, caller, prefix))


def _owned_key(
    policy: SelfServicePolicy[_KeyT], caller: Caller, prefix: str, *, lock: bool = False
) -> _KeyT:
    keys = policy.keys_of(caller.owner_id)
    if lock:
        keys = keys.select_for_update(of=("self",))
    api_key = keys.filter(prefix=prefix).first() if isinstance(prefix, str) else None
    if api_key is None:
        raise KeyNotFound()
    return api_key


def _check_grantable(policy: SelfServicePolicy[Any], caller: Caller, scopes: list[str]) -> None:
    """Refuse scopes the owner may not grant, or (for a key caller) the key itself lacks."""
    allowed = list(_call(policy.grantable_scopes, caller.owner))
    limits = [allowed]
    if caller.api_key is not None:  # a key never makes a key stronger than itself
        limits.append(list(caller.api_key.granted_scopes))
    refused = [
        scope
        for scope in scopes
        if not all(any(grants(grant, scope) for grant in limit) for limit in limits)
    ]
    if refused:
        raise ScopesNotGrantable(refused)


def _db(policy: SelfServicePolicy[Any]) -> str:
    return router.db_for_write(policy.model)


def create_key(
    policy: SelfServicePolicy[Any], caller: Caller, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Create a key for the caller's owner; the body holds the raw key (``key``) once."""
    fields = _Fields(data, ("name", "scopes", "expiry_date"))
    name = fields.name(policy.model, required=True)
    scopes = fields.scopes() or []
    expiry_date = fields.expiry_date()
    now = timezone.now()
    if "expiry_date" in data and expiry_date is not None and expiry_date <= now:
        fields.fail("expiry_date", "Enter a date and time in the future.")
    lifetime = policy.lifetime_limit
    if expiry_date is None and "expiry_date" not in fields.errors:
        if policy.expiry_required:
            fields.fail("expiry_date", "This field is required.")
        elif lifetime is not None:
            expiry_date = now + lifetime
    elif lifetime is not None and expiry_date is not None and expiry_date > now + lifetime:
        fields.fail(
            "expiry_date",
            f"Enter a date and time at most {_describe(lifetime)} from now.",
        )
    fields.check()
    _check_grantable(policy, caller, scopes)
    db = _db(policy)
    with transaction.atomic(using=db):
        _lock_owner(policy, caller, db)
        limit = policy.active_key_limit
        if limit is not None and _active_keys(policy, caller.owner_id).count() >= limit:
            raise KeyLimitReached(limit)
        manager = policy.model._default_manager.db_manager(db)
        api_key, raw_key = manager._insert_new_key(
            {
                "name": name,
                "scopes": scopes,
                "expiry_date": expiry_date,
                policy._owner_attname: caller.owner_id,
            }
        )
    return {"key": raw_key, "api_key": key_view(api_key)}


def _describe(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _lock_owner(policy: SelfServicePolicy[Any], caller: Caller, db: str) -> None:
    """Lock the owner's row, so that two concurrent creations cannot both pass the limit."""
    owner_field = policy.model._meta.get_field(policy.owner_field)
    assert isinstance(owner_field, models.ForeignKey)  # noqa: S101  (checked at start-up)
    owner_model: type[models.Model] = owner_field.related_model
    target = owner_field.target_field.attname
    list(
        owner_model._base_manager.using(db)
        .select_for_update()
        .filter(**{target: caller.owner_id})
        .values_list("pk", flat=True)
    )


def _active_keys(policy: SelfServicePolicy[Any], owner_id: Any) -> QuerySet[Any]:
    """Usable keys that no rotation has replaced (a key in its grace period does not count)."""
    keys: QuerySet[Any] = (
        policy.model._default_manager.filter(**{policy._owner_attname: owner_id})
        .filter(revoked=False)
        .filter(Q(expiry_date__isnull=True) | Q(expiry_date__gt=timezone.now()))
        .filter(successors__isnull=True)
    )
    return keys


def update_key(
    policy: SelfServicePolicy[Any], caller: Caller, prefix: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Rename a key or change its scopes (within what the owner may grant)."""
    fields = _Fields(data, ("name", "scopes"))
    name = fields.name(policy.model, required=False)
    scopes = fields.scopes()
    fields.check()
    db = _db(policy)
    with transaction.atomic(using=db):
        api_key = _owned_key(policy, caller, prefix, lock=True)
        if api_key.revoked:
            raise KeyNotChangeable("A revoked API key cannot be changed.", "key_revoked")
        changes: dict[str, tuple[Any, Any]] = {}
        if name is not None and name != api_key.name:
            changes["name"] = (api_key.name, name)
        if scopes is not None and scopes != list(api_key.granted_scopes):
            new_scopes = [scope for scope in scopes if scope not in api_key.granted_scopes]
            _check_grantable(policy, caller, new_scopes)
            changes["scopes"] = (list(api_key.granted_scopes), scopes)
        if changes:
            for field_name, (_old, new) in changes.items():
                setattr(api_key, field_name, new)
            api_key.save(update_fields=list(changes), using=db)
            send_on_commit(api_key_edited, policy.model, db, api_key=api_key, changes=changes)
    return key_view(api_key)


def rotate_key(
    policy: SelfServicePolicy[Any], caller: Caller, prefix: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Issue a successor; the old key works for ``grace_period`` seconds more (default 0)."""
    fields = _Fields(data, ("grace_period",))
    grace_period = fields.seconds("grace_period", policy.max_grace_period)
    fields.check()
    db = _db(policy)
    with transaction.atomic(using=db):
        api_key = _owned_key(policy, caller, prefix)
        manager = policy.model._default_manager.db_manager(db)
        try:
            successor, raw_key = manager.rotate_key(api_key, grace_period)
        except KeyNotRotatable as exc:
            raise KeyNotChangeable(
                f"This API key cannot be rotated: {exc.why}.", "key_not_rotatable"
            ) from None
    return {"key": raw_key, "api_key": key_view(successor), "replaced": key_view(api_key)}


def revoke_key(policy: SelfServicePolicy[Any], caller: Caller, prefix: str) -> dict[str, Any]:
    """Revoke a key now (revoking a revoked key changes nothing)."""
    api_key = _owned_key(policy, caller, prefix)
    api_key.revoke()
    return key_view(api_key)


# Async twins: the same functions, run off the event loop in one thread hop.


async def aresolve_caller(
    policy: SelfServicePolicy[Any], request: Any, principal: Any, action: str
) -> Caller:
    return await sync_to_async(resolve_caller)(policy, request, principal, action)


async def alist_keys(policy: SelfServicePolicy[Any], caller: Caller) -> list[dict[str, Any]]:
    return await sync_to_async(list_keys)(policy, caller)


async def aget_key(policy: SelfServicePolicy[Any], caller: Caller, prefix: str) -> dict[str, Any]:
    return await sync_to_async(get_key)(policy, caller, prefix)


async def acreate_key(
    policy: SelfServicePolicy[Any], caller: Caller, data: Mapping[str, Any]
) -> dict[str, Any]:
    return await sync_to_async(create_key)(policy, caller, data)


async def aupdate_key(
    policy: SelfServicePolicy[Any], caller: Caller, prefix: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    return await sync_to_async(update_key)(policy, caller, prefix, data)


async def arotate_key(
    policy: SelfServicePolicy[Any], caller: Caller, prefix: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    return await sync_to_async(rotate_key)(policy, caller, prefix, data)


async def arevoke_key(
    policy: SelfServicePolicy[Any], caller: Caller, prefix: str
) -> dict[str, Any]:
    return await sync_to_async(revoke_key)(policy, caller, prefix)
