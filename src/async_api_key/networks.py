"""IP allowlists: which client addresses a key accepts, and which address a request came from.

A key's ``allowed_networks`` is a list of networks in CIDR notation, IPv4 or IPv6
(``"203.0.113.0/24"``, ``"2001:db8::/32"``, or a single address). An empty list
allows every address.

The client address is ``REMOTE_ADDR`` unless ``ASYNC_API_KEY["TRUSTED_PROXY_COUNT"]``
says how many reverse proxies stand in front of the application. Each proxy appends
the address it received the connection from to ``X-Forwarded-For``, so with ``N``
trusted proxies the client is the ``N``-th entry from the right: the one the
outermost trusted proxy added. Entries further left were written by the client and
are never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "client_address",
    "is_allowed",
    "validate_networks",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def validate_networks(networks: Iterable[object]) -> list[str]:
    """Return ``networks`` normalised (``"10.0.0.0/8"``), or raise :class:`ValueError`."""
    if isinstance(networks, str):
        raise ValueError("Allowed networks must be a list of strings, not a single string.")
    normalised: list[str] = []
    bad: list[object] = []
    for network in networks:
        try:
            if not isinstance(network, str):
                raise TypeError
            normalised.append(str(ipaddress.ip_network(network.strip(), strict=False)))
        except (TypeError, ValueError):
            bad.append(network)
    if bad:
        raise ValueError(
            "Invalid network(s): "
            + ", ".join(repr(network) for network in bad)
            + ". Use CIDR notation such as '203.0.113.0/24' or '2001:db8::/32'."
        )
    return list(dict.fromkeys(normalised))


@lru_cache(maxsize=1024)
def _parsed(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def parse_address(value: object) -> IPAddress | None:
    """Parse one address; IPv4-mapped IPv6 addresses become IPv4. ``None`` if invalid."""
    if not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_allowed(address: IPAddress | None, networks: Sequence[str]) -> bool:
    """Tell whether ``address`` is in one of ``networks``; an empty list allows all."""
    if not networks:
        return True
    if address is None:
        return False
    try:
        parsed = _parsed(tuple(networks))
    except (ValueError, TypeError):
        return False  # a corrupt allowlist (bad text, or not text at all) admits no one
    return any(address.version == network.version and address in network for network in parsed)


def client_address(meta: Mapping[str, Any], trusted_proxy_count: int = 0) -> IPAddress | None:
    """The client's address of a request, from ``REMOTE_ADDR`` or ``X-Forwarded-For``."""
    if trusted_proxy_count <= 0:
        return parse_address(meta.get("REMOTE_ADDR"))
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not isinstance(forwarded, str):
        return None
    hops = [hop.strip() for hop in forwarded.split(",")]
    if len(hops) < trusted_proxy_count:
        return None  # fewer hops than proxies: misconfigured or forged, believe nothing
    return parse_address(hops[-trusted_proxy_count])
