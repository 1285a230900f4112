"""One client for the self-service API on both adapters, so that a test reads the same
whichever framework answers it (``tests/test_selfservice*.py``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.test import Client

if TYPE_CHECKING:  # the stubs' name for what the test client returns
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

__all__ = ["FRAMEWORKS", "KeysClient", "normalised"]

FRAMEWORKS = ("ninja", "drf")

_PATHS = {
    "ninja": {
        "list": "/ninja/{base}",
        "detail": "/ninja/{base}/{prefix}",
        "rotate": "/ninja/{base}/{prefix}/rotate",
        "revoke": "/ninja/{base}/{prefix}/revoke",
    },
    "drf": {
        "list": "/drf/{base}/",
        "detail": "/drf/{base}/{prefix}/",
        "rotate": "/drf/{base}/{prefix}/rotate/",
        "revoke": "/drf/{base}/{prefix}/revoke/",
    },
}


@dataclass
class KeysClient:
    """The self-service operations of ``base`` (``keys`` or ``team-keys``) on ``framework``."""

    framework: str
    client: Client
    base: str = "keys"
    headers: dict[str, str] | None = None

    def url(self, kind: str, prefix: str = "") -> str:
        return _PATHS[self.framework][kind].format(base=self.base, prefix=prefix)

    def _send(self, method: str, url: str, data: Any = None, **extra: Any) -> Response:
        kwargs: dict[str, Any] = {"headers": self.headers or {}, **extra}
        if data is None and method != "get":  # as a browser's fetch() sends no body
            kwargs.update(data="", content_type="")
        elif data is not None and "content_type" not in kwargs:
            kwargs["data"] = json.dumps(data)
            kwargs["content_type"] = "application/json"
        elif data is not None:
            kwargs["data"] = data
        response: Response = getattr(self.client, method)(url, **kwargs)
        return response

    def list(self) -> Response:
        return self._send("get", self.url("list"))

    def create(self, data: Any = None, **extra: Any) -> Response:
        return self._send("post", self.url("list"), data, **extra)

    def get(self, prefix: str) -> Response:
        return self._send("get", self.url("detail", prefix))

    def update(self, prefix: str, data: Any, **extra: Any) -> Response:
        return self._send("patch", self.url("detail", prefix), data, **extra)

    def rotate(self, prefix: str, data: Any = None) -> Response:
        return self._send("post", self.url("rotate", prefix), data)

    def revoke(self, prefix: str) -> Response:
        return self._send("post", self.url("revoke", prefix))


_TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_RAW_KEY_RE = re.compile(r"^ak_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$")


def normalised(value: Any, prefixes: dict[str, str] | None = None) -> Any:
    """``value`` with what differs from run to run (prefixes, raw keys, times) replaced by
    placeholders, so two adapters' answers compare equal when they say the same."""
    prefixes = {} if prefixes is None else prefixes
    if isinstance(value, dict):
        return {
            name: (
                prefixes.setdefault(item, f"<prefix {len(prefixes)}>")
                if name in ("prefix", "rotated_from") and isinstance(item, str)
                else normalised(item, prefixes)
            )
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [normalised(item, prefixes) for item in value]
    if isinstance(value, str) and _RAW_KEY_RE.match(value):
        return "<raw key>"
    if isinstance(value, str) and _TIMESTAMP_RE.match(value):
        return "<time>"
    return value
