"""Hashing raw keys for storage and checking a presented key against a stored hash.

Keys carry about 190 bits of randomness, so a single fast hash is enough
(OWASP ASVS 5.0, 6.5.2): a password hasher would only slow every request down.
Stored hashes read ``<algorithm>$$<hex digest>``, the format
djangorestframework-api-key 3.x writes, so its ``sha512$$`` hashes verify as they
are. Older Django password hashes (``pbkdf2_sha256$...``, ``argon2$...``) from
djangorestframework-api-key < 3.0 verify through Django's hashers and are
flagged for an upgrade to the fast format.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from django.contrib.auth.hashers import check_password

__all__ = [
    "FAST_HASH_ALGORITHMS",
    "HashCheck",
    "check_key",
    "hash_key",
    "is_fast_hash",
]

FAST_HASH_ALGORITHMS: Final = ("sha512", "sha256")


@dataclass(frozen=True)
class HashCheck:
    """The answer to "does this key match that stored hash?"."""

    matches: bool
    #: The key matched but its stored hash should be rewritten with the preferred algorithm.
    needs_upgrade: bool = False


def hash_key(raw_key: str, algorithm: str = "sha512") -> str:
    """Return the storable hash of ``raw_key``: ``<algorithm>$$<hex digest>``."""
    if algorithm not in FAST_HASH_ALGORITHMS:
        raise ValueError(f"Unsupported API key hash algorithm {algorithm!r}.")
    digest = hashlib.new(algorithm, raw_key.encode("utf-8")).hexdigest()
    return f"{algorithm}$${digest}"


def is_fast_hash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` is in the fast ``<algorithm>$$<hex digest>`` format; anything
    else is checked as a Django password hash, slow on purpose."""
    algorithm, _, rest = stored_hash.partition("$")
    return algorithm in FAST_HASH_ALGORITHMS and rest.startswith("$")


def check_key(raw_key: str, stored_hash: str, preferred_algorithm: str = "sha512") -> HashCheck:
    """Check ``raw_key`` against ``stored_hash`` in constant time for fast hashes."""
    if is_fast_hash(stored_hash):
        algorithm = stored_hash.partition("$")[0]
        matches = hmac.compare_digest(hash_key(raw_key, algorithm), stored_hash)
        return HashCheck(matches, needs_upgrade=matches and algorithm != preferred_algorithm)
    return _check_password_hash(raw_key, stored_hash)


def check_against_dummy(raw_key: str, preferred_algorithm: str = "sha512") -> HashCheck:
    """Do the work of a hash check for a lookup id that matched no stored key.

    An unknown lookup id then costs what a wrong secret costs, so response times
    do not tell an attacker which lookup ids exist.
    """
    hmac.compare_digest(hash_key(raw_key, preferred_algorithm), _DUMMY_HASHES[preferred_algorithm])
    return HashCheck(matches=False)


def _check_password_hash(raw_key: str, stored_hash: str) -> HashCheck:
    matches = check_password(raw_key, stored_hash)
    return HashCheck(matches, needs_upgrade=matches)


_DUMMY_HASHES: Final = {
    algorithm: hash_key("async-api-key-dummy", algorithm) for algorithm in FAST_HASH_ALGORITHMS
}
