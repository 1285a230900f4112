"""The admin of key models, through Django's test client."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
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
    return {
        "name": "partner",
        "expiry_date_0": "",
        "expiry_date_1": "",
        "scopes": "",
        "allowed_networks": "",
        "rate_limit": "",
        **overrides,
    }


def rotate_url(api_key: APIKey | OrganizationAPIKey) -> str:
    opts = api_key._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_rotate", args=[api_key.pk])


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


# --- rate limits and allowed networks ----------------------------------------------------------


def test_changelist_shows_the_rate_limit(admin_client: Client) -> None:
    APIKey.objects.create_key(name="limited", rate_limit="100/min")
    APIKey.objects.create_key(name="open")

    content = admin_client.get(CHANGELIST).content.decode()

    assert '<td class="field-rate">100/min</td>' in content
    assert '<td class="field-rate">-</td>' in content


def test_creating_a_key_with_a_rate_and_networks(admin_client: Client) -> None:
    response = admin_client.post(
        ADD,
        add_form(
            rate_limit=" 100/min ",
            allowed_networks="10.0.0.0/8, 2001:db8::/32\r\n192.0.2.7\r\n",
        ),
    )

    assert response.status_code == 200
    api_key = APIKey.objects.get()
    assert api_key.rate_limit == "100/min"
    assert api_key.allowed_networks == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    content = response.content.decode()
    assert "100/min" in content
    assert "10.0.0.0/8, 2001:db8::/32, 192.0.2.7/32" in content


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rate_limit", "100/fortnight", "Invalid rate"),
        ("rate_limit", "0/min", "Invalid rate"),
        ("allowed_networks", "10.0.0.0/8, 10.0.0.0/33", "Invalid network(s)"),
        ("allowed_networks", "intranet", "Invalid network(s)"),
    ],
)
def test_invalid_rate_or_network_is_refused_and_creates_nothing(
    admin_client: Client, field: str, value: str, message: str
) -> None:
    response = admin_client.post(ADD, add_form(**{field: value}))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert not APIKey.objects.exists()


def test_change_form_shows_networks_one_per_line(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(
        name="billing", allowed_networks=["10.0.0.0/8", "2001:db8::/32"]
    )

    content = admin_client.get(change_url(api_key)).content.decode()

    assert "10.0.0.0/8\n2001:db8::/32</textarea>" in content


def test_editing_the_rate_and_networks_of_an_active_key(admin_client: Client) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing", rate_limit="5/s")

    response = admin_client.post(
        change_url(api_key),
        add_form(name="billing", rate_limit="10/min", allowed_networks="203.0.113.0/24"),
    )

    assert response.status_code == 302
    api_key.refresh_from_db()
    assert (api_key.rate_limit, api_key.allowed_networks) == ("10/min", ["203.0.113.0/24"])
    assert APIKey.objects.is_valid(raw_key)


def test_editing_with_a_bad_network_changes_nothing(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing", allowed_networks=["10.0.0.0/8"])

    response = admin_client.post(
        change_url(api_key), add_form(name="billing", allowed_networks="10.0.0.0/8\r\nnope")
    )

    assert response.status_code == 200
    assert "Invalid network(s)" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.allowed_networks == ["10.0.0.0/8"]


# --- rotation ---------------------------------------------------------------------------------


def test_change_page_of_an_active_key_offers_rotation(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")

    content = admin_client.get(change_url(api_key)).content.decode()

    assert f'href="{rotate_url(api_key)}"' in content
    assert 'id="api-key-rotate"' in content


@pytest.mark.parametrize("state", ["revoked", "expired", "rotated"])
def test_change_page_offers_no_rotation_when_it_would_be_refused(
    admin_client: Client, state: str
) -> None:
    expiry = timezone.now() - timedelta(minutes=1) if state == "expired" else None
    api_key, _ = APIKey.objects.create_key(name="billing", expiry_date=expiry)
    if state == "revoked":
        api_key.revoke()
    elif state == "rotated":
        api_key.rotate(timedelta(hours=1))

    response = admin_client.get(change_url(api_key))

    assert response.status_code == 200
    assert 'id="api-key-rotate"' not in response.content.decode()


def test_rotate_asks_for_a_grace_period_first(admin_client: Client) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing")

    response = admin_client.get(rotate_url(api_key))

    assert response.status_code == 200
    assert "async_api_key/admin/rotate_confirmation.html" in [t.name for t in response.templates]
    content = response.content.decode()
    assert 'name="grace_period"' in content
    assert 'id="confirm-rotate"' in content
    assert APIKey.objects.count() == 1
    assert APIKey.objects.is_valid(raw_key)


def test_confirmed_rotation_shows_the_new_key_once_like_a_creation(admin_client: Client) -> None:
    old, old_raw = APIKey.objects.create_key(
        name="billing", scopes=["orders:read"], rate_limit="5/s", allowed_networks=["10.0.0.0/8"]
    )

    response = admin_client.post(rotate_url(old), {"grace_period": "24h"})

    assert response.status_code == 200
    assert "async_api_key/admin/key_created.html" in [t.name for t in response.templates]
    assert "no-store" in response["Cache-Control"]
    content = response.content.decode()
    assert "shown only on this page, only this once" in content
    new_raw = key_on_page(response.content)
    assert content.count(new_raw) == 1
    assert old_raw not in content
    successor = APIKey.objects.get_from_key(new_raw)
    assert successor.rotated_from == old
    assert (successor.scopes, successor.rate_limit) == (["orders:read"], "5/s")
    assert successor.allowed_networks == ["10.0.0.0/8"]
    assert 'id="api-key-predecessor"' in content
    assert "keeps working until" in content
    # Within the grace period both keys work.
    assert APIKey.objects.is_valid(old_raw)
    old.refresh_from_db()
    assert old.expiry_date is not None
    assert timezone.now() + timedelta(hours=23) < old.expiry_date
    assert old.expiry_date <= timezone.now() + timedelta(hours=24)


def test_rotation_without_grace_stops_the_old_key_at_once(admin_client: Client) -> None:
    old, old_raw = APIKey.objects.create_key(name="billing")

    response = admin_client.post(rotate_url(old), {"grace_period": "0"})

    new_raw = key_on_page(response.content)
    assert APIKey.objects.is_valid(new_raw)
    assert not APIKey.objects.is_valid(old_raw)
    assert "which no longer works" in response.content.decode()


def test_rotated_key_is_in_no_cookie_session_message_or_log_entry(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")

    response = admin_client.post(rotate_url(old), {"grace_period": "30m"})

    new_raw = key_on_page(response.content)
    assert all(new_raw not in morsel.OutputString() for morsel in response.cookies.values())
    assert "messages" not in response.cookies
    assert list(get_messages(response.wsgi_request)) == []
    for session in Session.objects.all():
        assert new_raw not in session.session_data
        assert new_raw not in repr(session.get_decoded())
    entries = list(LogEntry.objects.values_list("object_repr", "change_message"))
    assert len(entries) == 2
    assert all(new_raw not in text for entry in entries for text in entry)


def test_no_later_page_shows_the_rotated_key_again(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")
    new_raw = key_on_page(admin_client.post(rotate_url(old), {"grace_period": "1h"}).content)
    successor = APIKey.objects.get(rotated_from=old)

    for url in (CHANGELIST, change_url(old), change_url(successor), rotate_url(old)):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert new_raw not in response.content.decode()
        assert new_raw.split("_")[2] not in response.content.decode()


def test_resubmitting_a_rotation_rotates_once_only(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")
    admin_client.post(rotate_url(old), {"grace_period": "1h"})

    response = admin_client.post(rotate_url(old), {"grace_period": "1h"})

    assert response.status_code == 200
    assert "async_api_key/admin/rotate_confirmation.html" in [t.name for t in response.templates]
    assert "cannot be rotated: it has already been rotated" in response.content.decode()
    assert 'id="api-key-value"' not in response.content.decode()
    assert APIKey.objects.filter(rotated_from=old).count() == 1


@pytest.mark.parametrize("grace", ["", "soon", "-1h", "1.5h"])
def test_bad_grace_period_is_refused_and_rotates_nothing(admin_client: Client, grace: str) -> None:
    old, old_raw = APIKey.objects.create_key(name="billing")

    response = admin_client.post(rotate_url(old), {"grace_period": grace})

    assert response.status_code == 200
    assert "grace_period" in response.context["form"].errors
    assert APIKey.objects.count() == 1
    old.refresh_from_db()
    assert old.expiry_date is None
    assert APIKey.objects.is_valid(old_raw)


@pytest.mark.parametrize(
    ("state", "reason"), [("expired", "it has expired"), ("rotated", "it has already been rotated")]
)
def test_rotation_page_explains_why_a_key_cannot_be_rotated(
    admin_client: Client, state: str, reason: str
) -> None:
    expiry = timezone.now() - timedelta(minutes=1) if state == "expired" else None
    api_key, _ = APIKey.objects.create_key(name="billing", expiry_date=expiry)
    if state == "rotated":
        api_key.rotate(timedelta(hours=1))
    count = APIKey.objects.count()

    page = admin_client.get(rotate_url(api_key)).content.decode()
    posted = admin_client.post(rotate_url(api_key), {"grace_period": "0"})

    assert f"This key cannot be rotated: {reason}." in page
    assert 'id="confirm-rotate"' not in page
    assert posted.status_code == 200
    assert f"cannot be rotated: {reason}." in posted.content.decode()
    assert APIKey.objects.count() == count


def test_revoked_key_cannot_be_rotated(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")
    api_key.revoke()

    assert admin_client.get(rotate_url(api_key)).status_code == 403
    assert admin_client.post(rotate_url(api_key), {"grace_period": "0"}).status_code == 403
    assert APIKey.objects.count() == 1


def test_rotating_an_unknown_key_is_not_found(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:async_api_key_apikey_rotate", args=[999]), {"grace_period": "0"}
    )

    assert response.status_code == 404


def test_rotation_needs_change_and_add_permissions(client: Client, django_user_model: Any) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="billing")
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_apikey", "change_apikey"])
    )
    client.force_login(user)

    change_page = client.get(change_url(api_key)).content.decode()
    response = client.post(rotate_url(api_key), {"grace_period": "0"})

    assert 'id="api-key-rotate"' not in change_page
    assert response.status_code == 403
    assert APIKey.objects.count() == 1
    assert APIKey.objects.is_valid(raw_key)


def test_rotation_page_needs_a_logged_in_staff_user(client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")

    response = client.post(rotate_url(api_key), {"grace_period": "0"})

    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert APIKey.objects.count() == 1


def test_change_pages_link_a_rotated_key_and_its_successor(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")
    successor, _ = old.rotate(timedelta(hours=1))

    old_page = admin_client.get(change_url(old)).content.decode()
    new_page = admin_client.get(change_url(successor)).content.decode()

    assert f'<a href="{change_url(successor)}">{successor}</a>' in old_page
    assert f'<a href="{change_url(old)}">{old}</a>' in new_page
    assert 'name="rotated_from' not in new_page
    assert 'name="successor' not in old_page


def test_custom_key_model_admin_rotates_keeping_the_owner(admin_client: Client) -> None:
    acme = Organization.objects.create(name="Acme")
    old, _ = OrganizationAPIKey.objects.create_key(name="acme-ci", organization=acme)

    response = admin_client.post(rotate_url(old), {"grace_period": "10m"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    successor = OrganizationAPIKey.objects.get_from_key(key_on_page(response.content))
    assert successor.organization == acme
    assert successor.rotated_from == old
