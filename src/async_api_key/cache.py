"""The verification cache: a hot key is verified from memory, without a query or a thread hop.

Two tiers:

- the **local tier**, in this process, keyed by the key model, the manager and a SHA-256
  digest of the presented key (never the raw key): a hit is one hash and one dictionary
  lookup, before the key is even parsed, since only a key that was verified in full is
  stored under its digest. Entries live ``CACHE_TTL`` seconds, at most
  ``CACHE_MAX_ENTRIES`` of them (least recently used go first); an index by public lookup
  id (``prefix``) drops them when their key changes. The async path reads this tier on
  the event loop: it is a dictionary, no I/O. Lookup ids that matched no key are
  remembered ``NEGATIVE_CACHE_TTL`` seconds (at most ``NEGATIVE_CACHE_MAX_ENTRIES``), so
  repeating an unknown key costs no query;
- the optional **shared tier**, a Django cache alias (``SHARED_CACHE_ALIAS``, Redis in
  production), keyed by lookup id and read on a local miss inside the verification's
  thread hop, so several processes share work. Its entries hold the digest of the
  verified key; a hit needs the presented key's digest to match (constant-time).

The cache never accepts a key the database would refuse. Entries are dropped on every
change that can affect validity (``revoke()``, rotation, ``save()``, ``delete()``,
queryset ``update()`` and ``delete()``); see :func:`invalidate`. Another process's local
tier may keep accepting a changed key for at most ``CACHE_TTL`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.core.cache import caches
from django.db.models.base import ModelState

from .conf import api_key_settings

if TYPE_CHECKING:
    from .models import AbstractAPIKey

logger = logging.getLogger("async_api_key")

_KeyT = TypeVar("_KeyT", bound="AbstractAPIKey")
_SHARED_KEY_PREFIX = "async_api_key:v1"
_TOMBSTONE = {"invalidated": True}
#: How long an invalidation blocks re-caching a key in the shared tier: far longer than
#: a verification takes between reading the database and storing what it read.
_TOMBSTONE_SECONDS = 5
_DIGEST_SALT = b"async-api-key-cache:"


def key_digest(raw_key: str) -> bytes:
    """The digest an entry keeps to recognise the key it was made for.

    Salted, so that it never equals a stored ``sha256$$`` hash of the same key; any string
    can be digested (``surrogatepass``), so malformed input reaches the parser.
    """
    return hashlib.sha256(_DIGEST_SALT + raw_key.encode("utf-8", "surrogatepass")).digest()


def model_label(model: type[Any]) -> str:
    return str(model._meta.label_lower)


#: A local entry's key: (model label, manager scope, digest of the presented key).
_EntryKey = tuple[str, str, bytes]


@dataclass(frozen=True)
class _Entry:
    label: str
    prefix: str
    values: dict[str, Any]
    db: str | None
    related: dict[str, Any]
    expires_at: float


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

    def put(
        self, key: _EntryKey, entry: _Entry, max_entries: int, epoch: int | None = None
    ) -> None:
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                return
            self._items[key] = entry
            self._items.move_to_end(key)
            self._by_prefix.setdefault((entry.label, entry.prefix), set()).add(key)
            while len(self._items) > max_entries:
                self._unindex(*self._items.popitem(last=False))

    def discard_prefix(self, label_prefix: tuple[str, str]) -> None:
        """Drop the entries of one key, without blocking verifications in flight."""
        with self._lock:
            for key in self._by_prefix.pop(label_prefix, ()):
                self._items.pop(key, None)

    def invalidate(self, label_prefixes: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self.epoch += 1
            for label_prefix in label_prefixes:
                for key in self._by_prefix.pop(label_prefix, ()):
                    self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_prefix.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _unindex(self, key: _EntryKey, entry: _Entry) -> None:
        label_prefix = (entry.label, entry.prefix)
        keys = self._by_prefix.get(label_prefix)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_prefix[label_prefix]


_positive = _PositiveTier()
_negative = _LRU()


class VerificationCache(Generic[_KeyT]):
    """The cache as one key model's verifier sees it."""

    def __init__(self, model: type[_KeyT], scope: str = "") -> None:
        self.model = model
        self.label = model_label(model)
        #: Which manager's notion of "usable" an entry was verified under.
        self.scope = scope

    # Local tier -------------------------------------------------------------------------

    def get_local(self, raw_key: str) -> _KeyT | None:
        """A fresh copy of the key verified as ``raw_key``, or ``None``. No I/O.

        Found by the digest of ``raw_key`` alone, before any parsing: only a key verified
        in full is stored under its digest. The dictionary lookup is not constant-time in
        the digest, which gives nothing away: bits of a SHA-256 digest do not lead back to
        the key that produced it.
        """
        if not api_key_settings.cache_enabled:
            return None
        entry = _positive.get((self.label, self.scope, key_digest(raw_key)), time.monotonic())
        return None if entry is None else self._materialize(entry)

    def is_known_unknown(self, prefix: str) -> bool:
        """True if ``prefix`` recently matched no stored key (negative cache)."""
        if not api_key_settings.cache_enabled:
            return False
        return _negative.get((self.label, prefix), time.monotonic()) is not None

    def remember_unknown(self, prefix: str) -> None:
        if not api_key_settings.cache_enabled or api_key_settings.negative_cache_ttl <= 0:
            return
        _negative.put(
            (self.label, prefix),
            True,
            time.monotonic() + api_key_settings.negative_cache_ttl,
            api_key_settings.negative_cache_max_entries,
        )

    # Both tiers -------------------------------------------------------------------------

    def get_shared(self, prefix: str, raw_key: str) -> _KeyT | None:
        """Read the shared tier (network I/O: call it from sync code only)."""
        alias = api_key_settings.shared_cache_alias
        if not api_key_settings.cache_enabled or alias is None:
            return None
        epoch = _positive.epoch  # an invalidation during the read keeps its result out
        try:
            stored = caches[alias].get(self._shared_key(prefix))
        except Exception:  # any cache failure falls back to the database
            logger.warning("API key shared cache unavailable; using the database", exc_info=True)
            return None
        if not isinstance(stored, dict):
            return None
        digest = stored.get("digest")
        values = stored.get("values")
        if stored.get("scope") != self.scope:
            return None
        if not isinstance(digest, bytes) or not isinstance(values, dict):
            return None
        if not hmac.compare_digest(digest, key_digest(raw_key)):
            return None
        entry = self._put_local(prefix, digest, values, stored.get("db"), {}, epoch=epoch)
        return self._materialize(entry)

    def epoch(self) -> int:
        """Read this before loading a key from the database; pass it to :meth:`store`."""
        return _positive.epoch

    def store(self, api_key: _KeyT, raw_key: str, epoch: int) -> None:
        """Remember a key that was just verified as valid, in both tiers.

        Nothing is stored if an invalidation happened since ``epoch`` was read: the
        key may have been revoked after it was loaded.
        """
        if not api_key_settings.cache_enabled:
            return
        digest = key_digest(raw_key)
        values = _field_values(api_key)
        related = dict(api_key._state.fields_cache)
        self._put_local(api_key.prefix, digest, values, api_key._state.db, related, epoch=epoch)
        alias = api_key_settings.shared_cache_alias
        if alias is None or epoch != _positive.epoch:
            return
        try:
            # add(), not set(): an invalidation leaves a tombstone that a verification
            # racing with it cannot overwrite with what it read before.
            caches[alias].add(
                self._shared_key(api_key.prefix),
                {"scope": self.scope, "digest": digest, "values": values, "db": api_key._state.db},
                api_key_settings.shared_cache_ttl,
            )
        except Exception:  # the shared tier is an optimisation only
            logger.warning("API key shared cache unavailable; not storing", exc_info=True)

    def forget(self, prefix: str) -> None:
        """Drop this process's entries for the key whose lookup id is ``prefix``."""
        _positive.discard_prefix((self.label, prefix))

    def _put_local(
        self,
        prefix: str,
        digest: bytes,
        values: dict[str, Any],
        db: str | None,
        related: dict[str, Any],
        *,
        epoch: int | None = None,
    ) -> _Entry:
        expires_at = time.monotonic() + api_key_settings.cache_ttl
        entry = _Entry(self.label, prefix, values, db, related, expires_at)
        if api_key_settings.cache_ttl > 0:
            _positive.put(
                (self.label, self.scope, digest), entry, api_key_settings.cache_max_entries, epoch
            )
        _negative.discard((self.label, prefix))
        return entry

    def _materialize(self, entry: _Entry) -> _KeyT:
        # A new instance per hit: requests never share (and so never mutate) one object.
        # Built from stored values rather than copy.copy(), which costs several times more.
        api_key: _KeyT = self.model.__new__(self.model)
        api_key.__dict__.update(entry.values)
        state = ModelState()
        state.adding = False
        state.db = entry.db
        state.fields_cache = dict(entry.related)
        api_key._state = state
        api_key._initial_revoked = api_key.revoked
        return api_key

    def _shared_key(self, prefix: str) -> str:
        return f"{_SHARED_KEY_PREFIX}:{self.label}:{prefix}"


