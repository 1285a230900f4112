"""Failed checks against password-hashed (pre-3.0 djangorestframework-api-key) keys cost a
bounded amount of CPU: a flood of made-up secrets for a known lookup id runs the slow hasher
a few times per window, not once per request."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.test import Client

from async_api_key import password_hash_budget as budget_module
from async_api_key.keys import checksum, random_base62
from async_api_key.models import APIKey
from async_api_key.password_hash_budget import (
    ATTEMPTS_PER_WINDOW,
    WINDOW_SECONDS,
    PasswordHashBudget,
    password_hash_budget,
)
from async_api_key.verification import Reason, Verifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts PBKDF2 verifications: the CPU a request costs."""
    calls: list[str] = []
    verify = PBKDF2PasswordHasher.verify

    def counting(self: PBKDF2PasswordHasher, password: str, encoded: str) -> bool:
        calls.append(encoded)
        return verify(self, password, encoded)

    monkeypatch.setattr(PBKDF2PasswordHasher, "verify", counting)
    return calls


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The budget's clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(budget_module, "_now", lambda: now[0])
    return now


def _legacy_key() -> tuple[APIKey, str]:
    """A key djangorestframework-api-key < 3.0 stored: ``<prefix>.<secret>``, PBKDF2-hashed."""
    raw = f"{random_base62(8)}.{random_base62(32)}"
    hashed = make_password(raw, hasher="pbkdf2_sha256")
    return APIKey.objects.create(name="legacy", prefix=raw[:8], hashed_key=hashed), raw


def _made_up(raw: str) -> str:
    return f"{raw[:8]}.{random_base62(32)}"


def test_a_flood_of_made_up_secrets_runs_the_slow_hasher_a_few_times(
    slow_checks: list[str],
) -> None:
    _, raw = _legacy_key()
    verifier = Verifier(APIKey)
    reasons = {verifier.verify(_made_up(raw)).reason for _ in range(4 * ATTEMPTS_PER_WINDOW)}
    assert reasons == {Reason.INVALID_SECRET}
    assert len(slow_checks) == ATTEMPTS_PER_WINDOW


def test_the_same_wrong_key_sent_again_is_refused_without_hashing(
    slow_checks: list[str],
) -> None:
    _, raw = _legacy_key()
    wrong = _made_up(raw)
    verifier = Verifier(APIKey)
    for _ in range(10):
        assert verifier.verify(wrong).reason is Reason.INVALID_SECRET
    assert len(slow_checks) == 1


def test_the_genuine_key_within_the_budget_is_accepted_and_leaves_the_slow_path(
    slow_checks: list[str], django_capture_on_commit_callbacks: Any
) -> None:
    api_key, raw = _legacy_key()
    verifier = Verifier(APIKey)
    for _ in range(ATTEMPTS_PER_WINDOW - 1):
        verifier.verify(_made_up(raw))
    with django_capture_on_commit_callbacks(execute=True):  # the upgrade is written on commit
        assert verifier.verify(raw).is_valid
    api_key.refresh_from_db()
    assert api_key.hashed_key.startswith("sha512$$")
    # Upgraded: later floods cost a fast hash each, and the key still works.
    checks_so_far = len(slow_checks)
    for _ in range(3 * ATTEMPTS_PER_WINDOW):
        assert verifier.verify(_made_up(raw)).reason is Reason.INVALID_SECRET
    assert len(slow_checks) == checks_so_far
    assert Verifier(APIKey).verify(raw).is_valid


def test_once_the_budget_is_spent_even_the_genuine_key_waits_for_the_window(
    slow_checks: list[str], clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    api_key, raw = _legacy_key()
    verifier = Verifier(APIKey)
    for _ in range(ATTEMPTS_PER_WINDOW + 3):
        verifier.verify(_made_up(raw))
    with caplog.at_level(logging.WARNING, logger="async_api_key"):
        assert verifier.verify(raw).reason is Reason.INVALID_SECRET  # refused, never unchecked
    assert len(slow_checks) == ATTEMPTS_PER_WINDOW
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"prefix={api_key.prefix}" in message for message in warnings)

    clock[0] += WINDOW_SECONDS
    assert verifier.verify(raw).is_valid


