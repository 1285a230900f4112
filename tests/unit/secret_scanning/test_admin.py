"""The leak report in the admin (what was found where, and a link to each key; filters;
read-only; revoking flagged keys) and ``manage.py secretscanning``."""

from __future__ import annotations

import hashlib
import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path

from async_api_key.keys import secret_scanning_pattern
from async_api_key.models import APIKey
from async_api_key.secret_scanning.models import KeyLeak, LeakAction

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/async_api_key/keyleak/"

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/secret-scanning/github/", include("async_api_key.secret_scanning.urls")),
]


def leak(api_key: APIKey, action: LeakAction, url: str, publisher: str = "github") -> KeyLeak:
    return KeyLeak.objects.create(
        key_model="async_api_key.apikey",
        prefix=api_key.prefix,
        publisher=publisher,
        token_type="ak_api_key",
        url=url,
        source="commit",
        action=action,
        fingerprint=hashlib.sha256(f"{api_key.prefix} {url} {publisher}".encode()).hexdigest(),
    )


def test_the_list_shows_where_each_key_was_found_and_links_to_the_key(admin_client: Client) -> None:
    api_key, _raw = APIKey.objects.create_key(name="leaky")
    leak(api_key, LeakAction.REVOKED, "https://github.com/o/r/blob/1/x.py#L3")

    page = admin_client.get(CHANGELIST).content.decode()

    url = "https://github.com/o/r/blob/1/x.py#L3"
    assert (
        f'<a href="{url}" title="{url}" rel="noopener noreferrer nofollow" target="_blank">'
        "github.com/<wbr>o/<wbr>r/<wbr>blob/<wbr>1/<wbr>x.py#L3</a>"
    ) in page
    key_list = f"/admin/async_api_key/apikey/?prefix={api_key.prefix}"
    assert f'<a href="{key_list}">{api_key.prefix}</a>' in page
    assert api_key.prefix in admin_client.get(key_list).content.decode()


def test_a_long_url_is_shortened_in_the_list_but_linked_whole(admin_client: Client) -> None:
    api_key, _raw = APIKey.objects.create_key(name="leaky")
    url = "https://github.com/octo/repo/blob/" + "a" * 40 + "/deeply/nested/settings.py#L3"
    leak(api_key, LeakAction.REVOKED, url)

    page = admin_client.get(CHANGELIST).content.decode()

    assert f'href="{url}"' in page
    shown = "github.com/<wbr>octo/<wbr>repo/<wbr>blob/<wbr>" + "a" * 33 + "\u2026</a>"
    assert shown in page


def test_a_url_that_is_no_web_address_is_shown_but_not_linked(admin_client: Client) -> None:
    api_key, _raw = APIKey.objects.create_key(name="leaky")
    leak(api_key, LeakAction.REVOKED, "javascript:alert(1)")

    page = admin_client.get(CHANGELIST).content.decode()

    assert "javascript:alert(1)" in page
    assert 'href="javascript:' not in page


def test_leaks_filter_by_action_and_publisher(admin_client: Client) -> None:
    revoked, _ = APIKey.objects.create_key(name="revoked")
    flagged, _ = APIKey.objects.create_key(name="flagged")
    leak(revoked, LeakAction.REVOKED, "https://github.com/a", publisher="github")
    leak(flagged, LeakAction.FLAGGED, "https://gitlab.example/b", publisher="gitlab")

    by_action = admin_client.get(CHANGELIST, {"action__exact": "flagged"}).content.decode()
    by_publisher = admin_client.get(CHANGELIST, {"publisher": "github"}).content.decode()

    assert flagged.prefix in by_action
    assert revoked.prefix not in by_action
    assert revoked.prefix in by_publisher
    assert flagged.prefix not in by_publisher
    assert "By action taken" in admin_client.get(CHANGELIST).content.decode()


def test_leaks_are_read_only(admin_client: Client) -> None:
    api_key, _raw = APIKey.objects.create_key(name="leaky")
    row = leak(api_key, LeakAction.REVOKED, "https://github.com/a")

    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    detail = admin_client.get(f"{CHANGELIST}{row.pk}/change/")
    assert detail.status_code == 200
    assert "https://github.com/a" in detail.content.decode()
    admin_client.post(f"{CHANGELIST}{row.pk}/change/", {"url": "https://elsewhere"})
    row.refresh_from_db()
    assert row.url == "https://github.com/a"


def test_flagged_keys_can_be_revoked_from_the_leak_report(admin_client: Client) -> None:
    flagged_key, raw = APIKey.objects.create_key(name="flagged")
    row = leak(flagged_key, LeakAction.FLAGGED, "https://github.com/a")

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_flagged_keys", "_selected_action": [row.pk]}, follow=True
    )

    assert "1 key revoked." in response.content.decode()
    assert not APIKey.objects.is_valid(raw)
    row.refresh_from_db()
    assert row.action == LeakAction.REVOKED


def test_the_revoke_action_needs_the_permission_to_change_the_key(
    client: Client, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_keyleak"))
    client.force_login(viewer)
    flagged_key, raw = APIKey.objects.create_key(name="flagged")
    row = leak(flagged_key, LeakAction.FLAGGED, "https://github.com/a")

    client.post(CHANGELIST, {"action": "revoke_flagged_keys", "_selected_action": [row.pk]})

    assert APIKey.objects.is_valid(raw)


# -- manage.py secretscanning ------------------------------------------------------------------


def secretscanning(*args: str) -> str:
    out = StringIO()
    call_command("secretscanning", *args, stdout=out)
    return out.getvalue()


@pytest.mark.urls(__name__)
def test_the_command_prints_what_to_register() -> None:
    printed = secretscanning("--base-url", "https://api.example.com/")

    assert "Token type:  ak_api_key" in printed
    assert f"Pattern:     {secret_scanning_pattern('ak')}" in printed
    assert "Alert URL:   https://api.example.com/api/secret-scanning/github/" in printed
    assert "https://api.github.com/meta/public_keys/secret_scanning" in printed


@pytest.mark.urls(__name__)
def test_the_command_prints_json_for_another_namespace() -> None:
    details = json.loads(secretscanning("--namespace", "acme_live", "--json"))

    assert details["token_type"] == "acme_live_api_key"
    assert details["alert_url"] == "/api/secret-scanning/github/"
    assert re.fullmatch(details["pattern"], "acme_live_" + "A" * 12 + "_" + "b" * 38)


def test_the_command_says_when_the_endpoint_is_not_mounted() -> None:
    assert "Alert URL:   not mounted" in secretscanning()


def test_the_command_refuses_a_namespace_that_cannot_start_a_key() -> None:
    with pytest.raises(CommandError, match="namespace"):
        secretscanning("--namespace", "not a namespace!")
