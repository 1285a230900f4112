"""The Django-Ninja adapter: every outcome on async and sync operations, with both key models."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest
from django.test import AsyncClient, Client, RequestFactory, override_settings
from ninja import NinjaAPI
from ninja.security import django_auth
from ninja.testing import TestAsyncClient, TestClient
from ninja.testing.client import NinjaResponse

from async_api_key.models import AbstractAPIKey, APIKey
from async_api_key.ninja import APIKeyAuth, APIKeyRefused, document_scopes, register_error_handler
from async_api_key.refusals import NOT_PROVIDED_DETAIL
from async_api_key.verification import Reason
from tests.conftest import HopCounter
from tests.support.key_factories import (
    MALFORMED_KEY,
    a_second_ago,
    revoke,
    unknown_key,
    wrong_secret_for,
)
from tests.support.ninja_app import (
    ORDERS_READ,
    ORGANIZATION_KEY,
    ORGANIZATION_ORDERS_READ,
    PARTNER_HEADER,
    api,
    bare_api,
)
from tests.support.testapp.models import Organization, OrganizationAPIKey

client = TestClient(api)
async_client = TestAsyncClient(api)

#: Ninja's 401 once no auth accepted the request, as register_error_handler answers it: the
#: body of the refused key and the challenge, as the DRF adapter answers.
NOT_PROVIDED = {"detail": NOT_PROVIDED_DETAIL}
INVALID = {"detail": "Invalid or missing API key.", "code": "invalid_api_key"}
SCOPE_REFUSAL = {
    "detail": "This API key lacks the required scope(s): orders:read",
    "code": "insufficient_scope",
    "missing_scopes": ["orders:read"],
}
IP_REFUSAL = {
    "detail": "This API key may not be used from this address.",
    "code": "ip_not_allowed",
}
UNAVAILABLE = {
    "detail": "API key verification is temporarily unavailable. Try again later.",
    "code": "api_key_verification_unavailable",
}

KeyModel = type[AbstractAPIKey]


def create_key(model: KeyModel, *, active_owner: bool = True, **fields: Any) -> tuple[Any, str]:
    """Create a key of ``model``; keys of the custom model belong to a new organization."""
    fields.setdefault("name", "ci")
    if model is OrganizationAPIKey:
        fields["organization"] = Organization.objects.create(name="Acme", active=active_owner)
    return model.objects.create_key(**fields)


def api_key_header(raw: str) -> dict[str, str]:
    return {"Authorization": f"Api-Key {raw}"}


def _break_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)


# Every outcome, as a request to an endpoint and the answer it gets.

Headers = dict[str, str]


@dataclass(frozen=True)
class Case:
    label: str
    #: Prepares the database and returns the request's headers (sync: may use the ORM).
    prepare: Callable[[KeyModel, pytest.MonkeyPatch], Headers]
    status: int
    body: dict[str, Any] | None = None
    scoped: bool = False
    custom_model_only: bool = False


def _valid(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(create_key(model)[1])


def _valid_with_wildcard_scope(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(create_key(model, scopes=["orders:*"])[1])


def _valid_in_x_api_key(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return {"X-API-Key": create_key(model)[1]}


def _missing(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return {}


def _other_scheme(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return {"Authorization": "Bearer something-else"}


def _malformed(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(MALFORMED_KEY)


def _unknown(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(unknown_key())


def _invalid_secret(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(wrong_secret_for(create_key(model)[0].prefix))


def _revoked(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(revoke(create_key(model)))


def _expired(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(create_key(model, expiry_date=a_second_ago())[1])


def _owner_retired(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(create_key(model, active_owner=False)[1])


def _lacks_scope(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    return api_key_header(create_key(model, scopes=["orders:write"])[1])


def _outside_allowed_networks(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    # Ninja's test clients send REMOTE_ADDR 127.0.0.1.
    return api_key_header(create_key(model, allowed_networks=["10.0.0.0/8"])[1])


def _store_unavailable(model: KeyModel, monkeypatch: pytest.MonkeyPatch) -> Headers:
    headers = api_key_header(create_key(model)[1])
    _break_the_database(monkeypatch)
    return headers


CASES = [
    Case("valid", _valid, 200),
    Case("valid in X-API-Key", _valid_in_x_api_key, 200),
    Case("valid with a wildcard scope", _valid_with_wildcard_scope, 200, scoped=True),
    Case("missing", _missing, 401, NOT_PROVIDED),
    Case("another auth scheme", _other_scheme, 401, NOT_PROVIDED),
    Case("malformed", _malformed, 401, INVALID),
    Case("unknown", _unknown, 401, INVALID),
    Case("wrong secret", _invalid_secret, 401, INVALID),
    Case("revoked", _revoked, 401, INVALID),
    Case("expired", _expired, 401, INVALID),
    Case("owner retired", _owner_retired, 401, INVALID, custom_model_only=True),
    Case("lacks the scope", _lacks_scope, 403, SCOPE_REFUSAL, scoped=True),
    Case("outside its allowed networks", _outside_allowed_networks, 403, IP_REFUSAL),
    Case("key store unavailable", _store_unavailable, 503, UNAVAILABLE),
]

PARAMS = [
    pytest.param(case, model, id=f"{model.__name__}-{case.label}")
    for model in (APIKey, OrganizationAPIKey)
    for case in CASES
    if model is OrganizationAPIKey or not case.custom_model_only
]


def _path(kind: str, model: KeyModel, case: Case) -> str:
    prefix = "/organization" if model is OrganizationAPIKey else ""
    return f"{prefix}/{kind}/{'orders' if case.scoped else 'whoami'}"


def _check(response: NinjaResponse, model: KeyModel, case: Case) -> None:
    assert response.status_code == case.status, response.content
    if case.status == 200:
        data = response.json()
        assert data["auth_type"] == model.__name__
        assert data["auth"] == str(model.objects.get())
        if model is OrganizationAPIKey:
            assert data["organization"] == "Acme"
    else:
        assert response.json() == case.body
    if case.status == 401:
        assert response.headers["WWW-Authenticate"] == 'Api-Key realm="api"'


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("case", "model"), PARAMS)
async def test_async_endpoint_outcomes(
    case: Case, model: KeyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await sync_to_async(case.prepare)(model, monkeypatch)
    response = await async_client.get(_path("async", model, case), headers=headers)
    monkeypatch.undo()
    await sync_to_async(_check)(response, model, case)


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "model"), PARAMS)
def test_sync_endpoint_outcomes(
    case: Case, model: KeyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = case.prepare(model, monkeypatch)
    response = client.get(_path("sync", model, case), headers=headers)
    monkeypatch.undo()
    _check(response, model, case)


@pytest.mark.django_db
def test_refused_keys_cannot_be_told_apart() -> None:
    answers = set()
    # (A request without a key is answered in other words: its sender knows it sent none.)
    for prepare in (_malformed, _unknown, _invalid_secret, _revoked, _expired):
        response = client.get("/sync/whoami", headers=prepare(APIKey, pytest.MonkeyPatch()))
        answers.add((response.status_code, response.content, tuple(sorted(response.headers))))
    assert len(answers) == 1


@pytest.mark.django_db(transaction=True)
async def test_a_key_is_accepted_from_inside_its_allowed_networks() -> None:
    _, raw = await APIKey.objects.acreate_key(name="office", allowed_networks=["10.0.0.0/8"])
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    response = await async_client.get("/async/whoami", headers={"X-API-Key": raw}, META=inside)
    assert response.status_code == 200


@pytest.mark.django_db
@override_settings(ASYNC_API_KEY={"TRUSTED_PROXY_COUNT": 1})
def test_the_client_address_may_come_from_a_trusted_proxy() -> None:
    _, raw = APIKey.objects.create_key(name="office", allowed_networks=["10.0.0.0/8"])
    forwarded = {"X-API-Key": raw, "X-Forwarded-For": "10.1.2.3"}
    assert client.get("/sync/whoami", headers=forwarded).status_code == 200
    forwarded["X-Forwarded-For"] = "192.0.2.1"
    assert client.get("/sync/whoami", headers=forwarded).status_code == 403


# Reading the key.


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "api-key {raw}"},
        {"Authorization": "API-KEY   {raw} "},
        {"x-api-key": "{raw}"},
        {"X-API-KEY": "{raw}"},
    ],
    ids=["lower-case keyword", "upper-case keyword and spaces", "lower-case header", "upper"],
)
def test_keyword_and_header_names_are_case_insensitive(headers: Headers) -> None:
    raw = create_key(APIKey)[1]
    filled = {name: value.format(raw=raw) for name, value in headers.items()}
    assert client.get("/sync/whoami", headers=filled).status_code == 200


@pytest.mark.django_db
def test_a_per_instance_header_replaces_the_default_header() -> None:
    raw = create_key(APIKey)[1]
    assert client.get("/sync/whoami", headers={"X-Partner-Key": raw}).status_code == 401
    assert client.get("/sync/whoami", headers={"X-API-Key": raw}).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_a_per_instance_header_is_read_by_that_instance() -> None:
    raw = (await sync_to_async(create_key)(APIKey))[1]
    partner = await async_client.get("/async/partner", headers={"X-Partner-Key": raw})
    assert partner.status_code == 200
    default = await async_client.get("/async/partner", headers={"X-API-Key": raw})
    assert default.status_code == 401
    authorization = await async_client.get("/async/partner", headers=api_key_header(raw))
    assert authorization.status_code == 200


@pytest.mark.django_db
def test_a_per_instance_keyword_is_honoured() -> None:
    token_api = NinjaAPI(urls_namespace="per_instance_keyword")

    @token_api.get("/orders", auth=APIKeyAuth(keyword="Token", header=""))
    def orders(request: Any) -> dict[str, str]:
        return {"prefix": request.auth.prefix}

    api_key, raw = APIKey.objects.create_key(name="token keyword")
    token_client = TestClient(token_api)
    answer = token_client.get("/orders", headers={"Authorization": f"Token {raw}"})
    assert (answer.status_code, answer.json()) == (200, {"prefix": api_key.prefix})
    for other_source in ({"Authorization": f"Api-Key {raw}"}, {"X-API-Key": raw}):
        assert token_client.get("/orders", headers=other_source).status_code == 401


@pytest.mark.django_db
@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_LEGACY_KEY")
def test_upstream_custom_header_setting_is_honoured() -> None:
    raw = create_key(APIKey)[1]
    assert client.get("/sync/whoami", headers={"X-Legacy-Key": raw}).status_code == 200
    assert client.get("/sync/whoami", headers=api_key_header(raw)).status_code == 401


# Through Django's own request handling (middleware, real META), not only Ninja's test client.


@pytest.mark.urls("tests.support.ninja_urls")
@pytest.mark.django_db(transaction=True)
async def test_async_endpoint_through_djangos_asgi_handler(async_client: AsyncClient) -> None:
    _, raw = await APIKey.objects.acreate_key(name="asgi")
    ok = await async_client.get("/api/async/whoami", headers={"X-API-Key": raw})
    assert ok.status_code == 200
    assert ok.json()["auth_type"] == "APIKey"
    assert (await async_client.get("/api/async/whoami")).status_code == 401


@pytest.mark.urls("tests.support.ninja_urls")
@pytest.mark.django_db
def test_sync_endpoint_through_djangos_wsgi_handler(client: Client) -> None:
    _, raw = APIKey.objects.create_key(name="wsgi")
    assert client.get("/api/sync/whoami", headers=api_key_header(raw)).status_code == 200
    assert client.get("/api/sync/whoami").status_code == 401


# request.auth


@pytest.mark.django_db
def test_request_auth_is_the_key_and_its_str_holds_no_secret() -> None:
    _, raw = create_key(APIKey, name="billing")
    data = client.get("/sync/whoami", headers=api_key_header(raw)).json()
    assert data == {"auth": "billing", "auth_type": "APIKey"}
    secret = raw.rsplit("_", 1)[1]
    assert secret not in data["auth"]
    assert raw not in data["auth"]


@pytest.mark.django_db(transaction=True)
async def test_request_auth_reaches_the_owner_of_a_custom_key() -> None:
    _, raw = await sync_to_async(create_key)(OrganizationAPIKey)
    response = await async_client.get("/organization/async/whoami", headers=api_key_header(raw))
    assert response.json()["organization"] == "Acme"


@pytest.mark.django_db
def test_a_key_of_another_model_is_unknown() -> None:
    raw = create_key(APIKey)[1]
    assert client.get("/organization/sync/whoami", headers=api_key_header(raw)).status_code == 401


# Combined auth lists: auth=[APIKeyAuth(), django_auth]

ADA = User(username="ada")


@pytest.mark.django_db
def test_combined_auth_prefers_a_valid_key() -> None:
    raw = create_key(APIKey)[1]
    data = client.get("/sync/combined", headers=api_key_header(raw), user=ADA).json()
    assert data["auth_type"] == "APIKey"


@pytest.mark.django_db
@pytest.mark.parametrize("prepare", [_missing, _malformed, _revoked], ids=lambda f: f.__name__)
def test_combined_auth_falls_back_to_the_session_when_the_key_is_not_usable(
    prepare: Callable[[KeyModel, pytest.MonkeyPatch], Headers],
) -> None:
    headers = prepare(APIKey, pytest.MonkeyPatch())
    response = client.get("/sync/combined", headers=headers, user=ADA)
    assert response.status_code == 200
    assert response.json() == {"auth": "ada", "auth_type": "User"}


@pytest.mark.django_db
def test_combined_auth_answers_401_when_nothing_authenticates() -> None:
    response = client.get("/sync/combined", headers=_unknown(APIKey, pytest.MonkeyPatch()))
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["WWW-Authenticate"] == 'Api-Key realm="api"'


@pytest.mark.django_db(transaction=True)
async def test_combined_auth_on_an_async_endpoint() -> None:
    raw = (await sync_to_async(create_key)(APIKey))[1]
    by_key = await async_client.get("/async/combined", headers=api_key_header(raw), user=ADA)
    assert by_key.json()["auth_type"] == "APIKey"
    by_session = await async_client.get("/async/combined", user=ADA)
    assert by_session.json()["auth_type"] == "User"
    assert (await async_client.get("/async/combined")).status_code == 401


@pytest.mark.django_db
def test_a_scope_refusal_stops_the_auth_chain() -> None:
    """A genuine key refused by policy is an answer, not a reason to try the session."""
    combined = NinjaAPI(urls_namespace="async_api_key_ninja_chain")

    @combined.get("/reports", auth=[ORDERS_READ, APIKeyAuth()])
    def reports(request: Any) -> dict[str, str]:
        return {"auth": str(request.auth)}

    raw = create_key(APIKey, scopes=["billing:read"])[1]
    response = TestClient(combined).get("/reports", headers=api_key_header(raw))
    assert response.status_code == 403


async def test_an_operation_can_opt_out_of_the_api_auth() -> None:
    assert (await async_client.get("/open")).status_code == 200


# The bare API: no handler registered for the structured body.


@pytest.mark.django_db
def test_without_the_error_handler_refusals_keep_their_status_and_name_the_scope() -> None:
    raw = create_key(APIKey, scopes=["billing:read"])[1]
    response = TestClient(bare_api).get("/sync/orders", headers=api_key_header(raw))
    assert response.status_code == 403
    assert response.json() == {"detail": SCOPE_REFUSAL["detail"]}


@pytest.mark.django_db(transaction=True)
async def test_without_the_error_handler_an_outage_is_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = (await sync_to_async(create_key)(APIKey, scopes=["orders:read"]))[1]
    _break_the_database(monkeypatch)
    response = await TestAsyncClient(bare_api).get("/async/orders", headers=api_key_header(raw))
    monkeypatch.undo()
    assert response.status_code == 503
    assert response.json() == {"detail": UNAVAILABLE["detail"]}


def test_the_refusal_exception_carries_the_outcome_body() -> None:
    from async_api_key.verification import VerificationOutcome

    refusal = APIKeyRefused(
        VerificationOutcome(Reason.INSUFFICIENT_SCOPE, missing_scopes=("orders:read",))
    )
    assert refusal.status_code == 403
    assert refusal.body == SCOPE_REFUSAL
    assert refusal.missing_scopes == ("orders:read",)
    assert str(refusal) == SCOPE_REFUSAL["detail"]


# The async path stays off the event loop for the ORM, with one thread hop.


@dataclass
class SqlThreads:
    on_event_loop: list[str]
    off_event_loop: list[str]


@pytest.fixture
def sql_threads(monkeypatch: pytest.MonkeyPatch) -> SqlThreads:
    """Sort executed SQL by whether its thread was running an event loop at the time."""
    seen = SqlThreads([], [])
    original = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]

    def recording(self: CursorWrapper, sql: str, *args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            seen.off_event_loop.append(sql)
        else:
            seen.on_event_loop.append(sql)
        return original(self, sql, *args, **kwargs)

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", recording)
    return seen


@pytest.mark.django_db(transaction=True)
async def test_async_path_keeps_the_orm_off_the_event_loop_in_one_hop(
    thread_hops: HopCounter, sql_threads: SqlThreads
) -> None:
    # Django's guard is on: ORM calls on the loop would raise SynchronousOnlyOperation.
    assert not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    _, raw = await APIKey.objects.acreate_key(name="hops", scopes=["orders:read"])
    thread_hops.count = 0
    sql_threads.off_event_loop.clear()

    response = await async_client.get("/async/orders", headers=api_key_header(raw))

    assert response.status_code == 200
    assert thread_hops.count == 1
    assert sql_threads.on_event_loop == []
    assert any("SELECT" in sql for sql in sql_threads.off_event_loop)


@pytest.mark.django_db(transaction=True)
async def test_a_hot_key_is_verified_without_a_thread_hop(thread_hops: HopCounter) -> None:
    _, raw = await APIKey.objects.acreate_key(name="hot")
    headers = api_key_header(raw)
    assert (await async_client.get("/async/whoami", headers=headers)).status_code == 200
    thread_hops.count = 0
    assert (await async_client.get("/async/whoami", headers=headers)).status_code == 200
    assert thread_hops.count == 0


@pytest.mark.django_db(transaction=True)
async def test_a_scope_refusal_of_a_hot_key_is_reported_on_every_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cached key's refusal is answered without a query, and still reported and logged."""
    from async_api_key.signals import verification_failed

    api_key, raw = await APIKey.objects.acreate_key(name="hot", scopes=["billing:read"])
    headers = api_key_header(raw)
    assert (await async_client.get("/async/whoami", headers=headers)).status_code == 200
    refusals: list[Reason] = []

    def on_refused(sender: Any, *, reason: Reason, **payload: Any) -> None:
        refusals.append(reason)

    verification_failed.connect(on_refused)
    try:
        statuses = [
            (await async_client.get("/async/orders", headers=headers)).status_code for _ in range(2)
        ]
    finally:
        verification_failed.disconnect(on_refused)
    assert statuses == [403, 403]
    assert refusals == [Reason.INSUFFICIENT_SCOPE] * 2
    logged = f"reason=insufficient_scope prefix={api_key.prefix}"
    assert caplog.text.count(logged) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "not a key"}], ids=["missing", "malformed"])
