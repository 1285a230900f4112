"""A bound on the CPU that failed checks against password-hashed keys can cost.

Keys that djangorestframework-api-key stored before its 3.0 keep a Django password hash
(PBKDF2, Argon2...) until their first successful use rewrites it to the fast hash. Checking
a presented key against such a hash costs hundreds of milliseconds of CPU on purpose, and
those keys have no checksum to refuse fakes offline. Without a bound, a few requests per
second that pair a known lookup id with made-up secrets keep a core busy.

So this process allows each password hash a few checks per window, and remembers the
digests of keys it refused: the same wrong key sent again is refused without hashing, and
once the attempts are spent, every other key presented for that hash is refused without
hashing until the window ends. A genuine key in that window is refused too (401), which is
the price of the bound; it is never accepted without a check. A key that is used once is
upgraded to the fast hash and leaves this path for good.

Per process, in memory, no I/O: N processes allow N times the attempts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ATTEMPTS_PER_WINDOW",
    "WINDOW_SECONDS",
    "PasswordHashBudget",
    "password_hash_budget",
]

logger = logging.getLogger("async_api_key")

#: Password-hash checks allowed per stored hash and window, in one process.
ATTEMPTS_PER_WINDOW: Final = 5
#: How long a window lasts, in seconds.
WINDOW_SECONDS: Final = 60.0
#: Stored hashes tracked at once; the least recently attacked are forgotten first.
MAX_TRACKED_HASHES: Final = 10_000


@dataclass
class _Window:
    started: float
    attempts: int = 0
    #: Salted digests of keys refused in this window.
    refused: set[bytes] = field(default_factory=set)
    warned: bool = False


class PasswordHashBudget:
    """Decides whether a password-hash check may run; see the module docstring."""

    def __init__(
        self,
        attempts: int = ATTEMPTS_PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
        max_tracked: int = MAX_TRACKED_HASHES,
    ) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self.max_tracked = max_tracked
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()
        self._salt = secrets.token_bytes(16)

    def admit(self, stored_hash: str, raw_key: str, prefix: str) -> bool:
        """Whether ``raw_key`` may be checked against ``stored_hash`` now; counts the attempt.

        ``False`` for a key already refused in this window, or once the window's attempts
        are spent; the caller then refuses the key without hashing it.
        """
        digest = self._digest(raw_key)
        now = _now()
        with self._lock:
            window = self._window(stored_hash, now)
            if digest in window.refused:
                return False
            if window.attempts >= self.attempts:
                if not window.warned:
                    window.warned = True
                    logger.warning(
                        "API key verification: %d failed checks against the password hash of "
                        "prefix=%s; further keys for it are refused unchecked for up to %d s",
                        window.attempts,
                        prefix,
                        round(self.window_seconds),
                    )
                return False
            window.attempts += 1
            return True

    def refused(self, stored_hash: str, raw_key: str) -> None:
        """Remember that ``raw_key`` does not match ``stored_hash``."""
        digest = self._digest(raw_key)
        with self._lock:
            window = self._windows.get(stored_hash)
            if window is not None:
                window.refused.add(digest)

    def matched(self, stored_hash: str) -> None:
        """The genuine key matched: its attempts no longer count (it is being upgraded)."""
        with self._lock:
            self._windows.pop(stored_hash, None)

    def reset(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._windows.clear()

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock when it forked: start afresh.
        self._lock = threading.Lock()
        self._windows = OrderedDict()

    def _window(self, stored_hash: str, now: float) -> _Window:
        window = self._windows.get(stored_hash)
        if window is None or now - window.started >= self.window_seconds:
            window = _Window(started=now)
            self._windows[stored_hash] = window
            while len(self._windows) > self.max_tracked:
                self._windows.popitem(last=False)
        self._windows.move_to_end(stored_hash)
        return window

    def _digest(self, raw_key: str) -> bytes:
        return hashlib.sha256(self._salt + raw_key.encode("utf-8")).digest()


def _now() -> float:
    return time.monotonic()


#: The process's budget, used by every verifier.
password_hash_budget = PasswordHashBudget()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=password_hash_budget._after_fork)
