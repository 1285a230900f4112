"""The DRF adapter on sync views: every outcome, through DRF's own test client and factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import override_settings
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from async_api_key.drf import BaseHasAPIKey, HasAPIKey, HasScopes, KeyParser
from async_api_key.models import APIKey
from async_api_key.refusals import NOT_PROVIDED_DETAIL
from tests.conftest import QueryLog
from tests.support import REPO_ROOT
from tests.support.drf_views import AuthenticatedView, BearerKeyParser
from tests.support.key_factories import (
    MALFORMED_KEY,
    expired_key,
    revoked_key,
    unknown_key,
    valid_key,
    wrong_secret_key,
)
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.drf_urls")]

INVALID_BODY = {"detail": "Invalid or missing API key.", "code": "invalid_api_key"}
UNAVAILABLE_BODY = {
    "detail": "API key verification is temporarily unavailable. Try again later.",
    "code": "api_key_verification_unavailable",
}


BAD_KEYS: list[tuple[str, Callable[[], str]]] = [
    ("malformed", lambda: MALFORMED_KEY),
    ("empty", lambda: ""),
    ("unknown", unknown_key),
    ("wrong secret", wrong_secret_key),
    ("revoked", revoked_key),
    ("expired", expired_key),
]
BAD_KEY_IDS = [case[0] for case in BAD_KEYS]


def _client(raw: str | None = None, keyword: str = "Api-Key") -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {raw}")
    return client


def _break_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)


# APIKeyAuthentication + HasAPIKey


def test_valid_key_is_allowed_and_becomes_request_auth() -> None:
    api_key, raw = APIKey.objects.create_key(name="reporting")
    response = _client(raw).get("/authenticated/")
    assert response.status_code == 200
    assert response.json() == {"prefix": api_key.prefix, "name": "reporting"}


def test_request_user_stays_anonymous_by_default() -> None:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Api-Key {valid_key()}")
    seen: dict[str, Any] = {}

    class Probe(AuthenticatedView):
        def get(self, request: Any) -> Any:
            seen["user_is_authenticated"] = request.user.is_authenticated
            return super().get(request)

    assert Probe.as_view()(request).status_code == 200
    assert seen == {"user_is_authenticated": False}


@pytest.mark.parametrize(("case", "make_key"), BAD_KEYS, ids=BAD_KEY_IDS)
def test_bad_key_is_401_with_a_challenge_and_the_shared_body(
    case: str, make_key: Callable[[], str]
) -> None:
    response = _client(make_key()).get("/authenticated/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'
    assert response.json() == INVALID_BODY


def test_missing_key_is_401_with_a_challenge() -> None:
    response = _client().get("/authenticated/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'


def test_bad_key_stays_401_behind_an_authenticator_without_a_scheme() -> None:
    response = _client(unknown_key()).get("/session-first/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Api-Key realm="api"'


def test_keyword_is_case_insensitive() -> None:
    assert _client(valid_key(), keyword="api-key").get("/authenticated/").status_code == 200


def test_key_in_the_x_api_key_header_is_accepted() -> None:
    response = APIClient().get("/authenticated/", HTTP_X_API_KEY=valid_key())
    assert response.status_code == 200


def test_bad_key_never_reaches_the_response_or_the_logs() -> None:
    raw = wrong_secret_key()
    response = _client(raw).get("/authenticated/")
    assert raw not in response.content.decode()


# HasAPIKey alone, as djangorestframework-api-key users have it


def test_permission_alone_allows_a_valid_key() -> None:
    assert _client(valid_key()).get("/permission-only/").status_code == 200


@pytest.mark.parametrize(
    ("case", "make_key"),
    [*BAD_KEYS, ("missing", lambda: None)],
    # The ids pytest once derived from this module's own key factories (``_wrong_secret``):
    # kept so that the test ids do not change.
    ids=[*(f"{case}-_{case.replace(' ', '_')}" for case in BAD_KEY_IDS), "missing-<lambda>"],
)
def test_permission_alone_refuses_with_the_shared_body(
    case: str, make_key: Callable[[], str | None]
) -> None:
    response = _client(make_key()).get("/permission-only/")
    assert response.status_code == 403
    # No key at all is said in DRF's own words, as DRF and the Ninja adapter answer it.
    expected = {"detail": NOT_PROVIDED_DETAIL} if case == "missing" else INVALID_BODY
    assert response.json() == expected


@pytest.mark.parametrize(("case", "make_key"), BAD_KEYS, ids=BAD_KEY_IDS)
def test_permission_behind_other_authenticators_says_the_key_is_invalid(
    case: str, make_key: Callable[[], str]
) -> None:
    """DRF's status rule (403: the first class names no scheme), and what really happened."""
    response = _client(make_key()).get("/permission-behind-session/")
    assert response.status_code == 403
    assert response.json() == INVALID_BODY


