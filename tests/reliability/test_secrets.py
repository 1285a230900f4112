"""Secret hygiene: a raw key never shows up in an error page or error report, in the
``repr()`` of anything the library hands out, in the text of an exception it raises for bad
input, or in a cache key or value; and on the async path an unknown lookup id does the same
work as a wrong secret. (Log records are checked for every test by ``tests/conftest.py``.)
"""

from __future__ import annotations

import hmac
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import django
import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client, override_settings
from django.utils import timezone
from django.views.debug import ExceptionReporter

from async_api_key import cache as cache_module
from async_api_key import drf, hashing, ninja, signals, verification
from async_api_key.hashing import check_key, hash_key
from async_api_key.keys import generate_key, parse_key, random_base62
from async_api_key.models import APIKey
from async_api_key.verification import Reason, VerificationOutcome, Verifier
from tests.conftest import HopCounter
from tests.support.key_factories import (
    expired_key,
    revoked_key,
    unknown_key,
    valid_key,
    wrong_secret_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.reliability_urls")]

FRAMEWORKS = ("ninja", "drf")


def _secret_part(raw: str) -> str:
    """The part of a key that must stay secret (its lookup id and namespace are public)."""
    return raw.rpartition(".")[2] if "." in raw else raw.rpartition("_")[2][:32]


def _assert_hidden(raw: str, *texts: str) -> None:
    for text in texts:
        assert raw not in text
        assert _secret_part(raw) not in text


def _error_report(response: Any) -> str:
    """What Django mails to ADMINS for this failed request (text, and HTML if enabled)."""
    exc_type, exc_value, exc_traceback = response.exc_info
    reporter = ExceptionReporter(
        response.wsgi_request, exc_type, exc_value, exc_traceback, is_email=True
    )
    return reporter.get_traceback_text() + reporter.get_traceback_html()


@pytest.fixture
def failing_audit_receiver() -> Iterator[None]:
    """A project's audit receiver that fails: the exception escapes from inside verification."""

    def fail(sender: Any, **payload: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    signals.verification_succeeded.connect(fail, weak=False)
    yield
    signals.verification_succeeded.disconnect(fail)


# Error pages and error reports ----------------------------------------------------------


@pytest.mark.usefixtures("failing_audit_receiver")
@pytest.mark.parametrize(
    "endpoint",
    ["ninja/plain", "drf/plain", "drf/permission-only", "drf/throttled"],
)
def test_a_failure_inside_verification_keeps_the_key_out_of_the_error_report(
    endpoint: str,
) -> None:
    """With ``DEBUG = False`` the page is generic; the report mailed to ADMINS (or sent to an
    error tracker) lists each frame's local variables, which hold the key in the verifier and
    in whichever DRF class read it (an authentication class, a permission, a throttle)."""
    if endpoint.startswith("ninja") and django.VERSION < (5, 0):
        pytest.skip("Django 4.2 cannot mask coroutine frames (documented in docs/auditing.md)")
    _, raw = APIKey.objects.create_key(name="report")
    client = Client(raise_request_exception=False)
    response = client.get(f"/{endpoint}", headers={"X-API-Key": raw})
    assert response.status_code == 500
    _assert_hidden(raw, response.content.decode(), _error_report(response))


@pytest.mark.parametrize("endpoint", ["ninja/plain", "drf/plain"])
@pytest.mark.parametrize("failing", ["policy", "expiry"])
def test_a_failure_on_a_cache_hit_keeps_the_key_out_of_the_error_report(
    endpoint: str, failing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot key is answered below a coroutine on Ninja, where Django masks only the
    coroutines' own frames: a failure in the policy or the model's expiry rule must find no
    frame holding the key."""
    if endpoint.startswith("ninja") and django.VERSION < (5, 0):
        pytest.skip("Django 4.2 cannot mask coroutine frames (documented in docs/auditing.md)")
    _, raw = APIKey.objects.create_key(
        name="hot",
        allowed_networks=["127.0.0.0/8"],
        expiry_date=timezone.now() + timedelta(days=1),
    )
    client = Client(raise_request_exception=False)
    assert client.get(f"/{endpoint}", headers={"X-API-Key": raw}).status_code == 200

    def fail(*args: Any) -> Any:
        raise RuntimeError(f"the {failing} check failed")

    if failing == "policy":
        monkeypatch.setattr(verification, "client_address", fail)
    else:
        monkeypatch.setattr(APIKey, "has_expired", property(fail))
    response = client.get(f"/{endpoint}", headers={"X-API-Key": raw})
    assert response.status_code == 500
    _assert_hidden(raw, response.content.decode(), _error_report(response))


def test_a_failing_get_user_keeps_the_key_out_of_the_error_report() -> None:
    """A project's ``APIKeyAuthentication.get_user()`` fails after the key was verified."""
    _, raw = APIKey.objects.create_key(name="user")
    client = Client(raise_request_exception=False)
    response = client.get("/drf/failing-user", headers={"X-API-Key": raw})
    assert response.status_code == 500
    assert "get_user() failed" in _error_report(response)
    _assert_hidden(raw, response.content.decode(), _error_report(response))


@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG=False", "DEBUG=True"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_view_that_fails_after_authentication_shows_no_key_on_the_error_page(
    framework: str, debug: bool
) -> None:
    _, raw = APIKey.objects.create_key(name="page")
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        response = client.get(f"/{framework}/fails", headers={"Authorization": f"Api-Key {raw}"})
        report = _error_report(response) if getattr(response, "exc_info", None) else ""
    assert response.status_code == 500
    if debug:
        assert b"ViewFailed" in response.content  # the debug page (Django's, or Ninja's)
    _assert_hidden(raw, response.content.decode(), report)


# repr() ---------------------------------------------------------------------------------


def _outcomes() -> list[tuple[VerificationOutcome[APIKey], str]]:
    """One outcome of every kind, each with the raw key it was verified from."""
    verifier = Verifier(APIKey)
    meta = {"REMOTE_ADDR": "192.0.2.1"}
    valid_raw = valid_key(scopes=["orders:read"])
    revoked_raw = revoked_key(name="revoked")
    expired_raw = expired_key(name="expired")
    fenced_raw = APIKey.objects.create_key(name="fenced", allowed_networks=["203.0.113.0/24"])[1]
    stored, _ = APIKey.objects.create_key(name="wrong secret")
    wrong_raw = wrong_secret_for(stored.prefix, random_base62(32))
    unknown_raw = unknown_key()
    outcomes = [
        (verifier.verify(valid_raw), valid_raw),
        (verifier.verify(valid_raw), valid_raw),  # from the cache
        (verifier.verify(valid_raw, scopes=["billing:read"]), valid_raw),
        (verifier.verify(fenced_raw, request_meta=meta), fenced_raw),
        (verifier.verify(revoked_raw), revoked_raw),
        (verifier.verify(expired_raw), expired_raw),
        (verifier.verify(wrong_raw), wrong_raw),
        (verifier.verify(unknown_raw), unknown_raw),
        (verifier.verify(valid_raw[:-1]), valid_raw),
    ]
    cache_module.clear_local()
    with _database_down():
        outcomes.append((verifier.verify(valid_raw), valid_raw))
    reasons = {outcome.reason for outcome, _ in outcomes}
    assert reasons == set(Reason) - {Reason.MISSING, Reason.UNUSABLE}
    return outcomes


@contextmanager
def _database_down() -> Iterator[None]:
    """Every query fails as if the database refused the connection."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)
        yield


def test_nothing_the_library_hands_out_shows_the_key_in_its_repr() -> None:
    payloads: list[dict[str, Any]] = []

    def record(sender: Any, **payload: Any) -> None:
        payloads.append(payload)

    for signal in (signals.verification_succeeded, signals.verification_failed):
        signal.connect(record, weak=False)
    try:
        outcomes = _outcomes()
    finally:
        for signal in (signals.verification_succeeded, signals.verification_failed):
            signal.disconnect(record)
    api_key, raw = APIKey.objects.create_key(name="objects")
    legacy_raw = f"{random_base62(8)}.{random_base62(32)}"
    generated = generate_key("ak")
    objects: list[tuple[object, str]] = [
        (api_key, raw),
        (APIKey.objects.get(pk=api_key.pk), raw),
        (APIKey.objects.get_from_key(raw), raw),
        (parse_key(raw), raw),
        (parse_key(legacy_raw), legacy_raw),
        (generated, generated.raw),
        (check_key(raw, api_key.hashed_key), raw),
        *outcomes,
        *((outcome.api_key, key) for outcome, key in outcomes if outcome.api_key is not None),
        *((outcome.error, key) for outcome, key in outcomes if outcome.error is not None),
        *((drf.InvalidAPIKey(outcome, "Api-Key"), key) for outcome, key in outcomes),
        *((drf.APIKeyRefused(outcome), key) for outcome, key in outcomes),
        *((drf.APIKeyStoreUnavailable(outcome), key) for outcome, key in outcomes),
        *((ninja.APIKeyRefused(outcome), key) for outcome, key in outcomes),
    ]
    every_raw_key = [key for _, key in objects]
    for payload in payloads:
        objects.extend((payload, key) for key in every_raw_key)
    for obj, key in objects:
        _assert_hidden(key, repr(obj), str(obj))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_what_a_request_keeps_about_its_key_shows_no_key(framework: str) -> None:
    """``request.auth`` and what the adapters memoise on the request, as a debugger shows it."""
    _, raw = APIKey.objects.create_key(name="request")
    response = Client().get(f"/{framework}/plain", headers={"X-API-Key": raw})
    assert response.status_code == 200
    request = response.wsgi_request
    # Django's own copies of the request headers hold the key by nature; the rest is ours.
    kept = {
        name: value
        for name, value in vars(request).items()
        if name not in {"META", "environ", "headers"}
    }
    _assert_hidden(raw, repr(kept), repr(getattr(request, "auth", None)))


# Exceptions raised for bad input --------------------------------------------------------


def _exception_text(call: Callable[[], object]) -> str:
    with pytest.raises(Exception) as caught:  # noqa: PT011 (any exception: we read its text)
        call()
    return "".join(traceback.format_exception(caught.value)) + repr(caught.value)


def test_exceptions_raised_for_bad_input_never_quote_the_key() -> None:
    _, raw = APIKey.objects.create_key(name="input")
    revoked, revoked_raw = APIKey.objects.create_key(name="revoked")
    revoked.revoke()
    calls: list[tuple[str, Callable[[], object]]] = [
        (revoked_raw, lambda: APIKey.objects.get_from_key(revoked_raw)),
        (raw, lambda: APIKey.objects.get_from_key(raw + "x")),
        (raw, lambda: APIKey.objects.get_from_key(" " + raw[:-1])),
        (raw, lambda: APIKey.objects.create_key(name="x", prefix=raw)),
        (raw, lambda: APIKey.objects.create_key(name="x", hashed_key=raw)),
        (raw, lambda: hash_key(raw, "md5")),
        (revoked_raw, revoked.rotate),
        (revoked_raw, lambda: call_command("rotateapikey", revoked.prefix)),
    ]
    texts = [(key, _exception_text(call)) for key, call in calls]
    with _database_down():
        texts.append((raw, _exception_text(lambda: APIKey.objects.get_from_key(raw))))
        texts.append((raw, _exception_text(lambda: APIKey.objects.is_valid(raw))))
    for key, text in texts:
        _assert_hidden(key, text)


@pytest.mark.parametrize(
    "command", [["revokeapikey"], ["rotateapikey"]], ids=["revokeapikey", "rotateapikey"]
)
def test_a_management_command_given_the_whole_key_does_not_echo_it(command: list[str]) -> None:
    """Pasting the whole key where its prefix belongs is the likeliest slip with a leaked key:
    the error goes to a terminal, a CI log or a chat message, so it must not repeat the key."""
    _, raw = APIKey.objects.create_key(name="pasted")
    text = _exception_text(lambda: call_command(*command, raw))
    assert "CommandError" in text
    _assert_hidden(raw, text)


# Cache keys and values ------------------------------------------------------------------


def _cache_contents() -> list[bytes]:
    """Every key and value in the default cache (local memory, or Redis when REDIS_URL is set)."""
    backend: Any = caches["default"]
    if hasattr(backend, "_cache") and isinstance(backend._cache, dict):  # LocMemCache
        return [part for key, value in backend._cache.items() for part in (key.encode(), value)]
    client = backend._cache.get_client(None, write=False)  # RedisCache
    return [part for key in client.keys("*") for part in (key, client.get(key) or b"")]


@override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"})
@pytest.mark.urls("tests.support.parity_urls")
@pytest.mark.django_db(transaction=True)  # committed, as in production: every tier fills
def test_no_cache_key_or_value_holds_a_raw_key() -> None:
    """Both tiers, the negative cache and the rate-limit counters, after every kind of key."""
    raws = [APIKey.objects.create_key(name=f"k{index}")[1] for index in range(2)]
    revoked, revoked_raw = APIKey.objects.create_key(name="revoked")
    revoked.revoke()
    wrong_raw = wrong_secret_for(revoked.prefix, random_base62(32))
    presented = [*raws, revoked_raw, wrong_raw, unknown_key()]
    for raw in presented:
        for url in ("/ninja/throttled", "/drf/throttled", "/ninja/plain", "/drf/plain"):
            Client(HTTP_AUTHORIZATION=f"Api-Key {raw}").get(url)
    local = [
        repr(item)
        for tier in (cache_module._positive, cache_module._negative)
        for item in tier._items.items()
    ]
    shared = _cache_contents()
    assert len(local) >= 3
    assert any(b"async_api_key:v2" in part for part in shared)
    assert any(b"async_api_key:rl:v1" in part for part in shared)
    for raw in presented:
        _assert_hidden(raw, *local)
        for part in shared:
            assert raw.encode() not in part
            assert _secret_part(raw).encode() not in part


# Timing ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_unknown_lookup_id_and_wrong_secret_take_the_same_path_on_the_async_path(
    monkeypatch: pytest.MonkeyPatch, thread_hops: HopCounter
) -> None:
    """The same hash (algorithm, input length) and the same comparison (operand lengths),
    in the one thread hop, never on the event loop."""
    loop_thread = threading.get_ident()
    calls: list[tuple[str, bool, tuple[object, ...]]] = []

    def traced_hash(raw_key: str, algorithm: str = "sha512") -> str:
        calls.append(("hash", threading.get_ident() != loop_thread, (algorithm, len(raw_key))))
        return real_hash(raw_key, algorithm)

    def traced_compare(a: Any, b: Any) -> bool:
        calls.append(("compare", threading.get_ident() != loop_thread, (len(a), len(b))))
        return real_compare(a, b)

    real_hash, real_compare = hashing.hash_key, hmac.compare_digest
    monkeypatch.setattr(hashing, "hash_key", traced_hash)
    monkeypatch.setattr("async_api_key.hashing.hmac.compare_digest", traced_compare)
    stored, _ = await APIKey.objects.acreate_key(name="stored")
    wrong_secret, unknown = wrong_secret_for(stored.prefix, random_base62(32)), unknown_key()
    verifier = Verifier(APIKey)
    paths = {}
    for label, raw in [("unknown", unknown), ("wrong secret", wrong_secret)]:
        calls.clear()
        thread_hops.count = 0
        outcome = await verifier.averify(raw)
        paths[label] = (list(calls), thread_hops.count)
        assert outcome.reason is (Reason.UNKNOWN if label == "unknown" else Reason.INVALID_SECRET)
    assert paths["unknown"] == paths["wrong secret"]
    stored_length = len(stored.hashed_key)
    assert paths["unknown"] == (
        [("hash", True, ("sha512", len(unknown))), ("compare", True, (stored_length,) * 2)],
        1,
    )


@override_settings(ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "default"})
@pytest.mark.django_db(transaction=True)  # committed, as in production: the shared tier fills
def test_the_shared_tier_holds_no_stored_hash() -> None:
    """A shared entry holds what a verification needs: not the stored hash of the key."""
    api_key, raw = APIKey.objects.create_key(name="shared")
    assert Verifier(APIKey).verify(raw).is_valid
    hex_digest = api_key.hashed_key.split("$$", 1)[1]
    assert any(f":entry:{api_key.prefix}".encode() in part for part in _cache_contents())
    for part in _cache_contents():
        assert hex_digest.encode() not in part
        assert api_key.hashed_key.encode() not in part

    # A hit in another process (here: this one, its own tier emptied) still verifies, and
    # gives a key whose hash is deferred, as with ``.defer("hashed_key")``.
    cache_module.clear_local()
    hit = Verifier(APIKey).verify(raw)
    assert hit.is_valid
    assert hit.api_key is not None
    assert hit.api_key.get_deferred_fields() == {"hashed_key"}
    assert hit.api_key.hashed_key == api_key.hashed_key  # loaded on access, on a sync path
