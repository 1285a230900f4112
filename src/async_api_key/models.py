"""Key models and their managers.

``AbstractAPIKey`` is the base for custom key models (for example one with an
``organization`` foreign key); ``APIKey`` is the ready-made concrete model. Field
names and manager methods follow djangorestframework-api-key 3.x, so migrating
is an import change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from contextvars import ContextVar
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import class_prepared, pre_delete, pre_save
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .cache import expires_by_date_alone
from .changelog import ChangeClock, KeyChange
from .changes import announce_new_key, key_store_label, lock_clock, record_change
from .conf import api_key_settings
from .exceptions import KeyNotRotatable, KeyStoreUnavailable
from .field_rules import POLICY_FIELDS, clean_policy_field, policy_field_errors
from .hashing import check_key, hash_key
from .keys import generate_key
from .lookup import KeyFilters
from .signals import api_key_created, api_key_revoked, api_key_rotated, send_on_commit
from .verification import Reason, VerificationOutcome, Verifier, get_verifier

if TYPE_CHECKING:
    from django.db.models.fields import Field

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")

#: The default grace period of a rotation: the old key stops working at once.
NO_GRACE = timedelta(0)

#: How many fresh lookup ids ``create_key`` tries before giving up on collisions.
MAX_CREATE_ATTEMPTS = 5

#: Columns that an ordinary ``save()`` of an existing key never writes: they change
#: only through dedicated single-column updates (``revoke()``, the verifier), so a
#: stale instance cannot undo a concurrent revocation or move ``last_used_at`` back.
_GUARDED_FIELDS = frozenset({"prefix", "hashed_key", "revoked", "revoked_at", "last_used_at"})

#: Keys whose deletion a queryset ``delete()`` has already recorded, so that the
#: per-row ``pre_delete`` receiver does not record each one again.
_deletions_recorded: ContextVar[frozenset[tuple[str, str]]] = ContextVar(
    "async_api_key_deletions_recorded", default=frozenset()
)

#: The change log's models, re-exported so that they are registered with the app.
__all__ = [
    "NO_GRACE",
    "APIKey",
    "APIKeyManager",
    "APIKeyQuerySet",
    "AbstractAPIKey",
    "AbstractStringIdAPIKey",
    "BaseAPIKeyManager",
    "ChangeClock",
    "KeyChange",
]

#: Fields a rotation does not copy from the old key to its successor.
_NOT_COPIED_ON_ROTATION = _GUARDED_FIELDS | {"created", "rotated_from", "expiry_date"}


class APIKeyQuerySet(QuerySet[_KeyT], Generic[_KeyT]):
    """Bulk ``update()`` and ``delete()`` record the change of every key they touch."""

    def update(self, **kwargs: Any) -> int:
        # Unlike Django's update(), this one validates (and normalises) the policy fields it
        # is given as save() does: ValidationError, and nothing written. An expression is
        # the database's to compute, so it passes as it is.
        policy = {
            name: value
            for name, value in kwargs.items()
            if name in ("scopes", "allowed_networks", "rate_limit")
            and not hasattr(value, "resolve_expression")
        }
        if policy:
            probe = self.model(**policy)
            probe._validate_policy_fields()
            kwargs |= {name: getattr(probe, name) for name in policy}
        with transaction.atomic(using=self.db):
            record_change(self.model, self.values_list("prefix", flat=True), using=self.db)
            return super().update(**kwargs)

    async def aupdate(self, **kwargs: Any) -> int:
        return await sync_to_async(self.update)(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        with transaction.atomic(using=self.db):
            lock_clock(self.db)  # before reading which keys go: see record_change()
            prefixes = list(self.values_list("prefix", flat=True))
            record_change(self.model, prefixes, using=self.db)
            label = key_store_label(self.model)
            token = _deletions_recorded.set(frozenset((label, p) for p in prefixes))
            try:
                return super().delete()
            finally:
                _deletions_recorded.reset(token)

    async def adelete(self) -> tuple[int, dict[str, int]]:
        return await sync_to_async(self.delete)()

    def bulk_create(self, objs: Iterable[_KeyT], *args: Any, **kwargs: Any) -> list[_KeyT]:
        # An upsert (update_conflicts) changes the keys it meets: record them all.
        if not kwargs.get("update_conflicts"):
            return super().bulk_create(objs, *args, **kwargs)
        objs = list(objs)
        with transaction.atomic(using=self.db):
            record_change(self.model, [obj.prefix for obj in objs], using=self.db)
            return super().bulk_create(objs, *args, **kwargs)

    def iterator(self, chunk_size: int | None = None) -> Iterator[_KeyT]:
        if self.query.select_for_update:
            lock_clock(self.db)  # as _fetch_all() does
        return super().iterator(chunk_size)

    async def aiterator(self, chunk_size: int = 2000) -> AsyncIterator[_KeyT]:
        if self.query.select_for_update:
            await sync_to_async(lock_clock)(self.db)
        async for api_key in super().aiterator(chunk_size):
            yield api_key

    def _fetch_all(self) -> None:
        # Rows locked with select_for_update() are usually changed next, and a recorded
        # change locks the change clock first: take it now, so that this transaction and a
        # concurrent change never wait for each other in a circle.
        if self._result_cache is None and self.query.select_for_update:
            lock_clock(self.db)
        super()._fetch_all()


class BaseAPIKeyManager(models.Manager[_KeyT], Generic[_KeyT]):
    """Creates, finds and verifies keys. Sync methods have ``a``-prefixed async twins."""

    def get_queryset(self) -> APIKeyQuerySet[_KeyT]:
        return APIKeyQuerySet(self.model, using=self._db)

    def get_usable_keys(self) -> QuerySet[_KeyT]:
        """Return the keys that may authenticate: not revoked and not expired.

        Override it to narrow usable keys further, for example to keys whose owner
        is active; the verifier honours the override on every path.
        """
        return self.filter(revoked=False).filter(
            Q(expiry_date__isnull=True) | Q(expiry_date__gt=timezone.now())
        )

    def cache_scope(self) -> str | None:
        """What the cache keys this manager's verifications by; ``None`` turns caching off.

        A verification cached under one scope is only ever served under the same scope.
        The base manager's answer depends on nothing but the key and the database it reads
        (``db_manager()``), so its scope says just that. A manager that overrides
        ``get_queryset()`` or ``get_usable_keys()`` may answer differently from request to
        request (a current tenant), so caching is off for it unless it overrides this method
        too: return a string that names everything its answer depends on
        (``f"tenant:{current_tenant_id()}"``), or a constant if it depends on stored data
        only. So must a project whose database router picks the database per request.
        """
        if self.key_filters().customised:
            return None
        manager_type = type(self)
        scope = f"{manager_type.__module__}.{manager_type.__qualname__}"
        return scope if self._db is None else f"{scope}@{self._db}"

    def cache_scope_is_constant(self) -> bool:
        """Whether :meth:`cache_scope` is the base method, whose answer never changes for
        one manager: the verifier then asks it once instead of on every verification."""
        return type(self).cache_scope is BaseAPIKeyManager.cache_scope

    def key_filters(self) -> KeyFilters:
        """Which of the methods that decide usable keys this manager overrides."""
        manager_type = type(self)
        return KeyFilters(
            custom_queryset=manager_type.get_queryset is not BaseAPIKeyManager.get_queryset,
            custom_usability=manager_type.get_usable_keys is not BaseAPIKeyManager.get_usable_keys,
        )

    @property
    def verifier(self) -> Verifier[_KeyT]:
        """The verifier bound to this manager (and so to its ``get_usable_keys()``)."""
        return get_verifier(self.model, self)

    def assign_key(self, obj: _KeyT) -> str:
        """Give ``obj`` a new lookup id and key hash; return the raw key (unsaved)."""
        generated = generate_key(api_key_settings.namespace)
        obj._take_new_key(
            generated.lookup, hash_key(generated.raw, api_key_settings.hash_algorithm)
        )
        return generated.raw

    def create_key(self, **fields: Any) -> tuple[_KeyT, str]:
        """Create and save a key; return it with the raw key, which is not stored anywhere.

        ``fields`` are model fields (``name`` is required). A lookup id that collides
        with an existing key is replaced and the insert retried.
        """
        return self._insert_new_key(fields)

    def _insert_new_key(self, fields: dict[str, Any]) -> tuple[_KeyT, str]:
        """:meth:`create_key`'s work, which the library calls itself: a project's manager may
        override ``create_key`` with a signature of its own (``create_key(self, project)``)."""
        fields.pop("id", None)
        for generated_field in ("prefix", "hashed_key"):
            if generated_field in fields:
                raise TypeError(f"create_key() sets {generated_field!r} itself.")
        for name in POLICY_FIELDS:
            if name in fields:
                fields[name] = clean_policy_field(name, fields[name])  # or InvalidFieldValue
        obj = self.model(**fields)
        return obj, self._save_with_new_key(obj, self.db)

    def _save_with_new_key(self, obj: _KeyT, using: str) -> str:
        """Give the unsaved ``obj`` a generated key and insert it into ``using``, with a new
        lookup id while one collides; send ``api_key_created`` once it commits. Returns the
        raw key. ``create_key`` and the admin's add form both save new keys this way."""
        for _attempt in range(MAX_CREATE_ATTEMPTS):
            raw_key = self.assign_key(obj)
            try:
                with transaction.atomic(using=using):
                    obj.save(force_insert=True, using=using)
            except IntegrityError:
                if self.model._base_manager.using(using).filter(prefix=obj.prefix).exists():
                    continue
                raise
            send_on_commit(api_key_created, self.model, using, api_key=obj)
            return raw_key
        raise RuntimeError(f"Could not find an unused lookup id in {MAX_CREATE_ATTEMPTS} attempts.")

    async def acreate_key(self, *args: Any, **fields: Any) -> tuple[_KeyT, str]:
        """Async twin of :meth:`create_key`, including a project's override of it
        (arguments are passed on as they are)."""
        return await sync_to_async(self.create_key)(*args, **fields)

    def rotate_key(self, api_key: _KeyT, grace_period: timedelta = NO_GRACE) -> tuple[_KeyT, str]:
        """Issue a successor to ``api_key``; return it with its raw key (shown once).

        The successor copies every field of the old key (name, scopes, owner, expiry,
        ...) except its identity and state, and links back through ``rotated_from``.
        The old key then expires at ``min(now + grace_period, its own expiry)``.
        The old key's row is locked while this runs, so of two concurrent rotations
        one succeeds and the other raises :class:`~async_api_key.exceptions.KeyNotRotatable`,
        as do rotations of revoked, expired or already rotated keys.
        """
        if grace_period < timedelta(0):
            raise ValueError("grace_period cannot be negative.")
        base = self.model._base_manager.using(self.db)
        with transaction.atomic(using=self.db):
            # Recorded first: the change clock is always locked before a key row.
            record_change(self.model, api_key._prefixes_in(self.db), using=self.db)
            try:
                current = base.select_for_update().get(pk=api_key.pk)
            except self.model.DoesNotExist:
                raise KeyNotRotatable(api_key.prefix, "it does not exist") from None
            if current.revoked:
                raise KeyNotRotatable(current.prefix, "it is revoked")
            if current.has_expired:
                raise KeyNotRotatable(current.prefix, "it has expired")
            if base.filter(rotated_from=current).exists():
                raise KeyNotRotatable(current.prefix, "it has already been rotated")
            copied = {
                field.attname: getattr(current, field.attname)
                for field in self.model._meta.concrete_fields
                if not field.primary_key and field.name not in _NOT_COPIED_ON_ROTATION
            }
            successor, raw_key = self._insert_new_key(
                {**copied, "expiry_date": current.expiry_date, "rotated_from": current}
            )
            old_expiry = timezone.now() + grace_period
            if current.expiry_date is not None:
                old_expiry = min(old_expiry, current.expiry_date)
            base.filter(pk=current.pk).update(expiry_date=old_expiry)
        api_key.expiry_date = old_expiry
        send_on_commit(api_key_rotated, self.model, self.db, api_key=api_key, new_api_key=successor)
        return successor, raw_key

    async def arotate_key(
        self, api_key: _KeyT, grace_period: timedelta = NO_GRACE
    ) -> tuple[_KeyT, str]:
        """Async twin of :meth:`rotate_key`."""
        return await sync_to_async(self.rotate_key)(api_key, grace_period)

    def get_from_key(self, key: str) -> _KeyT:
        """Return the usable key that ``key`` belongs to, or raise ``DoesNotExist``.

        Revoked, expired and otherwise unusable keys are not returned. If the key
        store cannot be reached, :class:`~async_api_key.exceptions.KeyStoreUnavailable`
        is raised.
        """
        return self._key_or_raise(self.verifier.verify(key))

    async def aget_from_key(self, key: str) -> _KeyT:
        """Async twin of :meth:`get_from_key`."""
        return self._key_or_raise(await self.verifier.averify(key))

    def is_valid(self, key: str) -> bool:
        """Tell whether ``key`` belongs to a usable key."""
        return self._valid_or_raise(self.verifier.verify(key))

    async def ais_valid(self, key: str) -> bool:
        """Async twin of :meth:`is_valid`."""
        return self._valid_or_raise(await self.verifier.averify(key))

    def _valid_or_raise(self, outcome: VerificationOutcome[_KeyT]) -> bool:
        if outcome.reason is Reason.UNAVAILABLE:
            raise KeyStoreUnavailable() from outcome.error
        return outcome.is_valid

    def _key_or_raise(self, outcome: VerificationOutcome[_KeyT]) -> _KeyT:
        if self._valid_or_raise(outcome) and outcome.api_key is not None:
            return outcome.api_key
        raise self.model.DoesNotExist(f"No usable {self.model._meta.verbose_name} matches.")


