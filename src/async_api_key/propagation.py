"""How this process learns of key changes made in other processes: the change feed.

A cached verification may be served only while this process knows of every change that
committed more than ``MAX_STALENESS`` seconds ago: either the entry was read from the
database within the bound, or the change log was (``ChangeFeed.confirmed_until``). Two
things keep that knowledge current:

- **the change log**, read on demand: when a hit would rely on knowledge older than the
  bound, the verification takes the cold path, whose first step (:meth:`ChangeFeed.sync`)
  reads the rows added to the log since the last read. One indexed query, at most about
  once per ``MAX_STALENESS`` per process while keys are being verified, none while idle,
  and never on the event loop. A failed read leaves the cache unconfirmed, so hits stop
  within the bound and keys are verified against the database instead: an outage of the
  log can delay nothing past the bound;
- **a push channel**, when ``PUSH_CHANGES`` is on: PostgreSQL's ``LISTEN``/``NOTIFY``, or on
  another database the Redis of the shared tier (pub/sub). A thread of this process holds
  one connection that waits for the message each change sends when it commits, and applies
  it within milliseconds. It only makes changes arrive
  sooner; the bound never depends on it. It closes its connection after a few seconds in
  which no verification needed the database (a process serving cached keys needs it about
  once per ``MAX_STALENESS``) and opens it again on the next one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError, connections
from django.dispatch import receiver

from .changelog import CLOCK_ID, EVERY_KEY, ChangeClock, KeyChange
from .changes import PUSH_CHANNEL, change_committed, encode_push, keys_changed
from .conf import api_key_settings

__all__ = ["ChangeFeed", "change_feed"]

logger = logging.getLogger("async_api_key")

#: A push listener closes its connection after this many seconds in which no verification
#: needed the database: idle processes hold no connection.
LISTENER_IDLE_SECONDS: Final = 4.0
#: How long one wait for a notification lasts before the listener looks at its state again.
_LISTEN_WAIT_SECONDS: Final = 0.25
#: At most one warning about an unreadable change log per this many seconds.
_WARNING_INTERVAL: Final = 60.0


class ChangeFeed:
    """This process's position in the change log of each database that keys are read from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Generation of the last change applied, by database alias.
        self._cursors: dict[str, int] = {}
        #: The generation this process started from in each alias: it knows nothing of the
        #: changes up to it, one by one.
        self._starts: dict[str, int] = {}
        #: Monotonic time at which the last successful read of each alias's log began.
        self._synced_at: dict[str, float] = {}
        #: Until when that read confirms what was cached from each alias: its start plus
        #: ``MAX_STALENESS``. Read on every cache hit, so kept ready-made.
        self.confirmed_until: dict[str | None, float] = {}
        self._listeners: dict[str, _PushListener] = {}
        #: When a verification last needed the database (the cold path), monotonic.
        self._last_activity = -math.inf
        self._warned_at = -math.inf
        #: Counters for monitoring and benchmarks: successful and failed reads of the log,
        #: and notifications applied by push listeners.
        self.reads = 0
        self.failed_reads = 0
        self.notifications = 0
        self._executor: ThreadPoolExecutor | None = None
        #: Guards starting the log-reading executor and the push listeners.
        self._threads_lock = threading.Lock()

    def sync(self, db: str) -> bool:
        """Apply the changes recorded in ``db`` since the last read. Sync: runs one query.

        Returns whether this process has a position in ``db``'s log, that is whether what
        is read from ``db`` from now on may be cached. Never raises: a failure is logged
        and leaves the cache unconfirmed. If another thread is reading the log, waits for
        it (up to the bound) instead of reading it again.
        """
        called_at = time.monotonic()
        if not self._lock.acquire(timeout=api_key_settings.max_staleness):
            return db in self._cursors
        try:
            if self._synced_at.get(db, -math.inf) >= called_at:
                return True  # a read that began after this call covers what it needs
            started = time.monotonic()
            try:
                self._read_log(db)
            except DatabaseError:
                self.failed_reads += 1
                self._warn(db)
                return db in self._cursors
            self.reads += 1
            self._synced_at[db] = started
            self.confirmed_until[db] = started + api_key_settings.max_staleness
        finally:
            self._lock.release()
        return True

    def apply_bound(self) -> None:
        """Recompute what the last reads confirm after ``MAX_STALENESS`` changed (tests)."""
        try:
            bound = api_key_settings.max_staleness
        except ValueError:  # settings that will be refused where they are used
            bound = 0.0
        for db, synced_at in list(self._synced_at.items()):
            self.confirmed_until[db] = synced_at + bound

    def stop(self) -> None:
        """Stop the push listeners and wait for them to close their connections."""
        listeners = list(self._listeners.values())
        self._listeners.clear()
        for listener in listeners:
            listener.stop()

    def reset(self) -> None:
        """Forget every position (a new process: after ``fork()``, or in tests)."""
        self._lock = threading.Lock()
        self._threads_lock = threading.Lock()
        self._executor = None
        self._cursors.clear()
        self._starts.clear()
        self._synced_at.clear()
        self.confirmed_until.clear()
        self._listeners.clear()
        self._last_activity = -math.inf

    def is_listening(self, db: str) -> bool:
        listener = self._listeners.get(db)
        return listener is not None and listener.listening.is_set()

    def note_activity(self, db: str) -> None:
        """A verification reads ``db`` (the cold path, which every process serving keys
        takes at least about once per ``MAX_STALENESS``): keep, or start, the push listener."""
        self._last_activity = time.monotonic()
        if api_key_settings.push_changes:
            listener = self._listeners.get(db)
            if listener is None or not listener.is_alive():
                self._ensure_listener(db)

    def idle_for(self) -> float:
        """Seconds since a verification last needed the database."""
        return time.monotonic() - self._last_activity

    def has_position(self, db: str) -> bool:
        return db in self._cursors

    def position(self, db: str) -> int | None:
        """The generation of the last change of ``db`` this process has applied."""
        return self._cursors.get(db)

    def knows_changes_since(self, db: str | None, generation: object) -> bool:
        """Whether this process has seen, one by one, every change of ``db`` after
        ``generation`` (it has, from the generation it started from on)."""
        start = self._starts.get(db or "")
        return start is not None and isinstance(generation, int) and generation >= start

    def _read_log(self, db: str) -> None:
        cursor = self._cursors.get(db)
        clock, rows = self._read_committed(db, _NO_CHANGES if cursor is None else cursor)
        if cursor is None or clock < cursor:
            # A first read, or a log that went back (a database restored from a backup):
            # what this process cached from ``db`` was read without a position it can
            # trust, so it all goes.
            self._cursors[db] = self._starts[db] = clock
            keys_changed.send(None, prefixes=None, committed=False)
            return
        if not rows:
            return
        changed: dict[str, set[str] | None] = {}
        for _generation, label, prefix in rows:
            if prefix == EVERY_KEY:
                changed[label] = None
            else:
                known = changed.setdefault(label, set())
                if known is not None:
                    known.add(prefix)
        for label, prefixes in changed.items():
            keys_changed.send(
                label, prefixes=None if prefixes is None else tuple(prefixes), committed=True
            )
        self._cursors[db] = max(clock, rows[-1][0])

    def _read_committed(self, db: str, cursor: int) -> tuple[int, list[tuple[int, str, str]]]:
        """Read the log as committed. Inside a transaction (``atomic()``, or autocommit turned
        off by hand), this thread's connection would see the transaction's own uncommitted
        changes (whose generations a rollback hands out again) or, at REPEATABLE READ, an
        old snapshot: another connection reads it."""
        connection = connections[db]
        if not connection.in_atomic_block and connection.get_autocommit():
            return _read_changes(db, cursor)
        with self._threads_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="async-api-key-log")
            executor = self._executor
        return executor.submit(_read_changes_and_close, db, cursor).result()

    def _ensure_listener(self, db: str) -> None:
        with self._threads_lock:
            listener = self._listeners.get(db)
            if listener is not None and listener.is_alive():
                return
            location = redis_location()
            if connections[db].vendor == "postgresql":
                listener = _PostgreSQLListener(self, db)
            elif location is not None:
                listener = _RedisListener(self, db, location)
            else:
                return
            self._listeners[db] = listener
        listener.start()

    def _warn(self, db: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARNING_INTERVAL:
            self._warned_at = now
            logger.warning(
                "Could not read the API key change log of database %r; cached keys are "
                "verified against the database until it can be read",
                db,
                exc_info=True,
            )


class _PushListener(threading.Thread):
    """Waits for the changes other processes push when they commit, and applies them.

    Subclasses say where the pushed payloads come from (:meth:`_payloads`, which yields
    ``None`` whenever a short wait ends with nothing, so that the thread can look at its
    state); this class applies them and closes after ``LISTENER_IDLE_SECONDS`` of no
    verification needing the database.
    """

    def __init__(self, feed: ChangeFeed, db: str) -> None:
        super().__init__(name=f"async-api-key-listener-{db}", daemon=True)
        self.feed = feed
        self.db = db
        self.listening = threading.Event()
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)

    def run(self) -> None:
        try:
            for payload in self._payloads():
                if self._stopping.is_set() or self.feed.idle_for() > LISTENER_IDLE_SECONDS:
                    return
                if payload is None:
                    continue
                self.feed.notifications += 1
                try:
                    _apply(payload)
                except Exception:  # a receiver failed: the next notification still counts
                    logger.exception("Could not apply an API key change notification")
        except Exception:  # the change log still bounds staleness
            if not self._stopping.is_set():
                logger.warning("API key change listener on %r stopped", self.db, exc_info=True)
        finally:
            self.listening.clear()
            self._close()

    def _payloads(self) -> Iterator[str | None]:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class _PostgreSQLListener(_PushListener):
    """``LISTEN`` on a connection of its own; PostgreSQL delivers a ``NOTIFY`` on commit."""

    def _payloads(self) -> Iterator[str | None]:
        connection = connections[self.db]
        connection.ensure_connection()
        raw: Any = connection.connection
        if not hasattr(raw, "notifies"):  # psycopg2: the log's bound applies alone
            return
        raw.execute(f"LISTEN {PUSH_CHANNEL}")
        self.listening.set()
        while True:
            received = False
            for notification in raw.notifies(timeout=_LISTEN_WAIT_SECONDS):
                received = True
                yield str(notification.payload)
            if not received:
                yield None

    def _close(self) -> None:
        connections[self.db].close()


