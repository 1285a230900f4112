"""The secret scanning endpoint, attacked first: every bad input gets its clear answer and
changes nothing; then a signed alert revokes (or flags) genuine keys, records each leak once,
announces it, and answers GitHub's feedback format.

Alerts are signed here as GitHub signs them: ECDSA on P-256 with SHA-256 over the raw body,
base64 DER, with a key pair generated for the test run. No network: the publisher's keys come
from an injected source (``test_publisher_keys.py`` tests the fetching source against a
server on 127.0.0.1). This module is also the URLconf of its tests.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, include, path, reverse

from async_api_key.changelog import KeyChange
from async_api_key.models import APIKey
from async_api_key.secret_scanning import alerts
from async_api_key.secret_scanning.models import KeyLeak, LeakAction
from async_api_key.secret_scanning.publisher_keys import (
    GitHubPublisherKeys,
    PublisherKeysUnavailable,
    StaticPublisherKeys,
)
from async_api_key.secret_scanning.views import GitHubSecretScanningView
from async_api_key.signals import api_key_leaked, api_key_revoked, verification_succeeded
from async_api_key.verification import Reason, get_verifier
from tests.support.key_factories import (
    a_second_ago,
    unknown_key,
    with_bad_checksum,
    wrong_secret_for,
)
from tests.support.testapp.models import Organization, OrganizationAPIKey
from tests.support.threads import run_concurrently

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@dataclass
class Publisher:
    """A secret scanner's signing key, as GitHub holds it."""

    key_identifier: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "Github-Public-Key-Identifier": self.key_identifier,
            "Github-Public-Key-Signature": self.sign(body),
        }


class CountingKeySource(StaticPublisherKeys):
    """A static source that counts lookups and can be told to be unreachable."""

    def __init__(self, keys: dict[str, str]) -> None:
        super().__init__(keys)
        self.lookups = 0
        self.unavailable = False

    def public_key(self, key_identifier: str) -> str | None:
        self.lookups += 1
        if self.unavailable:
            raise PublisherKeysUnavailable("unreachable in this test")
        return super().public_key(key_identifier)


GITHUB = Publisher("github-key-1")
STRANGER = Publisher("github-key-1")  # same identifier, another key: a forger
SOURCE = CountingKeySource({GITHUB.key_identifier: GITHUB.pem})
ENDPOINT = "/github/"
#: The token type GitHub sends: the name given when the pattern was registered.
TOKEN_TYPE = "ak_api_key"

urlpatterns: list[URLPattern | URLResolver] = [
    path("github/", GitHubSecretScanningView.as_view(key_source=SOURCE)),
    path(
        "github-notify/",
        GitHubSecretScanningView.as_view(key_source=SOURCE, policy="notify"),
    ),
    path(
        "github-org/",
        GitHubSecretScanningView.as_view(
            key_source=SOURCE, key_models=["testapp.OrganizationAPIKey", APIKey]
        ),
    ),
    path("github-small/", GitHubSecretScanningView.as_view(key_source=SOURCE, max_body_bytes=64)),
    path("secret-scanning/github/", include("async_api_key.secret_scanning.urls")),
]


@pytest.fixture(autouse=True)
def _fresh_source() -> None:
    SOURCE.lookups = 0
    SOURCE.unavailable = False


def alert_body(*tokens: str, token_type: str = TOKEN_TYPE, **extra: Any) -> bytes:
    matches = [
        {
            "token": token,
            "type": token_type,
            "url": f"https://github.com/octo/repo/blob/abc123/settings.py#L{n}",
            "source": "commit",
            **extra,
        }
        for n, token in enumerate(tokens, start=1)
    ]
    return json.dumps(matches).encode()


def post(
    body: bytes,
    headers: dict[str, str] | None = None,
    endpoint: str = ENDPOINT,
    client: Client | None = None,
) -> Any:
    client = client or Client()
    return client.post(
        endpoint,
        data=body,
        content_type="application/json",
        headers=GITHUB.headers(body) if headers is None else headers,
    )


