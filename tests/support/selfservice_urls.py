"""The self-service API served by Django-Ninja (async) and by DRF (sync), from one policy per
key model, for ``tests/unit/selfservice/`` and ``tests/parity/test_selfservice.py``:
``@pytest.mark.urls("tests.support.selfservice_urls")``.

- ``/ninja/keys`` and ``/drf/keys/``: keys a user owns; a signed-in user, or a key of the
  same model (which needs ``keys:read`` / ``keys:write``).
- ``/ninja/team-keys`` and ``/drf/team-keys/``: keys of the team the user belongs to.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import URLPattern, URLResolver, include, path
from ninja import NinjaAPI
from rest_framework.authentication import SessionAuthentication
from rest_framework.routers import DefaultRouter

from async_api_key import drf, ninja
from async_api_key.selfservice import SelfServicePolicy
from async_api_key.selfservice.drf import APIKeyViewSet
from async_api_key.selfservice.ninja import APIKeyRouter, SessionAuth
from tests.support.selfservice_app.models import Team, TeamAPIKey, UserAPIKey

__all__ = ["GRANTABLE", "TEAM_POLICY", "USER_POLICY", "api", "urlpatterns"]

#: What a user may grant its keys.
GRANTABLE = frozenset({"orders:read", "orders:write", "reports:*", "keys:read", "keys:write"})


def grantable_scopes(owner: Any) -> frozenset[str]:
    return GRANTABLE


async def team_of(request: Any, user: Any) -> Team | None:
    """The team the user belongs to (an async hook, to test both kinds)."""
    return await Team.objects.filter(members=user).order_by("pk").afirst()


def team_scopes(team: Team) -> set[str]:
    return {"reports:read"}


USER_POLICY = SelfServicePolicy(
    model=UserAPIKey,
    owner_field="user",
    grantable_scopes=grantable_scopes,
    max_active_keys=3,
    max_lifetime=timedelta(days=90),
    max_grace_period=timedelta(days=1),
)
TEAM_POLICY = SelfServicePolicy(
    model=TeamAPIKey,
    owner_field="team",
    owner_for=team_of,
    grantable_scopes=team_scopes,
    max_active_keys=None,
    require_expiry=True,
    max_lifetime=timedelta(days=30),
)

api = NinjaAPI(urls_namespace="selfservice")
ninja.register_error_handler(api)
api.add_router(
    "/keys",
    APIKeyRouter(USER_POLICY, auth=[SessionAuth(), ninja.APIKeyAuth(model=UserAPIKey)]),
)
api.add_router("/team-keys", APIKeyRouter(TEAM_POLICY, name="team_keys"))


class UserAPIKeyAuthentication(drf.APIKeyAuthentication):
    model = UserAPIKey


class UserKeys(APIKeyViewSet):
    policy = USER_POLICY
    authentication_classes = [SessionAuthentication, UserAPIKeyAuthentication]


class TeamKeys(APIKeyViewSet):
    policy = TEAM_POLICY
    authentication_classes = [SessionAuthentication]


router = DefaultRouter()
router.register("keys", UserKeys, basename="user-key")
router.register("team-keys", TeamKeys, basename="team-key")

urlpatterns: list[URLPattern | URLResolver] = [
    path("ninja/", api.urls),
    path("drf/", include(router.urls)),
]