class _RedisListener(_PushListener):
    """Subscribed to the Redis channel of ``db``'s changes (for databases that cannot push)."""

    def __init__(self, feed: ChangeFeed, db: str, location: str) -> None:
        super().__init__(feed, db)
        self.location = location
        self._pubsub: Any = None

    def _payloads(self) -> Iterator[str | None]:
        import redis  # installed with any Redis cache backend

        client: Any = redis.Redis.from_url(self.location)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(redis_channel(self.db))
        self.listening.set()
        while True:
            message = self._pubsub.get_message(timeout=_LISTEN_WAIT_SECONDS)
            data = None if message is None else message.get("data")
            if isinstance(data, bytes):
                yield data.decode("utf-8", "replace")
            else:
                yield data if isinstance(data, str) else None

    def _close(self) -> None:
        if self._pubsub is not None:
            self._pubsub.close()


def redis_location() -> str | None:
    """The URL of the shared tier's Redis, if ``SHARED_CACHE_ALIAS`` names a Redis cache."""
    alias = api_key_settings.shared_cache_alias
    if alias is None:
        return None
    config = settings.CACHES.get(alias, {})
    if "redis" not in str(config.get("BACKEND", "")).lower():
        return None
    location = config.get("LOCATION")
    if isinstance(location, (list, tuple)):
        location = location[0] if location else None
    if isinstance(location, str) and location.startswith(("redis://", "rediss://", "unix://")):
        return location
    return None


