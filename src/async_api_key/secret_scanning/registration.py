"""What to give GitHub's secret scanning partner program: the token type, the pattern that
finds our keys, and the URL alerts go to. ``manage.py secretscanning`` prints it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.urls import NoReverseMatch, reverse

from async_api_key.conf import api_key_settings
from async_api_key.keys import secret_scanning_pattern

from .publisher_keys import GITHUB_PUBLIC_KEYS_URL

__all__ = [
    "ALERT_URL_NAME",
    "Registration",
    "registration",
]

#: The endpoint's URL name once mounted with ``include("async_api_key.secret_scanning.urls")``.
ALERT_URL_NAME = "async_api_key_secret_scanning:github"


@dataclass(frozen=True)
class Registration:
    """The details of one key format's registration."""

    #: The name GitHub sends back as each match's ``type``.
    token_type: str
    #: The regular expression that finds keys of the namespace.
    pattern: str
    #: Where GitHub posts alerts: a full URL with ``base_url``, else the path; ``None`` if the
    #: endpoint is not mounted under its URL name.
    alert_url: str | None
    #: Where GitHub publishes the keys that sign alerts.
    public_keys_url: str = GITHUB_PUBLIC_KEYS_URL

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def registration(
    namespace: str | None = None, *, base_url: str = "", token_type: str | None = None
) -> Registration:
    """The registration of ``namespace`` (default: the ``NAMESPACE`` setting).

    ``base_url`` (``"https://api.example.com"``) makes the alert URL absolute; ``token_type``
    defaults to ``<namespace>_api_key``.
    """
    namespace = api_key_settings.namespace if namespace is None else namespace
    try:
        alert_url: str | None = base_url.rstrip("/") + reverse(ALERT_URL_NAME)
    except NoReverseMatch:
        alert_url = None
    return Registration(
        token_type=token_type or f"{namespace}_api_key",
        pattern=secret_scanning_pattern(namespace),
        alert_url=alert_url,
    )
