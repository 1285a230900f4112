"""IP allowlists: address parsing, trusted proxies and the verifier's policy."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from async_api_key.models import APIKey
from async_api_key.networks import (
    client_address,
    is_allowed,
    parse_address,
    parse_forwarded_address,
    validate_networks,
)
from async_api_key.verification import Reason, Verifier


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("203.0.113.7", ["203.0.113.0/24"], True),
        ("203.0.114.7", ["203.0.113.0/24"], False),
        ("10.1.2.3", ["192.168.0.0/16", "10.0.0.0/8"], True),
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("2001:db9::1", ["2001:db8::/32"], False),
        ("::ffff:203.0.113.7", ["203.0.113.0/24"], True),
        ("203.0.113.7", ["2001:db8::/32"], False),
        ("198.51.100.1", ["198.51.100.1"], True),
        ("198.51.100.2", [], True),
    ],
)
def test_is_allowed(address: str, networks: list[str], allowed: bool) -> None:
    assert is_allowed(parse_address(address), networks) is allowed


def test_unknown_address_is_refused_by_any_allowlist() -> None:
    assert not is_allowed(None, ["0.0.0.0/0"])
    assert is_allowed(None, [])


def test_validate_networks_normalises_and_names_bad_entries() -> None:
    assert validate_networks(["10.0.0.1/8", " 2001:db8::/32", "10.0.0.0/8"]) == [
        "10.0.0.0/8",
        "2001:db8::/32",
    ]
    with pytest.raises(ValueError, match=r"'nope'.*'300.1.1.1'"):
        validate_networks(["10.0.0.0/8", "nope", "300.1.1.1"])
    with pytest.raises(ValueError, match="list"):
        validate_networks("10.0.0.0/8")


@pytest.mark.parametrize(
    ("meta", "proxies", "expected"),
    [
        ({"REMOTE_ADDR": "198.51.100.9"}, 0, "198.51.100.9"),
        ({"REMOTE_ADDR": "198.51.100.9", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}, 0, "198.51.100.9"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.7"}, 1,
         "203.0.113.7"),
        ({"REMOTE_ADDR": "10.0.0.3", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7, 10.0.0.2"}, 2,
         "203.0.113.7"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}, 2, None),
        ({"REMOTE_ADDR": "10.0.0.2"}, 1, None),
        ({"REMOTE_ADDR": "not an ip"}, 0, None),
    ],
)  # fmt: skip
def test_client_address(meta: dict[str, str], proxies: int, expected: str | None) -> None:
    address = client_address(meta, proxies)
    assert address == (None if expected is None else ipaddress.ip_address(expected))


@pytest.mark.django_db
def test_allowlisted_key_is_refused_from_elsewhere_with_a_policy_reason() -> None:
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["203.0.113.0/24"])
    verifier = Verifier(APIKey)
    inside = verifier.verify(raw, request_meta={"REMOTE_ADDR": "203.0.113.10"})
    outside = verifier.verify(raw, request_meta={"REMOTE_ADDR": "198.51.100.1"})
    assert inside.is_valid
    assert outside.reason is Reason.IP_NOT_ALLOWED
    assert outside.is_authenticated
    assert outside.status_code == 403
    assert outside.error_body()["code"] == "ip_not_allowed"


@pytest.mark.django_db
def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies() -> None:
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["203.0.113.0/24"])
    meta = {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    assert Verifier(APIKey).verify(raw, request_meta=meta).reason is Reason.IP_NOT_ALLOWED
    with override_settings(ASYNC_API_KEY={"TRUSTED_PROXY_COUNT": 1}):
        assert Verifier(APIKey).verify(raw, request_meta=meta).is_valid
        forged = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10, 198.51.100.1"}
        assert Verifier(APIKey).verify(raw, request_meta=forged).reason is Reason.IP_NOT_ALLOWED


@pytest.mark.django_db
def test_allowlist_is_checked_before_scopes_and_only_for_requests() -> None:
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["2001:db8::/32"])
    outcome = Verifier(APIKey).verify(raw, scopes=["a"], request_meta={"REMOTE_ADDR": "::1"})
    assert outcome.reason is Reason.IP_NOT_ALLOWED
    assert APIKey.objects.is_valid(raw)  # no request, no client address: no IP policy


@pytest.mark.django_db
def test_a_corrupt_allowlist_admits_no_one() -> None:
    """A column written around validation (raw SQL, a bad import) fails closed."""
    api_key, raw = APIKey.objects.create_key(name="x", allowed_networks=["203.0.113.0/24"])
    APIKey._base_manager.filter(pk=api_key.pk).update(
        allowed_networks=["203.0.113.0/24", "garbage"]
    )
    inside = Verifier(APIKey).verify(raw, request_meta={"REMOTE_ADDR": "203.0.113.10"})
    assert inside.reason is Reason.IP_NOT_ALLOWED


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7:5678 ", "203.0.113.7"),
        ("203.0.113.7:https", None),  # a port is digits
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]:8", "2001:db8::7"),  # a one-digit port
        ("[2001:db8::7]:https", None),
        ("[2001:db8::7]443", None),  # no colon before the port
        ("[2001:db8::7", None),  # no closing bracket
        ("unknown", None),
    ],
)
def test_a_forwarded_for_entry_is_an_address_with_or_without_a_port(
    entry: str, expected: str | None
) -> None:
    address = parse_forwarded_address(entry)
    assert address == (None if expected is None else ipaddress.ip_address(expected))


@pytest.mark.django_db
def test_a_stored_network_with_host_bits_is_read_as_its_network() -> None:
    """Written around the validation (which would have stored ``10.0.0.0/8``)."""
    api_key, raw = APIKey.objects.create_key(name="x", allowed_networks=["10.0.0.0/8"])
    APIKey._base_manager.filter(pk=api_key.pk).update(allowed_networks=["10.0.0.1/8"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw, request_meta={"REMOTE_ADDR": "10.200.0.9"}).is_valid
    outside = verifier.verify(raw, request_meta={"REMOTE_ADDR": "11.0.0.1"})
    assert outside.reason is Reason.IP_NOT_ALLOWED


@pytest.mark.django_db
def test_a_readable_allowlist_that_refuses_an_address_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["203.0.113.0/24"])
    with caplog.at_level(logging.ERROR, logger="async_api_key"):
        outcome = Verifier(APIKey).verify(raw, request_meta={"REMOTE_ADDR": "198.51.100.1"})
    assert outcome.reason is Reason.IP_NOT_ALLOWED
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_addresses_and_networks_that_are_not_strings_are_refused() -> None:
    assert parse_address(None) is None
    assert parse_address(2130706433) is None
    with pytest.raises(ValueError, match="42"):
        validate_networks(["10.0.0.0/8", 42])


@pytest.mark.django_db
def test_model_validates_networks_and_rate() -> None:
    with pytest.raises(ValueError, match="nope"):
        APIKey.objects.create_key(name="x", allowed_networks=["nope"])
    with pytest.raises(ValueError, match="rate"):
        APIKey.objects.create_key(name="x", rate_limit="lots")
    api_key = APIKey(
        name="x", prefix="p", hashed_key="h", allowed_networks=["bad"], rate_limit="1/x"
    )
    with pytest.raises(ValidationError) as excinfo:
        api_key.full_clean()
    assert set(excinfo.value.message_dict) >= {"allowed_networks", "rate_limit"}