def redis_channel(db: str) -> str:
    """The Redis channel of one key store's changes: Redis channels span every database
    number of a server, so the name says which key store (by its database's name)."""
    name = str(connections[db].settings_dict.get("NAME"))
    return f"{PUSH_CHANNEL}:{hashlib.sha256(name.encode()).hexdigest()[:16]}"


_redis_clients: dict[str, Any] = {}


@receiver(change_committed, dispatch_uid="async_api_key.propagation.publish")
def _publish_to_redis(
    sender: str, *, prefixes: tuple[str, ...] | None, using: str, **kwargs: Any
) -> None:
    """Where the database cannot push (it is not PostgreSQL), push through the shared tier's
    Redis instead: other processes then learn of the change in milliseconds too."""
    if not api_key_settings.push_changes or connections[using].vendor == "postgresql":
        return
    location = redis_location()
    if location is None:
        return
    try:
        client = _redis_clients.get(location)
        if client is None:
            import redis

            client = _redis_clients.setdefault(location, redis.Redis.from_url(location))
        client.publish(redis_channel(using), encode_push(sender, prefixes))
    except Exception:  # the change log still bounds staleness
        logger.warning("Could not push an API key change through Redis", exc_info=True)


#: A cursor past any generation: the first read asks for the clock alone.
_NO_CHANGES: Final = 2**62


