"""Per-key rate limits: parsing, fixed-window counting, atomicity on a shared cache."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import override_settings

from async_api_key.checks import check_rate_limit_cache, check_rate_limit_cache_is_shared
from async_api_key.ratelimit import (
    Rate,
    RateDecision,
    RateLimiter,
    RateLimitUnavailable,
    parse_rate,
    validate_rate,
)
from tests.support import REPO_ROOT
from tests.support.outages import CACHES_WITH_A_BROKEN_ALIAS


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100/min", Rate(100, 60)), ("5/s", Rate(5, 1)), ("10000/day", Rate(10000, 86400)),
     (" 3 / hour ", Rate(3, 3600)), ("1/second", Rate(1, 1))],
)  # fmt: skip
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "100", "0/min", "-1/min", "ten/min", "100/week", "1/m/s"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_validate_rate_allows_empty_for_no_limit() -> None:
    assert validate_rate("") == ""
    assert validate_rate(" 5/min ") == "5/min"


def _identity() -> str:
    return f"test:{uuid.uuid4().hex}"


def _incr_that_finds_the_counter_expired(cache: Any, expired: list[str]) -> Any:
    """``cache.incr`` as it runs when the counter expires just before it, the first time."""
    real_incr = cache.incr

    def incr_after_expiry(key: str, delta: int = 1, version: int | None = None) -> int:
        if not expired:
            expired.append(key)
            cache.delete(key)
            raise ValueError(f"Key '{key}' not found")
        return int(real_incr(key, delta, version))

    return incr_after_expiry


@pytest.fixture
def network_cache(tmp_path: Path) -> Iterator[str]:
    """A cache alias that lives outside this process (files), as Redis does."""
    files = {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache"}
    with override_settings(
        CACHES={**settings.CACHES, "files": {**files, "LOCATION": str(tmp_path)}}
    ):
        yield "files"


def test_requests_over_the_limit_are_refused_until_the_window_ends() -> None:
    limiter = RateLimiter()
    identity, rate = _identity(), Rate(3, 60)
    now = 1_000_040.0  # 20 s into a 60 s window
    decisions = [limiter.hit(identity, rate, now=now) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 40
    assert limiter.hit(identity, rate, now=now + 40).allowed  # the next window


def test_identities_are_counted_apart() -> None:
    limiter, rate = RateLimiter(), Rate(1, 60)
    assert limiter.hit(_identity(), rate).allowed
    assert limiter.hit(_identity(), rate).allowed


def test_a_counter_that_expires_between_add_and_incr_starts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race the counter's extra second guards against, forced: incr() finds no counter."""
    from django.core.cache import caches

    cache = caches["default"]
    calls: list[str] = []
    limiter, identity, rate = RateLimiter(), _identity(), Rate(5, 60)
    assert limiter.hit(identity, rate).remaining == 4
    monkeypatch.setattr(cache, "incr", _incr_that_finds_the_counter_expired(cache, calls))
    decision = limiter.hit(identity, rate)
    assert decision.allowed
    assert decision.remaining == 4  # counted again from zero, this request included
    assert len(calls) == 1


async def test_async_hit_counts_like_the_sync_one() -> None:
    limiter, identity, rate = RateLimiter(), _identity(), Rate(2, 60)
    results = [(await limiter.ahit(identity, rate)).allowed for _ in range(3)]
    assert results == [True, True, False]


@override_settings(CACHES=CACHES_WITH_A_BROKEN_ALIAS)
def test_an_unreachable_cache_raises_a_clear_error() -> None:
    with pytest.raises(RateLimitUnavailable, match="broken"):
        RateLimiter("broken").hit(_identity(), Rate(1, 60))


def test_check_reports_per_process_and_non_atomic_caches() -> None:
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    ):
        assert [m.id for m in check_rate_limit_cache_is_shared()] == ["async_api_key.I001"]
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    ):
        assert [m.id for m in check_rate_limit_cache()] == ["async_api_key.W002"]
    with override_settings(ASYNC_API_KEY={"RATE_LIMIT_CACHE_ALIAS": "missing"}):
        assert [m.id for m in check_rate_limit_cache()] == ["async_api_key.E005"]


_WORKER = """
import os, sys, threading
sys.path.insert(0, {root!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.settings"
import django
django.setup()
from async_api_key.ratelimit import Rate, RateLimiter
limiter, rate, allowed = RateLimiter(), Rate({limit}, 3600), []
def work():
    for _ in range({per_thread}):
        allowed.append(limiter.hit({identity!r}, rate).allowed)
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(allowed))
"""


def test_two_processes_sharing_redis_lose_no_increments() -> None:
    if not settings.REDIS_URL:
        pytest.skip("needs the shared Redis cache (CI sets REDIS_URL)")
    identity, per_thread, limit = _identity(), 50, 150
    script = _WORKER.format(
        root=str(REPO_ROOT),
        limit=limit,
        per_thread=per_thread,
        identity=identity,
    )
    workers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ
        )
        for _ in range(2)
    ]
    allowed = sum(int(worker.communicate(timeout=60)[0]) for worker in workers)
    assert all(worker.returncode == 0 for worker in workers)
    assert allowed == limit  # 400 requests, exactly `limit` admitted
    window_total = RateLimiter().hit(identity, Rate(10_000, 3600))
    assert window_total.remaining == 10_000 - 401


