"""Where a request's key comes from: one :class:`KeySource` for both adapters, reports and docs.

A client sends the key the same way to a Ninja endpoint and to a DRF view:

- ``Authorization: Api-Key <key>`` (the keyword is ``ASYNC_API_KEY['KEYWORD']``,
  compared case-insensitively), or
- ``X-API-Key: <key>`` (the header is ``ASYNC_API_KEY['HEADER']``; ``None`` turns it off).

When the upstream setting ``API_KEY_CUSTOM_HEADER`` (a ``META`` name such as
``"HTTP_X_API_KEY"``) is set, only that header is read, as in
djangorestframework-api-key; an adapter given its own ``header=`` ignores it.

The same :class:`KeySource` extracts the key, names the ``META`` entries that error reports
must mask, and describes the OpenAPI security scheme, so the three cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .conf import api_key_settings

__all__ = [
    "KeySource",
    "describe_required_scopes",
    "header_meta_name",
    "key_from_authorization",
    "key_from_header",
    "key_from_request_meta",
]

_AUTHORIZATION: Final = "Authorization"

#: OpenAPI 3.1 component names: letters, digits, ``.``, ``-`` and ``_``.
_UNSAFE_IN_SCHEME_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


def header_meta_name(header: str) -> str:
    """Return the ``request.META`` name of an HTTP header (``X-API-Key`` -> ``HTTP_X_API_KEY``)."""
    return "HTTP_" + header.upper().replace("-", "_")


def _header_from_meta_name(meta_name: str) -> str:
    """Return the HTTP header of a ``request.META`` name (``HTTP_X_API_KEY`` -> ``X-Api-Key``).

    Header names are case-insensitive; each word is capitalised, as HTTP spells them.
    """
    return "-".join(part.capitalize() for part in meta_name.removeprefix("HTTP_").split("_"))


def key_from_authorization(meta: Mapping[str, Any], keyword: str | None = None) -> str | None:
    """Return the key from ``Authorization: <keyword> <key>``, or ``None``."""
    return KeySource(keyword=keyword, header="").get_key(meta)


def key_from_header(meta: Mapping[str, Any], meta_name: str) -> str | None:
    """Return the key from the header whose ``META`` name is ``meta_name``, or ``None``."""
    value = meta.get(meta_name)
    if not isinstance(value, str):
        return None
    return value.strip()


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where a key comes from: the custom header first, otherwise ``Authorization`` and the header.

    ``keyword`` and ``header`` override ``ASYNC_API_KEY["KEYWORD"]`` / ``["HEADER"]`` for one
    adapter; ``None`` follows the settings as they are at each request. ``header=""`` reads
    the ``Authorization`` header only. An explicit ``header`` also sets the upstream
    ``API_KEY_CUSTOM_HEADER`` aside. Two adapters with equal sources read keys the same
    way, and share one OpenAPI security scheme.
    """

    keyword: str | None = None
    header: str | None = None

    def get_key(self, meta: Mapping[str, Any]) -> str | None:
        """Return the raw key the request's ``META`` carries, or ``None`` if it carries none.

        A present but empty credential is returned as ``""`` (the verifier calls it
        malformed), so "sent nothing" and "sent garbage" stay distinguishable.
        """
        if self.header is None:
            custom_meta_name = api_key_settings.custom_header_meta_name
            if custom_meta_name is not None:
                return key_from_header(meta, custom_meta_name)
        # Authorization first, parsed here rather than in a function of its own: this runs
        # on every request, and a Python call costs as much as the parsing.
        authorization = meta.get("HTTP_AUTHORIZATION")
        if isinstance(authorization, str):
            scheme, separator, credentials = authorization.lstrip().partition(" ")
            keyword = api_key_settings.keyword if self.keyword is None else self.keyword
            if separator and (scheme == keyword or scheme.lower() == keyword.lower()):
                return credentials.strip()
        header = api_key_settings.header if self.header is None else self.header
        if header:
            return key_from_header(meta, header_meta_name(header))
        return None

    @property
    def custom_meta_name(self) -> str | None:
        """The upstream ``API_KEY_CUSTOM_HEADER`` when it applies: then the only header read."""
        return api_key_settings.custom_header_meta_name if self.header is None else None

    @property
    def effective_keyword(self) -> str:
        """The ``Authorization`` keyword in force."""
        return api_key_settings.keyword if self.keyword is None else self.keyword

    @property
    def effective_header(self) -> str | None:
        """The header read besides ``Authorization`` (``None``: none, or only the custom one)."""
        if self.custom_meta_name is not None:
            return None
        header = api_key_settings.header if self.header is None else self.header
        return header or None

    def meta_names(self) -> list[str]:
        """The ``request.META`` names a key is read from; error reports must mask them."""
        custom_meta_name = self.custom_meta_name
        if custom_meta_name is not None:
            return [custom_meta_name]
        header = self.effective_header
        names = ["HTTP_AUTHORIZATION"]
        if header:
            names.append(header_meta_name(header))
        return names

    def documented_header(self) -> str:
        """The header an OpenAPI ``apiKey`` scheme names: the one where the bare key goes.

        A dedicated header (``X-API-Key``) is what such a scheme describes best: Swagger's
        "Authorize" sends the pasted key as it is. Only when no such header is read does the
        scheme name ``Authorization``, whose value needs the keyword before the key.
        """
        custom_meta_name = self.custom_meta_name
        if custom_meta_name is not None:
            return _header_from_meta_name(custom_meta_name)
        return self.effective_header or _AUTHORIZATION

    def openapi_scheme(self, model_label: str | None = None) -> dict[str, str]:
        """The OpenAPI security scheme (an ``apiKey`` in a header) that describes this source.

        ``model_label`` names the key model when it is not the default one.
        """
        header = self.documented_header()
        keyword = self.effective_keyword
        if header == _AUTHORIZATION:
            description = (
                f"Send `Authorization: {keyword} <key>` (in Swagger, enter `{keyword} <key>`)."
            )
        elif self.custom_meta_name is not None:
            description = f"Send the key in the `{header}` header."
        else:
            description = (
                f"Send the key in the `{header}` header. "
                f"`Authorization: {keyword} <key>` is accepted too."
            )
        if model_label is not None:
            description += f" Keys of `{model_label}`."
        return {"type": "apiKey", "in": "header", "name": header, "description": description}

    def scheme_name(self, base: str, model_label: str | None = None) -> str:
        """The security scheme's name: ``base``, then what sets this source and model apart.

        ``base`` alone for the default source and model, so adapters that read the same keys
        the same way share one scheme, and Swagger's "Authorize" asks for the key once.
        """
        parts = [base]
        if model_label is not None:
            parts.append(model_label)
        if self.header is not None:
            parts.append(f"header.{self.header or 'none'}")
        if self.keyword is not None:
            parts.append(f"keyword.{self.keyword}")
        return "_".join(_UNSAFE_IN_SCHEME_NAME.sub(".", part) for part in parts)


def describe_required_scopes(alternatives: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The sentence an OpenAPI operation's description gets for the scopes its key needs.

    ``alternatives`` pairs each security scheme that may authorise the operation with the
    scopes it requires there; the schemes are named only when there are several.
    """
    texts = [", ".join(f"`{scope}`" for scope in scopes) for _, scopes in alternatives]
    if len(alternatives) > 1:
        texts = [f"{text} ({name})" for text, (name, _) in zip(texts, alternatives, strict=True)]
    return "Requires the API key scope(s): " + "; or ".join(texts) + "."


#: The source that follows the settings: what adapters without overrides use.
_DEFAULT_KEY_SOURCE: Final = KeySource()


def key_from_request_meta(
    meta: Mapping[str, Any], *, keyword: str | None = None, header: str | None = None
) -> str | None:
    """Return the raw key a request carries, or ``None``: :meth:`KeySource.get_key` in one call.

    ``keyword`` and ``header`` override the settings, as on :class:`KeySource`.
    """
    if keyword is None and header is None:
        return _DEFAULT_KEY_SOURCE.get_key(meta)
    return KeySource(keyword=keyword, header=header).get_key(meta)
