"""The admin of key models, through Django's test client."""

from __future__ import annotations

import pickle
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from async_api_key import admin as admin_module
from async_api_key import models
from async_api_key.keys import GeneratedKey, generate_key
from async_api_key.models import AbstractAPIKey, APIKey
from async_api_key.signals import api_key_created
from tests.conftest import QueryLog
from tests.support.admin_custom_app.models import BuildAPIKey, LegacyAPIKey, Project
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:async_api_key_apikey_changelist")
ADD = reverse("admin:async_api_key_apikey_add")
_KEY_FIELD_RE = re.compile(r'id="api-key-value"[^>]*\svalue="([^"]+)"')


def change_url(api_key: AbstractAPIKey) -> str:
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


def test_add_form_labels_are_capitalised_like_the_model_fields(admin_client: Client) -> None:
    content = admin_client.get(ADD).content.decode()

    for label in ("Name:", "Scopes:", "Allowed networks:", "Rate limit:"):
        assert f">{label}</label>" in content


def test_creating_a_key_redirects_to_the_page_that_shows_the_full_key(
    admin_client: Client,
) -> None:
    posted = admin_client.post(ADD, add_form(scopes="orders:read"))

    assert posted.status_code == 302
    response = admin_client.get(posted["Location"])
    assert response.status_code == 200
    assert "async_api_key/admin/key_created.html" in [t.name for t in response.templates]
    raw_key = key_on_page(response.content)
    assert raw_key not in posted["Location"]
    assert raw_key.split("_")[2] not in posted["Location"]
    api_key = APIKey.objects.get()
    assert raw_key.split("_")[1] == api_key.prefix
    assert APIKey.objects.get_from_key(raw_key) == api_key
    assert api_key.scopes == ["orders:read"]


def test_created_key_page_warns_and_offers_a_copy_button(admin_client: Client) -> None:
    content = admin_client.post(ADD, add_form(), follow=True).content.decode()

    assert "shown only on this page, only this once" in content
    assert 'id="api-key-copy"' in content
    assert "async_api_key/admin/copy_key.js" in content


def test_created_key_appears_once_on_its_page(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(), follow=True)

    raw_key = key_on_page(response.content)
    assert response.content.decode().count(raw_key) == 1


def test_created_key_page_is_not_stored_by_caches(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(), follow=True)

    assert "no-store" in response["Cache-Control"]
    assert "no-store" in admin_client.get(response.request["PATH_INFO"])["Cache-Control"]


def test_created_key_is_in_no_cookie_session_or_message(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(), follow=True)

    raw_key = key_on_page(response.content)
    assert all(raw_key not in morsel.OutputString() for morsel in admin_client.cookies.values())
    assert "messages" not in admin_client.cookies
    assert list(get_messages(response.wsgi_request)) == []
    for session in Session.objects.all():
        assert raw_key not in session.session_data
        assert raw_key not in repr(session.get_decoded())


def test_no_later_page_shows_the_key_again(admin_client: Client) -> None:
    response = admin_client.post(ADD, add_form(), follow=True)
    raw_key = key_on_page(response.content)
    api_key = APIKey.objects.get()
    history = reverse("admin:async_api_key_apikey_history", args=[api_key.pk])
    key_page = response.request["PATH_INFO"]

    for url in (key_page, CHANGELIST, change_url(api_key), history, ADD, reverse("admin:index")):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert raw_key not in response.content.decode()
        assert raw_key.split("_")[2] not in response.content.decode()


def test_reloading_the_created_key_page_says_already_shown_and_creates_nothing(
    admin_client: Client,
) -> None:
    key_page = admin_client.post(ADD, add_form())["Location"]
    raw_key = key_on_page(admin_client.get(key_page).content)

    reloaded = admin_client.get(key_page)

    assert reloaded.status_code == 200
    assert "async_api_key/admin/key_already_shown.html" in [t.name for t in reloaded.templates]
    assert "This key has already been shown" in reloaded.content.decode()
    assert raw_key not in reloaded.content.decode()
    assert 'id="api-key-value"' not in reloaded.content.decode()
    assert "no-store" in reloaded["Cache-Control"]
    assert APIKey.objects.count() == 1


def test_already_shown_page_links_to_the_key_to_rotate_it(admin_client: Client) -> None:
    key_page = admin_client.post(ADD, add_form())["Location"]
    admin_client.get(key_page)

    content = admin_client.get(key_page).content.decode()

    assert f'href="{change_url(APIKey.objects.get())}"' in content
    assert "rotate the key" in content


