"""The parity table: the same request gets the same answer from a Django-Ninja async
endpoint and from a DRF view, because both ask the one verifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.test import Client, override_settings

from async_api_key.models import APIKey
from tests.support.key_factories import (
    expired_key,
    revoked_key,
    unknown_key,
    valid_key,
    with_bad_checksum,
    wrong_secret_key,
)
from tests.support.outages import CACHES_WITH_A_BROKEN_ALIAS
from tests.support.testapp.models import OrganizationAPIKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.parity_urls")]

FRAMEWORKS = {"ninja": "/ninja/{}", "drf": "/drf/{}"}


@dataclass(frozen=True)
class Case:
    name: str
    endpoint: str
    headers: Callable[[], dict[str, Any]]
    status: int
    code: str | None = None


def _authorization(raw: str, keyword: str = "Api-Key") -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"{keyword} {raw}"}


def _other_model_key() -> dict[str, Any]:
    from tests.support.testapp.models import Organization

    organization = Organization.objects.create(name="Acme")
    return _authorization(
        OrganizationAPIKey.objects.create_key(name="x", organization=organization)[1]
    )


CASES = [
    Case("valid key", "plain", lambda: _authorization(valid_key()), 200),
    Case("keyword in any case", "plain", lambda: _authorization(valid_key(), "api-KEY"), 200),
    Case("X-API-Key header", "plain", lambda: {"HTTP_X_API_KEY": valid_key()}, 200),
    Case("no key", "plain", dict, 401),
    Case("other scheme", "plain", lambda: _authorization(valid_key(), "Bearer"), 401),
    Case("malformed", "plain", lambda: _authorization("not-a-key"), 401),
    Case("empty", "plain", lambda: {"HTTP_X_API_KEY": ""}, 401),
    Case("bad checksum", "plain", lambda: _authorization(with_bad_checksum(valid_key())), 401),
    Case("unknown", "plain", lambda: _authorization(unknown_key()), 401),
    Case("wrong secret", "plain", lambda: _authorization(wrong_secret_key()), 401),
    Case("revoked", "plain", lambda: _authorization(revoked_key()), 401),
    Case("expired", "plain", lambda: _authorization(expired_key()), 401),
    Case("key of another model", "plain", _other_model_key, 401),
    Case(
        "upstream-format garbage",
        "plain",
        lambda: _authorization("ABCDEFGH.abcdefghijklmnopqrstuvwxyz012345"),
        401,
    ),
    Case("scope granted", "scoped", lambda: _authorization(valid_key(scopes=["orders:read"])), 200),
    Case(
        "scope by wildcard", "scoped", lambda: _authorization(valid_key(scopes=["orders:*"])), 200
    ),
    Case(
        "scope missing",
        "scoped",
        lambda: _authorization(valid_key(scopes=["billing:read"])),
        403,
        "insufficient_scope",
    ),
    Case(
        "no scopes at all", "scoped", lambda: _authorization(valid_key()), 403, "insufficient_scope"
    ),
    Case(
        "allowed network",
        "plain",
        lambda: _authorization(valid_key(allowed_networks=["127.0.0.0/8"])),
        200,
    ),
    Case(
        "outside allowed networks",
        "plain",
        lambda: _authorization(valid_key(allowed_networks=["203.0.113.0/24"])),
        403,
        "ip_not_allowed",
    ),
    Case("within rate limit", "throttled", lambda: _authorization(valid_key()), 200),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_both_frameworks_answer_alike(case: Case) -> None:
    """Status, refusal body and challenge header: the same from both adapters."""
    answers = {}
    for framework, url in FRAMEWORKS.items():
        response = Client(**case.headers()).get(url.format(case.endpoint))
        refusal = response.json() if response.status_code != 200 else None
        answers[framework] = (response.status_code, refusal, response.get("WWW-Authenticate"))
        if case.code is not None:
            assert response.json()["code"] == case.code, framework
    assert answers["ninja"] == answers["drf"]
    status, body, challenge = answers["ninja"]
    assert status == case.status
    if status == 401:
        assert challenge == 'Api-Key realm="api"'
        assert body is not None
        assert set(body) <= {"detail", "code"}
    else:
        assert challenge is None


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_repeated_request_gets_the_first_answer_from_both_frameworks(case: Case) -> None:
    """The second request with a key is answered from this process's cache where it can be
    (a valid key, a scope or address refusal): status, body and challenge stay the first's."""
    answers = {}
    for framework, url in FRAMEWORKS.items():
        client = Client(**case.headers())
        first, again = (client.get(url.format(case.endpoint)) for _ in range(2))
        answers[framework] = [
            (
                response.status_code,
                response.json() if response.status_code != 200 else None,
                response.get("WWW-Authenticate"),
            )
            for response in (first, again)
        ]
        assert answers[framework][0] == answers[framework][1], framework
        assert first.status_code == case.status
    assert answers["ninja"] == answers["drf"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_request_with_a_cached_key_is_reported(framework: str) -> None:
    """``verification_succeeded`` fires once per request, also when the cache answers."""
    from async_api_key.signals import verification_succeeded

    raw = valid_key()
    reported: list[str | None] = []

    def on_verified(sender: Any, *, prefix: str | None = None, **payload: Any) -> None:
        reported.append(prefix)

    verification_succeeded.connect(on_verified)
    try:
        client = Client(**_authorization(raw))
        statuses = [client.get(FRAMEWORKS[framework].format("plain")).status_code for _ in range(3)]
    finally:
        verification_succeeded.disconnect(on_verified)
    assert statuses == [200, 200, 200]
    assert reported == [raw.split("_")[1]] * 3


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("field", "stored", "endpoint"),
    [
        ("allowed_networks", "not-a-list", "plain"),
        ("allowed_networks", ["999.0.0.0/8"], "plain"),
        ("scopes", "orders:read as text", "scoped"),
        ("scopes", [1, 2], "scoped"),
    ],
)
def test_an_unreadable_policy_field_is_logged_once_per_request(
    framework: str, field: str, stored: Any, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Written around the validation (``_base_manager``): refused, and logged once per
    request, also when the cache answers."""
    api_key, raw = APIKey.objects.create_key(name="unreadable")
    APIKey._base_manager.filter(pk=api_key.pk).update(**{field: stored})
    client = Client(**_authorization(raw))
    logged = []
    for _ in range(3):
        caplog.clear()
        response = client.get(FRAMEWORKS[framework].format(endpoint))
        assert response.status_code == 403
        logged.append(caplog.text.count(f"unreadable {field} stored"))
    assert logged == [1, 1, 1]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_rate_limit_answers_429_with_retry_after(framework: str) -> None:
    headers = _authorization(valid_key())
    url = FRAMEWORKS[framework].format("throttled")
    statuses = [Client(**headers).get(url).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = Client(**headers).get(url)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_key_own_rate_limit_wins_over_the_default(framework: str) -> None:
    headers = _authorization(valid_key(rate_limit="1/min"))
    url = FRAMEWORKS[framework].format("throttled")
    assert [Client(**headers).get(url).status_code for _ in range(2)] == [200, 429]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_database_outage_answers_503_with_json(
    framework: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _authorization(valid_key())

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)
    response = Client(**headers).get(FRAMEWORKS[framework].format("plain"))
    assert response.status_code == 503
    assert response.json()["code"] == "api_key_verification_unavailable"


@pytest.mark.parametrize("framework", FRAMEWORKS)
@override_settings(
    CACHES=CACHES_WITH_A_BROKEN_ALIAS,
    ASYNC_API_KEY={"SHARED_CACHE_ALIAS": "broken"},
)
def test_cache_outage_still_answers_correctly(framework: str) -> None:
    url = FRAMEWORKS[framework].format("plain")
    assert Client(**_authorization(valid_key())).get(url).status_code == 200
    assert Client(**_authorization(revoked_key())).get(url).status_code == 401


@pytest.mark.parametrize("framework", FRAMEWORKS)
@override_settings(
    CACHES=CACHES_WITH_A_BROKEN_ALIAS,
    ASYNC_API_KEY={"RATE_LIMIT_CACHE_ALIAS": "broken"},
)
def test_rate_limit_store_outage_refuses_with_503(framework: str) -> None:
    url = FRAMEWORKS[framework].format("throttled")
    response = Client(**_authorization(valid_key())).get(url)
    assert response.status_code == 503


@pytest.mark.django_db(transaction=True)
async def test_ninja_counts_requests_off_the_event_loop_for_a_network_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from django.test import AsyncClient

    from async_api_key.ratelimit import RateLimiter

    loop_thread = threading.get_ident()
    counting_threads: list[int] = []
    real_hit = RateLimiter.hit

    def recording_hit(self: RateLimiter, *args: Any, **kwargs: Any) -> Any:
        counting_threads.append(threading.get_ident())
        return real_hit(self, *args, **kwargs)

    monkeypatch.setattr(RateLimiter, "hit", recording_hit)
    monkeypatch.setattr(RateLimiter, "is_in_process", lambda self: False)  # as with Redis
    _, raw = await APIKey.objects.acreate_key(name="x")
    client, headers = AsyncClient(), {"Authorization": f"Api-Key {raw}"}
    statuses = [
        (await client.get("/ninja/throttled", headers=headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert len(counting_threads) == 3  # counted once per request, by APIKeyAuth
    assert loop_thread not in counting_threads