def _field_values(api_key: AbstractAPIKey) -> dict[str, Any]:
    return {
        field.attname: getattr(api_key, field.attname)
        for field in api_key._meta.concrete_fields
        if field.attname in api_key.__dict__
    }


def invalidate(model: type[Any], prefixes: Iterable[str]) -> None:
    """Forget cached verifications of these keys, in this process and the shared tier."""
    label = model_label(model)
    prefixes = [prefix for prefix in prefixes if prefix]
    _positive.invalidate((label, prefix) for prefix in prefixes)
    for prefix in prefixes:
        _negative.discard((label, prefix))
    alias = api_key_settings.shared_cache_alias
    if alias is None or not prefixes:
        return
    try:
        caches[alias].set_many(
            {f"{_SHARED_KEY_PREFIX}:{label}:{p}": _TOMBSTONE for p in prefixes},
            _TOMBSTONE_SECONDS,
        )
    except Exception:
        # Fail loudly: another process may keep accepting the key until its entry expires.
        logger.error(
            "API key shared cache unavailable; could not invalidate %d key(s)",
            len(prefixes),
            exc_info=True,
        )


def forget_unknown(model: type[Any], prefix: str) -> None:
    """A key with this lookup id now exists: drop this process's negative entry for it."""
    _negative.discard((model_label(model), prefix))


def clear_local() -> None:
    """Empty this process's local tier (tests, or after a bulk change made in raw SQL)."""
    _positive.clear()
    _negative.clear()
