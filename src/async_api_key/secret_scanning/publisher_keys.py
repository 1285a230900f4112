"""Where a publisher's public keys come from: the keys that sign secret scanning alerts.

A source is anything with ``public_key(key_identifier)``; two are provided:

- :class:`GitHubPublisherKeys` fetches GitHub's published keys, keeps them for ``max_age``
  seconds and fetches them again, once, when an alert names a key it does not know (at most
  once per ``min_refresh_interval``, so forged identifiers cannot make it fetch in a loop);
- :class:`StaticPublisherKeys` holds keys given in code or settings (tests, air-gapped setups).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from http.client import HTTPException
from typing import Final, Protocol
from urllib.parse import urlsplit

__all__ = [
    "GITHUB_PUBLIC_KEYS_URL",
    "GitHubPublisherKeys",
    "PublisherKeySource",
    "PublisherKeysUnavailable",
    "StaticPublisherKeys",
    "github_publisher_keys",
]

logger = logging.getLogger("async_api_key")

GITHUB_PUBLIC_KEYS_URL: Final = "https://api.github.com/meta/public_keys/secret_scanning"


class PublisherKeysUnavailable(Exception):
    """The publisher's keys could not be fetched (network, HTTP error, unreadable answer)."""


class PublisherKeySource(Protocol):
    """Where the endpoint finds the public key that signed an alert."""

    def public_key(self, key_identifier: str) -> str | None:
        """The PEM public key with this identifier, or ``None`` if the publisher has none.

        It may block on I/O: the endpoint calls it in a worker thread, never on the event
        loop. It raises :class:`PublisherKeysUnavailable` if it cannot tell.
        """
        ...


class StaticPublisherKeys:
    """Keys given up front: ``{key_identifier: PEM public key}``."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = dict(keys)

    def public_key(self, key_identifier: str) -> str | None:
        return self.keys.get(key_identifier)


class GitHubPublisherKeys:
    """GitHub's published secret scanning keys, fetched over HTTPS and cached in this process.

    ``token`` (optional) is a GitHub token sent as ``Authorization: Bearer``, for a higher
    rate limit than anonymous requests get. ``timeout`` bounds each fetch, in seconds.
    """

    def __init__(
        self,
        url: str = GITHUB_PUBLIC_KEYS_URL,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        max_age: float = 3600.0,
        min_refresh_interval: float = 60.0,
        max_response_bytes: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if urlsplit(url).scheme not in ("https", "http"):
            raise ValueError("The publisher's keys URL must be an http(s) URL.")
        self.url = url
        self.token = token
        self.timeout = timeout
        self.max_age = max_age
        self.min_refresh_interval = min_refresh_interval
        self.max_response_bytes = max_response_bytes
        self._clock = clock
        self._keys: dict[str, str] | None = None
        self._fetched_at = 0.0
        self._last_attempt = -math.inf
        #: Fetches made, including failed ones (for tests and monitoring).
        self.fetches = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GitHubPublisherKeys(url={self.url!r})"

    def public_key(self, key_identifier: str) -> str | None:
        with self._lock:
            now = self._clock()
            keys = self._keys
            known = keys is not None and key_identifier in keys
            if known and now - self._fetched_at < self.max_age:
                return (keys or {})[key_identifier]
            if now - self._last_attempt >= self.min_refresh_interval:
                # Once per interval at most: forged identifiers cannot make it fetch in a loop.
                self._last_attempt = now
                self.fetches += 1
                try:
                    keys = self._keys = self._fetch()
                    self._fetched_at = now
                except PublisherKeysUnavailable:
                    if not known:
                        raise
                    # The keys we had still verify the alerts they signed.
                    logger.warning("Could not refresh the publisher's keys from %s", self.url)
            elif keys is None:
                raise PublisherKeysUnavailable(
                    f"The publisher's keys could not be fetched from {self.url} moments ago."
                )
            return (keys or {}).get(key_identifier)

    def forget(self) -> None:
        """Drop the cached keys: the next alert fetches them again."""
        with self._lock:
            self._keys = None
            self._fetched_at = 0.0
            self._last_attempt = -math.inf

    def _fetch(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "User-Agent": "django-async-api-key",
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310  (scheme checked)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                data = response.read(self.max_response_bytes + 1)
        except (OSError, ValueError, HTTPException) as exc:
            raise PublisherKeysUnavailable(
                f"Could not fetch the publisher's keys from {self.url}: {type(exc).__name__}"
            ) from None
        if len(data) > self.max_response_bytes:
            raise PublisherKeysUnavailable(f"The publisher's keys at {self.url} are too large.")
        return parse_github_keys(data, self.url)


def parse_github_keys(data: bytes, url: str = GITHUB_PUBLIC_KEYS_URL) -> dict[str, str]:
    """Read GitHub's answer: ``{"public_keys": [{"key_identifier": ..., "key": PEM}, ...]}``."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise PublisherKeysUnavailable(f"The publisher's keys at {url} are not JSON.") from None
    entries = document.get("public_keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise PublisherKeysUnavailable(f"The publisher's keys at {url} list no public_keys.")
    return {
        entry["key_identifier"]: entry["key"]
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("key_identifier"), str)
        and isinstance(entry.get("key"), str)
    }


#: The source the endpoint uses when it is given none: one per process, so that its cache
#: serves every request.
github_publisher_keys: Final = GitHubPublisherKeys()