class APIKeyManager(BaseAPIKeyManager["APIKey"]):
    """The manager of the concrete :class:`APIKey` model."""


class AbstractAPIKey(models.Model):
    """Fields and behaviour every key model shares. Subclass it for a custom key model."""

    id = models.BigAutoField(primary_key=True)
    prefix = models.CharField(
        _("prefix"),
        max_length=16,
        unique=True,
        editable=False,
        help_text=_("Public lookup id: the part of the key that identifies it."),
    )
    hashed_key = models.CharField(_("hashed key"), max_length=255, editable=False)
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    name = models.CharField(
        _("name"),
        max_length=50,
        blank=False,
        default=None,
        help_text=_("A free-form name for the key. Need not be unique."),
    )
    revoked = models.BooleanField(
        _("revoked"),
        blank=True,
        default=False,
        help_text=_("A revoked key can no longer be used. This cannot be undone."),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    expiry_date = models.DateTimeField(
        _("expires"),
        null=True,
        blank=True,
        help_text=_("Once this date has passed, the key can no longer be used."),
    )
    last_used_at = models.DateTimeField(
        _("last used"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Approximate: updated at most once per configured interval."),
    )
    scopes = models.JSONField(
        _("scopes"),
        default=list,
        blank=True,
        help_text=_('Scopes this key grants, such as "orders:read", "orders:*" or "*".'),
    )
    allowed_networks = models.JSONField(
        _("allowed networks"),
        default=list,
        blank=True,
        help_text=_(
            'Client networks allowed to use the key, in CIDR notation ("203.0.113.0/24", '
            '"2001:db8::/32"). Empty: any address.'
        ),
    )
    rate_limit = models.CharField(
        _("rate limit"),
        max_length=32,
        blank=True,
        default="",
        help_text=_('Requests allowed per period, such as "100/min". Empty: the default.'),
    )
    rotated_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="successors",
        verbose_name=_("rotated from"),
        help_text=_("The key this one replaced when it was rotated."),
    )

    objects = BaseAPIKeyManager()

    class Meta:
        abstract = True
        ordering = ("-created",)
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._initial_revoked = self.revoked

    def __str__(self) -> str:
        # The name alone, as djangorestframework-api-key prints it: migrating projects show
        # it in templates and logs. The admin shows the lookup id in a column of its own.
        return str(self.name)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._adopt_existing_row(kwargs.get("using"), bool(kwargs.get("force_insert")))
        self._validate_revoked()
        self._validate_policy_fields()
        if self.revoked and self.revoked_at is None:
            self.revoked_at = timezone.now()
        adding = self._state.adding
        revoking = self.revoked and not self._initial_revoked and not adding
        db = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        if adding or kwargs.get("force_insert"):
            super().save(*args, **kwargs)
            announce_new_key(type(self), self.prefix)
        else:
            kwargs["update_fields"] = self._writable_fields(kwargs.get("update_fields"))
            with transaction.atomic(using=db):
                record_change(type(self), self._prefixes_in(db), using=db)
                super().save(*args, **kwargs)
        self._initial_revoked = self.revoked
        if revoking:
            send_on_commit(api_key_revoked, type(self), db, api_key=self)

    @property
    @expires_by_date_alone
    def has_expired(self) -> bool:
        """True once ``expiry_date`` has passed."""
        return self.expiry_date is not None and self.expiry_date <= timezone.now()

    def _has_expired(self) -> bool:
        """djangorestframework-api-key's name for :attr:`has_expired`, kept for the admins
        (``list_display``) and serializers (``source``) written for it."""
        return self.has_expired

    _has_expired.boolean = True  # type: ignore[attr-defined]
    _has_expired.short_description = _("Has expired")  # type: ignore[attr-defined]

    @property
    def granted_scopes(self) -> tuple[str, ...]:
        """The stored scopes as a tuple of strings (empty if the column holds anything else)."""
        if not isinstance(self.scopes, list):
            return ()
        return tuple(scope for scope in self.scopes if isinstance(scope, str))

    def is_valid(self, key: str) -> bool:
        """Tell whether ``key`` matches this key's stored hash (state is not checked)."""
        return check_key(key, self.hashed_key, api_key_settings.hash_algorithm).matches

    def clean(self) -> None:
        super().clean()
        self._validate_revoked()
        self._validate_policy_fields()

    def _validate_policy_fields(self) -> None:
        """Validate (and normalise) scopes, allowed networks and the rate limit, or raise
        ``ValidationError``: a value that does not parse must never reach a request."""
        cleaned, errors = policy_field_errors({name: getattr(self, name) for name in POLICY_FIELDS})
        if errors:
            raise ValidationError(errors)
        for name, value in cleaned.items():
            setattr(self, name, value)

    def revoke(self) -> None:
        """Revoke this key now. Idempotent; it writes only ``revoked`` and ``revoked_at``."""
        now = timezone.now()
        db = router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=db):
            record_change(type(self), self._prefixes_in(db), using=db)
            changed = (
                type(self)
                ._base_manager.using(db)
                .filter(pk=self.pk, revoked=False)
                .update(revoked=True, revoked_at=now)
            )
        if changed:
            send_on_commit(api_key_revoked, type(self), db, api_key=self)
        self.revoked = True
        self._initial_revoked = True
        if self.revoked_at is None:
            self.revoked_at = now

    async def arevoke(self) -> None:
        """Async twin of :meth:`revoke`."""
        await sync_to_async(self.revoke)()

    def rotate(self: _KeyT, grace_period: timedelta = NO_GRACE) -> tuple[_KeyT, str]:
        """Issue a successor to this key; see :meth:`BaseAPIKeyManager.rotate_key`."""
        manager: BaseAPIKeyManager[_KeyT] = type(self)._default_manager  # type: ignore[assignment]
        return manager.rotate_key(self, grace_period)

    async def arotate(self: _KeyT, grace_period: timedelta = NO_GRACE) -> tuple[_KeyT, str]:
        """Async twin of :meth:`rotate`."""
        return await sync_to_async(self.rotate)(grace_period)

    def _take_new_key(self, lookup: str, hashed_key: str) -> None:
        """Store a newly generated key's lookup id and hash on this (unsaved) instance."""
        self.prefix = lookup
        self.hashed_key = hashed_key

    def _prefixes_in(self, db: str) -> Iterator[str]:
        """This key's lookup id as stored in ``db`` and as this instance holds it (they differ
        for an instance built by hand or changed in memory). Lazy: ``record_change`` reads
        the stored one after it locks the change clock."""
        yield self.prefix
        if self.pk is not None:
            yield from (
                type(self)
                ._base_manager.using(db)
                .filter(pk=self.pk)
                .values_list("prefix", flat=True)
            )

    def _adopt_existing_row(self, using: str | None, force_insert: bool) -> None:
        """A new instance given the primary key of a stored key would make ``save()`` update
        that row like an insert: unrecorded, and free to undo a revocation. Treat it as the
        update it is."""
        if not self._state.adding or self.pk is None or force_insert:
            return
        db = using or router.db_for_write(type(self), instance=self)
        stored = type(self)._base_manager.using(db).filter(pk=self.pk)
        revoked = stored.values_list("revoked", flat=True).first()
        if revoked is not None:
            self._state.adding = False
            self._initial_revoked = revoked

    def _validate_revoked(self) -> None:
        if self._initial_revoked and not self.revoked:
            raise ValidationError(
                _("The API key has been revoked, which cannot be undone."), code="revoked"
            )

    def _writable_fields(self, requested: Iterable[str] | None) -> list[str]:
        fields: list[Field[Any, Any]] = [f for f in self._meta.concrete_fields if not f.primary_key]
        names = {f.name for f in fields} | {f.attname for f in fields}
        wanted = set(names if requested is None else requested)
        allowed = names - _GUARDED_FIELDS
        if self.revoked and not self._initial_revoked:
            allowed |= {"revoked", "revoked_at"}
        # Unknown names are passed on so that Django reports them as it always does.
        return sorted((wanted & allowed) | (wanted - names))


