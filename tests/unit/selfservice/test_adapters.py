"""Self-service key management: every operation, on the Ninja router (async) and on the DRF
viewset (sync), with the same answers. Each test runs once per framework."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from async_api_key.models import APIKey
from async_api_key.selfservice import api_key_edited
from async_api_key.signals import api_key_created, api_key_revoked, api_key_rotated
from tests.support.selfservice_app.models import Team, TeamAPIKey, UserAPIKey
from tests.support.selfservice_client import FRAMEWORKS, KeysClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.selfservice_urls")]


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    framework: str = request.param
    return framework


def make_user(name: str) -> User:
    return User.objects.create_user(name, password="unused-password")


def signed_in(framework: str, user: User, base: str = "keys") -> KeysClient:
    client = Client()
    client.force_login(user)
    return KeysClient(framework, client, base)


@pytest.fixture
def alice() -> User:
    return make_user("alice")


@pytest.fixture
def bob() -> User:
    return make_user("bob")


@pytest.fixture
def keys(framework: str, alice: User) -> KeysClient:
    """Alice, signed in."""
    return signed_in(framework, alice)


def bobs_key(bob: User, **fields: Any) -> UserAPIKey:
    return UserAPIKey.objects.create_key(name="bob's", user=bob, **fields)[0]


# Create


def test_create_returns_the_raw_key_once_and_not_for_caching(keys: KeysClient, alice: User) -> None:
    response = keys.create({"name": "ci", "scopes": ["orders:read"]})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    api_key = UserAPIKey.objects.get(prefix=body["api_key"]["prefix"])
    assert api_key.user == alice
    assert api_key.is_valid(body["key"])
    assert body["api_key"]["name"] == "ci"
    assert body["api_key"]["scopes"] == ["orders:read"]
    assert body["api_key"]["status"] == "active"
    assert set(body) == {"key", "api_key"}
    assert api_key.hashed_key not in response.content.decode()


def test_create_without_expiry_gets_the_maximum_lifetime(keys: KeysClient) -> None:
    body = keys.create({"name": "ci"}).json()
    expiry = UserAPIKey.objects.get(prefix=body["api_key"]["prefix"]).expiry_date
    assert expiry is not None
    assert abs(expiry - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)


def test_create_with_an_expiry_within_the_lifetime(keys: KeysClient) -> None:
    expiry = (timezone.now() + timedelta(days=10)).replace(microsecond=0)
    body = keys.create({"name": "ci", "expiry_date": expiry.isoformat()}).json()
    assert UserAPIKey.objects.get(prefix=body["api_key"]["prefix"]).expiry_date == expiry


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": "nul\u0000byte"}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "ci", "scopes": "orders:read"}, "scopes"),
        ({"name": "ci", "scopes": ["orders read"]}, "scopes"),
        ({"name": "ci", "scopes": [1]}, "scopes"),
        ({"name": "ci", "expiry_date": "next tuesday"}, "expiry_date"),
        ({"name": "ci", "expiry_date": "2020-01-01T00:00:00Z"}, "expiry_date"),
        ({"name": "ci", "expiry_date": "2999-01-01T00:00:00Z"}, "expiry_date"),
        ({"name": "ci", "expiry_date": 1700000000}, "expiry_date"),
        ({"name": "ci", "scope": ["orders:read"]}, "scope"),
        ({"name": "ci", "prefix": "mine"}, "prefix"),
        ({"name": "ci", "user": 1}, "user"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    keys: KeysClient, data: dict[str, Any], field: str
) -> None:
    response = keys.create(data)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == [field]
    assert not UserAPIKey.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[" * 100_000 + "]" * 100_000, "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"name"', "application/json", 400),
        ("name=ci", "application/x-www-form-urlencoded", 415),
        ("name: ci", "text/plain", 415),
        ('{"name": "ci"}', "", 201),
        ('{"name": "ci"}', "application/vnd.api+json", 201),
    ],
)
def test_a_body_is_read_as_json_unless_it_says_it_is_something_else(
    keys: KeysClient, content: str, content_type: str, status: int
) -> None:
    response = keys.create(content, content_type=content_type)
    assert response.status_code == status
    if status != 201:
        assert response.json()["code"] in ("invalid", "unsupported_media_type")


def test_scopes_beyond_what_the_owner_may_grant_are_a_403_naming_them(keys: KeysClient) -> None:
    response = keys.create({"name": "ci", "scopes": ["orders:read", "admin", "orders:*"]})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "You may not grant these scopes: admin, orders:*.",
        "code": "scopes_not_grantable",
        "scopes": ["admin", "orders:*"],
    }
    assert not UserAPIKey.objects.exists()


def test_a_grantable_wildcard_allows_the_scopes_it_grants(keys: KeysClient) -> None:
    response = keys.create({"name": "ci", "scopes": ["reports:daily", "reports:*"]})
    assert response.status_code == 201


def test_the_active_key_limit_is_a_409(keys: KeysClient, alice: User) -> None:
    revoked = UserAPIKey.objects.create_key(name="old", user=alice)[0]
    revoked.revoke()
    UserAPIKey.objects.create_key(
        name="expired", user=alice, expiry_date=timezone.now() - timedelta(seconds=1)
    )
    for number in range(3):
        assert keys.create({"name": f"key {number}"}).status_code == 201
    response = keys.create({"name": "one too many"})
    assert response.status_code == 409
    assert response.json()["code"] == "key_limit_reached"
    assert response.json()["limit"] == 3


def test_the_limit_counts_each_owner_apart(keys: KeysClient, bob: User) -> None:
    for _ in range(3):
        bobs_key(bob)
    assert keys.create({"name": "mine"}).status_code == 201


# List and retrieve


def test_list_shows_the_owners_keys_newest_first_and_no_secret(
    keys: KeysClient, alice: User, bob: User
) -> None:
    first = UserAPIKey.objects.create_key(name="first", user=alice, scopes=["orders:read"])[0]
    second = UserAPIKey.objects.create_key(name="second", user=alice)[0]
    second.revoke()
    bobs_key(bob)
    response = keys.list()
    assert response.status_code == 200
    body = response.json()
    assert [item["prefix"] for item in body] == [second.prefix, first.prefix]
    assert body[1] == {
        "prefix": first.prefix,
        "name": "first",
        "scopes": ["orders:read"],
        "status": "active",
        "created": body[1]["created"],
        "expiry_date": None,
        "last_used_at": None,
        "revoked_at": None,
        "rotated_from": None,
    }
    assert body[0]["status"] == "revoked"
    assert body[0]["revoked_at"] is not None
    text = response.content.decode()
    assert first.hashed_key not in text
    assert second.hashed_key not in text


def test_retrieve_one_key(keys: KeysClient, alice: User) -> None:
    api_key = UserAPIKey.objects.create_key(name="mine", user=alice)[0]
    response = keys.get(api_key.prefix)
    assert response.status_code == 200
    assert response.json()["name"] == "mine"
    assert "key" not in response.json()


# Edit


def test_rename_and_change_scopes(keys: KeysClient, alice: User) -> None:
    api_key = UserAPIKey.objects.create_key(name="old", user=alice, scopes=["orders:read"])[0]
    response = keys.update(api_key.prefix, {"name": "new", "scopes": ["orders:write"]})
    assert response.status_code == 200
    assert response.json()["name"] == "new"
    api_key.refresh_from_db()
    assert (api_key.name, api_key.scopes) == ("new", ["orders:write"])


def test_scopes_no_longer_grantable_may_stay_but_not_be_added(
    keys: KeysClient, alice: User
) -> None:
    api_key = UserAPIKey.objects.create_key(name="old", user=alice, scopes=["legacy"])[0]
    assert keys.update(api_key.prefix, {"scopes": ["legacy", "orders:read"]}).status_code == 200
    refused = keys.update(api_key.prefix, {"scopes": ["legacy", "admin"]})
    assert refused.status_code == 403
    assert refused.json()["scopes"] == ["admin"]


@pytest.mark.parametrize(
    "data",
    [{"name": ""}, {"scopes": "x"}, {"expiry_date": None}, {"revoked": False}],
)
def test_an_edit_takes_only_the_name_and_scopes(
    keys: KeysClient, alice: User, data: dict[str, Any]
) -> None:
    api_key = UserAPIKey.objects.create_key(name="old", user=alice)[0]
    response = keys.update(api_key.prefix, data)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == list(data)


def test_a_revoked_key_cannot_be_edited(keys: KeysClient, alice: User) -> None:
    api_key = UserAPIKey.objects.create_key(name="old", user=alice)[0]
    api_key.revoke()
    response = keys.update(api_key.prefix, {"name": "new"})
    assert response.status_code == 409
    assert response.json()["code"] == "key_revoked"


# Rotate


def test_rotate_issues_a_successor_and_keeps_the_old_key_for_the_grace(
    keys: KeysClient, alice: User
) -> None:
    old, old_raw = UserAPIKey.objects.create_key(name="ci", user=alice, scopes=["orders:read"])
    response = keys.rotate(old.prefix, {"grace_period": 3600})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"key", "api_key", "replaced"}
    assert body["api_key"]["rotated_from"] == old.prefix
    assert body["api_key"]["scopes"] == ["orders:read"]
    assert body["replaced"]["prefix"] == old.prefix
    assert body["replaced"]["status"] == "active"
    assert UserAPIKey.objects.is_valid(body["key"])
    assert UserAPIKey.objects.is_valid(old_raw)
    old.refresh_from_db()
    assert old.expiry_date is not None
    assert old.expiry_date <= timezone.now() + timedelta(hours=1)


def test_rotate_without_grace_stops_the_old_key_at_once(keys: KeysClient, alice: User) -> None:
    old, old_raw = UserAPIKey.objects.create_key(name="ci", user=alice)
    body = keys.rotate(old.prefix).json()
    assert body["replaced"]["status"] == "expired"
    assert not UserAPIKey.objects.is_valid(old_raw)


@pytest.mark.parametrize("grace_period", [-1, 86401, 10**30, "1h", 1.5, True, None])
def test_a_bad_grace_period_is_a_400(keys: KeysClient, alice: User, grace_period: Any) -> None:
    old = UserAPIKey.objects.create_key(name="ci", user=alice)[0]
    response = keys.rotate(old.prefix, {"grace_period": grace_period})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["grace_period"]


@pytest.mark.parametrize("state", ["revoked", "expired", "rotated"])
def test_a_key_that_cannot_be_rotated_is_a_409(keys: KeysClient, alice: User, state: str) -> None:
    api_key = UserAPIKey.objects.create_key(name="ci", user=alice)[0]
    if state == "revoked":
        api_key.revoke()
    elif state == "expired":
        UserAPIKey.objects.filter(pk=api_key.pk).update(
            expiry_date=timezone.now() - timedelta(seconds=1)
        )
    else:
        api_key.rotate(timedelta(hours=1))
    response = keys.rotate(api_key.prefix)
    assert response.status_code == 409
    assert response.json()["code"] == "key_not_rotatable"


def test_a_rotation_does_not_count_against_the_limit(keys: KeysClient, alice: User) -> None:
    prefixes = [keys.create({"name": f"k{n}"}).json()["api_key"]["prefix"] for n in range(3)]
    assert keys.rotate(prefixes[0], {"grace_period": 60}).status_code == 201
    assert keys.create({"name": "one too many"}).status_code == 409


# Revoke


def test_revoke(keys: KeysClient, alice: User) -> None:
    api_key, raw_key = UserAPIKey.objects.create_key(name="ci", user=alice)
    response = keys.revoke(api_key.prefix)
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert not UserAPIKey.objects.is_valid(raw_key)
    again = keys.revoke(api_key.prefix)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == response.json()["revoked_at"]


# Isolation: another owner's key does not exist for the caller.

Operation = Callable[[KeysClient, str], Any]
OPERATIONS: dict[str, Operation] = {
    "retrieve": lambda keys, prefix: keys.get(prefix),
    "edit": lambda keys, prefix: keys.update(prefix, {"name": "mine now"}),
    "rotate": lambda keys, prefix: keys.rotate(prefix),
    "revoke": lambda keys, prefix: keys.revoke(prefix),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=list(OPERATIONS))
def test_another_owners_key_is_not_found(keys: KeysClient, bob: User, operation: Operation) -> None:
    theirs = bobs_key(bob)
    response = operation(keys, theirs.prefix)
    assert response.status_code == 404
    assert response.json() == {"detail": "No such API key.", "code": "not_found"}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.revoked, theirs.expiry_date) == ("bob's", False, None)
    assert not theirs.successors.exists()
    assert keys.list().json() == []


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=list(OPERATIONS))
@pytest.mark.parametrize(
    "guess",
    ["1", "0", "-1", "unknown00000", "%2e%2e", "a" * 200, "' OR 1=1 --", "prefix.hash"],
)
def test_guessed_ids_are_not_found(
    keys: KeysClient, bob: User, operation: Operation, guess: str
) -> None:
    theirs = bobs_key(bob)
    for candidate in (guess, str(theirs.pk), theirs.pk and f"{theirs.prefix}.{theirs.hashed_key}"):
        assert operation(keys, str(candidate)).status_code == 404


def test_a_key_of_a_team_is_not_found_among_the_users_keys(keys: KeysClient, alice: User) -> None:
    team = Team.objects.create(name="acme")
    team.members.add(alice)
    team_key = TeamAPIKey.objects.create_key(name="team", team=team)[0]
    assert keys.get(team_key.prefix).status_code == 404


# Who may call


def test_without_a_session_nothing_is_answered(framework: str, alice: User) -> None:
    UserAPIKey.objects.create_key(name="ci", user=alice)
    anonymous = KeysClient(framework, Client())
    response = anonymous.list()
    # Each framework's own answer for "not signed in": Ninja 401, DRF (session auth) 403.
    assert response.status_code == (401 if framework == "ninja" else 403)
    assert "prefix" not in response.content.decode()
    assert anonymous.create({"name": "ci"}).status_code in (401, 403)
    assert UserAPIKey.objects.count() == 1


#: A CSRF secret as Django keeps it in the cookie (Django also takes it unmasked in the header).
CSRF_SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"


def test_a_session_needs_the_csrf_token_for_changes(framework: str, alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    keys = KeysClient(framework, client)
    assert keys.list().status_code == 200
    refused = keys.create({"name": "ci"})
    assert refused.status_code == 403
    assert not UserAPIKey.objects.exists()
    client.cookies["csrftoken"] = CSRF_SECRET
    keys.headers = {"X-CSRFToken": CSRF_SECRET}
    assert keys.create({"name": "ci"}).status_code == 201


def key_client(framework: str, raw_key: str) -> KeysClient:
    return KeysClient(framework, Client(), headers={"Authorization": f"Api-Key {raw_key}"})


def test_an_api_key_without_keys_write_cannot_create_keys(framework: str, alice: User) -> None:
    _, raw_key = UserAPIKey.objects.create_key(name="ci", user=alice, scopes=["orders:read"])
    keys = key_client(framework, raw_key)
    response = keys.create({"name": "made by a key"})
    assert response.status_code == 403
    assert response.json() == {
        "detail": "This API key lacks the required scope(s): keys:write",
        "code": "insufficient_scope",
        "missing_scopes": ["keys:write"],
    }
    assert keys.list().status_code == 403
    assert UserAPIKey.objects.count() == 1


def test_an_api_key_with_keys_read_may_only_read(framework: str, alice: User) -> None:
    api_key, raw_key = UserAPIKey.objects.create_key(name="ci", user=alice, scopes=["keys:read"])
    keys = key_client(framework, raw_key)
    assert [item["prefix"] for item in keys.list().json()] == [api_key.prefix]
    assert keys.get(api_key.prefix).status_code == 200
    assert keys.revoke(api_key.prefix).status_code == 403
    assert keys.create({"name": "x"}).status_code == 403


def test_an_api_key_with_keys_write_manages_its_owners_keys_but_grants_no_more_than_it_holds(
    framework: str, alice: User, bob: User
) -> None:
    _, raw_key = UserAPIKey.objects.create_key(
        name="automation", user=alice, scopes=["keys:write", "orders:read"]
    )
    keys = key_client(framework, raw_key)
    created = keys.create({"name": "made by a key", "scopes": ["orders:read"]})
    assert created.status_code == 201
    assert UserAPIKey.objects.get(prefix=created.json()["api_key"]["prefix"]).user == alice
    stronger = keys.create({"name": "stronger", "scopes": ["orders:write"]})
    assert stronger.status_code == 403
    assert stronger.json()["scopes"] == ["orders:write"]
    assert keys.get(bobs_key(bob).prefix).status_code == 404


def test_a_key_of_another_model_is_refused(framework: str) -> None:
    _, raw_key = APIKey.objects.create_key(name="plain", scopes=["*"])
    response = key_client(framework, raw_key).list()
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_api_key"


# An organisation as the owner


def test_team_members_share_the_teams_keys(framework: str, alice: User, bob: User) -> None:
    team = Team.objects.create(name="acme")
    team.members.add(alice, bob)
    expiry = (timezone.now() + timedelta(days=7)).isoformat()
    created = signed_in(framework, alice, "team-keys").create(
        {"name": "shared", "scopes": ["reports:read"], "expiry_date": expiry}
    )
    assert created.status_code == 201
    listed = signed_in(framework, bob, "team-keys").list().json()
    assert [item["name"] for item in listed] == ["shared"]
    assert TeamAPIKey.objects.get().team == team


def test_team_keys_require_an_expiry_within_the_lifetime(framework: str, alice: User) -> None:
    Team.objects.create(name="acme").members.add(alice)
    team_keys = signed_in(framework, alice, "team-keys")
    missing = team_keys.create({"name": "shared"})
    assert missing.status_code == 400
    assert missing.json()["errors"] == {"expiry_date": ["This field is required."]}
    too_late = (timezone.now() + timedelta(days=31)).isoformat()
    late = team_keys.create({"name": "shared", "expiry_date": too_late})
    assert late.json()["errors"] == {
        "expiry_date": ["Enter a date and time at most 30 days from now."]
    }
    assert team_keys.create({"name": "shared", "scopes": ["orders:read"]}).status_code == 400


def test_a_user_without_a_team_has_no_team_keys(framework: str, alice: User) -> None:
    response = signed_in(framework, alice, "team-keys").list()
    assert response.status_code == 403
    assert response.json()["code"] == "no_owner"


# Audit signals


def test_every_change_sends_its_signal(
    keys: KeysClient, django_capture_on_commit_callbacks: Any
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    def receiver_for(name: str) -> Callable[..., None]:
        def receive(sender: Any, **payload: Any) -> None:
            sent.append((name, payload))

        return receive

    receivers = {
        "created": (api_key_created, receiver_for("created")),
        "edited": (api_key_edited, receiver_for("edited")),
        "rotated": (api_key_rotated, receiver_for("rotated")),
        "revoked": (api_key_revoked, receiver_for("revoked")),
    }
    for signal, receive in receivers.values():
        signal.connect(receive, sender=UserAPIKey)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            prefix = keys.create({"name": "ci"}).json()["api_key"]["prefix"]
            keys.update(prefix, {"name": "renamed", "scopes": ["orders:read"]})
            keys.update(prefix, {"name": "renamed"})  # no change: no signal
            successor = keys.rotate(prefix).json()["api_key"]["prefix"]
            keys.revoke(successor)
    finally:
        for signal, receive in receivers.values():
            signal.disconnect(receive, sender=UserAPIKey)
    assert [name for name, _ in sent] == ["created", "edited", "created", "rotated", "revoked"]
    edited = sent[1][1]
    assert edited["changes"] == {"name": ("ci", "renamed"), "scopes": ([], ["orders:read"])}
    assert edited["api_key"].prefix == prefix
    assert sent[3][1]["new_api_key"].prefix == successor
