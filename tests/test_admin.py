"""The admin of key models, through Django's test client."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from async_api_key.models import APIKey
from tests.conftest import QueryLog
from tests.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:async_api_key_apikey_changelist")
ADD = reverse("admin:async_api_key_apikey_add")
_KEY_FIELD_RE = re.compile(r'id="api-key-value"[^>]*\svalue="([^"]+)"')


def change_url(api_key: APIKey | OrganizationAPIKey) -> str:
    opts = api_key._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[api_key.pk])


def key_on_page(content: bytes) -> str:
    match = _KEY_FIELD_RE.search(content.decode())
    assert match is not None, "the page shows no key"
    return match.group(1)


def add_form(**overrides: str) -> dict[str, str]:
    return {"name": "partner", "expiry_date_0": "", "expiry_date_1": "", "scopes": "", **overrides}


def listed_names(client: Client, query: str = "") -> set[str]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return {api_key.name for api_key in response.context["cl"].result_list}


def test_changelist_shows_name_prefix_status_dates_and_scopes(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing", scopes=["orders:read", "orders:*"])

    response = admin_client.get(CHANGELIST)

    content = response.content.decode()
    assert response.status_code == 200
    for text in ("billing", api_key.prefix, "active", "orders:read, orders:*"):
        assert text in content
    for column in ("column-created", "column-expiry_date", "column-last_used_at"):
        assert column in content


def test_changelist_never_shows_hashes(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")

    response = admin_client.get(CHANGELIST)

    assert api_key.hashed_key not in response.content.decode()
    assert api_key.hashed_key.split("$")[-1] not in response.content.decode()


@pytest.fixture
def keys_in_every_status() -> None:
    APIKey.objects.create_key(name="live")
    APIKey.objects.create_key(name="old", expiry_date=timezone.now() - timedelta(days=1))
    APIKey.objects.create_key(name="ended")[0].revoke()


@pytest.mark.usefixtures("keys_in_every_status")
@pytest.mark.parametrize(
    ("status", "names"),
    [("active", {"live"}), ("expired", {"old"}), ("revoked", {"ended"})],
)
def test_status_filter_lists_only_keys_in_that_status(
    admin_client: Client, status: str, names: set[str]
) -> None:
    assert listed_names(admin_client, f"?status={status}") == names


@pytest.mark.usefixtures("keys_in_every_status")
def test_status_column_tells_active_expired_and_revoked_apart(admin_client: Client) -> None:
    content = admin_client.get(CHANGELIST).content.decode()

    for status in ("active", "expired", "revoked"):
        assert f'<td class="field-status">{status}</td>' in content


def test_search_finds_keys_by_name_and_by_prefix(admin_client: Client) -> None:
    billing, _ = APIKey.objects.create_key(name="billing")
    APIKey.objects.create_key(name="shipping")

    assert listed_names(admin_client, "?q=bill") == {"billing"}
    assert listed_names(admin_client, f"?q={billing.prefix}") == {"billing"}


def test_add_form_has_no_revoked_field(admin_client: Client) -> None:
    response = admin_client.get(ADD)

    assert response.status_code == 200
    assert 'name="name"' in response.content.decode()
    assert 'name="revoked"' not in response.content.decode()


def test_creating_a_key_shows_the_full_key_on_the_answering_page(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(scopes="orders:read"))

    assert response.status_code == 200
    assert "async_api_key/admin/key_created.html" in [t.name for t in response.templates]
    raw_key = key_on_page(response.content)
    api_key = APIKey.objects.get()
    assert raw_key.split("_")[1] == api_key.prefix
    assert APIKey.objects.get_from_key(raw_key) == api_key
    assert api_key.scopes == ["orders:read"]


def test_created_key_page_warns_and_offers_a_copy_button(admin_client: Client) -> None:
    content = admin_client.post(ADD, add_form()).content.decode()

    assert "shown only on this page, only this once" in content
    assert 'id="api-key-copy"' in content
    assert "async_api_key/admin/copy_key.js" in content


def test_created_key_appears_once_on_its_page(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form())

    raw_key = key_on_page(response.content)
    assert response.content.decode().count(raw_key) == 1


def test_created_key_page_is_not_stored_by_caches(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form())

    assert "no-store" in response["Cache-Control"]


def test_created_key_is_in_no_cookie_session_or_message(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form())

    raw_key = key_on_page(response.content)
    assert all(raw_key not in morsel.OutputString() for morsel in response.cookies.values())
    assert "messages" not in response.cookies
    assert list(get_messages(response.wsgi_request)) == []
    for session in Session.objects.all():
        assert raw_key not in session.session_data
        assert raw_key not in repr(session.get_decoded())


def test_no_later_page_shows_the_key_again(admin_client: Client) -> None:
    raw_key = key_on_page(admin_client.post(ADD, add_form()).content)
    api_key = APIKey.objects.get()
    history = reverse("admin:async_api_key_apikey_history", args=[api_key.pk])

    for url in (CHANGELIST, change_url(api_key), history, ADD, reverse("admin:index")):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert raw_key not in response.content.decode()
        assert raw_key.split("_")[2] not in response.content.decode()


def test_invalid_scopes_are_refused_and_create_nothing(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(scopes="orders:read, not a scope"))

    assert response.status_code == 200
    assert "Invalid scope(s)" in response.content.decode()
    assert not APIKey.objects.exists()


def test_scopes_may_be_separated_by_commas_or_lines(admin_client: Client) -> None:
    admin_client.post(ADD, add_form(scopes="orders:read, orders:write\r\nbilling:*\r\n"))

    assert APIKey.objects.get().scopes == ["orders:read", "orders:write", "billing:*"]


def test_change_form_shows_scopes_one_per_line(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing", scopes=["orders:read", "billing:*"])

    content = admin_client.get(change_url(api_key)).content.decode()

    assert "orders:read\nbilling:*</textarea>" in content


def test_editing_an_active_key_keeps_its_hash(admin_client: Client) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing")

    response = admin_client.post(change_url(api_key), add_form(name="renamed", scopes="a:b"))

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.name, api_key.scopes) == ("renamed", ["a:b"])
    assert APIKey.objects.is_valid(raw_key)


def test_revoke_action_asks_for_confirmation_first(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [api_key.pk]}
    )

    assert response.status_code == 200
    assert "async_api_key/admin/revoke_selected_confirmation.html" in [
        t.name for t in response.templates
    ]
    assert "Revoking cannot be undone" in response.content.decode()
    api_key.refresh_from_db()
    assert not api_key.revoked


def test_confirmed_revoke_action_revokes_with_single_column_updates(
    admin_client: Client, queries: QueryLog
) -> None:
    first, first_raw = APIKey.objects.create_key(name="first")
    second, _ = APIKey.objects.create_key(name="second")
    APIKey.objects.create_key(name="untouched")

    with queries.capture():
        response = admin_client.post(
            CHANGELIST,
            {"action": "revoke_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
        )

    assert response.status_code == 302
    assert set(APIKey.objects.filter(revoked=True).values_list("name", flat=True)) == {
        "first",
        "second",
    }
    assert not APIKey.objects.is_valid(first_raw)
    key_updates = [sql for sql in queries.writes() if "async_api_key_apikey" in sql]
    assert len(key_updates) == 2
    assert all('"hashed_key"' not in sql and '"name"' not in sql for sql in key_updates)


def test_revoke_action_leaves_already_revoked_keys_as_they_are(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")
    api_key.revoke()
    revoked_at = APIKey.objects.get().revoked_at

    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke_selected", "_selected_action": [api_key.pk], "post": "yes"},
        follow=True,
    )

    assert "Revoked 0 API keys." in response.content.decode()
    assert APIKey.objects.get().revoked_at == revoked_at


def test_revoked_key_is_shown_read_only(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")
    api_key.revoke()

    response = admin_client.get(change_url(api_key))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="name"' not in content
    assert 'name="revoked"' not in content
    assert 'name="_save"' not in content


def test_revoked_key_cannot_be_changed_or_unrevoked(admin_client: Client) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing")
    api_key.revoke()

    response = admin_client.post(change_url(api_key), add_form(name="again"))

    assert response.status_code == 403
    api_key.refresh_from_db()
    assert (api_key.name, api_key.revoked) == ("billing", True)
    assert not APIKey.objects.is_valid(raw_key)


def test_ticking_revoked_on_the_change_form_revokes_the_key(admin_client: Client) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing")

    response = admin_client.post(change_url(api_key), add_form(name="billing", revoked="on"))

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked
    assert api_key.revoked_at is not None
    assert not APIKey.objects.is_valid(raw_key)


def test_custom_key_model_admin_lists_its_owner(admin_client: Client) -> None:
    acme = Organization.objects.create(name="Acme")
    OrganizationAPIKey.objects.create_key(name="acme-ci", organization=acme)

    response = admin_client.get(reverse("admin:testapp_organizationapikey_changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "acme-ci" in content
    assert '<td class="field-organization nowrap">Acme</td>' in content


def test_custom_key_model_admin_creates_a_key_for_its_owner(admin_client: Client) -> None:
    acme = Organization.objects.create(name="Acme")

    response = admin_client.post(
        reverse("admin:testapp_organizationapikey_add"),
        add_form(name="acme-ci", organization=str(acme.pk)),
    )

    assert response.status_code == 200
    raw_key = key_on_page(response.content)
    assert OrganizationAPIKey.objects.get_from_key(raw_key).organization == acme
    assert "no-store" in response["Cache-Control"]
