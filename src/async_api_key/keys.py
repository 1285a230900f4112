"""The key format: generating, checksumming and parsing raw API keys.

Pure functions with no ORM and no Django settings, so they can be tested and
reused (secret scanners, client libraries) without a database.

A key reads ``<namespace>_<lookup>_<secret><checksum>``, for example
``ak_3xQ9fLm2Ab7Z_<32 base62 characters><6 base62 characters>``:

- ``namespace``: human-readable, letters and digits with at most one inner ``_``;
- ``lookup``: 12 random base62 characters, public, stored and indexed as ``prefix``;
- ``secret``: 32 random base62 characters from :mod:`secrets` (about 190.5 bits);
- ``checksum``: base62 CRC32 of everything before it, padded to 6 characters, so
  typos and fakes are rejected offline, before any database access.

Keys made by djangorestframework-api-key (``<8 chars>.<32 chars>`` by default, other
lengths with a ``KeyGenerator`` of a project's own) parse as *legacy* keys so imported keys
keep working.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass, field

__all__ = [
    "MAX_KEY_LENGTH",
    "GeneratedKey",
    "ParsedKey",
    "checksum",
    "generate_key",
    "is_valid_namespace",
    "parse_key",
    "secret_scanning_pattern",
]

BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LOOKUP_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
#: djangorestframework-api-key's ``KeyGenerator(prefix_length, secret_key_length)`` defaults to
#: 8 and 32, and projects chose other lengths (secrets of 48, 64 or 128 characters): its model
#: stores at most 8 for the prefix, and any secret length is accepted here up to the limit.
LEGACY_MAX_PREFIX_LENGTH = 8
LEGACY_MIN_SECRET_LENGTH = 16
NAMESPACE_MAX_LENGTH = 32
#: Longer input is rejected before any other work is done on it (room for legacy keys with
#: a 128-character secret).
MAX_KEY_LENGTH = 160

_NAMESPACE_PATTERN = r"[A-Za-z0-9]+(?:_[A-Za-z0-9]+)?"
_NAMESPACE_RE = re.compile(rf"\A{_NAMESPACE_PATTERN}\Z")
_KEY_RE = re.compile(
    rf"\A(?P<namespace>{_NAMESPACE_PATTERN})"
    rf"_(?P<lookup>[0-9A-Za-z]{{{LOOKUP_LENGTH}}})"
    rf"_(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})"
    rf"(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})\Z",
    re.ASCII,
)
_LEGACY_KEY_RE = re.compile(
    rf"\A(?P<lookup>[0-9A-Za-z]{{1,{LEGACY_MAX_PREFIX_LENGTH}}})"
    rf"\.(?P<secret>[0-9A-Za-z]{{{LEGACY_MIN_SECRET_LENGTH},}})\Z",
    re.ASCII,
)


def secret_scanning_pattern(namespace: str | None = None) -> str:
    """Return a regular expression that finds keys of this format in text.

    With ``namespace`` it matches only keys of that namespace (what a secret
    scanner for one deployment wants); without it, keys of any namespace.
    """
    ns = re.escape(namespace) if namespace is not None else _NAMESPACE_PATTERN
    return (
        rf"\b{ns}_[0-9A-Za-z]{{{LOOKUP_LENGTH}}}"
        rf"_[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}\b"
    )


def is_valid_namespace(namespace: str) -> bool:
    """Tell whether ``namespace`` can start a key."""
    return len(namespace) <= NAMESPACE_MAX_LENGTH and bool(_NAMESPACE_RE.match(namespace))


def encode_base62(number: int, width: int) -> str:
    """Encode a non-negative integer in base62, left-padded with ``0`` to ``width``."""
    if number < 0:
        raise ValueError("number must be non-negative")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
    encoded = "".join(reversed(digits)).rjust(width, BASE62_ALPHABET[0])
    if len(encoded) > width:
        raise ValueError("number does not fit in the given width")
    return encoded


def checksum(body: str) -> str:
    """Return the 6-character base62 CRC32 of ``body``."""
    # Unrolled encode_base62(crc, 6): this runs on every presented key.
    number = zlib.crc32(body.encode("ascii"))
    number, d5 = divmod(number, 62)
    number, d4 = divmod(number, 62)
    number, d3 = divmod(number, 62)
    number, d2 = divmod(number, 62)
    d0, d1 = divmod(number, 62)
    alphabet = BASE62_ALPHABET
    return alphabet[d0] + alphabet[d1] + alphabet[d2] + alphabet[d3] + alphabet[d4] + alphabet[d5]


def random_base62(length: int) -> str:
    """Return ``length`` characters drawn uniformly from base62 by a CSPRNG."""
    return "".join(secrets.choice(BASE62_ALPHABET) for _ in range(length))


@dataclass(slots=True)
class ParsedKey:
    """A raw key that has the right shape; the secret is kept out of ``repr()``."""

    lookup: str
    raw: str = field(repr=False)
    legacy: bool = False
    namespace: str = ""


@dataclass(frozen=True)
class GeneratedKey:
    """A freshly generated key: the public lookup id and the raw key (shown once)."""

    lookup: str
    raw: str = field(repr=False)


def generate_key(namespace: str) -> GeneratedKey:
    """Generate a new key in ``namespace``."""
    if not is_valid_namespace(namespace):
        raise ValueError(
            "An API key namespace is letters and digits with at most one inner '_' "
            f"and at most {NAMESPACE_MAX_LENGTH} characters; got {namespace!r}."
        )
    lookup = random_base62(LOOKUP_LENGTH)
    body = f"{namespace}_{lookup}_{random_base62(SECRET_LENGTH)}"
    return GeneratedKey(lookup=lookup, raw=body + checksum(body))


def parse_key(raw: str) -> ParsedKey | None:
    """Parse a raw key, or return ``None`` for anything malformed.

    Malformed means: not a string of the right length and alphabet, the wrong
    shape, or a checksum that does not match. No database is touched.
    """
    if not isinstance(raw, str) or len(raw) > MAX_KEY_LENGTH:
        return None
    match = _KEY_RE.match(raw)
    if match is not None:
        body_length = len(raw) - CHECKSUM_LENGTH
        if checksum(raw[:body_length]) != match["checksum"]:
            return None
        return ParsedKey(lookup=match["lookup"], raw=raw, namespace=match["namespace"])
    legacy = _LEGACY_KEY_RE.match(raw)
    if legacy is not None:
        return ParsedKey(lookup=legacy["lookup"], raw=raw, legacy=True)
    return None
