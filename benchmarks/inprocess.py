"""In-process timings: one verification, sync and async, next to upstream and to the floors.

Each case is timed in batches of calls (a batch lasts about ``BATCH_SECONDS``, short enough
that most batches run unpreempted on a busy machine); a timing is the median over batches of
the mean time per call, in microseconds. Every case is timed in each of ``PASSES`` passes
over all cases, so that cases compared in a ratio were measured close together in time:
figures are medians over passes, and ratios are medians of the ratios within a pass.
Every case first checks that it measures what its label says (the outcome's reason).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from statistics import median

from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key.cache import clear_local
from async_api_key.conf import api_key_settings
from async_api_key.keys import generate_key, random_base62
from async_api_key.models import APIKey
from async_api_key.verification import Reason, Verifier, get_verifier

BATCH_SECONDS = 0.005
BATCHES = 41
PASSES = 3
#: Fresh unknown keys made for the "first time" cases (each call needs a new one).
MAX_FRESH_KEYS = 40_000


@dataclass(frozen=True)
class Keys:
    """The raw keys the benchmarks present, made on the benchmark database."""

    hot: str
    cold: str
    upstream: str
    #: A key stored with a pre-3.0 djangorestframework-api-key PBKDF2 hash, never used (so
    #: never upgraded): the flood case presents made-up secrets for its lookup id.
    legacy: str


@dataclass(frozen=True)
class CaseResult:
    label: str
    #: One timing per pass, in µs.
    verify_runs: tuple[float, ...]
    averify_runs: tuple[float, ...]
    queries: int

    @property
    def verify_us(self) -> float:
        return median(self.verify_runs)

    @property
    def averify_us(self) -> float:
        return median(self.averify_runs)


@dataclass(frozen=True)
class ReferenceResult:
    label: str
    #: One timing per pass, in µs.
    runs: tuple[float, ...]
    queries: int

    @property
    def median_us(self) -> float:
        return median(self.runs)


def ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the ratios of timings made in the same pass."""
    return median(a / b for a, b in zip(numerators, denominators, strict=True))


@dataclass(frozen=True)
class InProcessResults:
    cases: dict[str, CaseResult]
    references: dict[str, ReferenceResult]


def create_keys() -> Keys:
    """Create one key of ours to keep hot, one to verify cold, and one upstream key."""
    _, hot = APIKey.objects.create_key(name="bench-hot")
    _, cold = APIKey.objects.create_key(name="bench-cold")
    _, upstream = UpstreamAPIKey.objects.create_key(name="bench-upstream")
    legacy = f"{random_base62(8)}.{random_base62(32)}"
    APIKey.objects.create(
        name="bench-legacy",
        prefix=legacy[:8],
        hashed_key=make_password(legacy, hasher="pbkdf2_sha256"),
    )
    return Keys(hot=hot, cold=cold, upstream=upstream, legacy=legacy)


def _calls_per_batch(seconds_per_call: float) -> int:
    return max(3, int(BATCH_SECONDS / max(seconds_per_call, 1e-9)))


def time_sync(call: Callable[[], object]) -> float:
    """Median µs per call of ``call``."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(3):
        call()
    calls = _calls_per_batch((time.perf_counter() - start) / 3)
    per_call: list[float] = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        per_call.append((time.perf_counter() - start) / calls)
    return median(per_call) * 1e6


def time_async(call: Callable[[], Awaitable[object]]) -> float:
    """Median µs per awaited call of ``call``, all inside one event loop."""

    async def run() -> float:
        gc.collect()
        start = time.perf_counter()
        for _ in range(3):
            await call()
        calls = _calls_per_batch((time.perf_counter() - start) / 3)
        per_call: list[float] = []
        for _ in range(BATCHES):
            start = time.perf_counter()
            for _ in range(calls):
                await call()
            per_call.append((time.perf_counter() - start) / calls)
        return median(per_call) * 1e6

    return asyncio.run(run())


def _count_queries(call: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def _fresh_unknown_keys() -> Iterator[str]:
    namespace = api_key_settings.namespace
    for _ in range(MAX_FRESH_KEYS):
        yield generate_key(namespace).raw
    raise RuntimeError("ran out of fresh unknown keys; raise MAX_FRESH_KEYS")


def _made_up_secrets_for(legacy_key: str) -> Iterator[str]:
    """The legacy key's lookup id with a new made-up secret each time: a brute-force flood."""
    while True:
        yield f"{legacy_key[:8]}.{random_base62(32)}"


def time_a_few(call: Callable[[], object], calls: int = 3) -> float:
    """Median µs per call of a call too slow for batches (a password hash)."""
    timings: list[float] = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return median(timings) * 1e6


def _malformed(raw_key: str) -> str:
    """The same key with its last checksum character changed: well shaped, rejected offline."""
    last = raw_key[-1]
    return raw_key[:-1] + ("A" if last != "A" else "B")


