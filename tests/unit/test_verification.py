"""The one verifier: every outcome, on the sync and the async path."""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.hashers import make_password
from django.db import OperationalError, transaction
from django.db.backends.utils import CursorWrapper
from django.test import override_settings
from django.utils import timezone

from async_api_key import hashing
from async_api_key.exceptions import KeyStoreUnavailable
from async_api_key.hashing import hash_key
from async_api_key.keys import MAX_KEY_LENGTH
from async_api_key.models import APIKey
from async_api_key.signals import verification_failed
from async_api_key.verification import Reason, VerificationOutcome, Verifier
from tests.conftest import HopCounter, QueryLog
from tests.support import key_factories as keys
from tests.support.outages import refuse_sql_updates
from tests.support.testapp.models import Organization, OrganizationAPIKey

LEGACY_RAW = "AbCdEfGh.abcdefghijklmnopqrstuvwxyz012345"

Setup = Callable[[], str]


def _missing() -> None:
    return None


CASES: list[tuple[str, Callable[[], str | None], Reason]] = [
    ("valid", keys.valid_key, Reason.VALID),
    ("missing", _missing, Reason.MISSING),
    ("malformed", lambda: keys.MALFORMED_KEY, Reason.MALFORMED),
    ("bad checksum", lambda: keys.with_bad_checksum(keys.valid_key()), Reason.MALFORMED),
    ("unknown lookup id", keys.unknown_key, Reason.UNKNOWN),
    ("wrong secret", keys.wrong_secret_key, Reason.INVALID_SECRET),
    ("revoked", keys.revoked_key, Reason.REVOKED),
    ("expired", keys.expired_key, Reason.EXPIRED),
]


def _assert_outcome(outcome: VerificationOutcome[APIKey], expected: Reason) -> None:
    assert outcome.reason is expected
    assert outcome.is_valid is (expected is Reason.VALID)
    assert (outcome.api_key is not None) is (expected is Reason.VALID)
    assert outcome.status_code == (200 if expected is Reason.VALID else 401)


@pytest.mark.django_db
@pytest.mark.parametrize(("label", "make_key", "expected"), CASES, ids=[c[0] for c in CASES])
def test_verify_outcomes(label: str, make_key: Callable[[], str | None], expected: Reason) -> None:
    _assert_outcome(Verifier(APIKey).verify(make_key()), expected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("label", "make_key", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_averify_outcomes(
    label: str, make_key: Callable[[], str | None], expected: Reason
) -> None:
    from asgiref.sync import sync_to_async

    raw = await sync_to_async(make_key)()
    _assert_outcome(await Verifier(APIKey).averify(raw), expected)


NO_CACHE = {"CACHE_ENABLED": False}


@pytest.mark.django_db(transaction=True)
@override_settings(ASYNC_API_KEY=NO_CACHE)
def test_valid_key_costs_one_query_once_last_used_is_fresh(queries: QueryLog) -> None:
    raw = keys.valid_key()
    verifier = Verifier(APIKey)
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 2  # the lookup and the first last-used stamp
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 1


@pytest.mark.django_db
@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None})
def test_a_cache_hit_answers_what_the_first_verification_answered(queries: QueryLog) -> None:
    raw = keys.valid_key()
    verifier = Verifier(APIKey)
    first = verifier.verify(raw)
    with queries.capture():
        hit = verifier.verify(raw)
    assert queries.count == 0  # answered from this process's cache
    assert hit == first
    assert (hit.reason, hit.missing_scopes, hit.error) == (Reason.VALID, (), None)
    assert hit.prefix == first.prefix == raw.split("_")[1]
    assert hit.api_key is not first.api_key  # a copy of its own