def test_permission_behind_a_challenging_authenticator_answers_its_challenge() -> None:
    response = _client(revoked_key()).get("/permission-behind-basic/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert response.json() == INVALID_BODY


def test_permission_behind_other_authenticators_without_a_key_is_drfs_answer() -> None:
    response = APIClient().get("/permission-behind-session/")
    assert response.status_code == 403
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_permission_behind_other_authenticators_allows_a_valid_key() -> None:
    assert _client(valid_key()).get("/permission-behind-session/").status_code == 200


def test_a_logged_in_user_with_an_invalid_key_gets_the_permissions_403() -> None:
    user = User.objects.create_user("ada", password="pw")
    client = _client(revoked_key())
    client.force_login(user)
    response = client.get("/permission-behind-session/")
    assert response.status_code == 403
    assert response.json() == INVALID_BODY


def test_permission_works_with_the_api_request_factory() -> None:
    from tests.support.drf_views import PermissionOnlyView

    factory = APIRequestFactory()
    allowed = factory.get("/", HTTP_AUTHORIZATION=f"Api-Key {valid_key()}")
    refused = factory.get("/", HTTP_AUTHORIZATION=f"Api-Key {revoked_key()}")
    assert PermissionOnlyView.as_view()(allowed).status_code == 200
    assert PermissionOnlyView.as_view()(refused).status_code == 403


@pytest.mark.parametrize("granted", [[], ["orders:read"]])
def test_a_scope_permission_alone_refuses_a_key_from_outside_its_allowlist_as_such(
    granted: list[str],
) -> None:
    """``HasScopes`` with no authentication class: a key used from outside its allowlist is
    refused for that reason, and the answer says nothing about the scopes it grants."""

    class ScopedPermissionOnlyView(APIView):
        authentication_classes = ()
        permission_classes = (HasScopes.require("orders:read"),)

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

    raw = valid_key(allowed_networks=["203.0.113.0/24"], scopes=granted)
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = ScopedPermissionOnlyView.as_view()(request)
    response.render()
    assert response.status_code == 403
    assert response.data["code"] == "ip_not_allowed"
    assert "missing_scopes" not in response.data


# Custom header and custom keyword


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM_KEY")
def test_custom_header_setting_is_honoured() -> None:
    assert APIClient().get("/authenticated/", HTTP_X_CUSTOM_KEY=valid_key()).status_code == 200


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM_KEY")
def test_custom_header_setting_makes_it_the_only_header_read() -> None:
    assert _client(valid_key()).get("/authenticated/").status_code == 401
    assert _client(valid_key()).get("/permission-only/").status_code == 403


def test_custom_keyword_is_accepted_and_named_in_the_challenge() -> None:
    assert _client(valid_key(), keyword="Bearer").get("/bearer/").status_code == 200
    refused = _client(valid_key(), keyword="Api-Key").get("/bearer/")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'


def test_key_parser_keyword_defaults_to_api_key_and_follows_the_settings() -> None:
    assert KeyParser.keyword == "Api-Key"
    assert KeyParser().keyword == "Api-Key"
    with override_settings(ASYNC_API_KEY={"KEYWORD": "Token"}):
        assert KeyParser().keyword == "Token"
        assert _client(valid_key(), keyword="Token").get("/authenticated/").status_code == 200


def test_key_parser_takes_a_keyword_and_a_header_like_ninjas_auth() -> None:
    raw = valid_key()
    assert (
        KeyParser(header="X-Partner-Key").get(APIRequestFactory().get("/", HTTP_X_PARTNER_KEY=raw))
        == raw
    )
    assert KeyParser(header="").get(APIRequestFactory().get("/", HTTP_X_API_KEY=raw)) is None
    bearer = KeyParser(keyword="Bearer")
    assert bearer.keyword == "Bearer"
    assert bearer.get(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {raw}")) == raw


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_CUSTOM")
def test_key_parser_given_a_header_sets_the_upstream_custom_header_aside() -> None:
    raw = valid_key()
    request = APIRequestFactory().get("/", HTTP_X_PARTNER_KEY=raw, HTTP_X_CUSTOM="other")
    assert KeyParser(header="X-Partner-Key").get(request) == raw
    assert KeyParser().get(request) == "other"


def test_a_view_reads_keys_from_its_parsers_header() -> None:
    _, raw = APIKey.objects.create_key(name="partner", scopes=["reports:read"])
    partner = APIClient()
    partner.credentials(HTTP_X_PARTNER_KEY=raw)
    assert partner.get("/partner-reports/").status_code == 200
    default = APIClient()
    default.credentials(HTTP_X_API_KEY=raw)
    assert default.get("/partner-reports/").status_code == 401


def test_a_keyword_set_on_a_subclass_is_the_parsers_own() -> None:
    assert BearerKeyParser().key_source.keyword == "Bearer"
    assert KeyParser().key_source.keyword is None  # follows the settings


def test_key_parser_reads_the_key_like_the_upstream_one() -> None:
    raw = valid_key()
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert KeyParser().get(request) == raw
    assert KeyParser().get(APIRequestFactory().get("/")) is None


def test_key_parser_reads_a_drf_request_as_its_http_request() -> None:
    """A DRF ``Request`` is read through the ``HttpRequest`` it wraps, with the same result."""
    raw = valid_key()
    http_request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"api-KEY {raw}")
    assert KeyParser().get(Request(http_request)) == raw == KeyParser().get(http_request)
    assert KeyParser().get(Request(APIRequestFactory().get("/"))) is None


# Composed permissions


def test_or_lets_a_key_or_a_logged_in_user_through() -> None:
    assert _client(valid_key()).get("/key-or-user/").status_code == 200
    user_client = APIClient()
    user_client.force_login(User.objects.create_user("alice"))
    assert user_client.get("/key-or-user/").status_code == 200
    anonymous = APIClient().get("/key-or-user/")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Api-Key realm="api"'


def test_and_requires_the_key_and_its_scope() -> None:
    assert _client(valid_key(scopes=["orders:read"])).get("/key-with-scope/").status_code == 200
    assert _client(valid_key(scopes=["billing:read"])).get("/key-with-scope/").status_code == 403
    assert _client().get("/key-with-scope/").status_code == 401


def test_not_inverts_the_permission() -> None:
    assert APIClient().get("/without-key/").status_code == 200
    assert _client(valid_key()).get("/without-key/").status_code == 403


# Custom key model with an owner


def test_custom_key_model_gives_the_view_the_key_and_its_owner() -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="acme", organization=organization)
    response = _client(raw).get("/organization/")
    assert response.status_code == 200
    assert response.json() == {"organization": "Acme"}


