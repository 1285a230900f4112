"""The demo works as `make demo` promises: it starts, and every curl command it prints answers
the status printed next to it (200 with the key, 401 without, 403 for a missing scope).

The demo runs as a real process (``demo/run.py``, what ``make demo`` runs) on a free port of
127.0.0.1 with its own temporary SQLite file, and is stopped at the end of the test.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import httpx

from tests.support.demo import RunningDemo

_CURL_LINE_RE = re.compile(r"^\s*(?P<command>curl .*?)\s+# -> (?P<status>\d{3})\b")
_ADMIN_LINE_RE = re.compile(
    r"Admin: (?P<url>\S+)\s+user '(?P<user>[^']+)', password '(?P<pw>[^']+)'"
)
_DOCS_LINE_RE = re.compile(r"interactive docs: (?P<url>\S+)")


@dataclass(frozen=True)
class CurlCommand:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    expected_status: int


def parse_curl(command: str, expected_status: int) -> CurlCommand:
    """Turn one printed ``curl`` command into what httpx needs to send the same request."""
    words = shlex.split(command)
    assert words[0] == "curl"
    method, headers, body, url = "GET", {}, None, None
    position = 1
    while position < len(words):
        word = words[position]
        if word == "-X":
            method, position = words[position + 1], position + 2
        elif word == "-H":
            name, _, value = words[position + 1].partition(":")
            headers[name.strip()] = value.strip()
            position += 2
        elif word == "-d":
            body, position = words[position + 1], position + 2
        else:
            assert not word.startswith("-"), f"unexpected curl option {word!r}"
            url, position = word, position + 1
    assert url is not None
    return CurlCommand(method, url, headers, body, expected_status)


def _printed_curls(demo: RunningDemo) -> list[CurlCommand]:
    commands = []
    for line in demo.lines:
        match = _CURL_LINE_RE.match(line)
        if match:
            commands.append(parse_curl(match["command"], int(match["status"])))
    return commands


def test_demo_prints_the_key_once_and_curls_for_both_frameworks(demo: RunningDemo) -> None:
    keys = set(re.findall(r"\bak_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b", demo.output))
    assert len(keys) == 1
    urls = [command.url for command in _printed_curls(demo)]
    assert any("/api/" in url for url in urls)
    assert any("/drf/" in url for url in urls)
    assert any(url.endswith("/api/openapi.json") for url in urls)
    assert all(url.startswith("http://127.0.0.1:") for url in urls)


def test_every_printed_curl_answers_the_printed_status(demo: RunningDemo) -> None:
    commands = _printed_curls(demo)
    statuses = {command.expected_status for command in commands}
    assert {200, 401} <= statuses
    with httpx.Client(timeout=10) as client:
        for command in commands:
            response = client.request(
                command.method, command.url, headers=command.headers, content=command.body
            )
            assert response.status_code == command.expected_status, (command, response.text)


def test_interactive_docs_and_admin_answer(demo: RunningDemo) -> None:
    docs = _DOCS_LINE_RE.search(demo.output)
    admin = _ADMIN_LINE_RE.search(demo.output)
    assert docs is not None
    assert admin is not None
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        assert client.get(docs["url"]).status_code == 200
        login_page = client.get(admin["url"])
        assert login_page.status_code == 200
        assert "csrfmiddlewaretoken" in login_page.text
        logged_in = client.post(
            login_page.url,
            data={
                "username": admin["user"],
                "password": admin["pw"],
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
                "next": "/admin/",
            },
            headers={"Referer": str(login_page.url)},
        )
        assert logged_in.status_code == 200
        assert "Site administration" in logged_in.text