def test_another_user_cannot_read_a_new_key_nor_use_it_up(
    admin_client: Client, client: Client, django_user_model: Any
) -> None:
    key_page = admin_client.post(ADD, add_form())["Location"]
    other = django_user_model.objects.create_superuser("other", "other@example.com", "pw")
    client.force_login(other)

    seen_by_other = client.get(key_page)
    seen_by_creator = admin_client.get(key_page)

    assert seen_by_other.status_code == 200
    assert 'id="api-key-value"' not in seen_by_other.content.decode()
    assert APIKey.objects.get_from_key(key_on_page(seen_by_creator.content)) == APIKey.objects.get()


def test_a_token_shows_only_the_key_it_was_made_for(admin_client: Client) -> None:
    other, _ = APIKey.objects.create_key(name="other")
    key_page = admin_client.post(ADD, add_form())["Location"]
    token = key_page.rstrip("/").rsplit("/", 1)[1]

    response = admin_client.get(
        reverse("admin:async_api_key_apikey_key_created", args=[other.pk, token])
    )

    assert 'id="api-key-value"' not in response.content.decode()
    assert 'id="api-key-value"' in admin_client.get(key_page).content.decode()


def test_an_unknown_token_says_already_shown(admin_client: Client) -> None:
    api_key, _ = APIKey.objects.create_key(name="billing")

    response = admin_client.get(
        reverse("admin:async_api_key_apikey_key_created", args=[api_key.pk, "forged"])
    )

    assert response.status_code == 200
    assert "This key has already been shown" in response.content.decode()


def test_created_key_page_needs_a_logged_in_staff_user(
    admin_client: Client, client: Client
) -> None:
    key_page = admin_client.post(ADD, add_form())["Location"]

    response = client.get(key_page)

    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert 'id="api-key-value"' in admin_client.get(key_page).content.decode()