def _record_deletion(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, using: str, **kwargs: Any
) -> None:
    """Record the deletion of a key however it is deleted: ``delete()``, a queryset, or a
    cascade from a deleted owner (Django's collector sends ``pre_delete`` for each row, in
    the deleting transaction, and skips its fast path for models that have receivers)."""
    if (key_store_label(sender), instance.prefix) not in _deletions_recorded.get():
        record_change(sender, instance._prefixes_in(using), using=using)


def _record_raw_save(
    sender: type[AbstractAPIKey], instance: AbstractAPIKey, raw: bool, using: str, **kwargs: Any
) -> None:
    """``loaddata`` and deserialized objects save with ``raw=True``, past ``save()``: a
    fixture loaded over a stored key changes it all the same."""
    if raw:
        record_change(sender, instance._prefixes_in(using), using=using)


def _watch_changes(sender: type[Any], **kwargs: Any) -> None:
    if issubclass(sender, AbstractAPIKey) and not sender._meta.abstract:
        pre_save.connect(
            _record_raw_save,
            sender=sender,
            dispatch_uid=f"async_api_key:raw:{sender._meta.label_lower}",
        )
        pre_delete.connect(
            _record_deletion,
            sender=sender,
            dispatch_uid=f"async_api_key:{sender._meta.label_lower}",
        )