def live_key(name: str = "leaky") -> tuple[APIKey, str]:
    return APIKey.objects.create_key(name=name)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def nothing_changed(api_key: APIKey) -> bool:
    api_key.refresh_from_db()
    return not api_key.revoked and not KeyLeak.objects.exists()


# -- Bad input: a clear answer, and nothing changes --------------------------------------------


def test_an_alert_without_a_signature_is_401_and_revokes_nothing() -> None:
    api_key, raw = live_key()
    body = alert_body(raw)

    response = post(body, headers={"Github-Public-Key-Identifier": GITHUB.key_identifier})

    assert response.status_code == 401
    assert nothing_changed(api_key)


def test_an_alert_without_a_key_identifier_is_401_and_revokes_nothing() -> None:
    api_key, raw = live_key()
    body = alert_body(raw)

    response = post(body, headers={"Github-Public-Key-Signature": GITHUB.sign(body)})

    assert response.status_code == 401
    assert nothing_changed(api_key)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(STRANGER.sign, id="signed-by-another-key"),
        pytest.param(lambda body: GITHUB.sign(body + b" "), id="signature-of-another-body"),
        pytest.param(lambda body: "not base64 at all!", id="not-base64"),
        pytest.param(lambda body: base64.b64encode(b"garbage").decode(), id="not-der"),
        pytest.param(lambda body: "A" * 10_000, id="ten-thousand-characters"),
        pytest.param(lambda body: GITHUB.sign(body) + "\u00e9", id="non-ascii"),
    ],
)
def test_an_alert_with_an_invalid_signature_is_401_and_revokes_nothing(forge: Any) -> None:
    api_key, raw = live_key()
    body = alert_body(raw)
    headers = {
        "Github-Public-Key-Identifier": GITHUB.key_identifier,
        "Github-Public-Key-Signature": forge(body),
    }

    response = post(body, headers=headers)

    assert response.status_code == 401
    assert response.json() == {"detail": "The signature does not match the body."}
    assert nothing_changed(api_key)


def test_an_alert_signed_by_an_unknown_key_is_401_after_asking_the_source_once() -> None:
    api_key, raw = live_key()
    body = alert_body(raw)
    stranger = Publisher("github-key-unknown")

    response = post(body, headers=stranger.headers(body))

    assert response.status_code == 401
    assert SOURCE.lookups == 1  # the source itself refreshes once (test_secret_scanning_keys)
    assert nothing_changed(api_key)


def test_an_overlong_key_identifier_is_401_without_asking_the_source() -> None:
    body = alert_body(unknown_key())
    headers = {**GITHUB.headers(body), "Github-Public-Key-Identifier": "k" * 10_000}

    response = post(body, headers=headers)

    assert response.status_code == 401
    assert SOURCE.lookups == 0


@pytest.mark.parametrize(
    "pem",
    [
        pytest.param(
            Publisher("x", ec.generate_private_key(ec.SECP384R1())).pem, id="another-curve"
        ),
        pytest.param(
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
            id="rsa",
        ),
        pytest.param("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", id="junk"),
    ],
)
def test_a_publisher_key_that_is_not_p256_verifies_nothing(pem: str) -> None:
    api_key, raw = live_key()
    body = alert_body(raw)
    view = GitHubSecretScanningView.as_view(key_source=StaticPublisherKeys({"odd": pem}))
    request = RequestFactory().post(
        ENDPOINT,
        data=body,
        content_type="application/json",
        headers={"Github-Public-Key-Identifier": "odd", "Github-Public-Key-Signature": "AAAA"},
    )

    response = async_to_sync(view)(request)

    assert response.status_code == 401
    assert nothing_changed(api_key)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b'{"token": "x", "type": "t"}', id="object-not-array"),
        pytest.param(b"[1, 2]", id="items-not-objects"),
        pytest.param(b'[{"type": "t", "url": "u", "source": "s"}]', id="no-token"),
        pytest.param(b'[{"token": 12, "type": "t"}]', id="token-not-a-string"),
        pytest.param(b'[{"token": "x", "type": null}]', id="type-not-a-string"),
        pytest.param(b'[{"token": "x", "type": "t", "url": ["u"]}]', id="url-not-a-string"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
        pytest.param(b'[{"token": "x", "type": "t"}', id="truncated"),
    ],
)
def test_a_signed_but_malformed_body_is_400_and_changes_nothing(body: bytes) -> None:
    api_key, _raw = live_key()

    response = post(body, endpoint="/github/")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert nothing_changed(api_key)


