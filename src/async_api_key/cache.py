"""The verification cache: a hot key is verified from memory, without a query or a thread hop.

Two tiers:

- the **local tier**, in this process, keyed by the key model, the manager's cache scope and
  a salted BLAKE2b digest of the presented key (never the raw key): a hit is one hash and one
  dictionary lookup, before the key is even parsed, since only a key that was verified in
  full is stored under its digest. An entry is served only while the change feed confirms
  it (:mod:`async_api_key.propagation`): no change to it can have committed more than
  ``MAX_STALENESS`` seconds ago unseen. Entries live at most ``CACHE_TTL`` seconds, at most
  ``CACHE_MAX_ENTRIES`` of them; an index by public lookup id (``prefix``) drops them when
  their key changes. The async path reads this tier on the event loop: memory only.
  Lookup ids that match no key in the whole table are remembered ``NEGATIVE_CACHE_TTL``
  seconds, so repeating an unknown key costs no query;
- the optional **shared tier**, a Django cache alias (``SHARED_CACHE_ALIAS``, Redis in
  production), keyed by lookup id and read on a local miss inside the verification's
  thread hop, so that processes share work. An entry holds the digest of the verified key
  and the *versions* of its key and its model that were current before the key was read
  from the database; every change replaces the versions, so an entry read before a change
  can never be served after it, whoever stored it and whenever.

The caches learn of changes from one place, the :data:`~async_api_key.changes.keys_changed`
signal (see :mod:`async_api_key.changes`); no other module calls into them to invalidate.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import math
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from django.core.cache import caches
from django.db.models.base import ModelState
from django.dispatch import receiver

from .changes import key_store_label, keys_changed
from .conf import api_key_settings
from .propagation import change_feed

if TYPE_CHECKING:
    from .models import AbstractAPIKey

__all__ = [
    "clear_local",
]

logger = logging.getLogger("async_api_key")

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")
_SHARED_KEY_PREFIX = "async_api_key:v2"
_DIGEST_SALT = b"async-api-key-cache:"
_NEVER = -math.inf
#: Values a cached key can hand to every request as they are: nobody can change them.
_IMMUTABLE = (str, int, float, bool, bytes, type(None), datetime, date, Decimal, UUID)
_salted_blake2b = hashlib.blake2b(_DIGEST_SALT)


def key_digest(raw_key: str) -> bytes:
    """The digest an entry keeps to recognise the key it was made for.

    BLAKE2b, salted: a cryptographic hash that never equals a stored hash of the same key.
    It digests a salted key of up to 108 bytes in one compression, where SHA-256 needs two:
    computed on every request, it was the largest single cost of a cache hit. Any string can
    be digested (``surrogatepass``), so malformed input reaches the parser.
    """
    try:
        encoded = raw_key.encode()  # the usual case, without the error handler's lookup
    except UnicodeEncodeError:
        encoded = raw_key.encode("utf-8", "surrogatepass")
    # A copy of a hash that has taken the salt already: about 900 fewer instructions
    # (callgrind) than a new hash of the salt and the key, whose constructor parses
    # BLAKE2b's eight keyword parameters.
    digest = _salted_blake2b.copy()
    digest.update(encoded)
    return digest.digest()


#: A local entry's key: (model label, manager cache scope, digest of the presented key).
_EntryKey = tuple[str, str, bytes]


@dataclass(frozen=True)
class _Entry:
    label: str
    prefix: str
    values: dict[str, Any]
    #: Field values that are mutable (lists, dicts), each with the function that copies it
    #: for every hit.
    mutable: tuple[tuple[str, Callable[[Any], Any]], ...]
    db: str | None
    related: dict[str, Any]
    #: Until when the entry vouches for itself: the start of the database read behind it
    #: plus ``MAX_STALENESS`` (``-inf`` for an entry from the shared tier, which relies on
    #: this process's change feed alone). Past it, the change feed must confirm the entry.
    fresh_until: float
    expires_at: float
    #: Whether the key has an expiry date. A hit asks the copy it makes whether it has
    #: expired only when it has one, or when the model reading it (a proxy may read the
    #: entries of its concrete model) decides ``has_expired`` in its own way: most keys
    #: never expire, and asking costs a property call on every hit.
    has_expiry_date: bool


@dataclass(frozen=True)
class ReadTicket:
    """Taken before a key is read from the database; says whether what is read may be cached."""

    epoch: int
    read_at: float
    #: Whether the change feed has a position in the database read from.
    covered: bool
    #: The change feed's position when the read began: a shared entry carries it, so that
    #: a process that started later knows whether it has seen every change since.
    generation: int | None = None
    #: The shared tier's versions of the key and of its model, read before the database.
    shared_versions: tuple[Any, Any] | None = None


class _LRU:
    """A thread-safe, bounded mapping whose entries expire."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], now: float) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= now:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: tuple[str, str], value: Any, expires_at: float, max_entries: int) -> None:
        with self._lock:
            self._items[key] = (expires_at, value)
            self._items.move_to_end(key)
            while len(self._items) > max_entries:
                self._items.popitem(last=False)

    def discard(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._items.pop(key, None)

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._items.clear()

    def discard_label(self, label: str | None) -> None:
        with self._lock:
            for key in [k for k in self._items if label is None or k[0] == label]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _PositiveTier:
    """Verified keys by digest: thread-safe, bounded, expiring, and indexed by lookup id.

    The index lets a change to a key (known by its model and lookup id, never by its raw
    value) drop every entry made for it.
    """

    def __init__(self) -> None:
        self._items: OrderedDict[_EntryKey, _Entry] = OrderedDict()
        self._by_prefix: dict[tuple[str, str], set[_EntryKey]] = {}
        self._lock = threading.Lock()
        #: Bumped by every invalidation; a verification that read the database before an
        #: invalidation must not cache what it read (it may be a key revoked meanwhile).
        self.epoch = 0

    def get(self, key: _EntryKey, now: float) -> _Entry | None:
        # No lock on a hit, the hot path: reading the dict and move_to_end() are each one
        # atomic step. An invalidation that removes the entry in between makes
        # move_to_end() raise, a miss: once invalidate() has returned, no hit is possible.
        # Measured on the CI machine kind: 80 ns without the lock, 235 ns with it, of a
        # 3 us hot verification (a micro-benchmark of this method alone).
        entry = self._items.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            with self._lock:
                if self._items.get(key) is entry:
                    del self._items[key]
                    self._unindex(key, entry)
            return None
        try:
            self._items.move_to_end(key)
        except KeyError:
            return None
        return entry

    def put(self, key: _EntryKey, entry: _Entry, max_entries: int, epoch: int) -> bool:
        with self._lock:
            if epoch != self.epoch:
                return False
            self._items[key] = entry
            self._items.move_to_end(key)
            self._by_prefix.setdefault((entry.label, entry.prefix), set()).add(key)
            while len(self._items) > max_entries:
                self._unindex(*self._items.popitem(last=False))
            return True

    def discard_prefix(self, label_prefix: tuple[str, str]) -> None:
        """Drop the entries of one key, without blocking verifications in flight."""
        with self._lock:
            for key in self._by_prefix.pop(label_prefix, ()):
                self._items.pop(key, None)

    def invalidate(self, label: str | None, prefixes: tuple[str, ...] | None) -> None:
        """Drop the entries of these keys (``None``: every key of ``label``, or of every
        model when ``label`` is ``None``) and stop verifications in flight from storing."""
        with self._lock:
            self.epoch += 1
            if prefixes is None:
                doomed = [lp for lp in self._by_prefix if label is None or lp[0] == label]
            else:
                doomed = [(label, prefix) for prefix in prefixes if label is not None]
            for label_prefix in doomed:
                for key in self._by_prefix.pop(label_prefix, ()):
                    self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self.epoch += 1
            self._items.clear()
            self._by_prefix.clear()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self.epoch += 1
        self._items.clear()
        self._by_prefix.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: _EntryKey) -> bool:
        return key in self._items

    def _unindex(self, key: _EntryKey, entry: _Entry) -> None:
        label_prefix = (entry.label, entry.prefix)
        keys = self._by_prefix.get(label_prefix)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_prefix[label_prefix]


