"""The one verifier: the only place that decides whether a presented key is good.

Both adapters (Django-Ninja and DRF), the managers' ``get_from_key`` / ``is_valid``
and their async twins all ask a :class:`Verifier`. It returns a
:class:`VerificationOutcome` with a stable :class:`Reason`; adapters only translate
that outcome into their framework's answer.

Shape of one verification::

    raw key -> this process's cache, by digest of the key (a hit skips the next steps)
            -> parse (pure, no I/O)
            -> stored-key check (one database query; in ``averify`` one thread hop)
            -> policy (IP allowlist, scopes; pure)

A malformed key stops at the parse: no query, no thread hop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from asgiref.sync import sync_to_async
from django.db import Error as DatabaseError
from django.db import router, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone
from django.utils.hashable import make_hashable

from .cache import VerificationCache, key_digest
from .conf import api_key_settings
from .hashing import HashCheck, check_against_dummy, check_key, hash_key, is_fast_hash
from .keys import MAX_KEY_LENGTH, ParsedKey, parse_key
from .lookup import KeyLoader
from .networks import client_address, is_allowed, is_readable_allowlist
from .password_hash_budget import password_hash_budget
from .reasons import POLICY_REASONS, Reason
from .refusals import (
    RefusalKind,
    error_body,
    error_code,
    error_detail,
    refusal_kind,
    status_code,
)
from .reporting import masks_key_locals
from .scopes import missing_scopes
from .signals import asend, verification_failed, verification_succeeded

if TYPE_CHECKING:
    from .models import AbstractAPIKey, BaseAPIKeyManager

__all__ = [
    "POLICY_REASONS",
    "Reason",
    "VerificationOutcome",
    "Verifier",
    "get_verifier",
]

logger = logging.getLogger("async_api_key")

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")
#: ``Reason.VALID`` read once: an enum member read through its class costs a lookup that
#: shows on a hot verification, which compares with it several times.
_VALID = Reason.VALID


@dataclass(frozen=True, slots=True, init=False)
class VerificationOutcome(Generic[_KeyT]):
    """What the verifier decided about one presented key."""

    reason: Reason
    #: The stored key, set when the key is genuine (``VALID`` or a policy refusal).
    api_key: _KeyT | None = None
    #: The public lookup id of a well-formed key; safe to log.
    prefix: str | None = None
    missing_scopes: tuple[str, ...] = ()
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def __init__(
        self,
        reason: Reason,
        api_key: _KeyT | None = None,
        prefix: str | None = None,
        missing_scopes: tuple[str, ...] = (),
        error: BaseException | None = None,
    ) -> None:
        # One outcome is built per request: the slots' own setters skip the frozen
        # __setattr__ that the generated __init__ goes through. Measured (best of 5 runs of
        # 200 000): 510 ns against 670 ns, of a hot verification's 4.5 µs.
        _set_reason(self, reason)
        _set_api_key(self, api_key)
        _set_prefix(self, prefix)
        _set_missing_scopes(self, missing_scopes)
        _set_error(self, error)

    @property
    def is_valid(self) -> bool:
        """True when the request may proceed."""
        return self.reason is Reason.VALID

    @property
    def is_authenticated(self) -> bool:
        """True when the key itself is genuine and usable, even if policy refuses the request."""
        return self.reason is Reason.VALID or self.reason in POLICY_REASONS

    @property
    def refusal_kind(self) -> RefusalKind:
        """How this outcome is answered over HTTP (see :mod:`async_api_key.refusals`)."""
        return refusal_kind(self.reason)

    @property
    def status_code(self) -> int:
        """The HTTP status both adapters answer with: 200, 401, 403 or 503."""
        return status_code(self.reason)

    @property
    def error_code(self) -> str:
        """A machine-readable code for a refused request, the same on both adapters.

        Every 401 gets the one code ``invalid_api_key``: a client cannot tell an
        unknown key from a revoked or expired one (no oracle).
        """
        return error_code(self.reason)

    @property
    def error_detail(self) -> str:
        """A human-readable message for a refused request, safe to send to the client."""
        return error_detail(self.reason, self.missing_scopes)

    def error_body(self) -> dict[str, object]:
        """The JSON body both adapters send with a refusal: ``detail``, ``code`` and,
        for a scope refusal, ``missing_scopes`` (a missing key: ``detail`` only)."""
        return error_body(self.reason, self.missing_scopes)


_set_reason = VerificationOutcome.__dict__["reason"].__set__
_set_api_key = VerificationOutcome.__dict__["api_key"].__set__
_set_prefix = VerificationOutcome.__dict__["prefix"].__set__
_set_missing_scopes = VerificationOutcome.__dict__["missing_scopes"].__set__
_set_error = VerificationOutcome.__dict__["error"].__set__
_new_outcome = object.__new__


class Verifier(Generic[_KeyT]):
    """Verify raw keys against one key model.

    ``manager`` decides which keys are usable through its ``get_usable_keys()``;
    it defaults to the model's default manager.
    """

    def __init__(self, model: type[_KeyT], manager: BaseAPIKeyManager[_KeyT] | None = None) -> None:
        self.model = model
        self.manager: BaseAPIKeyManager[_KeyT] = (
            manager if manager is not None else model._default_manager  # type: ignore[assignment]
        )
        self.cache = VerificationCache(model)
        self._loader = KeyLoader(self.manager, self.manager.key_filters())
        #: Checks of the key store in flight on an event loop, by the digest of the key: a
        #: request presenting a key that is being checked waits for that check (see
        #: :meth:`_acheck_stored`). Touched only from each loop's own thread.
        self._in_flight: dict[tuple[asyncio.AbstractEventLoop, bytes], asyncio.Future[Any]] = {}
        #: The manager's cache scope now: its ``cache_scope`` itself, asked on every
        #: verification (it may depend on the request, a current tenant), unless the manager
        #: keeps the constant one; then a built-in that returns it, cheaper than a Python call.
        self._cache_scope: Callable[[], str | None] = (
            itertools.repeat(self.manager.cache_scope()).__next__
            if self.manager.cache_scope_is_constant()
            else self.manager.cache_scope
        )

    @masks_key_locals
    def verify(
        self,
        raw_key: str | None,
        *,
        scopes: Sequence[str] = (),
        request_meta: Mapping[str, Any] | None = None,
    ) -> VerificationOutcome[_KeyT]:
        """Verify ``raw_key`` (``None`` when the request carried none), requiring ``scopes``.

        Adapters pass ``request_meta`` (``request.META``) so that a key's IP allowlist
        is enforced; without it (scripts, ``get_from_key``) there is no client address
        and the allowlist is not consulted.
        """
        return self._verify(raw_key, scopes, request_meta)

    def _verify(
        self,
        raw_key: str | None,
        scopes: Sequence[str] = (),
        request_meta: Mapping[str, Any] | None = None,
    ) -> VerificationOutcome[_KeyT]:
        """:meth:`verify` without its mask, for a caller whose own frame is masked (the DRF
        adapter's per-request memo): Django masks every frame below a masked one, and a
        hot verification is short enough that a second wrapper shows in its cost."""
        outcome = self._answer_local(raw_key, scopes, request_meta)
        if outcome is None:
            checked = self._check_offline(raw_key)
            if isinstance(checked, ParsedKey):
                checked = self._check_stored(checked)
            outcome = self.apply_policy(checked, scopes=scopes, request_meta=request_meta)
        # _reports(), inline: its call adds about 560 instructions to every DRF hit (callgrind).
        if outcome.reason is not _VALID or verification_succeeded.receivers:
            signal, payload = self._report(outcome)
            if signal is not None and signal.receivers:
                signal.send(self.model, **payload)
        return outcome

    @masks_key_locals
    async def averify(
        self,
        raw_key: str | None,
        *,
        scopes: Sequence[str] = (),
        request_meta: Mapping[str, Any] | None = None,
    ) -> VerificationOutcome[_KeyT]:
        """The async twin of :meth:`verify`: the ORM runs in one ``sync_to_async`` hop."""
        outcome = self._answer_local(raw_key, scopes, request_meta)
        if outcome is None:
            checked = self._check_offline(raw_key)
            if isinstance(checked, ParsedKey):
                checked = await self._acheck_stored(checked)
            outcome = self.apply_policy(checked, scopes=scopes, request_meta=request_meta)
        if self._reports(outcome):
            await self._areport(outcome)
        return outcome

    def _reports(self, outcome: VerificationOutcome[_KeyT]) -> bool:
        """Whether ``outcome`` is reported (:meth:`_report`): every refusal, and a valid key
        when ``verification_succeeded`` has receivers. Async callers ask this before they
        await :meth:`_areport`; :meth:`_verify` has the same test inline."""
        return outcome.reason is not _VALID or bool(verification_succeeded.receivers)

    async def _areport(self, outcome: VerificationOutcome[_KeyT]) -> None:
        """Report ``outcome`` from async code: its receivers run off the event loop."""
        signal, payload = self._report(outcome)
        if signal is not None:
            await asend(signal, self.model, **payload)

    async def _acheck_stored(self, parsed: ParsedKey) -> VerificationOutcome[_KeyT]:
        """:meth:`_check_stored` in one thread hop, shared by the requests that present the
        same key while it is in flight on this event loop.

        A server under load has many requests with one hot key in flight when its entry
        needs the change log again, or when it is first used: each would take a thread hop
        and check the key store for itself. The others wait on the loop instead; then a
        valid key is answered from this process's cache (each request gets a key object of
        its own) and a refusal, which holds no key object, is shared. If the check they
        waited for failed or was cancelled, or its key could not be cached, each makes its
        own.
        """
        flight = (asyncio.get_running_loop(), key_digest(parsed.raw))
        leader = self._in_flight.get(flight)
        if leader is not None:
            shared: VerificationOutcome[_KeyT] | None = await asyncio.shield(leader)
            if shared is not None and shared.reason is not _VALID:
                return shared
            hot = self._answer_local(parsed.raw, (), None)
            if hot is not None:
                return hot
            return await sync_to_async(self._check_stored)(parsed)
        done: asyncio.Future[VerificationOutcome[_KeyT] | None] = flight[0].create_future()
        self._in_flight[flight] = done
        outcome: VerificationOutcome[_KeyT] | None = None
        try:
            outcome = await sync_to_async(self._check_stored)(parsed)
        finally:
            del self._in_flight[flight]
            done.set_result(outcome)  # None: the followers check for themselves
        return outcome

    def _answer_local(
        self, raw_key: str | None, scopes: Sequence[str], request_meta: Mapping[str, Any] | None
    ) -> VerificationOutcome[_KeyT] | None:
        """Answer a key verified recently in this process, or ``None``. No I/O: safe on the loop.

        Runs before parsing: a hit proves ``raw_key`` is a key that was parsed and verified.
        The request policy is applied here too: a hit is the whole verification, in as few
        calls as it can be (each Python call costs about 700 instructions, and a hit was
        made of twenty of them). The caller reports the outcome (:meth:`_reports`): an async
        adapter answers a hit with this call alone, without awaiting :meth:`averify`.

        Django's error reports mask a sync frame only below a sync masked one, and this one
        also runs below coroutines (``averify``, Ninja's ``authenticate``), which Django masks
        frame by frame: the key leaves this frame as soon as it is digested, before anything
        that can raise (the cache, the model's properties, the policy) runs below it.
        """
        if not isinstance(raw_key, str) or len(raw_key) > MAX_KEY_LENGTH:
            return None
        digest = key_digest(raw_key)
        del raw_key
        api_key = self.cache.get_local(digest, self._cache_scope())
        if api_key is None:
            return None
        # VerificationOutcome(Reason.VALID, api_key=api_key, prefix=api_key.prefix), built
        # with the slots' own setters: the class's __init__, through its frozen
        # __setattr__, costs two more calls.
        outcome: VerificationOutcome[_KeyT] = _new_outcome(VerificationOutcome)
        _set_reason(outcome, _VALID)
        _set_api_key(outcome, api_key)
        _set_prefix(outcome, api_key.prefix)
        _set_missing_scopes(outcome, ())
        _set_error(outcome, None)
        # apply_policy's rules need scopes to require, or a client address and a key with
        # an allowlist: without them, its answer is the outcome as it is.
        if scopes or (request_meta is not None and api_key.allowed_networks):
            return self.apply_policy(outcome, scopes=scopes, request_meta=request_meta)
        return outcome

    def _check_offline(self, raw_key: str | None) -> ParsedKey | VerificationOutcome[_KeyT]:
        """For a key this process's cache did not answer (:meth:`_answer_local`, called
        first): answer a missing, malformed or known unknown key, or return the parsed key
        that the key store must answer. No I/O: safe on the loop."""
        if raw_key is None:
            return VerificationOutcome(Reason.MISSING)
        parsed = parse_key(raw_key)
        if parsed is None:
            return VerificationOutcome(Reason.MALFORMED)
        if self.cache.is_known_unknown(self.manager.db, parsed.lookup):
            return VerificationOutcome(Reason.UNKNOWN, prefix=parsed.lookup)
        return parsed

    def _check_stored(self, parsed: ParsedKey) -> VerificationOutcome[_KeyT]:
        """Bring the cache up to date with the change log if due, then check this process's
        cache again, the shared tier, and the database. Sync: runs I/O."""
        try:
            return self._check_stored_unguarded(parsed)
        except DatabaseError as exc:
            # The driver's message names the cause (a lock, a refused connection...); the
            # queries carry only the lookup id, so it holds no key.
            logger.error(
                "API key verification failed: the key store is unavailable (%s: %s); prefix=%s",
                type(exc).__name__,
                exc,
                parsed.lookup,
            )
            return VerificationOutcome(Reason.UNAVAILABLE, prefix=parsed.lookup, error=exc)

    def _check_stored_unguarded(self, parsed: ParsedKey) -> VerificationOutcome[_KeyT]:
        algorithm = api_key_settings.hash_algorithm
        scope = self._cache_scope()
        ticket = self.cache.begin_read(self.manager.db, parsed.raw, scope)
        confirmed = self._answer_local(parsed.raw, (), None)  # the log read confirmed it
        if confirmed is not None:
            return confirmed
        shared, ticket = self.cache.get_shared(parsed.lookup, parsed.raw, scope, ticket)
        if shared is not None and not shared.has_expired:
            return VerificationOutcome(Reason.VALID, api_key=shared, prefix=parsed.lookup)
        stored = self._loader.load(parsed.lookup)
        if stored is None:
            check_against_dummy(parsed.raw, algorithm)
            if not self._loader.exists_anywhere(parsed.lookup):
                self.cache.remember_unknown(self.manager.db, parsed.lookup)
            return VerificationOutcome(Reason.UNKNOWN, prefix=parsed.lookup)
        check = self._check_secret(parsed, stored.hashed_key, algorithm)
        if not check.matches:
            return VerificationOutcome(Reason.INVALID_SECRET, prefix=parsed.lookup)
        if stored.revoked:
            return VerificationOutcome(Reason.REVOKED, prefix=parsed.lookup)
        if stored.has_expired:
            return VerificationOutcome(Reason.EXPIRED, prefix=parsed.lookup)
        if not self._loader.is_usable(stored):
            return VerificationOutcome(Reason.UNUSABLE, prefix=parsed.lookup)
        if check.needs_upgrade:
            self._upgrade_hash(stored, hash_key(parsed.raw, algorithm))
        self._touch_last_used(stored)
        self.cache.store(stored, parsed.raw, scope, ticket)
        return VerificationOutcome(Reason.VALID, api_key=stored, prefix=parsed.lookup)

    @staticmethod
    def _check_secret(parsed: ParsedKey, stored_hash: str, algorithm: str) -> HashCheck:
        """Check the presented key against the stored hash; a password hash (slow on
        purpose) only within this process's budget of attempts for it."""
        if is_fast_hash(stored_hash):
            return check_key(parsed.raw, stored_hash, algorithm)
        if not password_hash_budget.admit(stored_hash, parsed.raw, parsed.lookup):
            return HashCheck(matches=False)
        check = check_key(parsed.raw, stored_hash, algorithm)
        if check.matches:
            password_hash_budget.matched(stored_hash)
        else:
            password_hash_budget.refused(stored_hash, parsed.raw)
        return check

    def _upgrade_hash(self, stored: _KeyT, new_hash: str) -> None:
        self._bookkeeping(stored, partial(self._write_hash, stored, new_hash))

    def _write_hash(self, stored: _KeyT, new_hash: str) -> None:
        # One column, and only if nobody changed it meanwhile: a full-row save here
        # could write back a stale ``revoked=False`` over a concurrent revocation.
        try:
            updated = (
                self.model._base_manager.using(_write_db(stored))
                .filter(pk=stored.pk, hashed_key=stored.hashed_key)
                .update(hashed_key=new_hash)
            )
        except DatabaseError:
            logger.warning("Could not upgrade a legacy key hash; prefix=%s", stored.prefix)
            return
        if updated:
            stored.hashed_key = new_hash

    def _touch_last_used(self, stored: _KeyT) -> None:
        interval = api_key_settings.last_used_interval
        if interval is None:
            return
        now = timezone.now()
        threshold = now - interval
        if stored.last_used_at is not None and stored.last_used_at >= threshold:
            return
        self._bookkeeping(stored, partial(self._write_last_used, stored, now, threshold))

    def _write_last_used(self, stored: _KeyT, now: datetime, threshold: datetime) -> None:
        # Conditional, single-column UPDATE: concurrent verifications write at most once per
        # interval, and the value never moves backwards.
        try:
            updated = (
                self.model._base_manager.using(_write_db(stored))
                .filter(pk=stored.pk)
                .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=threshold))
                .update(last_used_at=now)
            )
        except DatabaseError:
            # Bookkeeping must not refuse a valid key (a replica, a locked SQLite table).
            logger.warning("Could not record last_used_at; prefix=%s", stored.prefix)
            return
        if updated:
            stored.last_used_at = now

    def _bookkeeping(self, stored: _KeyT, write: Callable[[], None]) -> None:
        """Run a bookkeeping write now, or, inside the caller's transaction, once it commits:
        a key row locked until then for bookkeeping would block the key's own changes (and
        could deadlock with them, since a recorded change locks the change clock first)."""
        db = _write_db(stored)
        if transaction.get_connection(db).in_atomic_block:
            transaction.on_commit(write, using=db)
        else:
            write()

    def apply_policy(
        self,
        outcome: VerificationOutcome[_KeyT],
        *,
        scopes: Sequence[str] = (),
        request_meta: Mapping[str, Any] | None = None,
    ) -> VerificationOutcome[_KeyT]:
        """Apply the request policy to a genuine key (pure: no query, no hop).

        First the key's IP allowlist (when ``request_meta`` is given), then ``scopes``.
        ``verify()`` does this itself; an adapter that verified once per request calls
        it again to check each permission's scopes.
        """
        api_key = outcome.api_key
        if outcome.reason is not _VALID or api_key is None:
            return outcome
        if request_meta is not None and api_key.allowed_networks:
            address = client_address(request_meta)  # TRUSTED_PROXY_COUNT and TRUSTED_PROXIES
            if not is_allowed(address, api_key.allowed_networks):
                if not is_readable_allowlist(api_key.allowed_networks):
                    _log_unreadable(api_key, "allowed_networks")
                return VerificationOutcome(
                    Reason.IP_NOT_ALLOWED, api_key=api_key, prefix=outcome.prefix
                )
        missing = missing_scopes(api_key.granted_scopes, scopes) if scopes else ()
        if missing:
            if api_key.scopes != list(api_key.granted_scopes):  # not a list of strings
                _log_unreadable(api_key, "scopes")
            return VerificationOutcome(
                Reason.INSUFFICIENT_SCOPE,
                api_key=api_key,
                prefix=outcome.prefix,
                missing_scopes=missing,
            )
        return outcome

    def _report(self, outcome: VerificationOutcome[_KeyT]) -> tuple[Signal | None, dict[str, Any]]:
        """Log a failure; return the audit signal to send and its payload (never the key)."""
        if outcome.reason is Reason.MISSING:
            return None, {}
        if outcome.reason is Reason.VALID:
            return verification_succeeded, {"api_key": outcome.api_key, "prefix": outcome.prefix}
        if outcome.reason is not Reason.UNAVAILABLE:  # already logged at ERROR
            logger.info(
                "API key verification failed: reason=%s prefix=%s",
                outcome.reason.value,
                outcome.prefix,
            )
        return verification_failed, {"reason": outcome.reason, "prefix": outcome.prefix}