class RecordingCache:
    """Wraps the handoff's cache and records what it is given."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.sets: list[tuple[str, Any, Any]] = []

    def set(self, key: str, value: Any, timeout: Any = None) -> None:
        self.sets.append((key, value, timeout))
        self.cache.set(key, value, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cache, name)


def test_a_new_key_waits_a_minute_at_most_sealed_under_a_hash_of_its_token(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = RecordingCache(caches["default"])
    monkeypatch.setattr(admin_module, "caches", {"default": recording})

    key_page = admin_client.post(ADD, add_form())["Location"]
    raw_key = key_on_page(admin_client.get(key_page).content)

    [(cache_key, value, timeout)] = recording.sets
    token = key_page.rstrip("/").rsplit("/", 1)[1]
    assert 0 < timeout <= 60
    assert token not in cache_key
    assert raw_key not in cache_key
    stored = pickle.dumps(value)
    assert raw_key.encode() not in stored
    assert raw_key.split("_")[2].encode() not in stored
    assert recording.cache.get(cache_key) is None  # deleted by the first read


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}})
def test_a_cache_that_keeps_nothing_shows_the_key_in_the_answer_to_the_form(
    admin_client: Client,
) -> None:
    response = admin_client.post(ADD, add_form())

    assert response.status_code == 200
    assert APIKey.objects.get_from_key(key_on_page(response.content)) == APIKey.objects.get()
    assert "no-store" in response["Cache-Control"]


class BrokenCache:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("the cache is down")

        return fail


def test_a_cache_that_is_down_shows_the_key_in_the_answer_to_the_form(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_module, "caches", {"default": BrokenCache()})

    response = admin_client.post(ADD, add_form())

    assert response.status_code == 200
    assert APIKey.objects.get_from_key(key_on_page(response.content)) == APIKey.objects.get()


def test_a_cache_that_fails_when_the_page_is_read_says_already_shown(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_page = admin_client.post(ADD, add_form())["Location"]
    monkeypatch.setattr(admin_module, "caches", {"default": BrokenCache()})

    response = admin_client.get(key_page)

    assert response.status_code == 200
    assert "This key has already been shown" in response.content.decode()


def test_creating_a_key_in_the_admin_sends_api_key_created_once(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    received: list[Any] = []

    def receiver(sender: Any, api_key: Any, **kwargs: Any) -> None:
        received.append((sender, api_key.pk))

    api_key_created.connect(receiver)
    try:
        # Sent once the admin's transaction commits, as every change signal is.
        with django_capture_on_commit_callbacks(execute=True):
            admin_client.post(ADD, add_form())
    finally:
        api_key_created.disconnect(receiver)

    assert received == [(APIKey, APIKey.objects.get().pk)]


@pytest.fixture
def recorded_raw_keys(_no_raw_key_in_logs: list[str]) -> list[str]:
    """Raw keys the suite checks the logs for; a test that makes keys by hand adds them."""
    return _no_raw_key_in_logs


def test_a_lookup_id_in_use_is_replaced_when_the_admin_creates_a_key(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch, recorded_raw_keys: list[str]
) -> None:
    taken, _ = APIKey.objects.create_key(name="taken")
    fresh = [generate_key("ak"), generate_key("ak")]
    recorded_raw_keys.extend(key.raw for key in fresh)  # so the suite's log check covers them
    clash = GeneratedKey(lookup=taken.prefix, raw=fresh[0].raw)
    generated = iter([clash, fresh[1]])
    monkeypatch.setattr(models, "generate_key", lambda namespace: next(generated))

    response = admin_client.post(ADD, add_form(name="new"), follow=True)

    assert key_on_page(response.content) == fresh[1].raw
    assert APIKey.objects.get(name="new").prefix == fresh[1].lookup


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
        follow=True,
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
        follow=True,
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

    response = admin_client.post(rotate_url(old), {"grace_period": "24h"}, follow=True)

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

    response = admin_client.post(rotate_url(old), {"grace_period": "0"}, follow=True)

    new_raw = key_on_page(response.content)
    assert APIKey.objects.is_valid(new_raw)
    assert not APIKey.objects.is_valid(old_raw)
    assert "which no longer works" in response.content.decode()


def test_rotated_key_is_in_no_cookie_session_message_or_log_entry(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")

    response = admin_client.post(rotate_url(old), {"grace_period": "30m"}, follow=True)

    new_raw = key_on_page(response.content)
    assert all(new_raw not in morsel.OutputString() for morsel in admin_client.cookies.values())
    assert "messages" not in admin_client.cookies
    assert list(get_messages(response.wsgi_request)) == []
    for session in Session.objects.all():
        assert new_raw not in session.session_data
        assert new_raw not in repr(session.get_decoded())
    entries = list(LogEntry.objects.values_list("object_repr", "change_message"))
    assert len(entries) == 2
    assert all(new_raw not in text for entry in entries for text in entry)


def test_no_later_page_shows_the_rotated_key_again(admin_client: Client) -> None:
    old, _ = APIKey.objects.create_key(name="billing")
    response = admin_client.post(rotate_url(old), {"grace_period": "1h"}, follow=True)
    new_raw = key_on_page(response.content)
    successor = APIKey.objects.get(rotated_from=old)
    key_page = response.request["PATH_INFO"]

    for url in (key_page, CHANGELIST, change_url(old), change_url(successor), rotate_url(old)):
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

    assert f'<a href="{change_url(successor)}">billing ({successor.prefix})</a>' in old_page
    assert f'<a href="{change_url(old)}">billing ({old.prefix})</a>' in new_page
    assert 'name="rotated_from' not in new_page
    assert 'name="successor' not in old_page


def test_custom_key_model_admin_rotates_keeping_the_owner(admin_client: Client) -> None:
    acme = Organization.objects.create(name="Acme")
    old, _ = OrganizationAPIKey.objects.create_key(name="acme-ci", organization=acme)

    response = admin_client.post(rotate_url(old), {"grace_period": "10m"}, follow=True)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    successor = OrganizationAPIKey.objects.get_from_key(key_on_page(response.content))
    assert successor.organization == acme
    assert successor.rotated_from == old


# --- a manager that narrows create_key ---------------------------------------------------------


def test_admin_creates_a_key_for_a_manager_whose_create_key_takes_other_arguments(
    admin_client: Client,
) -> None:
    docs = Project.objects.create(slug="docs")

    response = admin_client.post(
        reverse("admin:admin_custom_app_buildapikey_add"),
        add_form(name="deploy", project=str(docs.pk)),
        follow=True,
    )

    assert response.status_code == 200
    api_key = BuildAPIKey.objects.get_from_key(key_on_page(response.content))
    assert (api_key.name, api_key.project, api_key.expiry_date) == ("deploy", docs, None)


def test_admin_creates_and_shows_a_key_whose_primary_key_assign_key_gives(
    admin_client: Client,
) -> None:
    response = admin_client.post(
        reverse("admin:admin_custom_app_legacyapikey_add"), add_form(name="legacy"), follow=True
    )

    api_key = LegacyAPIKey.objects.get_from_key(key_on_page(response.content))
    assert api_key.pk == f"{api_key.prefix}.{api_key.hashed_key}"
    assert (
        "This key has already been shown"
        in admin_client.get(response.request["PATH_INFO"]).content.decode()
    )
    assert admin_client.get(change_url(api_key)).status_code == 200