@pytest.mark.django_db(transaction=True)
@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None})
async def test_an_async_cache_hit_answers_what_the_first_verification_answered(
    thread_hops: HopCounter,
) -> None:
    raw = await sync_to_async(keys.valid_key)()
    verifier = Verifier(APIKey)
    first = await verifier.averify(raw)
    thread_hops.count = 0
    hit = await verifier.averify(raw)
    assert thread_hops.count == 0  # answered from this process's cache, on the loop
    assert hit == first
    assert (hit.reason, hit.missing_scopes, hit.error) == (Reason.VALID, (), None)
    assert hit.api_key is not first.api_key


@pytest.mark.django_db
@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None, **NO_CACHE})
def test_valid_key_costs_one_query_without_last_used(queries: QueryLog) -> None:
    raw = keys.valid_key()
    with queries.capture():
        assert Verifier(APIKey).verify(raw).is_valid
    assert queries.count == 1


@pytest.mark.django_db
@pytest.mark.parametrize("raw", [None, "", "garbage", "ak_" + "a" * 12 + "_" + "b" * 38])
def test_missing_and_malformed_keys_cost_zero_queries(queries: QueryLog, raw: str | None) -> None:
    with queries.capture():
        outcome = Verifier(APIKey).verify(raw)
    assert outcome.reason in (Reason.MISSING, Reason.MALFORMED)
    assert queries.count == 0


@pytest.mark.django_db(transaction=True)
@override_settings(ASYNC_API_KEY=NO_CACHE)
async def test_async_path_makes_one_hop_for_a_well_formed_key_and_none_otherwise(
    thread_hops: HopCounter, queries: QueryLog
) -> None:
    _, raw = await APIKey.objects.acreate_key(name="x")
    verifier = Verifier(APIKey)
    await verifier.averify(raw)  # first use stamps last_used_at
    thread_hops.count = 0
    with queries.capture():
        assert (await verifier.averify(raw)).is_valid
    assert thread_hops.count == 1
    assert queries.count == 1
    with queries.capture():
        assert (await verifier.averify("garbage")).reason is Reason.MALFORMED
        assert (await verifier.averify(None)).reason is Reason.MISSING
    assert thread_hops.count == 1
    assert queries.count == 0


