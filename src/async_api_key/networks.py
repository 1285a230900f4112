"""IP allowlists: which client addresses a key accepts, and which address a request came from.

A key's ``allowed_networks`` is a list of networks in CIDR notation, IPv4 or IPv6
(``"203.0.113.0/24"``, ``"2001:db8::/32"``, or a single address). An empty list
allows every address.

The client address is ``REMOTE_ADDR`` unless the settings say which reverse proxies
stand in front of the application. Each proxy appends the address it received the
connection from to ``X-Forwarded-For``; entries further left than the outermost trusted
proxy's were written by the client and are never believed. Two settings decide:

- ``TRUSTED_PROXIES`` (networks) says *who may speak*: ``X-Forwarded-For`` is read only
  when ``REMOTE_ADDR`` is in one of them; any other connection's address is its own.
- ``TRUSTED_PROXY_COUNT`` (``N``) says *which entry*: the ``N``-th from the right. Without
  it, the right-most entry that is not in ``TRUSTED_PROXIES`` is the client (the
  left-most, when every entry is a trusted proxy).

A count without networks believes whoever connects: right only when no client can reach
the application except through the proxies (system check ``async_api_key.W003``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from .conf import api_key_settings

__all__ = [
    "client_address",
    "is_allowed",
    "is_readable_allowlist",
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


def parse_forwarded_address(entry: str) -> IPAddress | None:
    """Parse one ``X-Forwarded-For`` entry, which some proxies write with a port
    (``203.0.113.7:5678``, ``[2001:db8::7]:443``). ``None`` if it is no address."""
    entry = entry.strip()
    if entry.startswith("["):
        host, bracket, port = entry[1:].partition("]")
        if not bracket or (port and not (port[:1] == ":" and port[1:].isdigit())):
            return None
        return parse_address(host)
    host, colon, port = entry.partition(":")
    if colon and ":" not in port:  # one colon: IPv4 and a port; more: a bare IPv6 address
        return parse_address(host) if port.isdigit() else None
    return parse_address(entry)


def _in_any(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


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
    return _in_any(address, parsed)


def is_readable_allowlist(networks: object) -> bool:
    """Whether a stored allowlist parses: a list of network strings."""
    if not isinstance(networks, list | tuple):
        return False
    try:
        _parsed(tuple(networks))
    except (ValueError, TypeError):
        return False
    return True


def client_address(
    meta: Mapping[str, Any],
    trusted_proxy_count: int | None = None,
    trusted_proxies: Iterable[str] | None = None,
) -> IPAddress | None:
    """The client's address of a request, from ``REMOTE_ADDR`` or ``X-Forwarded-For``.

    ``trusted_proxy_count`` and ``trusted_proxies`` default to the settings
    ``TRUSTED_PROXY_COUNT`` and ``TRUSTED_PROXIES``; see the module's docstring.
    ``None`` when the address cannot be known: an allowlist then admits no one.
    """
    if trusted_proxy_count is None:
        trusted_proxy_count = api_key_settings.trusted_proxy_count
    proxies = _parsed(
        tuple(api_key_settings.trusted_proxies if trusted_proxies is None else trusted_proxies)
    )
    remote = parse_address(meta.get("REMOTE_ADDR"))
    if trusted_proxy_count <= 0 and not proxies:
        return remote
    if proxies and (remote is None or not _in_any(remote, proxies)):
        return remote  # not a trusted proxy: what it says about others is not believed
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if trusted_proxy_count > 0:
        if not isinstance(forwarded, str):
            return None
        hops = forwarded.split(",")
        if len(hops) < trusted_proxy_count:
            return None  # fewer hops than proxies: misconfigured or forged, believe nothing
        return parse_forwarded_address(hops[-trusted_proxy_count])
    if not isinstance(forwarded, str):
        return remote  # a trusted proxy's own request
    address = None
    for hop in reversed(forwarded.split(",")):
        address = parse_forwarded_address(hop)
        if address is None or not _in_any(address, proxies):
            return address  # the first hop no trusted proxy vouches for, or garbage
    return address  # every hop a trusted proxy: the chain began at the left-most