def test_custom_key_model_honours_its_get_usable_keys() -> None:
    organization = Organization.objects.create(name="Gone", active=False)
    _, raw = OrganizationAPIKey.objects.create_key(name="gone", organization=organization)
    assert _client(raw).get("/organization/").status_code == 401


def test_key_of_another_model_is_unknown_to_a_custom_model_view() -> None:
    assert _client(valid_key()).get("/organization/").status_code == 401


# Scopes


@pytest.mark.parametrize("granted", [["orders:read"], ["orders:*"], ["*"]])
def test_key_granting_the_required_scope_is_allowed(granted: list[str]) -> None:
    assert _client(valid_key(scopes=granted)).get("/orders/").status_code == 200


def test_missing_scope_is_403_naming_it() -> None:
    response = _client(valid_key(scopes=["orders:write"])).get("/orders/")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "This API key lacks the required scope(s): orders:read",
        "code": "insufficient_scope",
        "missing_scopes": ["orders:read"],
    }


def test_key_without_scopes_is_refused_where_scopes_are_required() -> None:
    assert _client(valid_key()).get("/orders/").status_code == 403


def test_scopes_can_come_from_the_view() -> None:
    both = valid_key(scopes=["billing:invoices:read", "billing:invoices:write"])
    assert _client(both).get("/invoices/").status_code == 200
    response = _client(valid_key(scopes=["billing:invoices:read"])).get("/invoices/")
    assert response.status_code == 403
    assert response.json()["missing_scopes"] == ["billing:invoices:write"]