def test_fast_hashed_keys_have_no_budget() -> None:
    """Wrong secrets against a fast hash cost microseconds: nothing to bound, nothing locked out."""
    _, raw = APIKey.objects.create_key(name="current")
    verifier = Verifier(APIKey)
    body = raw[: -(32 + 6)]
    for _ in range(4 * ATTEMPTS_PER_WINDOW):
        forged = body + random_base62(32)
        assert verifier.verify(forged + checksum(forged)).reason is Reason.INVALID_SECRET
    assert verifier.verify(raw).is_valid


@pytest.mark.urls("tests.support.upstream_project.urls")
def test_both_adapters_answer_the_flood_with_a_plain_401(slow_checks: list[str]) -> None:
    _, raw = _legacy_key()
    answers: set[tuple[str, int]] = set()
    for _ in range(2 * ATTEMPTS_PER_WINDOW):
        for url in ("/drf/default", "/ninja/default"):
            client = Client(headers={"X-API-Key": _made_up(raw)})
            answers.add((url, client.get(url).status_code))
    # HasAPIKey alone answers 403 as djangorestframework-api-key did; Ninja answers 401.
    assert answers == {("/drf/default", 403), ("/ninja/default", 401)}
    assert len(slow_checks) == ATTEMPTS_PER_WINDOW


def test_budget_counts_per_stored_hash(slow_checks: list[str]) -> None:
    _, first_raw = _legacy_key()
    _, second_raw = _legacy_key()
    verifier = Verifier(APIKey)
    for _ in range(2 * ATTEMPTS_PER_WINDOW):
        verifier.verify(_made_up(first_raw))
    assert verifier.verify(second_raw).is_valid


def test_a_flood_past_the_budget_warns_once_per_window(
    clock: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    _, raw = _legacy_key()
    verifier = Verifier(APIKey)

    def warnings() -> int:
        return sum("refused unchecked" in record.getMessage() for record in caplog.records)

    with caplog.at_level(logging.WARNING, logger="async_api_key"):
        for _ in range(3 * ATTEMPTS_PER_WINDOW):
            verifier.verify(_made_up(raw))
        assert warnings() == 1
        clock[0] += WINDOW_SECONDS
        for _ in range(3 * ATTEMPTS_PER_WINDOW):
            verifier.verify(_made_up(raw))
    assert warnings() == 2


def test_a_budget_of_its_own_keeps_its_attempts_window_and_number_of_hashes(
    clock: list[float],
) -> None:
    """What a budget decides for each hash: its attempts per window, the keys it refused,
    and, past the hashes it can track, the least recently attacked forgotten first."""
    budget = PasswordHashBudget(attempts=2, window_seconds=10, max_tracked=1)
    assert budget.admit("hash-a", "key-1", "prefix-a")
    budget.refused("hash-a", "key-1")
    assert not budget.admit("hash-a", "key-1", "prefix-a")  # refused before: not hashed again
    assert budget.admit("hash-a", "key-2", "prefix-a")
    assert not budget.admit("hash-a", "key-3", "prefix-a")  # two attempts spent
    clock[0] += 10
    assert budget.admit("hash-a", "key-3", "prefix-a")  # a new window
    assert budget.admit("hash-a", "key-4", "prefix-a")
    assert not budget.admit("hash-a", "key-5", "prefix-a")
    assert budget.admit("hash-b", "key-1", "prefix-b")  # tracking hash-b forgets hash-a
    assert budget.admit("hash-a", "key-5", "prefix-a")
    budget.matched("hash-a")
    assert budget.admit("hash-a", "key-6", "prefix-a")
    assert budget.admit("hash-a", "key-7", "prefix-a")
    budget.matched("hash-b")  # forgotten meanwhile: nothing to do, and no error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_starts_with_a_budget_of_its_own(clock: list[float]) -> None:
    """A worker forked by gunicorn or multiprocessing neither inherits a lock another
    thread held nor the parent's spent attempts."""
    for attempt in range(ATTEMPTS_PER_WINDOW):
        assert password_hash_budget.admit("hash-fork", f"key-{attempt}", "prefix-fork")
    assert not password_hash_budget.admit("hash-fork", "key-next", "prefix-fork")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports by its exit code
        try:
            os._exit(0 if password_hash_budget.admit("hash-fork", "key-next", "p") else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    password_hash_budget.reset()
