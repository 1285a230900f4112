"""Per-key rate limits: parsing rates and counting requests in Django's cache.

A rate reads ``"<requests>/<period>"``: ``"100/min"``, ``"5/s"``, ``"10000/day"``
(periods: ``s``/``sec``/``second``, ``m``/``min``/``minute``, ``h``/``hour``,
``d``/``day``). Counting uses fixed windows: the first request of a window creates the
counter with ``cache.add()`` and later ones ``cache.incr()`` it, both atomic on Redis
and Memcached, so several processes sharing one cache lose no increments. The local
memory cache counts per process only (system check ``async_api_key.W002``).

Identities are a key model's label and lookup id, never the key itself.

:class:`KeyRateLimits` is the one service both adapters' throttles use: it chooses the rate
(the key's own, or a default), counts the request once however many times it is asked (the
count is kept on the request), and fails closed when the cache cannot be reached.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from .conf import api_key_settings

__all__ = [
    "KeyRateLimits",
    "Rate",
    "RateDecision",
    "RateLimitUnavailable",
    "RateLimiter",
    "parse_rate",
    "parse_stored_rate",
    "validate_rate",
]

_PERIODS: Final = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip
_RATE_RE: Final = re.compile(r"\A\s*(\d+)\s*/\s*([a-z]+)\s*\Z")
_COUNTER_PREFIX: Final = "async_api_key:rl:v1"


logger = logging.getLogger("async_api_key")


class RateLimitUnavailable(Exception):
    """The cache that counts requests could not be reached."""


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds."""

    limit: int
    period: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.period}s"


def parse_rate(text: str) -> Rate:
    """Parse ``"100/min"`` and the like, or raise :class:`ValueError`."""
    if isinstance(text, str):
        parsed = _parse_rate_text(text)
        if parsed is not None:
            return parsed
    raise ValueError(
        f"Invalid rate {text!r}: use '<requests>/<period>' such as '100/min' "
        "(periods: s, sec, second, m, min, minute, h, hour, d, day)."
    )


@functools.lru_cache(maxsize=256)
def _parse_rate_text(text: str) -> Rate | None:
    # Cached: a key's stored rate is parsed on each request it makes (a Rate is immutable).
    match = _RATE_RE.match(text)
    if match is None or match[2] not in _PERIODS or int(match[1]) < 1:
        return None
    return Rate(limit=int(match[1]), period=_PERIODS[match[2]])


def parse_stored_rate(text: str, prefix: str) -> Rate:
    """Parse the rate that applies to the key ``prefix``. A stored rate that does not parse
    (a row written around the validation) fails closed: :class:`RateLimitUnavailable`, and
    an ERROR log naming the key, never a 500."""
    try:
        return parse_rate(text)
    except ValueError:
        logger.error(
            "API key %s has an invalid rate limit stored; its requests are refused", prefix
        )
        raise RateLimitUnavailable(f"invalid stored rate limit for key {prefix}") from None


def validate_rate(text: str) -> str:
    """Return ``text`` stripped if it is a valid rate or empty (no limit), else raise."""
    text = text.strip() if isinstance(text, str) else text
    if text == "":
        return ""
    parse_rate(text)
    return text


@dataclass(frozen=True)
class RateDecision:
    """The answer for one request: allowed or not, and when to come back."""

    allowed: bool
    limit: int
    remaining: int
    #: Whole seconds until the current window ends.
    retry_after: int