def test_an_oversized_body_is_413_before_its_signature_is_checked() -> None:
    api_key, raw = live_key()
    body = alert_body(raw, padding="x" * 200)  # over the 64 bytes of this endpoint

    response = post(body, endpoint="/github-small/")

    assert response.status_code == 413
    assert SOURCE.lookups == 0
    assert nothing_changed(api_key)


def test_a_declared_length_over_the_bound_is_413_without_reading_the_body() -> None:
    class Unreadable:
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the body was read")

    request = RequestFactory().post(ENDPOINT, data=b"[]", content_type="application/json")
    request.META["CONTENT_LENGTH"] = str(10**9)
    request._stream = Unreadable()  # type: ignore[assignment]
    view = GitHubSecretScanningView.as_view(key_source=SOURCE)

    assert async_to_sync(view)(request).status_code == 413


def test_a_body_of_undeclared_length_is_read_no_further_than_one_byte_past_the_bound() -> None:
    class Stream:
        def __init__(self) -> None:
            self.asked: list[int] = []

        def read(self, size: int = -1) -> bytes:
            self.asked.append(size)
            return b"[" * (size if size >= 0 else 10**6)

    request = RequestFactory().post(ENDPOINT, data=b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    stream = Stream()
    request._stream = stream  # type: ignore[assignment]
    view = GitHubSecretScanningView.as_view(key_source=SOURCE, max_body_bytes=64)

    assert async_to_sync(view)(request).status_code == 413
    assert stream.asked == [65]


def test_the_default_bound_is_one_megabyte() -> None:
    api_key, raw = live_key()
    body = alert_body(raw, padding="x" * 1_000_000)

    assert post(body).status_code == 413
    assert nothing_changed(api_key)


def test_a_replayed_alert_gets_the_same_answer_and_changes_nothing_more(
    django_capture_on_commit_callbacks: Any,
) -> None:
    api_key, raw = live_key()
    body = alert_body(raw)
    revocations: list[str] = []
    leaks: list[str] = []

    def on_revoked(sender: Any, api_key: APIKey, **kwargs: Any) -> None:
        revocations.append(api_key.prefix)

    def on_leaked(sender: Any, prefix: str, **kwargs: Any) -> None:
        leaks.append(prefix)

    api_key_revoked.connect(on_revoked)
    api_key_leaked.connect(on_leaked)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = post(body)
            replay = post(body)
    finally:
        api_key_revoked.disconnect(on_revoked)
        api_key_leaked.disconnect(on_leaked)

    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert revocations == leaks == [api_key.prefix]
    assert KeyLeak.objects.count() == 1


def test_other_methods_are_405() -> None:
    assert Client().get(ENDPOINT).status_code == 405
    assert Client().put(ENDPOINT, data=b"[]").status_code == 405


def test_the_key_source_being_unreachable_is_503_and_revokes_nothing() -> None:
    api_key, raw = live_key()
    SOURCE.unavailable = True

    response = post(alert_body(raw))

    assert response.status_code == 503
    assert nothing_changed(api_key)


def test_the_key_store_being_unreachable_is_503_not_500(monkeypatch: pytest.MonkeyPatch) -> None:
    _api_key, raw = live_key()

    def failing(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setattr(alerts, "find_leaked_key", failing)

    response = post(alert_body(raw))

    assert response.status_code == 503
    assert raw not in response.content.decode()


def test_the_view_refuses_a_bad_configuration_when_the_urlconf_loads() -> None:
    with pytest.raises(ImproperlyConfigured, match="policy"):
        GitHubSecretScanningView.as_view(policy="delete")
    with pytest.raises(ImproperlyConfigured, match="max_body_bytes"):
        GitHubSecretScanningView.as_view(max_body_bytes=0)


# -- A signed alert: revoke, record, announce, answer ------------------------------------------


def test_a_signed_alert_revokes_a_live_key_and_answers_true_positive() -> None:
    api_key, raw = live_key()

    response = post(alert_body(raw))

    assert response.status_code == 200
    assert response.json() == [
        {"token_hash": sha256(raw), "token_type": "ak_api_key", "label": "true_positive"}
    ]
    api_key.refresh_from_db()
    assert api_key.revoked
    leak = KeyLeak.objects.get()
    assert (leak.key_model, leak.prefix, leak.action) == (
        "async_api_key.apikey",
        api_key.prefix,
        LeakAction.REVOKED,
    )
    assert (leak.publisher, leak.source, leak.token_type) == ("github", "commit", "ak_api_key")
    assert leak.url == "https://github.com/octo/repo/blob/abc123/settings.py#L1"


def test_the_feedback_has_one_entry_per_match_in_order_and_never_the_raw_token() -> None:
    _live, raw = live_key()
    revoked_key, revoked_raw = live_key("old")
    revoked_key.revoke()
    stranger = unknown_key()
    tokens = [raw, stranger, revoked_raw, with_bad_checksum(raw), raw]

    response = post(alert_body(*tokens, token_type="acme_key"))

    feedback = response.json()
    assert [entry["label"] for entry in feedback] == [
        "true_positive",
        "false_positive",
        "true_positive",
        "false_positive",
        "true_positive",
    ]
    assert [entry["token_hash"] for entry in feedback] == [sha256(t) for t in tokens]
    assert all(set(entry) == {"token_hash", "token_type", "label"} for entry in feedback)
    assert {entry["token_type"] for entry in feedback} == {"acme_key"}
    assert not any(token in response.content.decode() for token in tokens)


def test_an_already_revoked_key_is_a_true_positive_recorded_as_such() -> None:
    api_key, raw = live_key()
    api_key.revoke()

    response = post(alert_body(raw))

    assert response.json()[0]["label"] == "true_positive"
    assert KeyLeak.objects.get().action == LeakAction.ALREADY_REVOKED


def test_an_expired_key_is_a_true_positive_and_is_revoked() -> None:
    api_key, raw = APIKey.objects.create_key(name="expired", expiry_date=a_second_ago())

    assert post(alert_body(raw)).json()[0]["label"] == "true_positive"
    api_key.refresh_from_db()
    assert api_key.revoked


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda key: unknown_key(), id="unknown-lookup-id"),
        pytest.param(lambda key: wrong_secret_for(key.prefix), id="right-lookup-wrong-secret"),
        pytest.param(lambda key: "ak_" + "x" * 60, id="key-shaped-bad-checksum"),
        pytest.param(lambda key: "", id="empty"),
        pytest.param(lambda key: "\x00" * 500, id="garbage"),
        pytest.param(lambda key: f"{key.prefix[:8]}.{'s' * 32}", id="legacy-shaped-unknown"),
    ],
)
def test_tokens_that_are_not_our_keys_are_false_positives_and_change_nothing(
    token: Any,
) -> None:
    api_key, _raw = live_key()

    response = post(alert_body(token(api_key)))

    assert response.status_code == 200
    assert response.json()[0]["label"] == "false_positive"
    assert nothing_changed(api_key)


