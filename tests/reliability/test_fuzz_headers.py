"""Whatever arrives in the key headers, a Django-Ninja async endpoint and a DRF view refuse it
with the same clean 401 JSON answers they give to a missing or malformed key: never a 500,
never an uncaught exception, and no database query for anything malformed.

Requests go two ways: through Django's test client (``META`` values as ``str``, anything
unicode) and through Django's real ASGI handler (header values as raw bytes, header names
repeated as a client may send them). The key parser alone is fuzzed in
``tests/reliability/test_fuzz_keys.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from async_api_key.keys import (
    BASE62_ALPHABET,
    CHECKSUM_LENGTH,
    LOOKUP_LENGTH,
    SECRET_LENGTH,
    checksum,
    generate_key,
)
from async_api_key.models import APIKey
from tests.conftest import QueryLog
from tests.support.key_factories import wrong_secret_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.parity_urls")]

ENDPOINTS = ("/ninja/plain", "/drf/plain")
ONE_MEGABYTE = 1_000_000

#: Anything a key of either format could hide in: if no header value contains this, the
#: request is malformed whatever the parser thinks, and must cost no query.
KEY_SHAPED = re.compile(
    r"[A-Za-z0-9]+_[A-Za-z0-9]{12}_[A-Za-z0-9]{38}|[A-Za-z0-9]{1,8}\.[A-Za-z0-9]{16,}", re.ASCII
)

# Strategies ---------------------------------------------------------------------------

base62 = st.text(alphabet=BASE62_ALPHABET, min_size=1, max_size=50)
whitespace = st.text(
    alphabet=" \t\r\n\x00\x0b\x0c\x1c\x1f\x85\u00a0\u2028\u2029\u3000\ufeff", max_size=4
)
garbage = st.one_of(
    st.text(max_size=300),  # any unicode, NUL and control characters included
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),
)
namespaces = st.sampled_from(["ak", "acme_live", "x1", "AK", "a_b_c", "", "_", "ak_"])


@st.composite
def bad_checksum_keys(draw: st.DrawFn) -> str:
    body = "{}_{}_{}".format(
        draw(st.sampled_from(["ak", "acme_live", "x1"])),
        draw(st.text(alphabet=BASE62_ALPHABET, min_size=LOOKUP_LENGTH, max_size=LOOKUP_LENGTH)),
        draw(st.text(alphabet=BASE62_ALPHABET, min_size=SECRET_LENGTH, max_size=SECRET_LENGTH)),
    )
    tail = draw(
        st.text(alphabet=BASE62_ALPHABET, min_size=CHECKSUM_LENGTH, max_size=CHECKSUM_LENGTH)
    )
    if tail == checksum(body):
        tail = tail[1:] + ("0" if tail[0] != "0" else "1")
    return body + tail


@st.composite
def upstream_keys_with_odd_dots(draw: st.DrawFn) -> str:
    """``<8>.<32>`` is the upstream format; here the dots and the lengths are off."""
    pieces = draw(st.lists(base62, min_size=1, max_size=4))
    dots = draw(
        st.lists(st.sampled_from([".", "..", "...", ". ", ".\x00"]), min_size=0, max_size=4)
    )
    shape = draw(
        st.sampled_from(
            [
                "{a}{dot}{b}",
                "{dot}{a}{dot}{b}",
                "{a}{dot}{b}{dot}",
                "{a8}.{b32}.",
                ".{a8}.{b32}",
                "{a8}..{b32}",
                "{a8}.{b32}.{b}",
                "{a7}.{b32}",
                "{a8}.{b31}",
            ]
        )
    )
    return shape.format(
        a="".join(pieces),
        b=pieces[-1],
        dot=dots[0] if dots else ".",
        a8=(pieces[0] * 8)[:8],
        a7=(pieces[0] * 7)[:7],
        b32=(pieces[-1] * 32)[:32],
        b31=(pieces[-1] * 31)[:31],
    )


def unknown_lookup_keys() -> st.SearchStrategy[str]:
    """Valid shape and checksum, a lookup id that no stored key has."""
    return st.sampled_from(["ak", "acme_live"]).map(lambda namespace: generate_key(namespace).raw)


def wrong_secret_keys(lookup: str) -> st.SearchStrategy[str]:
    """Valid shape and checksum, the lookup id of a stored key, a secret that is not its."""

    return st.text(alphabet=BASE62_ALPHABET, min_size=SECRET_LENGTH, max_size=SECRET_LENGTH).map(
        lambda secret: wrong_secret_for(lookup, secret)
    )


def credentials(lookup: str) -> st.SearchStrategy[tuple[str, bool]]:
    """A credential and whether it is malformed for sure (so it must cost no query)."""
    surely_malformed = st.one_of(
        bad_checksum_keys(),
        st.builds(lambda a, b, c: f"{a}_{b}_{c}", namespaces, base62, base62),
    )
    maybe_well_formed = st.one_of(
        garbage, upstream_keys_with_odd_dots(), unknown_lookup_keys(), wrong_secret_keys(lookup)
    )
    padded_malformed = st.tuples(whitespace, surely_malformed, whitespace).map("".join)
    padded_other = st.tuples(whitespace, maybe_well_formed, whitespace).map("".join)
    return st.one_of(
        padded_malformed.map(lambda value: (value, True)),
        padded_other.map(lambda value: (value, KEY_SHAPED.search(value) is None)),
    )


keywords = st.sampled_from(
    ["Api-Key ", "api-key ", "API-KEY  ", "Api-Key\t", "Api-Key", "Bearer ", " Api-Key ", ""]
)


@st.composite
def key_headers(draw: st.DrawFn, lookup: str) -> tuple[dict[str, Any], bool]:
    """``request.META`` entries for the key headers, and whether all of them are malformed."""
    meta: dict[str, Any] = {}
    query_free = True
    if draw(st.booleans()):
        value, malformed = draw(credentials(lookup))
        meta["HTTP_AUTHORIZATION"] = draw(keywords) + value
        query_free = query_free and malformed
    if draw(st.booleans()):
        value, malformed = draw(credentials(lookup))
        meta["HTTP_X_API_KEY"] = value
        query_free = query_free and malformed
    return meta, query_free


# Helpers ------------------------------------------------------------------------------


@pytest.fixture
def stored_lookup() -> str:
    """The lookup id of a stored key, for well-formed keys with a wrong secret."""
    return APIKey.objects.create_key(name="fuzz")[0].prefix


@pytest.fixture
def refusals() -> dict[str, list[Any]]:
    """Each endpoint's answer to no key and to a malformed key: every refusal must be one."""
    answers: dict[str, list[Any]] = {}
    for endpoint in ENDPOINTS:
        answers[endpoint] = [
            Client().get(endpoint).json(),
            Client(HTTP_AUTHORIZATION="Api-Key nonsense").get(endpoint).json(),
        ]
    return answers