class_prepared.connect(_watch_changes, dispatch_uid="async_api_key.models")


class AbstractStringIdAPIKey(AbstractAPIKey):
    """A key model with djangorestframework-api-key's primary key: the string
    ``"<prefix>.<hashed key>"``, given once when the key is made and never changed.

    Subclass it in place of djangorestframework-api-key's ``AbstractAPIKey`` to keep a table
    that already holds keys: ``makemigrations`` then only adds columns and widens two
    (``prefix`` and ``hashed_key``), so existing rows, their keys and the foreign keys that
    point at them stay as they are. New models should subclass :class:`AbstractAPIKey`, whose
    primary key is an integer.
    """

    # Overrides the integer primary key of the base class, which Django allows for
    # abstract bases; the stubs type ``id`` by the base class's field.
    id = models.CharField(  # type: ignore[assignment]
        max_length=150, unique=True, primary_key=True, editable=False
    )

    class Meta(AbstractAPIKey.Meta):
        abstract = True

    def _take_new_key(self, lookup: str, hashed_key: str) -> None:
        super()._take_new_key(lookup, hashed_key)
        self.id = f"{lookup}.{hashed_key}"


class APIKey(AbstractAPIKey):
    """The ready-made key model."""

    objects: ClassVar[APIKeyManager] = APIKeyManager()

    class Meta(AbstractAPIKey.Meta):
        abstract = False