def _read_changes(db: str, cursor: int) -> tuple[int, list[tuple[int, str, str]]]:
    """The clock's generation and the changes after ``cursor``, in one query."""
    connection = connections[db]
    quote = connection.ops.quote_name
    # Only quoted names of our own tables and columns are formatted in; values are parameters.
    sql = (
        f"SELECT 0, {quote('generation')}, '', '' FROM {quote(ChangeClock._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('id')} = %s "
        "UNION ALL "
        f"SELECT 1, {quote('generation')}, {quote('model_label')}, {quote('prefix')} "
        f"FROM {quote(KeyChange._meta.db_table)} WHERE {quote('generation')} > %s "
        "ORDER BY 1, 2"
    )
    with connection.cursor() as db_cursor:
        db_cursor.execute(sql, [CLOCK_ID, cursor])
        fetched = db_cursor.fetchall()
    clock = 0
    rows: list[tuple[int, str, str]] = []
    for kind, generation, label, prefix in fetched:
        if kind == 0:
            clock = int(generation)
        else:
            rows.append((int(generation), str(label), str(prefix or "")))
    return clock, rows


def _read_changes_and_close(db: str, cursor: int) -> tuple[int, list[tuple[int, str, str]]]:
    try:
        return _read_changes(db, cursor)
    finally:
        # Nothing else uses this thread's connection: holding it open would keep a test
        # database from being dropped, and a server's pool from shrinking.
        connections[db].close()


def _apply(payload: str) -> None:
    """Apply one notification. Anyone who may connect to the database can send one: a
    malformed payload is logged and ignored, never fatal to the listener."""
    try:
        message = json.loads(payload)
        label = message["model"]
        prefixes = message["prefixes"]
        if not isinstance(label, str):
            raise TypeError("model")
        if prefixes is not None and (
            not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes)
        ):
            raise TypeError("prefixes")
    except (ValueError, KeyError, TypeError):
        logger.warning("Ignored a malformed API key change notification")
        return
    keys_changed.send(label, prefixes=None if prefixes is None else tuple(prefixes), committed=True)


#: The feed of this process.
change_feed: Final = ChangeFeed()


@receiver(setting_changed, dispatch_uid="async_api_key.propagation")
def _apply_new_bound(*, setting: str, **kwargs: Any) -> None:
    if setting == "ASYNC_API_KEY":
        change_feed.apply_bound()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=change_feed.reset)