async def test_async_path_makes_no_hop_for_a_missing_or_malformed_key(
    thread_hops: HopCounter, headers: Headers
) -> None:
    response = await async_client.get("/async/whoami", headers=headers)
    assert response.status_code == 401
    assert thread_hops.count == 0


# OpenAPI


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return dict(api.get_openapi_schema(path_prefix="/api/"))


def _security(schema: dict[str, Any], path: str) -> list[dict[str, list[str]]]:
    security: list[dict[str, list[str]]] = schema["paths"][path]["get"]["security"]
    return security


def test_openapi_documents_an_api_key_header_scheme(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["APIKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": (
            "Send the key in the `X-API-Key` header. "
            "`Authorization: Api-Key <key>` is accepted too."
        ),
    }
    assert _security(schema, "/api/async/whoami") == [{"APIKeyAuth": []}]
    assert _security(schema, "/api/sync/whoami") == [{"APIKeyAuth": []}]
    assert "security" not in schema["paths"]["/api/open"]["get"]


def test_openapi_lists_required_scopes_in_the_operations_requirement(
    schema: dict[str, Any],
) -> None:
    assert _security(schema, "/api/async/orders") == [{"APIKeyAuth": ["orders:read"]}]
    assert _security(schema, "/api/organization/sync/orders") == [
        {"APIKeyAuth_testapp.OrganizationAPIKey": ["orders:read"]}
    ]


def test_openapi_says_the_required_scopes_in_the_operations_description(
    schema: dict[str, Any],
) -> None:
    operation = schema["paths"]["/api/async/orders"]["get"]
    assert (
        operation["description"] == "List orders.\n\nRequires the API key scope(s): `orders:read`."
    )
    sync_operation = schema["paths"]["/api/sync/orders"]["get"]
    assert sync_operation["description"] == "Requires the API key scope(s): `orders:read`."
    assert "description" not in schema["paths"]["/api/async/whoami"]["get"]


def test_openapi_has_one_scheme_per_key_source_and_model(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert set(schemes) == {
        "APIKeyAuth",
        "APIKeyAuth_header.X-Partner-Key",
        "APIKeyAuth_testapp.OrganizationAPIKey",
        "SessionAuth",
    }
    assert schemes["APIKeyAuth_header.X-Partner-Key"]["name"] == "X-Partner-Key"
    assert (
        "testapp.OrganizationAPIKey"
        in schemes["APIKeyAuth_testapp.OrganizationAPIKey"]["description"]
    )
    assert _security(schema, "/api/async/combined") == [{"APIKeyAuth": []}, {"SessionAuth": []}]


def _two_operations_schema(first: APIKeyAuth, second: APIKeyAuth) -> dict[str, Any]:
    two = NinjaAPI(urls_namespace="two_operations")
    document_scopes(two)

    @two.get("/first", auth=first)
    def first_operation(request: HttpRequest) -> None: ...

    @two.get("/second", auth=second)
    def second_operation(request: HttpRequest) -> None: ...

    return dict(two.get_openapi_schema(path_prefix=""))


def test_operations_with_different_scopes_and_one_header_setup_share_one_scheme() -> None:
    schema = _two_operations_schema(
        APIKeyAuth(scopes=["orders:read"]), APIKeyAuth(scopes=["orders:write", "refunds:*"])
    )
    assert list(schema["components"]["securitySchemes"]) == ["APIKeyAuth"]
    assert _security(schema, "/first") == [{"APIKeyAuth": ["orders:read"]}]
    assert _security(schema, "/second") == [{"APIKeyAuth": ["orders:write", "refunds:*"]}]


def test_two_header_setups_get_two_schemes() -> None:
    schema = _two_operations_schema(
        APIKeyAuth(scopes=["orders:read"]), APIKeyAuth(header="X-Partner-Key", scopes=["a:b"])
    )
    schemes = schema["components"]["securitySchemes"]
    assert [scheme["name"] for scheme in schemes.values()] == ["X-API-Key", "X-Partner-Key"]
    assert _security(schema, "/second") == [{"APIKeyAuth_header.X-Partner-Key": ["a:b"]}]


def test_alternative_keys_each_name_their_scopes_in_the_description() -> None:
    alternatives = NinjaAPI(urls_namespace="alternative_keys")
    document_scopes(alternatives)

    @alternatives.get(
        "/either",
        auth=[
            APIKeyAuth(scopes=["orders:read"]),
            APIKeyAuth(model=OrganizationAPIKey, scopes=["reports:read"]),
        ],
    )
    def either(request: HttpRequest) -> None: ...

    operation = alternatives.get_openapi_schema(path_prefix="")["paths"]["/either"]["get"]
    assert operation["security"] == [
        {"APIKeyAuth": ["orders:read"]},
        {"APIKeyAuth_testapp.OrganizationAPIKey": ["reports:read"]},
    ]
    assert operation["description"] == (
        "Requires the API key scope(s): `orders:read` (APIKeyAuth); "
        "or `reports:read` (APIKeyAuth_testapp.OrganizationAPIKey)."
    )


def test_without_document_scopes_the_scheme_is_still_shared_and_lists_no_scopes() -> None:
    schema = dict(bare_api.get_openapi_schema(path_prefix=""))
    assert list(schema["components"]["securitySchemes"]) == ["APIKeyAuth"]
    assert _security(schema, "/async/orders") == [{"APIKeyAuth": []}]


def test_instances_of_one_key_source_share_a_scheme() -> None:
    assert type(APIKeyAuth()) is APIKeyAuth
    assert type(APIKeyAuth(scopes=["orders:read"])) is APIKeyAuth
    assert type(APIKeyAuth(header="X-Partner-Key", scopes=["a:b"])) is type(PARTNER_HEADER)
    for auth in (ORDERS_READ, ORGANIZATION_KEY, ORGANIZATION_ORDERS_READ, PARTNER_HEADER):
        assert isinstance(auth, APIKeyAuth)
        assert auth.is_async


def test_a_scheme_name_can_be_chosen_but_not_shared_by_two_key_sources() -> None:
    reports = APIKeyAuth(scopes=["reports:read"], scheme_name="ReportsKey")
    assert type(reports).__name__ == "ReportsKey"
    assert type(APIKeyAuth(scopes=["reports:write"], scheme_name="ReportsKey")) is type(reports)
    with pytest.raises(ValueError, match="ReportsKey"):
        APIKeyAuth(header="X-Reports-Key", scheme_name="ReportsKey")


@override_settings(ASYNC_API_KEY={"HEADER": None, "KEYWORD": "Token"})
def test_openapi_names_the_authorization_header_when_no_other_is_read() -> None:
    auth = APIKeyAuth(scheme_name="AuthorizationOnly")
    assert auth.openapi_security_schema == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Send `Authorization: Token <key>` (in Swagger, enter `Token <key>`).",
    }


@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_LEGACY_KEY")
def test_openapi_names_the_upstream_custom_header() -> None:
    auth = APIKeyAuth(scheme_name="UpstreamHeader")
    assert auth.openapi_security_schema["name"] == "X-Legacy-Key"
    assert auth.openapi_security_schema["description"] == (
        "Send the key in the `X-Legacy-Key` header."
    )


def test_bad_scopes_fail_when_the_auth_is_created() -> None:
    with pytest.raises(ValueError, match="orders read"):
        APIKeyAuth(scopes=["orders read"])


def test_the_error_handler_adds_retry_after_in_the_apis_own_format() -> None:
    """What ``register_error_handler`` installs on django-ninja < 1.7, which lacks the header."""
    from django.http import HttpResponse
    from ninja.errors import HttpError, Throttled

    from async_api_key.ninja import _retry_after_answer

    api = NinjaAPI(urls_namespace="retry-after-format")

    def house_format(request: HttpRequest, exc: HttpError | type[HttpError]) -> HttpResponse:
        assert isinstance(exc, HttpError)
        return api.create_response(request, {"error": str(exc)}, status=exc.status_code)

    api.add_exception_handler(HttpError, house_format)
    answer = _retry_after_answer(api)
    response = answer(RequestFactory().get("/"), Throttled(wait=3))
    assert response.status_code == 429
    assert response["Retry-After"] == "3"
    assert "error" in response.content.decode()
    assert not answer(RequestFactory().get("/"), Throttled(wait=None)).has_header("Retry-After")


@pytest.mark.django_db
def test_without_the_error_handler_ninja_keeps_its_own_401() -> None:
    """register_error_handler is what gives the 401 its body and challenge."""
    bare = NinjaAPI(urls_namespace="async_api_key_ninja_bare_401")

    @bare.get("/orders", auth=APIKeyAuth())
    def orders(request: HttpRequest) -> list[str]:
        return []

    response = TestClient(bare).get("/orders", headers={"X-API-Key": "ak_not_a_key"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.django_db
def test_an_operation_without_an_api_key_auth_keeps_ninjas_401() -> None:
    """The handler answers only the refusals an APIKeyAuth noted."""
    other = NinjaAPI(urls_namespace="async_api_key_ninja_other_401")
    register_error_handler(other)

    @other.get("/session-only", auth=django_auth)
    def session_only(request: HttpRequest) -> list[str]:
        return []

    response = TestClient(other).get("/session-only", headers={"X-API-Key": "ak_not_a_key"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    assert "WWW-Authenticate" not in response.headers
