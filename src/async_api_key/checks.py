"""System checks: a misconfigured ``ASYNC_API_KEY`` is reported at start-up, not on a request."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from .conf import api_key_settings
from .hashing import FAST_HASH_ALGORITHMS
from .keys import is_valid_namespace


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``settings.ASYNC_API_KEY``."""
    try:
        namespace = api_key_settings.namespace
    except ValueError as exc:
        return [Error(str(exc), id="async_api_key.E001")]
    errors: list[CheckMessage] = []
    if not is_valid_namespace(namespace):
        errors.append(
            Error(
                f"ASYNC_API_KEY['NAMESPACE'] = {namespace!r} cannot start a key.",
                hint="Use letters and digits with at most one inner '_', such as 'acme_live'.",
                id="async_api_key.E002",
            )
        )
    if api_key_settings.hash_algorithm not in FAST_HASH_ALGORITHMS:
        errors.append(
            Error(
                f"ASYNC_API_KEY['HASH_ALGORITHM'] = {api_key_settings.hash_algorithm!r} "
                "is not supported.",
                hint=f"Use one of: {', '.join(FAST_HASH_ALGORITHMS)}.",
                id="async_api_key.E003",
            )
        )
    keyword = api_key_settings.keyword
    if not keyword or any(character.isspace() for character in keyword):
        errors.append(
            Error(
                "ASYNC_API_KEY['KEYWORD'] must be one non-empty word, such as 'Api-Key'.",
                id="async_api_key.E004",
            )
        )
    return errors