def _expect(verifier: Verifier[APIKey], raw_key: str, reason: Reason) -> None:
    outcome = verifier.verify(raw_key)
    if outcome.reason is not reason:
        raise AssertionError(f"expected {reason}, got {outcome.reason}: the case is mislabelled")


def run(keys: Keys, progress: Callable[[str], None]) -> InProcessResults:
    verifier = get_verifier(APIKey)
    malformed = _malformed(keys.hot)
    repeated_unknown = generate_key(api_key_settings.namespace).raw
    fresh = _fresh_unknown_keys()
    flood = _made_up_secrets_for(keys.legacy)
    legacy_hash = APIKey.objects.get(prefix=keys.legacy[:8]).hashed_key

    clear_local()
    _expect(verifier, keys.hot, Reason.VALID)
    _expect(verifier, malformed, Reason.MALFORMED)
    _expect(verifier, repeated_unknown, Reason.UNKNOWN)
    _expect(verifier, next(flood), Reason.INVALID_SECRET)
    if not UpstreamAPIKey.objects.is_valid(keys.upstream):
        raise AssertionError("the upstream key does not verify")

    def cold_verify() -> object:
        clear_local()
        return verifier.verify(keys.cold)

    async def cold_averify() -> object:
        clear_local()
        return await verifier.averify(keys.cold)

    cases: dict[str, tuple[str, Callable[[], object], Callable[[], Awaitable[object]]]] = {
        "hot": (
            "hot key (cache hit)",
            lambda: verifier.verify(keys.hot),
            lambda: verifier.averify(keys.hot),
        ),
        "cold": ("cold key (cache miss, valid)", cold_verify, cold_averify),
        "malformed": (
            "malformed key (bad checksum)",
            lambda: verifier.verify(malformed),
            lambda: verifier.averify(malformed),
        ),
        "unknown_first": (
            "unknown key, first time",
            lambda: verifier.verify(next(fresh)),
            lambda: verifier.averify(next(fresh)),
        ),
        "unknown_repeat": (
            "unknown key, repeated",
            lambda: verifier.verify(repeated_unknown),
            lambda: verifier.averify(repeated_unknown),
        ),
        "legacy_flood": (
            "made-up secret for a password-hashed (pre-3.0) lookup id, in a flood",
            lambda: verifier.verify(next(flood)),
            lambda: verifier.averify(next(flood)),
        ),
    }
    progress("in-process: counting queries")
    queries: dict[str, int] = {}
    for name, (_, sync_call, _) in cases.items():
        verifier.verify(keys.hot)
        sync_call()  # a repeated key is repeated from the first counted call on
        queries[name] = _count_queries(sync_call)

    upstream_is_valid = UpstreamAPIKey.objects.is_valid
    upstream_hop = sync_to_async(upstream_is_valid)

    def noop() -> None:
        return None

    hop = sync_to_async(noop)
    upstream_queries = _count_queries(lambda: upstream_is_valid(keys.upstream))
    references: dict[str, tuple[str, Callable[[], float], int]] = {
        "upstream": (
            "upstream `APIKey.objects.is_valid(key)`",
            lambda: time_sync(lambda: upstream_is_valid(keys.upstream)),
            upstream_queries,
        ),
        "upstream_hop": (
            "upstream `is_valid` awaited through `sync_to_async`",
            lambda: time_async(lambda: upstream_hop(keys.upstream)),
            upstream_queries,
        ),
        "sha512": (
            "bare `hashlib.sha512(key).hexdigest()`",
            lambda: time_sync(lambda: hashlib.sha512(keys.hot.encode()).hexdigest()),
            0,
        ),
        "hop": ("one `sync_to_async` hop (no-op function)", lambda: time_async(hop), 0),
        "pbkdf2": (
            "one PBKDF2 check of a made-up secret (what each flood request cost, unbounded)",
            lambda: time_a_few(lambda: check_password(next(flood), legacy_hash)),
            0,
        ),
    }

    case_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    reference_runs: dict[str, list[float]] = {name: [] for name in references}
    for number in range(1, PASSES + 1):
        progress(f"in-process: pass {number}/{PASSES}")
        for name, (_, sync_call, async_call) in cases.items():
            verifier.verify(keys.hot)  # every case starts with the hot key cached
            case_runs[name].append((time_sync(sync_call), time_async(async_call)))
        for name, (_, timing, _) in references.items():
            reference_runs[name].append(timing())
    return InProcessResults(
        cases={
            name: CaseResult(
                label,
                tuple(run[0] for run in case_runs[name]),
                tuple(run[1] for run in case_runs[name]),
                queries[name],
            )
            for name, (label, _, _) in cases.items()
        },
        references={
            name: ReferenceResult(label, tuple(reference_runs[name]), count)
            for name, (label, _, count) in references.items()
        },
    )