def _assert_clean_refusal(status: int, content_type: str, body: bytes, expected: list[Any]) -> None:
    assert status == 401
    assert content_type.startswith("application/json")
    assert json.loads(body) in expected


@contextmanager
def _as_a_server_would() -> Iterator[None]:
    """Keep Django's per-request connection handling off the test's transaction, as its own
    test client does; everything else is the real ASGI handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@async_to_sync
async def _asgi_get(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str, bytes]:
    """GET ``path`` through ``django.core.asgi``'s handler with exactly these raw headers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    request_sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await _forever()
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        messages.append(dict(message))

    await get_asgi_application()(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    content_type = {name.lower(): value for name, value in start["headers"]}.get(
        b"content-type", b""
    )
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], content_type.decode(), body


async def _forever() -> None:
    import asyncio

    await asyncio.Event().wait()


# Tests --------------------------------------------------------------------------------


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_key_header_gets_a_clean_401_from_both_adapters(
    data: st.DataObject, stored_lookup: str, refusals: dict[str, list[Any]], queries: QueryLog
) -> None:
    meta, query_free = data.draw(key_headers(stored_lookup))
    for endpoint in ENDPOINTS:
        with queries.capture():
            response = Client(**meta).get(endpoint)
        _assert_clean_refusal(
            response.status_code, response["Content-Type"], response.content, refusals[endpoint]
        )
        if query_free:
            assert queries.count == 0, (endpoint, meta)
        assert queries.writes() == []
        assert queries.count <= 1