def test_scope_permission_without_scopes_is_a_configuration_error() -> None:
    with pytest.raises(ImproperlyConfigured, match="required_scopes"):
        _client(valid_key(scopes=["*"])).get("/scopes-forgotten/")


def test_scope_permission_for_a_custom_key_model() -> None:
    organization = Organization.objects.create(name="Acme")
    _, granted = OrganizationAPIKey.objects.create_key(
        name="r", organization=organization, scopes=["reports:read"]
    )
    _, ungranted = OrganizationAPIKey.objects.create_key(name="n", organization=organization)
    assert _client(granted).get("/organization-reports/").status_code == 200
    assert _client(ungranted).get("/organization-reports/").status_code == 403


@pytest.mark.parametrize("scopes", [(), ("orders read",), ("",)])
def test_require_checks_its_scopes_at_once(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (the message is the scopes module's)
        HasScopes.require(*scopes)


# One verification per request


@override_settings(ASYNC_API_KEY={"LAST_USED_INTERVAL": None})
@pytest.mark.parametrize("url", ["/authenticated/", "/orders/", "/key-with-scope/"])
def test_authentication_and_permissions_verify_the_key_once(queries: QueryLog, url: str) -> None:
    raw = valid_key(scopes=["orders:read"])
    client = _client(raw)
    with queries.capture():
        response = client.get(url)
    assert response.status_code == 200
    assert queries.count == 1


class _OrganizationKeyInItsHeader(BaseHasAPIKey):
    model = OrganizationAPIKey
    key_parser = KeyParser(keyword="Org-Key", header="X-Org-Key")


class _KeyInAnotherHeader(HasAPIKey):
    key_parser = KeyParser(keyword="Other-Key", header="X-Other-Key")


@override_settings(ASYNC_API_KEY={"CACHE_ENABLED": False, "LAST_USED_INTERVAL": None})
def test_a_request_verifies_each_model_and_key_once(queries: QueryLog) -> None:
    organization = Organization.objects.create(name="Acme")
    _, organization_raw = OrganizationAPIKey.objects.create_key(
        name="acme", organization=organization
    )
    raw, other_raw = valid_key(), valid_key()
    request = Request(
        APIRequestFactory().get(
            "/",
            HTTP_AUTHORIZATION=f"Api-Key {raw}",
            HTTP_X_ORG_KEY=organization_raw,
            HTTP_X_OTHER_KEY=other_raw,
        )
    )
    with queries.capture():  # no cache: each verification is a query, unless remembered
        for _ in range(2):
            assert HasAPIKey().has_permission(request, APIView())
            assert _OrganizationKeyInItsHeader().has_permission(request, APIView())
    assert queries.count == 2
    with queries.capture():  # another key of a model already verified: verified too
        assert _KeyInAnotherHeader().has_permission(request, APIView())
        assert _KeyInAnotherHeader().has_permission(request, APIView())
        assert HasAPIKey().has_permission(request, APIView())
        assert _OrganizationKeyInItsHeader().has_permission(request, APIView())
        assert not HasScopes.require("orders:read")().has_permission(request, APIView())
    assert queries.count == 1


# Key store outage


@pytest.mark.parametrize("url", ["/authenticated/", "/permission-only/", "/orders/"])
def test_key_store_outage_is_503_with_the_shared_body(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    raw = valid_key(scopes=["orders:read"])
    _break_the_database(monkeypatch)
    response = _client(raw).get(url)
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE_BODY


def test_classes_can_be_named_in_rest_framework_default_settings() -> None:
    """DRF imports DEFAULT_* classes while rest_framework.views itself is being imported."""
    import subprocess
    import sys

    script = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes', 'django.contrib.auth',"
        " 'rest_framework', 'async_api_key'],"
        " DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}},"
        " REST_FRAMEWORK={"
        "'DEFAULT_AUTHENTICATION_CLASSES': ['async_api_key.drf.APIKeyAuthentication'],"
        "'DEFAULT_PERMISSION_CLASSES': ['async_api_key.drf.HasAPIKey'],"
        "'DEFAULT_THROTTLE_CLASSES': ['async_api_key.drf.APIKeyRateThrottle']})\n"
        "django.setup()\n"
        "from rest_framework import routers, views\n"
        "print(views.APIView.authentication_classes[0].__name__)\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "APIKeyAuthentication"
