"""The publisher's keys fetched over HTTP: cached, fetched again once for an unknown key
identifier (and no more often than the refresh interval allows), and never a crash when the
publisher cannot be reached. The "publisher" is a server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, path

from async_api_key.models import APIKey
from async_api_key.secret_scanning.publisher_keys import (
    GitHubPublisherKeys,
    PublisherKeysUnavailable,
    StaticPublisherKeys,
    parse_github_keys,
)
from async_api_key.secret_scanning.views import GitHubSecretScanningView
from tests.unit.secret_scanning.test_views import Publisher, alert_body

FIRST = Publisher("key-1")
ROTATED_IN = Publisher("key-2")


class FakeGitHub:
    """What the server answers, and what it was asked."""

    def __init__(self) -> None:
        self.keys = [FIRST]
        self.status = 200
        self.body: bytes | None = None  # overrides the key document
        self.delay = 0.0
        self.requests: list[dict[str, str]] = []

    def document(self) -> bytes:
        if self.body is not None:
            return self.body
        entries = [
            {"key_identifier": p.key_identifier, "key": p.pem, "is_current": True}
            for p in self.keys
        ]
        return json.dumps({"public_keys": entries}).encode()


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(dict(self.headers))
            time.sleep(fake.delay)
            body = fake.document()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may have given up waiting (the timeout test).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}/meta/public_keys/secret_scanning"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_fetched_once_and_served_from_memory(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    keys = GitHubPublisherKeys(url)

    assert keys.public_key("key-1") == FIRST.pem
    assert keys.public_key("key-1") == FIRST.pem
    assert len(fake.requests) == 1
    assert fake.requests[0]["User-Agent"] == "django-async-api-key"
    assert "Authorization" not in fake.requests[0]


def test_a_token_is_sent_as_a_bearer_token(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github

    GitHubPublisherKeys(url, token="gh-test-token").public_key("key-1")

    assert fake.requests[0]["Authorization"] == "Bearer gh-test-token"


def test_an_unknown_key_identifier_fetches_the_keys_again_once(
    github: tuple[FakeGitHub, str],
) -> None:
    fake, url = github
    clock = Clock()
    keys = GitHubPublisherKeys(url, clock=clock)
    keys.public_key("key-1")
    fake.keys = [FIRST, ROTATED_IN]  # GitHub rotates its keys
    clock.now += 61

    assert keys.public_key("key-2") == ROTATED_IN.pem
    assert len(fake.requests) == 2


def test_forged_key_identifiers_cannot_make_it_fetch_in_a_loop(
    github: tuple[FakeGitHub, str],
) -> None:
    fake, url = github
    clock = Clock()
    keys = GitHubPublisherKeys(url, clock=clock, min_refresh_interval=60)
    keys.public_key("key-1")

    clock.now += 61
    assert keys.public_key("forged-1") is None  # one refresh, still unknown
    for n in range(50):
        assert keys.public_key(f"forged-{n}") is None
    assert len(fake.requests) == 2

    clock.now += 61
    assert keys.public_key("forged-51") is None
    assert len(fake.requests) == 3


def test_keys_older_than_max_age_are_fetched_again(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    clock = Clock()
    keys = GitHubPublisherKeys(url, clock=clock, max_age=3600)
    keys.public_key("key-1")

    clock.now += 3601
    keys.public_key("key-1")

    assert len(fake.requests) == 2


def test_known_keys_still_verify_while_the_publisher_is_down(
    github: tuple[FakeGitHub, str],
) -> None:
    fake, url = github
    clock = Clock()
    keys = GitHubPublisherKeys(url, clock=clock, max_age=3600)
    keys.public_key("key-1")
    fake.status = 502
    clock.now += 3601

    assert keys.public_key("key-1") == FIRST.pem
    clock.now += 61
    with pytest.raises(PublisherKeysUnavailable):
        keys.public_key("key-2")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(500, None, id="server-error"),
        pytest.param(404, None, id="not-found"),
        pytest.param(200, b"<html>rate limited</html>", id="not-json"),
        pytest.param(200, b'{"message": "API rate limit exceeded"}', id="no-public-keys"),
        pytest.param(200, b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_a_bad_answer_is_unavailable_never_a_crash(
    github: tuple[FakeGitHub, str], status: int, body: bytes | None
) -> None:
    fake, url = github
    fake.status, fake.body = status, body

    with pytest.raises(PublisherKeysUnavailable):
        GitHubPublisherKeys(url).public_key("key-1")


def test_an_oversized_answer_is_unavailable(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    fake.body = b" " * 2000

    with pytest.raises(PublisherKeysUnavailable, match="too large"):
        GitHubPublisherKeys(url, max_response_bytes=1000).public_key("key-1")


def test_a_slow_publisher_is_bounded_by_the_timeout(github: tuple[FakeGitHub, str]) -> None:
    fake, url = github
    fake.delay = 2.0
    started = time.monotonic()

    with pytest.raises(PublisherKeysUnavailable):
        GitHubPublisherKeys(url, timeout=0.2).public_key("key-1")

    assert time.monotonic() - started < 1.5


def test_an_unreachable_publisher_is_unavailable_and_not_asked_again_at_once() -> None:
    keys = GitHubPublisherKeys("http://127.0.0.1:9/", timeout=1.0)  # the discard port: closed

    with pytest.raises(PublisherKeysUnavailable):
        keys.public_key("key-1")
    with pytest.raises(PublisherKeysUnavailable):
        keys.public_key("key-1")
    assert keys.fetches == 1


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        GitHubPublisherKeys("file:///etc/passwd")


def test_entries_that_are_not_keys_are_skipped() -> None:
    document = {
        "public_keys": [
            {"key_identifier": "good", "key": "PEM"},
            {"key_identifier": 1, "key": "PEM"},
            "junk",
            {"key": "PEM"},
        ]
    }

    assert parse_github_keys(json.dumps(document).encode()) == {"good": "PEM"}


def test_static_keys_are_given_up_front() -> None:
    keys = StaticPublisherKeys({"key-1": FIRST.pem})

    assert keys.public_key("key-1") == FIRST.pem
    assert keys.public_key("key-2") is None


urlpatterns: list[URLPattern] = []


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_an_alert_signed_by_a_rotated_in_key_is_accepted_end_to_end(
    github: tuple[FakeGitHub, str],
) -> None:
    fake, url = github
    source = GitHubPublisherKeys(url, min_refresh_interval=0)
    urlpatterns[:] = [path("github/", GitHubSecretScanningView.as_view(key_source=source))]
    source.public_key("key-1")  # the keys as they were before the rotation
    fake.keys = [FIRST, ROTATED_IN]
    api_key, raw = APIKey.objects.create_key(name="leaky")
    body = alert_body(raw)

    response = Client().post(
        "/github/", data=body, content_type="application/json", headers=ROTATED_IN.headers(body)
    )

    assert response.status_code == 200
    assert response.json()[0]["label"] == "true_positive"
    api_key.refresh_from_db()
    assert api_key.revoked