class RateLimiter:
    """Fixed-window request counting in the Django cache ``cache_alias``."""

    def __init__(self, cache_alias: str = "default") -> None:
        self.cache_alias = cache_alias

    def hit(self, identity: str, rate: Rate, now: float | None = None) -> RateDecision:
        """Count one request of ``identity`` against ``rate``. Sync: may do network I/O."""
        now = time.time() if now is None else now
        window = int(now // rate.period)
        counter = f"{_COUNTER_PREFIX}:{identity}:{rate.period}:{window}"
        cache = caches[self.cache_alias]
        try:
            count = self._increment(cache, counter, rate.period)
        except Exception as exc:
            raise RateLimitUnavailable(f"rate limit cache {self.cache_alias!r} failed") from exc
        retry_after = max(1, math.ceil((window + 1) * rate.period - now))
        return RateDecision(
            allowed=count <= rate.limit,
            limit=rate.limit,
            remaining=max(0, rate.limit - count),
            retry_after=retry_after,
        )

    async def ahit(self, identity: str, rate: Rate) -> RateDecision:
        """Async twin of :meth:`hit`: network caches are called off the event loop."""
        if self.is_in_process():
            return self.hit(identity, rate)
        return await sync_to_async(self.hit, thread_sensitive=False)(identity, rate)

    def is_in_process(self) -> bool:
        """True when the cache lives in this process (no I/O, but no sharing either)."""
        return isinstance(caches[self.cache_alias], LocMemCache)

    @staticmethod
    def _increment(cache: Any, counter: str, period: int) -> int:
        # The counter outlives its window by a second so incr() never races its expiry.
        if cache.add(counter, 1, timeout=period + 1):
            return 1
        try:
            return int(cache.incr(counter))
        except ValueError:  # expired between add() and incr(): start a new counter
            cache.add(counter, 0, timeout=period + 1)
            return int(cache.incr(counter))


def key_identity(api_key: Any) -> str:
    """The counter identity of a key: its model label and lookup id (unique in its table, and
    short, where a string primary key embeds the stored hash and would make cache keys long)."""
    return f"{api_key._meta.label_lower}:{api_key.prefix}"


#: Request attribute holding the count :class:`KeyRateLimits` made: (identity, rate, decision).
_COUNTED_ATTRIBUTE: Final = "_async_api_key_rate_count"


class KeyRateLimits:
    """Counts requests per verified key against the key's own rate, or ``default_rate``.

    One request is counted once: the decision is kept on the request (``request`` is any
    object that takes attributes: Django's ``HttpRequest``, DRF's ``Request`` wraps one),
    and asking again for the same key and rate returns it, so a count made early (Ninja's
    async ``authenticate``, off the event loop) is what the throttle later reads. A cache
    that cannot be reached, or a stored rate that does not parse, raises
    :class:`RateLimitUnavailable` after an ERROR log: callers refuse the request.
    """

    def __init__(self, default_rate: str | None = None) -> None:
        if default_rate is not None:
            parse_rate(default_rate)  # a typo fails at start-up, not on a request
        self.default_rate = default_rate or None

    def rate_for(self, api_key: Any) -> str | None:
        """The rate that applies to ``api_key``: its own, else the default (``None``: none)."""
        own: str = api_key.rate_limit
        return own or self.default_rate

    def count(self, request: Any, api_key: Any) -> RateDecision | None:
        """Count this request against ``api_key``'s rate (sync: may do network I/O);
        ``None`` when no rate applies."""
        counting = self._counting(request, api_key)
        if counting is None or isinstance(counting, RateDecision):
            return counting
        identity, rate_text, rate = counting
        try:
            decision = _limiter().hit(identity, rate)
        except RateLimitUnavailable:
            logger.error("API key rate limit cache unavailable", exc_info=True)
            raise
        return _remember(request, identity, rate_text, decision)

    async def acount(self, request: Any, api_key: Any) -> RateDecision | None:
        """Async twin of :meth:`count`: a network cache is called off the event loop."""
        counting = self._counting(request, api_key)
        if counting is None or isinstance(counting, RateDecision):
            return counting
        identity, rate_text, rate = counting
        try:
            decision = await _limiter().ahit(identity, rate)
        except RateLimitUnavailable:
            logger.error("API key rate limit cache unavailable", exc_info=True)
            raise
        return _remember(request, identity, rate_text, decision)

    def _counting(self, request: Any, api_key: Any) -> RateDecision | tuple[str, str, Rate] | None:
        """``None`` (no rate), the decision already made for this request, or what to count."""
        rate_text = self.rate_for(api_key)
        if rate_text is None:
            return None
        identity = key_identity(api_key)
        # The instance's own attributes: a stand-in request (older django-ninja TestClients
        # pass a Mock) must not offer a made-up decision.
        counted = vars(request).get(_COUNTED_ATTRIBUTE) if hasattr(request, "__dict__") else None
        if counted is not None and counted[:2] == (identity, rate_text):
            decision: RateDecision = counted[2]
            return decision
        return identity, rate_text, parse_stored_rate(rate_text, api_key.prefix)


def _limiter() -> RateLimiter:
    alias = api_key_settings.rate_limit_cache_alias
    limiter = _limiters.get(alias)
    if limiter is None:
        limiter = _limiters[alias] = RateLimiter(alias)
    return limiter


_limiters: dict[str, RateLimiter] = {}


def _remember(request: Any, identity: str, rate_text: str, decision: RateDecision) -> RateDecision:
    setattr(request, _COUNTED_ATTRIBUTE, (identity, rate_text, decision))
    return decision
