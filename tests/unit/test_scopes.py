"""Scope syntax and matching: the one table both adapters rely on."""

from __future__ import annotations

import pytest

from async_api_key.scopes import grants, is_valid_scope, missing_scopes, validate_scopes


@pytest.mark.parametrize(
    ("granted", "required", "expected"),
    [
        ("orders:read", "orders:read", True),
        ("orders:read", "orders:write", False),
        ("orders:*", "orders:read", True),
        ("orders:*", "orders:items:write", True),
        ("orders:*", "orders", False),
        ("orders:*", "ordersx:read", False),
        ("orders:*", "orders:*", True),
        ("*", "anything:at:all", True),
        ("*", "orders", True),
        ("orders", "orders:read", False),
        ("orders:read", "orders:*", False),
        ("billing:*", "orders:read", False),
    ],
)
def test_granted_scope_satisfies_required_scope(
    granted: str, required: str, expected: bool
) -> None:
    assert grants(granted, required) is expected


def test_missing_scopes_keeps_the_required_order() -> None:
    assert missing_scopes(["orders:read"], ["b:x", "orders:read", "a:y"]) == ("b:x", "a:y")


def test_no_granted_scopes_fails_every_scoped_check_and_passes_none_required() -> None:
    assert missing_scopes([], ["orders:read"]) == ("orders:read",)
    assert missing_scopes([], []) == ()


@pytest.mark.parametrize(
    "scope", ["orders", "orders:read", "a.b-c_d:e", "orders:*", "*", "x:y:z:*"]
)
def test_valid_scopes(scope: str) -> None:
    assert is_valid_scope(scope)


@pytest.mark.parametrize(
    "scope",
    [
        "",
        " ",
        "orders:",
        ":read",
        "orders::read",
        "or ders",
        "orders:*:read",
        "**",
        "orders*",
        "é",
        "x" * 101,
        3,
        None,
    ],
)
def test_invalid_scopes(scope: object) -> None:
    assert not is_valid_scope(scope)


def test_validate_scopes_deduplicates_and_names_bad_entries() -> None:
    assert validate_scopes(["a:b", "a:b", "c"]) == ["a:b", "c"]
    with pytest.raises(ValueError, match=r"'bad scope'.*'x:'"):
        validate_scopes(["ok", "bad scope", "x:"])


def test_validate_scopes_refuses_a_bare_string() -> None:
    with pytest.raises(ValueError, match="list"):
        validate_scopes("orders:read")