def test_the_notify_policy_records_and_announces_but_leaves_the_key_working(
    django_capture_on_commit_callbacks: Any,
) -> None:
    _api_key, raw = live_key()
    announced: list[str] = []

    def on_leaked(sender: Any, action: LeakAction, **kwargs: Any) -> None:
        announced.append(action)

    api_key_leaked.connect(on_leaked)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(alert_body(raw), endpoint="/github-notify/")
    finally:
        api_key_leaked.disconnect(on_leaked)

    assert response.json()[0]["label"] == "true_positive"
    assert APIKey.objects.is_valid(raw)
    assert KeyLeak.objects.get().action == LeakAction.FLAGGED
    assert announced == [LeakAction.FLAGGED]


def test_the_leak_signal_carries_prefix_owner_url_and_source_and_never_the_key(
    django_capture_on_commit_callbacks: Any,
) -> None:
    organization = Organization.objects.create(name="Acme")
    api_key, raw = OrganizationAPIKey.objects.create_key(name="ci", organization=organization)
    received: list[dict[str, Any]] = []

    def on_leaked(sender: Any, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    api_key_leaked.connect(on_leaked)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            post(alert_body(raw), endpoint="/github-org/")
    finally:
        api_key_leaked.disconnect(on_leaked)

    [payload] = received
    assert payload["sender"] is OrganizationAPIKey
    assert payload["prefix"] == api_key.prefix
    assert payload["owner"] == organization
    assert payload["url"] == "https://github.com/octo/repo/blob/abc123/settings.py#L1"
    assert payload["source"] == "commit"
    assert payload["publisher"] == "github"
    assert payload["action"] is LeakAction.REVOKED
    assert payload["api_key"].pk == api_key.pk
    assert raw not in repr(payload)
    assert not OrganizationAPIKey.objects.is_valid(raw)


def test_the_leak_signal_waits_for_the_commit() -> None:
    _api_key, raw = live_key()
    received: list[str] = []

    def on_leaked(sender: Any, prefix: str, **kwargs: Any) -> None:
        received.append(prefix)

    api_key_leaked.connect(on_leaked)
    try:
        post(alert_body(raw))  # inside the test's transaction, which never commits
    finally:
        api_key_leaked.disconnect(on_leaked)

    assert received == []


def test_a_failing_leak_receiver_is_logged_and_does_not_fail_the_alert(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _api_key, raw = live_key()

    def failing(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the pager is down")

    api_key_leaked.connect(failing)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(alert_body(raw))
    finally:
        api_key_leaked.disconnect(failing)

    assert response.status_code == 200
    assert "the pager is down" in caplog.text


def test_a_leak_report_is_not_a_use_of_the_key() -> None:
    api_key, raw = live_key()
    verified: list[str] = []

    def on_verified(sender: Any, prefix: str, **kwargs: Any) -> None:
        verified.append(prefix)

    verification_succeeded.connect(on_verified)
    try:
        post(alert_body(raw), endpoint="/github-notify/")
    finally:
        verification_succeeded.disconnect(on_verified)

    api_key.refresh_from_db()
    assert api_key.last_used_at is None
    assert verified == []


def test_a_revocation_by_alert_reaches_every_process_through_the_change_log() -> None:
    api_key, raw = live_key()
    verifier = get_verifier(APIKey)
    assert verifier.verify(raw).reason is Reason.VALID  # now cached in this process

    post(alert_body(raw))

    # Other processes read the change log (MAX_STALENESS); this one dropped its entry at once.
    assert KeyChange.objects.filter(prefix=api_key.prefix).exists()
    assert verifier.verify(raw).reason is Reason.REVOKED


def test_the_raw_token_is_stored_nowhere() -> None:
    _api_key, raw = live_key()

    post(alert_body(raw))

    row = KeyLeak.objects.values().get()
    assert not any(raw in str(value) for value in row.values())
    assert raw not in repr(KeyLeak.objects.get())


def test_the_endpoint_needs_no_csrf_token() -> None:
    _api_key, raw = live_key()

    response = post(alert_body(raw), client=Client(enforce_csrf_checks=True))

    assert response.status_code == 200


def test_one_include_mounts_the_endpoint_with_its_url_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from async_api_key.secret_scanning import views

    monkeypatch.setattr(views, "github_publisher_keys", SOURCE)
    api_key, raw = live_key()
    url = reverse("async_api_key_secret_scanning:github")

    response = post(alert_body(raw), endpoint=url)

    assert url == "/secret-scanning/github/"
    assert response.json()[0]["label"] == "true_positive"
    api_key.refresh_from_db()
    assert api_key.revoked


@pytest.mark.django_db(transaction=True)
async def test_the_endpoint_answers_on_the_async_path(async_client: Any) -> None:
    api_key, raw = await APIKey.objects.acreate_key(name="async")
    body = alert_body(raw)

    response = await async_client.post(
        ENDPOINT, data=body, content_type="application/json", headers=GITHUB.headers(body)
    )

    assert response.status_code == 200
    assert response.json()[0]["label"] == "true_positive"
    await sync_to_async(api_key.refresh_from_db)()
    assert api_key.revoked


@pytest.mark.django_db(transaction=True)
def test_the_same_alert_delivered_twice_at_once_revokes_and_records_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (CI runs this with DATABASE_URL)")
    api_key, raw = live_key()
    body = alert_body(raw)
    answers: list[Any] = []
    leaks: list[str] = []

    def on_leaked(sender: Any, prefix: str, **kwargs: Any) -> None:
        leaks.append(prefix)

    def deliver() -> None:
        answers.append(post(body).json())

    api_key_leaked.connect(on_leaked)
    try:
        errors = run_concurrently(deliver, deliver, deliver)
    finally:
        api_key_leaked.disconnect(on_leaked)

    assert errors == []
    assert len(answers) == 3
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0]["label"] == "true_positive"
    assert KeyLeak.objects.count() == 1
    assert leaks == [api_key.prefix]
    assert KeyChange.objects.filter(prefix=api_key.prefix).count() >= 1


def test_a_key_found_at_two_places_is_revoked_once_and_each_find_is_recorded(
    django_capture_on_commit_callbacks: Any,
) -> None:
    api_key, raw = live_key()
    body = json.dumps(
        [
            {"token": raw, "type": TOKEN_TYPE, "url": "https://github.com/a", "source": "commit"},
            {
                "token": raw,
                "type": TOKEN_TYPE,
                "url": "https://gist.github.com/b",
                "source": "gist",
            },
        ]
    ).encode()
    revocations: list[str] = []
    finds: list[tuple[str, LeakAction]] = []

    def on_revoked(sender: Any, api_key: APIKey, **kwargs: Any) -> None:
        revocations.append(api_key.prefix)

    def on_leaked(sender: Any, url: str, action: LeakAction, **kwargs: Any) -> None:
        finds.append((url, action))

    api_key_revoked.connect(on_revoked)
    api_key_leaked.connect(on_leaked)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post(body)
    finally:
        api_key_revoked.disconnect(on_revoked)
        api_key_leaked.disconnect(on_leaked)

    assert [entry["label"] for entry in response.json()] == ["true_positive"] * 2
    assert revocations == [api_key.prefix]
    assert finds == [
        ("https://github.com/a", LeakAction.REVOKED),
        ("https://gist.github.com/b", LeakAction.REVOKED),
    ]
    assert sorted(KeyLeak.objects.values_list("source", "action")) == [
        ("commit", "revoked"),
        ("gist", "revoked"),
    ]


def test_without_cryptography_the_endpoint_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "async_api_key.secret_scanning.signatures")
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)

    with pytest.raises(ImportError, match=r"django-async-api-key\[secret-scanning\]"):
        importlib.import_module("async_api_key.secret_scanning.signatures")


def test_nothing_the_endpoint_builds_shows_a_token_or_a_github_token() -> None:
    _api_key, raw = live_key()
    [match] = alerts.parse_alert(alert_body(raw))
    source = GitHubPublisherKeys(token="github_pat_secret")

    with pytest.raises(alerts.MalformedAlert) as refused:
        alerts.parse_alert(json.dumps([{"token": raw, "type": 1}]).encode())

    assert raw not in repr(match)
    assert raw not in str(refused.value)
    assert "github_pat_secret" not in repr(source)


def test_the_leak_policy_setting_decides_for_an_endpoint_given_none(
    settings: Any,
) -> None:
    settings.ASYNC_API_KEY = {"LEAK_POLICY": "notify"}
    _api_key, raw = live_key()

    post(alert_body(raw))

    assert APIKey.objects.is_valid(raw)
    assert KeyLeak.objects.get().action == LeakAction.FLAGGED


def test_an_endpoint_s_own_policy_wins_over_the_setting(settings: Any) -> None:
    settings.ASYNC_API_KEY = {"LEAK_POLICY": "revoke"}
    _api_key, raw = live_key()

    post(alert_body(raw), endpoint="/github-notify/")

    assert APIKey.objects.is_valid(raw)