raw_header_values = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda text: text.encode("utf-8")),
    st.tuples(keywords, st.binary(max_size=100)).map(lambda kv: kv[0].encode() + kv[1]),
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"authorization", b"x-api-key", b"Authorization"]), raw_header_values
        ),
        max_size=6,
    )
)
def test_any_raw_header_bytes_through_the_asgi_handler_get_a_clean_401(
    headers: list[tuple[bytes, bytes]], refusals: dict[str, list[Any]], queries: QueryLog
) -> None:
    query_free = not any(KEY_SHAPED.search(value.decode("latin-1")) for _, value in headers)
    with _as_a_server_would():
        for endpoint in ENDPOINTS:
            with queries.capture():
                status, content_type, body = _asgi_get(endpoint, headers)
            _assert_clean_refusal(status, content_type, body, refusals[endpoint])
            if query_free:
                assert queries.count == 0, (endpoint, headers)
            assert queries.writes() == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "meta",
    [
        {"HTTP_AUTHORIZATION": "Api-Key " + "a" * ONE_MEGABYTE},
        {"HTTP_AUTHORIZATION": "x" * ONE_MEGABYTE},
        {"HTTP_X_API_KEY": "ak_" + "A" * ONE_MEGABYTE},
        {"HTTP_X_API_KEY": " " * ONE_MEGABYTE},
        {"HTTP_AUTHORIZATION": "Api-Key " + "\x00" * ONE_MEGABYTE},
    ],
    ids=["keyword+1MB", "1MB", "header 1MB", "1MB of spaces", "keyword+1MB of NUL"],
)
def test_a_one_megabyte_header_gets_a_401_without_a_query(
    endpoint: str, meta: dict[str, Any], refusals: dict[str, list[Any]], queries: QueryLog
) -> None:
    with queries.capture():
        response = Client(**meta).get(endpoint)
    _assert_clean_refusal(
        response.status_code, response["Content-Type"], response.content, refusals[endpoint]
    )
    assert queries.count == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_one_megabyte_header_through_the_asgi_handler_gets_a_401_without_a_query(
    endpoint: str, refusals: dict[str, list[Any]], queries: QueryLog
) -> None:
    with _as_a_server_would(), queries.capture():
        status, content_type, body = _asgi_get(
            endpoint, [(b"authorization", b"Api-Key " + b"k" * ONE_MEGABYTE)]
        )
    _assert_clean_refusal(status, content_type, body, refusals[endpoint])
    assert queries.count == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("name", "copies"), [(b"authorization", 2), (b"x-api-key", 2), (b"authorization", 1000)]
)
def test_a_valid_key_sent_in_repeated_headers_is_refused_without_a_query(
    endpoint: str,
    name: bytes,
    copies: int,
    refusals: dict[str, list[Any]],
    queries: QueryLog,
) -> None:
    """Repeated headers reach Django joined by commas: an ambiguous credential, refused."""
    _, raw = APIKey.objects.create_key(name="repeated")
    value = (b"Api-Key " if name == b"authorization" else b"") + raw.encode()
    with _as_a_server_would():
        assert _asgi_get(endpoint, [(name, value)])[0] == 200  # the key itself is good
        with queries.capture():
            status, content_type, body = _asgi_get(endpoint, [(name, value)] * copies)
    _assert_clean_refusal(status, content_type, body, refusals[endpoint])
    assert queries.count == 0


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_many_repeated_garbage_headers_get_a_401_without_a_query(
    endpoint: str, refusals: dict[str, list[Any]], queries: QueryLog
) -> None:
    headers = [(b"x-api-key", b"ak_\x00\xff junk")] * 500 + [(b"authorization", b"Api-Key ")] * 500
    with _as_a_server_would(), queries.capture():
        status, content_type, body = _asgi_get(endpoint, headers)
    _assert_clean_refusal(status, content_type, body, refusals[endpoint])
    assert queries.count == 0
