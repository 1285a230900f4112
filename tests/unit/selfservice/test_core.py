"""The core of self-service key management, below the adapters: the policy's checks at
start-up, its limits read from the settings, the async twins, and the active-key limit under
concurrent creations."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.test import override_settings

from async_api_key.models import APIKey
from async_api_key.selfservice import FROM_SETTINGS, SelfServicePolicy, core
from tests.support.selfservice_app.models import Team, UserAPIKey


def policy(**overrides: Any) -> SelfServicePolicy[UserAPIKey]:
    options: dict[str, Any] = {"model": UserAPIKey, "owner_field": "user"} | overrides
    return SelfServicePolicy(**options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": User}, "must be a key model"),
        ({"owner_field": "owner"}, "has no field 'owner'"),
        ({"owner_field": "name"}, "must be a foreign key"),
        ({"read_scope": "keys read"}, "Invalid scope"),
        ({"max_grace_period": timedelta(seconds=-1)}, "cannot be negative"),
    ],
)
def test_a_policy_that_cannot_work_fails_at_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises((ImproperlyConfigured, ValueError), match=message):
        policy(**options)


def test_the_limits_follow_the_settings_unless_given() -> None:
    following = policy()
    assert following.max_active_keys is FROM_SETTINGS
    assert following.active_key_limit == 10
    assert following.expiry_required is False
    assert following.lifetime_limit is None
    with override_settings(
        ASYNC_API_KEY={
            "SELF_SERVICE_MAX_ACTIVE_KEYS": 2,
            "SELF_SERVICE_REQUIRE_EXPIRY": True,
            "SELF_SERVICE_MAX_LIFETIME": 3600,
        }
    ):
        assert following.active_key_limit == 2
        assert following.expiry_required is True
        assert following.lifetime_limit == timedelta(hours=1)
        given = policy(max_active_keys=None, require_expiry=False, max_lifetime=None)
        assert given.active_key_limit is None
        assert given.expiry_required is False
        assert given.lifetime_limit is None


@pytest.mark.django_db
def test_owner_for_may_give_the_owners_id() -> None:
    alice = User.objects.create_user("alice")
    by_id = policy(owner_for=lambda request, user: user.pk, grantable_scopes=lambda owner: {"*"})
    caller = core.resolve_caller(by_id, None, alice, core.WRITE)
    created = core.create_key(by_id, caller, {"name": "ci", "scopes": ["orders:read"]})
    assert UserAPIKey.objects.get(prefix=created["api_key"]["prefix"]).user == alice


@pytest.mark.django_db
def test_an_anonymous_principal_is_refused() -> None:
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(core.NotAllowed) as refused:
        core.resolve_caller(policy(), None, AnonymousUser(), core.READ)
    assert refused.value.status_code == 403
    assert refused.value.body()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_a_key_of_the_model_is_its_own_owners_caller() -> None:
    alice = User.objects.create_user("alice")
    api_key = UserAPIKey.objects.create_key(name="k", user=alice, scopes=["keys:write"])[0]
    caller = core.resolve_caller(policy(), None, api_key, core.READ)
    assert (caller.owner, caller.owner_id, caller.api_key) == (alice, alice.pk, api_key)
    plain = APIKey.objects.create_key(name="p", scopes=["*"])[0]
    with pytest.raises(core.NotAllowed, match="cannot manage"):
        core.resolve_caller(policy(), None, plain, core.READ)


def test_refusals_carry_their_answer() -> None:
    assert core.KeyNotFound().status_code == 404
    assert core.ScopesNotGrantable(["a", "b"]).body() == {
        "detail": "You may not grant these scopes: a, b.",
        "code": "scopes_not_grantable",
        "scopes": ["a", "b"],
    }
    assert core.KeyLimitReached(3).body()["limit"] == 3
    assert core.InvalidInput({"name": ["x"]}).body()["errors"] == {"name": ["x"]}


def test_bodies_are_read_as_json_objects() -> None:
    assert core.parse_json_body("application/json", b"") == {}
    assert core.parse_json_body(None, b'{"a": 1}') == {"a": 1}
    assert core.parse_json_body("application/json; charset=utf-8", b'{"a": 1}') == {"a": 1}
    with pytest.raises(core.UnsupportedBody):
        core.parse_json_body("text/plain", b'{"a": 1}')
    for body in (b"{", b"[]", b"\xff"):
        with pytest.raises(core.InvalidInput):
            core.parse_json_body("application/json", body)


async def test_the_async_twins_run_the_same_rules(transactional_db: None) -> None:
    alice = await User.objects.acreate(username="alice")
    team = await Team.objects.acreate(name="acme")
    await sync_to_async(team.members.add)(alice)
    mine = policy(grantable_scopes=lambda owner: {"orders:read"})
    caller = await core.aresolve_caller(mine, None, alice, core.WRITE)
    created = await core.acreate_key(mine, caller, {"name": "ci"})
    prefix = created["api_key"]["prefix"]
    assert [key["prefix"] for key in await core.alist_keys(mine, caller)] == [prefix]
    assert (await core.aget_key(mine, caller, prefix))["name"] == "ci"
    edited = await core.aupdate_key(mine, caller, prefix, {"scopes": ["orders:read"]})
    assert edited["scopes"] == ["orders:read"]
    rotated = await core.arotate_key(mine, caller, prefix, {"grace_period": 10})
    assert (await core.arevoke_key(mine, caller, rotated["api_key"]["prefix"]))["status"] == (
        "revoked"
    )
    with pytest.raises(core.ScopesNotGrantable):
        await core.acreate_key(mine, caller, {"name": "x", "scopes": ["orders:write"]})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_never_pass_the_limit() -> None:
    alice = User.objects.create_user("alice")
    limited = policy(max_active_keys=2)
    caller = core.resolve_caller(limited, None, alice, core.WRITE)
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def create() -> None:
        try:
            start.wait()
            core.create_key(limited, caller, {"name": "racing"})
            outcomes.append("created")
        except core.KeyLimitReached:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] * 2 + ["refused"] * 4
    assert UserAPIKey.objects.filter(user=alice).count() == 2


@pytest.mark.parametrize(
    "values",
    [
        {"SELF_SERVICE_MAX_ACTIVE_KEYS": -1},
        {"SELF_SERVICE_MAX_ACTIVE_KEYS": "10"},
        {"SELF_SERVICE_REQUIRE_EXPIRY": 1},
        {"SELF_SERVICE_MAX_LIFETIME": 0},
        {"SELF_SERVICE_MAX_LIFETIME": "90d"},
    ],
)
def test_a_wrong_self_service_setting_is_named(values: dict[str, Any]) -> None:
    from async_api_key.conf import api_key_settings

    with override_settings(ASYNC_API_KEY=values):
        problems = api_key_settings.problems()
    assert [problem.setting for problem in problems] == [f"ASYNC_API_KEY[{next(iter(values))!r}]"]