def _log_unreadable(api_key: AbstractAPIKey, field_name: str) -> None:
    """A stored policy field that does not parse (written around the validation, by raw SQL
    or ``_base_manager``) is read as granting nothing; the operator learns which key."""
    logger.error(
        "API key %s has an unreadable %s stored; it is read as allowing nothing",
        api_key.prefix,
        field_name,
    )


def _write_db(stored: AbstractAPIKey) -> str:
    """Where a write to a loaded key goes: the router's choice for it, which without a
    router is the database it was read from (a ``db_manager()``'s, say)."""
    return router.db_for_write(type(stored), instance=stored)


_verifiers: dict[Hashable, Verifier[Any]] = {}
#: What Django itself keeps on a manager; anything else was set by the project.
_DJANGO_MANAGER_ATTRIBUTES = frozenset(
    {"_constructor_args", "creation_counter", "model", "name", "_db", "_hints", "auto_created"}
)


def get_verifier(
    model: type[_KeyT], manager: BaseAPIKeyManager[_KeyT] | None = None
) -> Verifier[_KeyT]:
    """Return the verifier for ``model`` and ``manager`` (default: the model's default manager).

    Verifiers hold no per-request state, so one per model and manager is built once and
    reused: adapters and manager methods call this on every request.
    """
    # The model alone keys its default verifier: no tuple to build and hash per request.
    verifier = _verifiers.get(model if manager is None else (model, manager))
    if verifier is None:
        verifier = _shared_verifier(model, manager)
    return verifier


def _shared_verifier(
    model: type[_KeyT], manager: BaseAPIKeyManager[_KeyT] | None
) -> Verifier[_KeyT]:
    key: Hashable
    if manager is None:
        key = model
    elif model._meta.managers_map.get(manager.name) is manager:
        key = (model, manager)
    elif set(vars(manager)) - _DJANGO_MANAGER_ATTRIBUTES:
        # State set on the copy (a tenant, say) may decide what it answers: its own verifier.
        return Verifier(model, manager=manager)
    else:
        # A manager made on the fly (``db_manager()``, a copy) is shared by what decides its
        # behaviour, so that code making one per request does not keep a verifier per request.
        try:
            key = (
                model,
                type(manager),
                manager._db,
                make_hashable(getattr(manager, "_constructor_args", ())),
                make_hashable(getattr(manager, "_hints", None)),
            )
            hash(key)
        except TypeError:
            return Verifier(model, manager=manager)  # one of a kind: not kept
    verifier = _verifiers.get(key)
    if verifier is None:
        verifier = _verifiers.setdefault(key, Verifier(model, manager=manager))
    return verifier
