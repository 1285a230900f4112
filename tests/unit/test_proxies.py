"""Which address is the client's behind reverse proxies: ``TRUSTED_PROXIES`` believes
``X-Forwarded-For`` only from a connection that comes from a trusted proxy."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.test import Client, override_settings

from async_api_key.models import APIKey
from async_api_key.networks import client_address

FRAMEWORKS = {"ninja": "/ninja/plain", "drf": "/drf/plain"}

BEHIND_THE_LOAD_BALANCER = {"TRUSTED_PROXY_COUNT": 1, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
TRUSTED_BY_ADDRESS = {"TRUSTED_PROXIES": ["10.0.0.0/8", "2001:db8:ffff::/48"]}


def _get(framework: str, raw: str, **meta: str) -> int:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Api-Key {raw}", **meta}
    client = Client(**headers)
    return client.get(FRAMEWORKS[framework]).status_code


@pytest.mark.django_db
@pytest.mark.urls("tests.support.parity_urls")
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("proxies", [BEHIND_THE_LOAD_BALANCER, TRUSTED_BY_ADDRESS])
def test_a_client_that_reaches_the_app_directly_cannot_forge_its_address(
    framework: str, proxies: dict[str, object]
) -> None:
    _, raw = APIKey.objects.create_key(name="office", allowed_networks=["203.0.113.0/24"])
    with override_settings(ASYNC_API_KEY=proxies):
        forged = _get(
            framework, raw, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.10"
        )
        through_the_proxy = _get(
            framework, raw, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.10"
        )
    assert forged == 403
    assert through_the_proxy == 200


def _address(meta: dict[str, str], **proxies: object) -> str | None:
    with override_settings(ASYNC_API_KEY=proxies):
        address = client_address(meta)
    return None if address is None else str(address)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        # Not from a trusted proxy: its own address, whatever it wrote.
        ({"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}, "198.51.100.1"),
        # From a trusted proxy: the right-most entry that is not a trusted proxy.
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}, "203.0.113.10"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.10, 10.9.9.9"},
         "203.0.113.10"),
        ({"REMOTE_ADDR": "::ffff:10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10"},
         "203.0.113.10"),
        ({"REMOTE_ADDR": "2001:db8:ffff::1", "HTTP_X_FORWARDED_FOR": "2001:db8:1::7"},
         "2001:db8:1::7"),
        # Every entry a trusted proxy: the left-most, where the chain began.
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "10.1.1.1, 10.2.2.2"}, "10.1.1.1"),
        # A trusted proxy's own request, with no header: the proxy is the client.
        ({"REMOTE_ADDR": "10.0.0.2"}, "10.0.0.2"),
        # An entry a trusted proxy wrote that is no address: no address at all.
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10, unknown"}, None),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": ""}, None),
        # Entries with a port, as some proxies write them.
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10:5678"},
         "203.0.113.10"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "[2001:db8:1::7]:443"},
         "2001:db8:1::7"),
        ({"REMOTE_ADDR": "not an address", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}, None),
    ],
)  # fmt: skip
def test_trusted_proxies_alone_skip_every_trusted_hop(
    meta: dict[str, str], expected: str | None
) -> None:
    assert _address(meta, **TRUSTED_BY_ADDRESS) == expected


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}, "198.51.100.1"),
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}, "203.0.113.10"),
        # The count, not the networks, says which entry: the one the outermost proxy wrote,
        # even when it is in a trusted network.
        ({"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 10.7.7.7"}, "10.7.7.7"),
        ({"REMOTE_ADDR": "10.0.0.2"}, None),
    ],
)  # fmt: skip
def test_with_both_settings_the_networks_gate_and_the_count_picks(
    meta: dict[str, str], expected: str | None
) -> None:
    assert _address(meta, **BEHIND_THE_LOAD_BALANCER) == expected


def test_a_count_alone_believes_whoever_connects() -> None:
    """The documented risk of ``TRUSTED_PROXY_COUNT`` without ``TRUSTED_PROXIES``."""
    meta = {"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    assert _address(meta, TRUSTED_PROXY_COUNT=1) == "203.0.113.10"


def test_explicit_arguments_win_over_the_settings() -> None:
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "203.0.113.10"}
    with override_settings(ASYNC_API_KEY=TRUSTED_BY_ADDRESS):
        assert client_address(meta, 0, ()) == ipaddress.ip_address("10.0.0.2")
    assert client_address(meta, 0, ["10.0.0.0/8"]) == ipaddress.ip_address("203.0.113.10")
