"""Property-based tests: whatever a client sends, parsing and verification answer cleanly,
and anything malformed costs no database query."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from async_api_key.headers import key_from_request_meta
from async_api_key.keys import (
    BASE62_ALPHABET,
    CHECKSUM_LENGTH,
    LOOKUP_LENGTH,
    SECRET_LENGTH,
    checksum,
    generate_key,
    parse_key,
)
from async_api_key.models import APIKey
from async_api_key.verification import Reason, Verifier
from tests.conftest import QueryLog

base62 = st.text(alphabet=BASE62_ALPHABET, min_size=1, max_size=80)
anything = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.builds(lambda a, b: f"{a}.{b}", base62, base62),
    st.builds(lambda a, b, c: f"{a}_{b}_{c}", base62, base62, base62),
)


@given(anything)
def test_parse_never_raises_and_accepts_only_well_formed_keys(raw: str) -> None:
    parsed = parse_key(raw)
    if parsed is None:
        return
    if parsed.legacy:
        prefix, _, secret = raw.partition(".")
        assert 1 <= len(prefix) <= 8
        assert len(secret) >= 16
        assert (prefix + secret).isascii()
        assert (prefix + secret).isalnum()
    else:
        assert raw.endswith(checksum(raw[:-CHECKSUM_LENGTH]))
        assert len(parsed.lookup) == LOOKUP_LENGTH


@given(
    st.sampled_from(["ak", "acme_live", "x1"]),
    st.text(alphabet=BASE62_ALPHABET, min_size=LOOKUP_LENGTH, max_size=LOOKUP_LENGTH),
    st.text(alphabet=BASE62_ALPHABET, min_size=SECRET_LENGTH, max_size=SECRET_LENGTH),
    st.text(alphabet=BASE62_ALPHABET, min_size=CHECKSUM_LENGTH, max_size=CHECKSUM_LENGTH),
)
def test_a_random_checksum_is_accepted_only_when_it_is_the_right_one(
    namespace: str, lookup: str, secret: str, tail: str
) -> None:
    body = f"{namespace}_{lookup}_{secret}"
    assert (parse_key(body + tail) is not None) is (tail == checksum(body))


@given(st.integers(min_value=0, max_value=54 - 1), st.sampled_from(BASE62_ALPHABET))
def test_any_single_substitution_in_a_real_key_is_caught(position: int, character: str) -> None:
    raw = generate_key("ak").raw
    if raw[position] == character or raw[position] == "_":
        return
    tampered = raw[:position] + character + raw[position + 1 :]
    assert parse_key(tampered) is None


header_values = st.one_of(
    anything,
    st.text(alphabet=" \t\r\n\x00\x0b\x0c\u00a0\u2028", max_size=20),
    st.builds(lambda v: "Api-Key " + v, anything),
    st.builds(lambda v: "API-KEY\t" + v, anything),
)


@given(header_values, header_values)
def test_header_parsing_never_raises(authorization: str, api_key_header: str) -> None:
    key = key_from_request_meta(
        {"HTTP_AUTHORIZATION": authorization, "HTTP_X_API_KEY": api_key_header}
    )
    assert key is None or isinstance(key, str)


def test_a_one_megabyte_header_is_refused_without_work() -> None:
    huge = "a" * 1_000_000
    assert parse_key(huge) is None
    assert key_from_request_meta({"HTTP_AUTHORIZATION": "Api-Key " + huge}) == huge


@pytest.mark.django_db
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header_values)
def test_verifying_any_header_value_is_clean_and_malformed_costs_no_query(
    queries: QueryLog, value: str
) -> None:
    raw = key_from_request_meta({"HTTP_AUTHORIZATION": value})
    with queries.capture():
        outcome = Verifier(APIKey).verify(raw)
    assert outcome.status_code == 401
    assert outcome.reason in {Reason.MISSING, Reason.MALFORMED, Reason.UNKNOWN}
    if outcome.reason in {Reason.MISSING, Reason.MALFORMED}:
        assert queries.count == 0