@pytest.mark.django_db
def test_unknown_lookup_id_and_wrong_secret_take_the_same_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def tracing(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def traced(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return traced

    monkeypatch.setattr(hashing, "hash_key", tracing("hash", hashing.hash_key))
    monkeypatch.setattr(
        "async_api_key.hashing.hmac.compare_digest", tracing("compare", hmac.compare_digest)
    )
    unknown, wrong = keys.unknown_key(), keys.wrong_secret_key()
    verifier = Verifier(APIKey)
    calls.clear()
    assert verifier.verify(unknown).reason is Reason.UNKNOWN
    unknown_calls = list(calls)
    calls.clear()
    assert verifier.verify(wrong).reason is Reason.INVALID_SECRET
    assert unknown_calls == calls == ["hash", "compare"]


@pytest.mark.django_db
def test_scopes_are_policy_on_a_genuine_key() -> None:
    _, raw = APIKey.objects.create_key(name="x", scopes=["orders:*"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw, scopes=["orders:read"]).is_valid
    outcome = verifier.verify(raw, scopes=["orders:read", "billing:read"])
    assert outcome.reason is Reason.INSUFFICIENT_SCOPE
    assert outcome.missing_scopes == ("billing:read",)
    assert outcome.api_key is not None
    assert outcome.is_authenticated
    assert not outcome.is_valid
    assert outcome.status_code == 403


@pytest.mark.django_db
def test_a_key_without_scopes_fails_every_scoped_check() -> None:
    raw = keys.valid_key()
    assert Verifier(APIKey).verify(raw).is_valid
    assert Verifier(APIKey).verify(raw, scopes=["x"]).reason is Reason.INSUFFICIENT_SCOPE


@pytest.mark.django_db
def test_scopes_are_not_checked_for_keys_that_failed() -> None:
    outcome = Verifier(APIKey).verify(keys.revoked_key(), scopes=["x"])
    assert outcome.reason is Reason.REVOKED


@pytest.mark.django_db
def test_custom_manager_decides_usability() -> None:
    organization = Organization.objects.create(name="Acme", active=False)
    _, raw = OrganizationAPIKey.objects.create_key(name="x", organization=organization)
    outcome = Verifier(OrganizationAPIKey).verify(raw)
    assert outcome.reason is Reason.UNUSABLE
    assert outcome.status_code == 401


def _store_legacy_key(hashed_key: str) -> APIKey:
    prefix = LEGACY_RAW.split(".", maxsplit=1)[0]
    api_key = APIKey(name="legacy", prefix=prefix, hashed_key=hashed_key)
    api_key.save()
    return api_key


@pytest.mark.django_db
def test_a_legacy_key_of_the_longest_accepted_length_is_served_from_the_cache(
    queries: QueryLog,
) -> None:
    raw = "AbCdEfGh." + "k" * (MAX_KEY_LENGTH - len("AbCdEfGh."))
    APIKey(name="longest", prefix="AbCdEfGh", hashed_key=hash_key(raw)).save()
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    with queries.capture():
        assert verifier.verify(raw).is_valid
    assert queries.count == 0


@pytest.mark.django_db
def test_upstream_sha512_key_verifies_as_stored() -> None:
    api_key = _store_legacy_key(hash_key(LEGACY_RAW))
    outcome = Verifier(APIKey).verify(LEGACY_RAW)
    assert outcome.is_valid
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(LEGACY_RAW)


@pytest.mark.django_db(transaction=True)
def test_legacy_password_hash_is_upgraded_by_a_one_column_update(queries: QueryLog) -> None:
    api_key = _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    with queries.capture():
        assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    updates = queries.writes()
    upgrade = [sql for sql in updates if "hashed_key" in sql]
    assert len(upgrade) == 1
    set_clause = upgrade[0].split("SET", 1)[1].split("WHERE", 1)[0]
    assert "hashed_key" in set_clause
    assert "revoked" not in set_clause
    assert "name" not in set_clause
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(LEGACY_RAW)
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid


@pytest.mark.django_db(transaction=True)
def test_concurrent_revoke_survives_a_legacy_hash_upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    api_key = _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    real_check = hashing.check_key

    def check_then_revoke_elsewhere(*args: Any, **kwargs: Any) -> Any:
        result = real_check(*args, **kwargs)
        APIKey.objects.get(pk=api_key.pk).revoke()  # another request revokes meanwhile
        return result

    monkeypatch.setattr("async_api_key.verification.check_key", check_then_revoke_elsewhere)
    Verifier(APIKey).verify(LEGACY_RAW)
    stored = APIKey.objects.get(pk=api_key.pk)
    assert stored.revoked
    assert stored.hashed_key == hash_key(LEGACY_RAW)
    monkeypatch.setattr("async_api_key.verification.check_key", real_check)
    assert Verifier(APIKey).verify(LEGACY_RAW).reason is Reason.REVOKED


@pytest.mark.django_db(transaction=True)
def test_last_used_is_written_at_most_once_per_interval_and_never_backwards(
    queries: QueryLog,
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    with queries.capture():
        verifier.verify(raw)
        verifier.verify(raw)
    assert len(queries.writes()) == 1
    first = APIKey.objects.get(pk=api_key.pk).last_used_at
    assert first is not None
    future = timezone.now() + timedelta(hours=1)
    APIKey.objects.filter(pk=api_key.pk).update(last_used_at=future)
    with override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": 0}):
        verifier.verify(raw)
    assert APIKey.objects.get(pk=api_key.pk).last_used_at == future


@pytest.mark.django_db(transaction=True)
def test_bookkeeping_inside_a_transaction_waits_for_its_commit(queries: QueryLog) -> None:
    """Inside the caller's transaction, last_used_at is written once it commits: a key row
    locked for bookkeeping until then would hold up (or deadlock with) the key's changes."""
    api_key, raw = APIKey.objects.create_key(name="x")
    with transaction.atomic():
        with queries.capture():
            assert Verifier(APIKey).verify(raw).is_valid
        assert queries.writes() == []  # no row locked for bookkeeping
        assert APIKey.objects.get(pk=api_key.pk).last_used_at is None
    assert APIKey.objects.get(pk=api_key.pk).last_used_at is not None


@pytest.mark.django_db(transaction=True)
def test_bookkeeping_of_a_rolled_back_transaction_is_not_written() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    with transaction.atomic():
        assert Verifier(APIKey).verify(raw).is_valid
        transaction.set_rollback(True)
    assert APIKey.objects.get(pk=api_key.pk).last_used_at is None


def _break_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)


@pytest.mark.django_db
def test_database_outage_fails_closed_with_a_clear_reason(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raw = keys.valid_key()
    _break_the_database(monkeypatch)
    with caplog.at_level(logging.ERROR, logger="async_api_key"):
        outcome = Verifier(APIKey).verify(raw)
    assert outcome.reason is Reason.UNAVAILABLE
    assert outcome.status_code == 503
    assert outcome.api_key is None
    assert len(caplog.records) == 1
    assert "unavailable" in caplog.records[0].getMessage()
    with pytest.raises(KeyStoreUnavailable):
        APIKey.objects.is_valid(raw)
    with pytest.raises(KeyStoreUnavailable):
        APIKey.objects.get_from_key(raw)


@pytest.mark.django_db(transaction=True)
async def test_database_outage_on_the_async_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _, raw = await APIKey.objects.acreate_key(name="x")
    _break_the_database(monkeypatch)
    assert (await Verifier(APIKey).averify(raw)).reason is Reason.UNAVAILABLE
    with pytest.raises(KeyStoreUnavailable):
        await APIKey.objects.ais_valid(raw)


@pytest.mark.django_db
def test_failures_are_logged_with_reason_and_prefix_only(caplog: pytest.LogCaptureFixture) -> None:
    raw = keys.revoked_key()
    with caplog.at_level(logging.INFO, logger="async_api_key"):
        Verifier(APIKey).verify(raw)
    [record] = caplog.records
    assert "reason=revoked" in record.getMessage()
    assert f"prefix={raw.split('_')[1]}" in record.getMessage()
    assert raw not in record.getMessage()


@pytest.mark.django_db
def test_outcome_repr_never_shows_the_key() -> None:
    raw = keys.valid_key()
    outcome = Verifier(APIKey).verify(raw)
    assert raw not in repr(outcome)
    assert raw not in str(outcome)


def test_reason_values_are_stable() -> None:
    assert {reason.value for reason in Reason} == {
        "valid",
        "missing",
        "malformed",
        "unknown",
        "invalid_secret",
        "revoked",
        "expired",
        "unusable",
        "insufficient_scope",
        "ip_not_allowed",
        "unavailable",
    }
    assert str(Reason.REVOKED) == "revoked"


@pytest.mark.django_db
def test_error_bodies_do_not_tell_refused_keys_apart() -> None:
    verifier = Verifier(APIKey)
    # Every key that was sent; a request with none is answered in DRF's words (its sender
    # knows it sent none).
    bodies = [verifier.verify(make()).error_body() for _, make, reason in CASES[2:]]
    assert all(
        body == {"detail": "Invalid or missing API key.", "code": "invalid_api_key"}
        for body in bodies
    )
    assert verifier.verify(None).error_body() == {
        "detail": "Authentication credentials were not provided."
    }


@pytest.mark.django_db
def test_scope_refusal_body_names_the_missing_scopes() -> None:
    _, raw = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    outcome = Verifier(APIKey).verify(raw, scopes=["orders:read", "orders:write"])
    assert outcome.error_body() == {
        "detail": "This API key lacks the required scope(s): orders:write",
        "code": "insufficient_scope",
        "missing_scopes": ["orders:write"],
    }


def test_unavailable_body() -> None:
    outcome: VerificationOutcome[APIKey] = VerificationOutcome(Reason.UNAVAILABLE)
    assert outcome.error_body()["code"] == "api_key_verification_unavailable"
    assert outcome.status_code == 503


@pytest.mark.django_db(transaction=True)
def test_a_failed_last_used_write_does_not_refuse_a_valid_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raw = keys.valid_key()
    refuse_sql_updates(monkeypatch)
    assert Verifier(APIKey).verify(raw).is_valid
    assert any("last_used_at" in record.getMessage() for record in caplog.records)


def test_verifiers_are_built_once_per_model_and_manager() -> None:
    from async_api_key.verification import get_verifier

    assert get_verifier(APIKey) is get_verifier(APIKey)
    assert APIKey.objects.verifier is APIKey.objects.verifier
    assert get_verifier(OrganizationAPIKey).model is OrganizationAPIKey
    assert APIKey.objects.verifier.manager is APIKey.objects


def test_each_model_keeps_its_own_default_verifier(monkeypatch: pytest.MonkeyPatch) -> None:
    from async_api_key import verification

    monkeypatch.setattr(verification, "_verifiers", {})  # as in a new process
    first = verification.get_verifier(APIKey)
    other = verification.get_verifier(OrganizationAPIKey)
    assert (first.model, other.model) == (APIKey, OrganizationAPIKey)
    assert verification.get_verifier(APIKey) is first
    assert verification.get_verifier(OrganizationAPIKey) is other
    assert verification._verifiers == {APIKey: first, OrganizationAPIKey: other}


def test_managers_made_per_call_share_one_verifier() -> None:
    from async_api_key import verification

    first = APIKey.objects.db_manager("default").verifier
    before = len(verification._verifiers)
    for _ in range(50):
        assert APIKey.objects.db_manager("default").verifier is first
    assert len(verification._verifiers) == before
    assert APIKey.objects.db_manager("default").verifier is not APIKey.objects.verifier


# Policy fields written around the validation -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "stored", "scopes", "reason"),
    [
        # From inside the stored network: only the unreadable entry can refuse.
        ("allowed_networks", ["203.0.113.0/24", "garbage"], (), Reason.IP_NOT_ALLOWED),
        ("scopes", ["orders:read", 42], ("billing:read",), Reason.INSUFFICIENT_SCOPE),
    ],
)
def test_an_unreadable_policy_field_refuses_and_tells_the_operator_which_key_and_field(
    caplog: pytest.LogCaptureFixture,
    field: str,
    stored: list[Any],
    scopes: tuple[str, ...],
    reason: Reason,
) -> None:
    """A raw SQL write or ``_base_manager`` update stored a value the validation would have
    refused: the request is refused, and one ERROR names the key's lookup id and the field."""
    api_key, raw = APIKey.objects.create_key(
        name="x", allowed_networks=["203.0.113.0/24"], scopes=["orders:read"]
    )
    APIKey._base_manager.filter(pk=api_key.pk).update(**{field: stored})
    with caplog.at_level(logging.ERROR, logger="async_api_key"):
        outcome = Verifier(APIKey).verify(
            raw,
            scopes=scopes,
            request_meta={"REMOTE_ADDR": "203.0.113.9"},
        )
    assert outcome.reason is reason
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert api_key.prefix in errors[0]
    assert f"unreadable {field} stored" in errors[0]


@pytest.mark.django_db
def test_a_key_refused_by_its_allowlist_is_still_the_genuine_key_on_the_outcome() -> None:
    """A policy refusal names the key it refused (``outcome.api_key``), as documented, so that
    a caller can tell whose key was used from the wrong place."""
    api_key, raw = APIKey.objects.create_key(name="x", allowed_networks=["203.0.113.0/24"])
    outside = Verifier(APIKey).verify(raw, request_meta={"REMOTE_ADDR": "198.51.100.1"})
    assert outside.reason is Reason.IP_NOT_ALLOWED
    assert outside.api_key is not None
    assert outside.api_key.pk == api_key.pk
    assert outside.prefix == api_key.prefix


# Requests in flight with one key, on the async path ------------------------------------


def _key_reads(queries: QueryLog) -> int:
    return sum(1 for sql in queries.statements if sql.startswith("SELECT") and "apikey" in sql)


@pytest.mark.django_db(transaction=True)
async def test_requests_in_flight_with_one_cold_key_take_one_hop_and_get_a_key_each(
    thread_hops: HopCounter, queries: QueryLog
) -> None:
    """A burst of requests with a key this process has not cached yet (its first use, or
    the moment its entry needs the change log again): one thread hop checks it."""
    _, raw = await APIKey.objects.acreate_key(name="burst", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    thread_hops.count = 0
    with queries.capture():
        outcomes = await asyncio.gather(*(verifier.averify(raw) for _ in range(10)))
    assert [outcome.reason for outcome in outcomes] == [Reason.VALID] * 10
    assert thread_hops.count == 1
    assert _key_reads(queries) == 1
    keys_handed_out = [outcome.api_key for outcome in outcomes]
    assert len({id(api_key) for api_key in keys_handed_out}) == 10
    assert keys_handed_out[0] is not None
    keys_handed_out[0].scopes.append("*")
    assert all(api_key.scopes == ["orders:read"] for api_key in keys_handed_out[1:] if api_key)


@pytest.mark.django_db(transaction=True)
async def test_requests_in_flight_with_one_key_still_get_their_own_policy(
    thread_hops: HopCounter,
) -> None:
    _, raw = await APIKey.objects.acreate_key(name="burst", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    thread_hops.count = 0
    reading, writing = await asyncio.gather(
        verifier.averify(raw, scopes=["orders:read"]),
        verifier.averify(raw, scopes=["orders:write"]),
    )
    assert reading.reason is Reason.VALID
    assert writing.reason is Reason.INSUFFICIENT_SCOPE
    assert writing.missing_scopes == ("orders:write",)
    assert thread_hops.count == 1


@pytest.mark.django_db(transaction=True)
async def test_requests_in_flight_with_one_revoked_key_share_its_refusal_and_each_is_reported(
    thread_hops: HopCounter,
) -> None:
    raw = await sync_to_async(keys.revoked_key)()
    verifier = Verifier(APIKey)
    reported: list[Reason] = []

    def record(sender: Any, *, reason: Reason, **payload: Any) -> None:
        reported.append(reason)

    verification_failed.connect(record, weak=False)
    try:
        thread_hops.count = 0
        outcomes = await asyncio.gather(*(verifier.averify(raw) for _ in range(5)))
    finally:
        verification_failed.disconnect(record)
    assert [outcome.reason for outcome in outcomes] == [Reason.REVOKED] * 5
    assert all(outcome.api_key is None for outcome in outcomes)
    assert thread_hops.count == 1
    assert reported == [Reason.REVOKED] * 5


@pytest.mark.django_db(transaction=True)
async def test_a_cancelled_check_leaves_the_requests_that_waited_for_it_to_check_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first request's client went away while its key was being checked."""
    _, raw = await APIKey.objects.acreate_key(name="cancelled")
    verifier = Verifier(APIKey)
    release = threading.Event()
    checks: list[str] = []
    original = Verifier._check_stored

    def slow_first_check(self: Verifier[Any], parsed: Any) -> Any:
        checks.append(parsed.lookup)
        if len(checks) == 1:
            release.wait(timeout=5)
        return original(self, parsed)

    monkeypatch.setattr(Verifier, "_check_stored", slow_first_check)
    first = asyncio.ensure_future(verifier.averify(raw))
    await asyncio.sleep(0.05)  # the first check is in its thread
    waiting = asyncio.ensure_future(verifier.averify(raw))
    await asyncio.sleep(0.05)  # the second request waits for the first check
    first.cancel()
    await asyncio.sleep(0.05)
    release.set()
    outcome = await waiting
    with pytest.raises(asyncio.CancelledError):
        await first
    assert outcome.reason is Reason.VALID
    assert len(checks) == 2