# KeyRateLimits: the one service both adapters' throttles use ---------------------------


@pytest.mark.django_db
def test_a_request_is_counted_once_however_often_it_is_asked() -> None:
    from django.http import HttpRequest

    from async_api_key.models import APIKey
    from async_api_key.ratelimit import KeyRateLimits

    api_key, _ = APIKey.objects.create_key(name="limited", rate_limit="3/min")
    limits = KeyRateLimits()
    first, second = HttpRequest(), HttpRequest()
    decisions = [limits.count(first, api_key) for _ in range(3)]
    assert {decision.remaining for decision in decisions if decision is not None} == {2}
    later = limits.count(second, api_key)
    assert later is not None
    assert later.remaining == 1


@pytest.mark.django_db
def test_the_key_own_rate_wins_and_no_rate_means_no_count() -> None:
    from django.http import HttpRequest

    from async_api_key.models import APIKey
    from async_api_key.ratelimit import KeyRateLimits

    own, _ = APIKey.objects.create_key(name="own", rate_limit="2/min")
    plain, _ = APIKey.objects.create_key(name="plain")
    assert KeyRateLimits("100/min").rate_for(own) == "2/min"
    assert KeyRateLimits("100/min").rate_for(plain) == "100/min"
    assert KeyRateLimits().count(HttpRequest(), plain) is None
    with pytest.raises(ValueError, match="Invalid rate"):
        KeyRateLimits("100/minutes")


@pytest.mark.django_db(transaction=True)  # the async test's ORM calls run on another thread
@override_settings(
    CACHES=CACHES_WITH_A_BROKEN_ALIAS, ASYNC_API_KEY={"RATE_LIMIT_CACHE_ALIAS": "broken"}
)
async def test_an_unreachable_cache_fails_closed_in_both_twins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from asgiref.sync import sync_to_async
    from django.http import HttpRequest

    from async_api_key.models import APIKey
    from async_api_key.ratelimit import KeyRateLimits

    api_key, _ = await APIKey.objects.acreate_key(name="limited", rate_limit="3/min")
    limits = KeyRateLimits()
    with pytest.raises(RateLimitUnavailable):
        await limits.acount(HttpRequest(), api_key)
    with pytest.raises(RateLimitUnavailable):
        await sync_to_async(limits.count)(HttpRequest(), api_key)
    assert "rate limit cache unavailable" in caplog.text


def test_a_counter_lives_one_second_past_its_window_also_when_started_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.cache import caches

    cache = caches["default"]
    real_add = cache.add
    timeouts: list[object] = []
    expired: list[str] = []

    def recording_add(key: str, value: object, timeout: object = None, **kwargs: object) -> bool:
        timeouts.append(timeout)
        return bool(real_add(key, value, timeout=timeout, **kwargs))  # type: ignore[arg-type]

    monkeypatch.setattr(cache, "add", recording_add)
    limiter, identity, rate = RateLimiter(), _identity(), Rate(5, 60)
    limiter.hit(identity, rate)  # a new counter
    monkeypatch.setattr(cache, "incr", _incr_that_finds_the_counter_expired(cache, expired))
    limiter.hit(identity, rate)  # found, expired before incr(), started again
    assert timeouts == [61, 61, 61]


def test_the_last_second_of_a_window_asks_for_one_second() -> None:
    limiter, rate = RateLimiter(), Rate(1, 60)
    window_end = 1_000_080.0  # 60 s windows start at multiples of 60
    decision = limiter.hit(_identity(), rate, now=window_end - 0.5)
    assert (decision.allowed, decision.limit, decision.retry_after) == (True, 1, 1)


async def test_async_hits_count_identities_apart_in_process_and_on_a_network_cache(
    network_cache: str,
) -> None:
    for limiter in (RateLimiter(), RateLimiter(network_cache)):
        rate = Rate(1, 60)
        assert (await limiter.ahit(_identity(), rate)).allowed
        assert (await limiter.ahit(_identity(), rate)).allowed


async def test_a_network_cache_is_called_off_the_thread_the_orm_shares(network_cache: str) -> None:
    """A slow cache must not hold up the one thread Django runs async views' ORM calls on."""
    limiter = RateLimiter(network_cache)
    real_hit = limiter.hit
    threads: list[int] = []

    def recording_hit(identity: str, rate: Rate, now: float | None = None) -> RateDecision:
        threads.append(threading.get_ident())
        return real_hit(identity, rate, now)

    limiter.hit = recording_hit  # type: ignore[method-assign]
    assert (await limiter.ahit(_identity(), Rate(1, 60))).allowed
    orm_thread = await sync_to_async(threading.get_ident)()
    assert threads
    assert threads[0] not in {orm_thread, threading.get_ident()}