_positive = _PositiveTier()
_negative = _LRU()
#: Keys (``(label, prefix)``, ``(label, "")`` for every key of a model) whose committed
#: change this process has seen in the last ``CACHE_TTL`` seconds: the shared tier is not
#: trusted for them, even if it could not be told of the change.
_recently_changed = _LRU()
#: However small ``CACHE_MAX_ENTRIES`` is, this many recent changes are remembered.
_RECENTLY_CHANGED_FLOOR = 10_000


class VerificationCache(Generic[_KeyT]):
    """The cache as one key model's verifier sees it.

    ``scope`` arguments come from the manager's ``cache_scope()``: entries made under one
    scope are never served under another, and ``None`` means "do not cache".
    """

    def __init__(self, model: type[_KeyT]) -> None:
        self.model = model
        self.label = key_store_label(model)
        #: Whether the model keeps the library's ``has_expired`` (the expiry date alone
        #: decides), so that a key without an expiry date never needs asking.
        self._expires_by_date = _library_expiry_rule(model)

    # Local tier -------------------------------------------------------------------------

    def get_local(self, digest: bytes, scope: str | None) -> _KeyT | None:
        """A fresh copy of the key verified under ``scope`` whose :func:`key_digest` is
        ``digest``, or ``None``. No I/O.

        Found by the digest alone, before any parsing: only a key verified in full is stored
        under its digest. The dictionary lookup is not constant-time in the digest, which
        gives nothing away: bits of a BLAKE2b digest do not lead back to the key that
        produced it. Given the digest, not the key: the key stays out of this frame and
        those below it, which error reports may show (see ``Verifier._answer_local``). An
        entry the change feed cannot confirm is a miss (kept: the cold path reads the log
        and may find it confirmed). An entry whose key has expired is dropped: the database
        path reports the expiry.
        """
        if scope is None or not api_key_settings.caching:
            return None
        now = time.monotonic()
        entry = _positive.get((self.label, scope, digest), now)
        if entry is None:
            return None
        if now >= entry.fresh_until and now >= change_feed.confirmed_until.get(entry.db, _NEVER):
            return None
        api_key = self._materialize(entry)
        if (entry.has_expiry_date or not self._expires_by_date) and api_key.has_expired:
            _positive.discard_prefix((self.label, entry.prefix))
            return None
        return api_key

    def is_known_unknown(self, db: str, prefix: str) -> bool:
        """True if ``prefix`` recently matched no stored key at all in ``db`` (negative cache)."""
        if not api_key_settings.caching:
            return False
        databases = _negative.get((self.label, prefix), time.monotonic())
        return databases is not None and db in databases

    def remember_unknown(self, db: str, prefix: str) -> None:
        """Remember a lookup id that matches no row of the key table (not merely none of a
        manager's keys: a probe through a narrow manager must not hide a real key)."""
        if not api_key_settings.caching or api_key_settings.negative_cache_ttl <= 0:
            return
        # By database too: a probe against one database must not hide a key in another.
        known = _negative.get((self.label, prefix), time.monotonic()) or frozenset()
        _negative.put(
            (self.label, prefix),
            known | {db},
            time.monotonic() + api_key_settings.negative_cache_ttl,
            api_key_settings.negative_cache_max_entries,
        )

    # The cold path (sync code: it may run I/O) --------------------------------------------

    def begin_read(self, db: str, raw_key: str, scope: str | None) -> ReadTicket:
        """Call before reading a key from ``db``; returns the ticket that :meth:`store` needs.

        Reads the change log first when this process has no position in it yet (what is
        read before it may not be cached), or when this process holds an entry for
        ``raw_key`` that the log must confirm before it is served again, unless a read
        made meanwhile (by a request that missed at the same moment) confirms it already.
        Otherwise no I/O.
        """
        if scope is not None and api_key_settings.caching:
            change_feed.note_activity(db)
            unconfirmed = time.monotonic() >= change_feed.confirmed_until.get(db, _NEVER)
            held = (self.label, scope, key_digest(raw_key)) in _positive
            if not change_feed.has_position(db) or (held and unconfirmed):
                change_feed.sync(db)
        return ReadTicket(
            epoch=_positive.epoch,
            read_at=time.monotonic(),
            covered=change_feed.has_position(db),
            generation=change_feed.position(db),
        )

    def get_shared(
        self, prefix: str, raw_key: str, scope: str | None, ticket: ReadTicket
    ) -> tuple[_KeyT | None, ReadTicket]:
        """Read the shared tier (network I/O: sync code only).

        Returns the key if the shared tier holds a current verification of ``raw_key``,
        and the ticket to store with (it now carries the shared versions that were read).
        """
        alias = api_key_settings.shared_cache_alias
        if alias is None or scope is None or not api_key_settings.caching:
            return None, ticket
        entry_key = _shared_entry_key(self.label, prefix)
        version_key = _shared_version_key(self.label, prefix)
        model_key = _shared_version_key(self.label, None)
        try:
            found = caches[alias].get_many([entry_key, version_key, model_key])
        except Exception:  # any cache failure falls back to the database
            logger.warning("API key shared cache unavailable; using the database", exc_info=True)
            return None, ticket
        versions = (found.get(version_key), found.get(model_key))
        ticket = ReadTicket(
            ticket.epoch, ticket.read_at, ticket.covered, ticket.generation, versions
        )
        stored = found.get(entry_key)
        if not isinstance(stored, dict) or not ticket.covered:
            return None, ticket
        now = time.monotonic()
        if _recently_changed.get((self.label, prefix), now) or _recently_changed.get(
            (self.label, ""), now
        ):
            return None, ticket
        digest = stored.get("digest")
        values = stored.get("values")
        if stored.get("scope") != scope or stored.get("versions") != list(versions):
            return None, ticket
        if not isinstance(digest, bytes) or not isinstance(values, dict):
            return None, ticket
        if not hmac.compare_digest(digest, key_digest(raw_key)):
            return None, ticket
        db = stored.get("db")
        if time.monotonic() >= change_feed.confirmed_until.get(db, _NEVER):
            return None, ticket
        # Read before this process started following the log: a change in between may have
        # failed to reach the shared tier, and this process would not know of it.
        if not change_feed.knows_changes_since(db, stored.get("generation")):
            return None, ticket
        age = max(0.0, time.time() - float(stored.get("stored_at", 0.0)))
        entry = self._entry(prefix, values, db if isinstance(db, str) else None, {}, -math.inf)
        # A local copy lives no longer than the shared entry it copies.
        entry = replace(entry, expires_at=entry.expires_at - age)
        if entry.expires_at > time.monotonic():
            _positive.put(
                (self.label, scope, digest), entry, api_key_settings.cache_max_entries, ticket.epoch
            )
        return self._materialize(entry), ticket

    def store(self, api_key: _KeyT, raw_key: str, scope: str | None, ticket: ReadTicket) -> None:
        """Remember a key that was just verified as valid, in both tiers.

        Nothing is stored if the change feed had no position in the key's database, or if
        a change was announced since ``ticket`` was taken: the key may have been revoked
        after it was read.
        """
        if scope is None or not api_key_settings.caching or not ticket.covered:
            return
        digest = key_digest(raw_key)
        values = _field_values(api_key)
        entry = self._entry(
            api_key.prefix,
            values,
            api_key._state.db,
            copy.deepcopy(dict(api_key._state.fields_cache)),
            ticket.read_at,
        )
        if not _positive.put(
            (self.label, scope, digest), entry, api_key_settings.cache_max_entries, ticket.epoch
        ):
            return
        _negative.discard((self.label, api_key.prefix))
        alias = api_key_settings.shared_cache_alias
        if alias is None or ticket.shared_versions is None or entry.related:
            # Related objects (a manager's select_related) stay in this process: another
            # process would get the key without them, and an async view a query it cannot run.
            return
        entry_key = _shared_entry_key(self.label, api_key.prefix)
        shared = {
            "scope": scope,
            "digest": digest,
            # The stored hash is not needed to serve a hit (the digest is) and stays out of
            # the shared cache; a key built from this entry has it deferred.
            "values": {name: value for name, value in values.items() if name not in _NOT_SHARED},
            "db": api_key._state.db,
            "versions": list(ticket.shared_versions),
            "generation": ticket.generation,
            "stored_at": time.time(),
        }
        ttl = min(api_key_settings.shared_cache_ttl, api_key_settings.cache_ttl)
        try:
            caches[alias].set(entry_key, shared, ttl)
        except Exception:  # the shared tier is an optimisation only
            logger.warning("API key shared cache unavailable; not storing", exc_info=True)

    # ------------------------------------------------------------------------------------

    def _entry(
        self,
        prefix: str,
        values: dict[str, Any],
        db: str | None,
        related: dict[str, Any],
        read_at: float,
    ) -> _Entry:
        now = time.monotonic()
        mutable = tuple(
            (name, _copier(value))
            for name, value in values.items()
            if not isinstance(value, _IMMUTABLE)
        )
        values = {**values, "_initial_revoked": bool(values.get("revoked", False))}
        return _Entry(
            label=self.label,
            prefix=prefix,
            values=copy.deepcopy(values) if mutable else values,
            mutable=mutable,
            db=db,
            related=related,
            fresh_until=read_at + api_key_settings.max_staleness,
            expires_at=now + api_key_settings.cache_ttl,
            has_expiry_date=values.get("expiry_date") is not None,
        )

    def _materialize(self, entry: _Entry) -> _KeyT:
        # A new instance per hit, with its own copies of mutable values (scopes, networks)
        # and related objects: no request can change what another request sees.
        api_key: _KeyT = self.model.__new__(self.model)
        # The instance gets a copy of the entry's dictionary (the fields, and
        # _initial_revoked) as its own: a dictionary copies as one block, where filling
        # the instance's empty one grows it step by step (1,700 fewer instructions, of the
        # 8,000 this method took; callgrind).
        attributes = entry.values.copy()
        for name, copier in entry.mutable:
            attributes[name] = copier(attributes[name])
        state = ModelState()
        state.adding = False
        state.db = entry.db
        if entry.related:  # otherwise Django makes an empty one when it is first used
            state.fields_cache = copy.deepcopy(entry.related)
        attributes["_state"] = state
        api_key.__dict__ = attributes
        return api_key


