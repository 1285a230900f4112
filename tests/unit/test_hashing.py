"""Hashing keys for storage and checking presented keys against stored hashes."""

from __future__ import annotations

import hashlib
import hmac
from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password

from async_api_key.hashing import check_against_dummy, check_key, hash_key

RAW = "ABCDEFGH.abcdefghijklmnopqrstuvwxyz012345"


def test_hash_uses_the_upstream_storage_format() -> None:
    assert hash_key(RAW) == "sha512$$" + hashlib.sha512(RAW.encode()).hexdigest()
    assert hash_key(RAW, "sha256") == "sha256$$" + hashlib.sha256(RAW.encode()).hexdigest()


def test_unsupported_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="md5"):
        hash_key(RAW, "md5")


def test_matching_key_matches_and_needs_no_upgrade() -> None:
    check = check_key(RAW, hash_key(RAW))
    assert check.matches
    assert not check.needs_upgrade


def test_wrong_key_does_not_match() -> None:
    assert not check_key(RAW + "x", hash_key(RAW)).matches


def test_comparison_is_constant_time() -> None:
    with mock.patch("async_api_key.hashing.hmac.compare_digest", wraps=hmac.compare_digest) as spy:
        check_key(RAW, hash_key(RAW))
    spy.assert_called_once()


def test_other_fast_algorithm_matches_and_asks_for_upgrade() -> None:
    check = check_key(RAW, hash_key(RAW, "sha256"), preferred_algorithm="sha512")
    assert check.matches
    assert check.needs_upgrade


@pytest.mark.parametrize("hasher", ["pbkdf2_sha256", "md5"])
def test_legacy_password_hash_matches_and_asks_for_upgrade(hasher: str) -> None:
    stored = make_password(RAW, hasher=hasher)
    check = check_key(RAW, stored)
    assert check.matches
    assert check.needs_upgrade
    assert not check_key(RAW + "x", stored).matches


@pytest.mark.parametrize("stored", ["", "garbage", "sha512$", "sha512$salt$abc", "!unusable"])
def test_unrecognised_stored_hash_never_matches(stored: str) -> None:
    assert not check_key(RAW, stored).matches


def test_dummy_check_hashes_and_compares_like_a_real_check() -> None:
    with mock.patch("async_api_key.hashing.hmac.compare_digest", wraps=hmac.compare_digest) as spy:
        assert not check_against_dummy(RAW).matches
    spy.assert_called_once()
