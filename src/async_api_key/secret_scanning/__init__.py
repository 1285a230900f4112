"""Respond to leaked keys: an endpoint for GitHub's secret scanning partner program that
revokes a leaked key (or flags it), records the leak and tells GitHub whether the find was real.

The parts, each in its own module:

- :mod:`~async_api_key.secret_scanning.views`: the endpoint (mount it with
  ``path("secret-scanning/github/", include("async_api_key.secret_scanning.urls"))``);
- :mod:`~async_api_key.secret_scanning.publisher_keys`: where the publisher's public keys come
  from (fetched from GitHub and cached, or given);
- :mod:`~async_api_key.secret_scanning.signatures`: the signature check (``cryptography``,
  the ``[secret-scanning]`` extra);
- :mod:`~async_api_key.secret_scanning.alerts`: reading an alert and acting on each match;
- :mod:`~async_api_key.secret_scanning.models`: :class:`KeyLeak`, the leak report the admin shows.

This package imports none of them, so that the models and the admin load without the extra.
"""

from __future__ import annotations

__all__: list[str] = []