#: Getters of ``has_expired`` that decide by ``expiry_date`` alone: the library's own (see
#: :func:`expires_by_date_alone`). Known by identity, which a wrapper of one cannot take.
_DATE_ONLY_EXPIRY_RULES: set[Callable[..., bool]] = set()


def expires_by_date_alone(getter: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """Mark ``getter`` (of a ``has_expired`` property) as deciding by ``expiry_date`` alone:
    a cached key of a model that keeps it, and has no expiry date, is not asked on a hit.
    The models mark theirs; this module does not import them, since they import it."""
    _DATE_ONLY_EXPIRY_RULES.add(getter)
    return getter


def _library_expiry_rule(model: type[AbstractAPIKey]) -> bool:
    """True when ``model.has_expired`` is a property whose getter decides by date alone."""
    rule = getattr(model, "has_expired", None)
    return isinstance(rule, property) and rule.fget in _DATE_ONLY_EXPIRY_RULES


#: Field values a shared-tier entry leaves out.
_NOT_SHARED = frozenset({"hashed_key"})


def _shared_entry_key(label: str, prefix: str) -> str:
    return f"{_SHARED_KEY_PREFIX}:{label}:entry:{prefix}"


def _shared_version_key(label: str, prefix: str | None) -> str:
    """The version of one key in the shared tier, or of every key of the model (``None``)."""
    base = f"{_SHARED_KEY_PREFIX}:{label}:version"
    return base if prefix is None else f"{base}:{prefix}"


def _copier(value: Any) -> Callable[[Any], Any]:
    """The cheapest copy that shares nothing mutable: a list or dict of plain values (the
    scopes, the networks) is copied shallowly, at a fraction of ``deepcopy``'s cost."""
    if isinstance(value, list) and all(isinstance(item, _IMMUTABLE) for item in value):
        return list
    if isinstance(value, dict) and all(
        isinstance(item, _IMMUTABLE) for pair in value.items() for item in pair
    ):
        return dict
    return copy.deepcopy


def _field_values(api_key: AbstractAPIKey) -> dict[str, Any]:
    return {
        field.attname: getattr(api_key, field.attname)
        for field in api_key._meta.concrete_fields
        if field.attname in api_key.__dict__
    }


@receiver(keys_changed, dispatch_uid="async_api_key.cache")
def _on_keys_changed(
    sender: str | None,
    *,
    prefixes: tuple[str, ...] | None,
    committed: bool,
    created: bool = False,
    **kwargs: Any,
) -> None:
    """Drop what the change makes stale: at once in this process; once it has committed,
    in the shared tier too (new versions, so that no entry read before stays usable).
    A new key makes nothing stale but the memory that its lookup id matched nothing."""
    if created:
        for prefix in prefixes or ():
            _negative.discard((sender or "", prefix))
        return
    _positive.invalidate(sender, prefixes)
    if prefixes is None:
        _negative.discard_label(sender)
    else:
        for prefix in prefixes:
            _negative.discard((sender or "", prefix))
    alias = api_key_settings.shared_cache_alias
    if not committed or alias is None or sender is None:
        return
    remembered_until = time.monotonic() + api_key_settings.cache_ttl
    capacity = max(api_key_settings.cache_max_entries, _RECENTLY_CHANGED_FLOOR)
    for prefix in prefixes or ("",):
        _recently_changed.put((sender, prefix), True, remembered_until, capacity)
    version = secrets.token_hex(8)
    names = [_shared_version_key(sender, prefix) for prefix in prefixes or (None,)]
    try:
        # Versions must outlive every entry stored under the previous ones.
        caches[alias].set_many(dict.fromkeys(names, version), api_key_settings.cache_ttl + 60)
    except Exception:
        # Fail loudly; entries read before the change are still refused by processes
        # whose own change feed has seen it (they check before serving from the tier).
        logger.error(
            "API key shared cache unavailable; could not invalidate %s",
            "every key" if prefixes is None else f"{len(prefixes)} key(s)",
            exc_info=True,
        )


def _after_fork() -> None:
    """A forked child gets the tiers as they were, with locks a thread of the parent may
    have held at the fork: it starts with new, empty ones."""
    for tier in (_positive, _negative, _recently_changed):
        tier.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def clear_local() -> None:
    """Empty this process's local tier (tests)."""
    _positive.clear()
    _negative.clear()
    _recently_changed.clear()
