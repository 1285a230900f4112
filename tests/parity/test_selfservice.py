"""The self-service parity table: the same request gets the same answer (status, body,
``Cache-Control``) from the Ninja router and from the DRF viewset, because both run the rules
of ``async_api_key.selfservice.core``. Values that differ from run to run (prefixes, raw
keys, times) are compared as placeholders."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from async_api_key.models import APIKey
from tests.support.selfservice_app.models import Team, UserAPIKey
from tests.support.selfservice_client import FRAMEWORKS, KeysClient, normalised

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.selfservice_urls")]

_names = itertools.count()


@dataclass
class World:
    """A signed-in user (``keys``) with one key, and another user with one key."""

    keys: KeysClient
    user: User
    mine: UserAPIKey
    theirs: UserAPIKey

    def as_key(self, *scopes: str) -> KeysClient:
        _, raw_key = UserAPIKey.objects.create_key(name="caller", user=self.user, scopes=scopes)
        client = KeysClient(self.keys.framework, Client())
        client.headers = {"Authorization": f"Api-Key {raw_key}"}
        return client

    def team_keys(self) -> KeysClient:
        return KeysClient(self.keys.framework, self.keys.client, "team-keys")


def build_world(framework: str) -> World:
    user = User.objects.create_user(f"user{next(_names)}")
    other = User.objects.create_user(f"user{next(_names)}")
    client = Client()
    client.force_login(user)
    mine = UserAPIKey.objects.create_key(name="mine", user=user, scopes=["orders:read"])[0]
    theirs = UserAPIKey.objects.create_key(name="theirs", user=other)[0]
    return World(KeysClient(framework, client), user, mine, theirs)


def _later(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def _revoked(world: World) -> str:
    world.mine.revoke()
    return world.mine.prefix


def _full(world: World) -> KeysClient:
    for number in range(2):
        UserAPIKey.objects.create_key(name=f"more {number}", user=world.user)
    return world.keys


CASES: dict[str, Callable[[World], Any]] = {
    "list": lambda w: w.keys.list(),
    "retrieve": lambda w: w.keys.get(w.mine.prefix),
    "create": lambda w: w.keys.create({"name": "new", "scopes": ["orders:write"]}),
    "create with expiry": lambda w: w.keys.create({"name": "new", "expiry_date": _later(5)}),
    "create, no name": lambda w: w.keys.create({"scopes": []}),
    "create, bad scope": lambda w: w.keys.create({"name": "n", "scopes": ["a b"]}),
    "create, unknown field": lambda w: w.keys.create({"name": "n", "owner": 1}),
    "create, expiry too late": lambda w: w.keys.create({"name": "n", "expiry_date": _later(91)}),
    "create, expiry in the past": lambda w: w.keys.create({"name": "n", "expiry_date": _later(-1)}),
    "create, scopes not grantable": lambda w: w.keys.create({"name": "n", "scopes": ["admin"]}),
    "create, over the limit": lambda w: _full(w).create({"name": "one too many"}),
    "create, invalid JSON": lambda w: w.keys.create("{", content_type="application/json"),
    "create, a JSON list": lambda w: w.keys.create("[]", content_type="application/json"),
    "create, no content type": lambda w: w.keys.create('{"name": "n"}', content_type=""),
    "create, a form": lambda w: w.keys.create(
        "name=n", content_type="application/x-www-form-urlencoded"
    ),
    "edit": lambda w: w.keys.update(w.mine.prefix, {"name": "renamed"}),
    "edit scopes": lambda w: w.keys.update(w.mine.prefix, {"scopes": ["reports:daily"]}),
    "edit, not grantable": lambda w: w.keys.update(w.mine.prefix, {"scopes": ["admin"]}),
    "edit, bad field": lambda w: w.keys.update(w.mine.prefix, {"expiry_date": None}),
    "edit, revoked": lambda w: w.keys.update(_revoked(w), {"name": "x"}),
    "rotate": lambda w: w.keys.rotate(w.mine.prefix, {"grace_period": 60}),
    "rotate, no grace": lambda w: w.keys.rotate(w.mine.prefix),
    "rotate, grace too long": lambda w: w.keys.rotate(w.mine.prefix, {"grace_period": 10**6}),
    "rotate, revoked": lambda w: w.keys.rotate(_revoked(w)),
    "revoke": lambda w: w.keys.revoke(w.mine.prefix),
    "revoke, again": lambda w: w.keys.revoke(_revoked(w)),
    "retrieve, theirs": lambda w: w.keys.get(w.theirs.prefix),
    "edit, theirs": lambda w: w.keys.update(w.theirs.prefix, {"name": "x"}),
    "rotate, theirs": lambda w: w.keys.rotate(w.theirs.prefix),
    "revoke, theirs": lambda w: w.keys.revoke(w.theirs.prefix),
    "retrieve, by id": lambda w: w.keys.get(str(w.mine.pk)),
    "retrieve, unknown": lambda w: w.keys.get("unknown00000"),
    "key without keys:write creates": lambda w: w.as_key("orders:read").create({"name": "n"}),
    "key without keys:read lists": lambda w: w.as_key("orders:read").list(),
    "key with keys:read lists": lambda w: w.as_key("keys:read").list(),
    "key with keys:write creates": lambda w: w.as_key("keys:write").create({"name": "n"}),
    "key grants more than it holds": lambda w: w.as_key("keys:write").create(
        {"name": "n", "scopes": ["orders:read"]}
    ),
    "key of another model": lambda w: KeysClient(
        w.keys.framework,
        Client(),
        headers={"X-API-Key": APIKey.objects.create_key(name="p", scopes=["*"])[1]},
    ).list(),
    "team, no team": lambda w: w.team_keys().list(),
}


def _answer(framework: str, case: Callable[[World], Any]) -> tuple[int, Any, str | None]:
    Team.objects.all().delete()
    response = case(build_world(framework))
    return response.status_code, normalised(response.json()), response.get("Cache-Control")


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_both_frameworks_answer_alike(case: Callable[[World], Any]) -> None:
    ninja, drf = (_answer(framework, case) for framework in FRAMEWORKS)
    assert ninja == drf
    status, body, _cache_control = ninja
    assert status < 500
    if status >= 400:
        assert set(body) >= {"detail", "code"}


def test_the_table_covers_every_status_the_api_answers() -> None:
    statuses = {_answer("drf", case)[0] for case in CASES.values()}
    assert statuses == {200, 201, 400, 401, 403, 404, 409, 415}
