"""The key format: generation, checksum and parsing, with no database."""

from __future__ import annotations

import re
import zlib

import pytest

from async_api_key.keys import (
    BASE62_ALPHABET,
    CHECKSUM_LENGTH,
    LOOKUP_LENGTH,
    MAX_KEY_LENGTH,
    SECRET_LENGTH,
    checksum,
    encode_base62,
    generate_key,
    is_valid_namespace,
    parse_key,
    secret_scanning_pattern,
)


def test_generated_key_has_the_documented_shape() -> None:
    generated = generate_key("ak")
    namespace, lookup, tail = generated.raw.split("_")
    assert namespace == "ak"
    assert lookup == generated.lookup
    assert len(lookup) == LOOKUP_LENGTH
    assert len(tail) == SECRET_LENGTH + CHECKSUM_LENGTH
    assert set(lookup + tail) <= set(BASE62_ALPHABET)


def test_generated_key_parses_back_to_its_lookup() -> None:
    generated = generate_key("acme_live")
    parsed = parse_key(generated.raw)
    assert parsed is not None
    assert parsed.lookup == generated.lookup
    assert parsed.namespace == "acme_live"
    assert parsed.raw == generated.raw
    assert not parsed.legacy


def test_secret_carries_at_least_190_bits() -> None:
    import math

    assert SECRET_LENGTH * math.log2(62) >= 190


def test_keys_are_unique() -> None:
    assert len({generate_key("ak").raw for _ in range(500)}) == 500


def test_checksum_is_base62_crc32_of_everything_before_it() -> None:
    raw = generate_key("ak").raw
    body, tail = raw[:-CHECKSUM_LENGTH], raw[-CHECKSUM_LENGTH:]
    assert tail == encode_base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)
    assert checksum(body) == tail


@pytest.mark.parametrize("position", [0, 3, 10, 20, 40, -1])
def test_any_changed_character_breaks_the_checksum(position: int) -> None:
    raw = generate_key("ak").raw
    original = raw[position]
    replacement = "A" if original != "A" else "B"
    tampered = raw[:position] + replacement + (raw[position + 1 :] if position != -1 else "")
    assert parse_key(tampered) is None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "ak",
        "ak_",
        "ak__",
        "not a key",
        "a" * 10_000,
        "ak_" + "a" * 12 + "_" + "b" * 37,  # one character short
        "ak_" + "a" * 12 + "_" + "b" * 39,  # one character long
        "ak_" + "a" * 11 + "_" + "b" * 38,
        "ak_" + "a" * 12 + "-" + "b" * 38,
        "ak_" + "a" * 12 + "_" + "b" * 37 + "é",
        "a_b_c_" + "a" * 12 + "_" + "b" * 38,  # two inner underscores in the namespace
        "ABCDEFGH.12345678901234567890123456789012 ",
        "ABCDEFGH..2345678901234567890123456789012",
        "ABCD.EFGH.123456789012345678901234567890",
        "ABCDEFGH.1234567890123456789012345678901\x00",
    ],
)
def test_malformed_input_does_not_parse(raw: str) -> None:
    assert parse_key(raw) is None


def test_non_string_input_does_not_parse() -> None:
    assert parse_key(None) is None  # type: ignore[arg-type]
    assert parse_key(b"ak_x") is None  # type: ignore[arg-type]


def test_upstream_format_parses_as_legacy() -> None:
    raw = "ABCDEFGH.abcdefghijklmnopqrstuvwxyz012345"
    parsed = parse_key(raw)
    assert parsed is not None
    assert parsed.legacy
    assert parsed.lookup == "ABCDEFGH"


@pytest.mark.parametrize(
    ("raw", "lookup"),
    [
        ("ABCDEF.abcdefghijklmnopqrstuvwxyz012345", "ABCDEF"),  # prefix_length=6
        ("ABCDEFGH." + "a1" * 24, "ABCDEFGH"),  # secret_key_length=48
        ("ABCDEFGH." + "a1" * 64, "ABCDEFGH"),  # secret_key_length=128
    ],
)
def test_upstream_keys_of_other_lengths_parse_as_legacy(raw: str, lookup: str) -> None:
    """djangorestframework-api-key's ``KeyGenerator(prefix_length, secret_key_length)``."""
    parsed = parse_key(raw)
    assert parsed is not None
    assert parsed.legacy
    assert parsed.lookup == lookup


@pytest.mark.parametrize(
    "raw",
    [
        "ABCDEFGHI.abcdefghijklmnopqrstuvwxyz012345",  # a 9-character prefix
        ".abcdefghijklmnopqrstuvwxyz012345",  # no prefix
        "ABCDEFGH.abcdefghijklmno",  # a 15-character secret
        "ABCDEFGH.abcdefghijklmnopqrstuvwxyz01234-",  # outside the alphabet
        "ABCDEFGH." + "a" * 152,  # longer than MAX_KEY_LENGTH in all
    ],
)
def test_legacy_shapes_outside_the_bounds_do_not_parse(raw: str) -> None:
    assert parse_key(raw) is None


def test_a_legacy_key_of_the_longest_accepted_length_parses() -> None:
    raw = "ABCDEFGH." + "a" * (MAX_KEY_LENGTH - len("ABCDEFGH."))
    assert len(raw) == MAX_KEY_LENGTH
    parsed = parse_key(raw)
    assert parsed is not None
    assert parsed.lookup == "ABCDEFGH"


def test_repr_never_shows_the_secret() -> None:
    generated = generate_key("ak")
    parsed = parse_key(generated.raw)
    assert generated.raw not in repr(generated)
    assert generated.raw not in repr(parsed)
    assert generated.lookup in repr(parsed)


@pytest.mark.parametrize(
    ("namespace", "valid"),
    [
        ("ak", True),
        ("acme_live", True),
        ("A1", True),
        ("", False),
        ("a_b_c", False),
        ("_ak", False),
        ("ak_", False),
        ("a-b", False),
        ("x" * 33, False),
    ],
)
def test_namespace_rules(namespace: str, valid: bool) -> None:
    assert is_valid_namespace(namespace) is valid


def test_generate_refuses_a_bad_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        generate_key("a-b")


def test_scanning_pattern_finds_keys_in_text_and_nothing_else() -> None:
    keys = [generate_key("ak").raw, generate_key("acme_live").raw]
    text = f"config: token={keys[0]}\nexport OTHER='{keys[1]}' ak_short_thing"
    assert re.findall(secret_scanning_pattern(), text) == keys
    assert re.findall(secret_scanning_pattern("acme_live"), text) == [keys[1]]


def test_base62_encoding_pads_and_refuses_overflow() -> None:
    assert encode_base62(0, 3) == "000"
    assert encode_base62(61, 2) == "0z"
    assert encode_base62(62, 2) == "10"
    with pytest.raises(ValueError, match="fit"):
        encode_base62(62**2, 2)
    with pytest.raises(ValueError, match="non-negative"):
        encode_base62(-1, 2)
