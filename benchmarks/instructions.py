"""Instructions per request, counted by valgrind's callgrind: the protected/open ratios
without the machine's noise. ``make bench-instructions`` (needs valgrind).

On a shared or virtual machine, a request's CPU time varies by 10 to 20 % from one run to
the next, which is more than the few per cent that separate a protected endpoint from an
open one. Callgrind counts the instructions the interpreter executes instead, which the
machine's load does not change: two runs of one commit differed by at most 0.6 % per
endpoint (each run makes a new random key; measured while collections were still counted).
Use it to compare two versions of the hot path; the requests per second of ``make bench``
stay the measure of record, because instructions are not time (a cache miss costs time that
no count shows).

Collections of reference cycles are left out: before the counted requests, a run collects
and freezes what its warm-up made, then turns automatic collection off. Whether a collection
falls within a request depends on how many objects were alive before it, which changes by a
handful from one version of the code to the next: counted with collections, the DRF floor
endpoint, whose code had not changed, went from 16,200 to 20,200 instructions over the open
endpoint between two commits, and ``HasAPIKey`` from 47,400 to 55,900 while its permission
check, counted alone in a loop, became cheaper. A request's share of collections, which grows
with what it allocates, shows only in ``make bench``.

Each endpoint is driven in process through Django's own handler, WSGI for the DRF views and
ASGI for the Ninja ones, with no server and no socket: a server's own work per request is the
same for every endpoint, and would only bring every ratio closer to 1. A request's count is
the difference between a run that serves ``--requests`` requests and one that serves none,
divided by their number.

Work done once per period of time is left out (a read of the change log per
``MAX_STALENESS``, a cache refill per ``CACHE_TTL``, a ``last_used_at`` write per
``LAST_USED_INTERVAL``): under valgrind time runs about 50 times slower, and it would be
counted 50 times too often. These runs set those periods to their largest values, so that a
hot key stays hot.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.over_http import project_environment

ROOT = Path(__file__).resolve().parent.parent
#: Requests served per counted run.
DEFAULT_REQUESTS = 2000
#: Requests served first by every run, the one that serves none included: the key's first
#: verification, and the interpreter's own caches.
WARM_UP_REQUESTS = 300
#: The settings of a counted run: the library's defaults, but with the periodic work as rare
#: as the settings allow (see the module's docstring).
RUN_SETTINGS: dict[str, Any] = {
    "MAX_STALENESS": 60.0,
    "CACHE_TTL": 3600.0,
    "LAST_USED_INTERVAL": None,
}


@dataclass(frozen=True)
class Case:
    path: str
    label: str
    #: The open endpoint of the same framework, that this one is compared with.
    baseline: str


CASES = (
    Case("/drf/open", "DRF, open", "/drf/open"),
    Case("/drf/floor", "DRF, floor (a reference)", "/drf/open"),
    Case("/drf/ours-permission", "DRF, `HasAPIKey`", "/drf/open"),
    Case("/drf/ours", "DRF, `HasAPIKey` + `APIKeyAuthentication`", "/drf/open"),
    Case("/ninja/open", "Ninja async, open", "/ninja/open"),
    Case("/ninja/floor", "Ninja async, floor (a reference)", "/ninja/open"),
    Case("/ninja/ours", "Ninja async, `APIKeyAuth`", "/ninja/open"),
)
_COLLECTED_RE = re.compile(r"Collected : (\d+)")


def serve(path: str, requests: int) -> None:
    """The counted process: set up the benchmark project, warm up, then serve ``requests``."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django
    from django.conf import settings

    django.setup()
    settings.ASYNC_API_KEY = RUN_SETTINGS
    from django.core.management import call_command

    from async_api_key.conf import api_key_settings
    from async_api_key.models import APIKey

    api_key_settings.reload()
    call_command("migrate", verbosity=0)
    _, raw_key = APIKey.objects.create_key(name="bench-instructions")
    header = f"Api-Key {raw_key}".encode()
    send_many = (
        _asgi_driver(path, header) if path.startswith("/ninja/") else _wsgi_driver(path, header)
    )
    send_many(WARM_UP_REQUESTS)  # the key's first verification, the interpreter's caches
    # A full collection walks every object of the process: a few tens of millions of
    # instructions, due whenever enough objects have survived since the last one. Left to
    # chance, it fell in the counted requests of one run and in the warm-up of another, and
    # moved a request's count by up to 2 %. The young collections that remain fall where the
    # count of live objects crosses a threshold, which a version of the code moves by a few
    # objects: they are left out too (see the module's docstring).
    gc.collect()
    gc.freeze()
    gc.disable()
    send_many(requests)


def _wsgi_driver(path: str, header: bytes) -> Callable[[int], None]:
    from benchmarks.wsgi import application

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": header.decode(),
        "wsgi.url_scheme": "http",
    }

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if not status.startswith("200"):
            raise RuntimeError(f"{path} answered {status}")

    def send_many(count: int) -> None:
        for _ in range(count):
            request = dict(environ, **{"wsgi.input": io.BytesIO(b"")})
            body = application(request, start_response)
            b"".join(body)
            body.close()

    return send_many


def _asgi_driver(path: str, header: bytes) -> Callable[[int], None]:
    from benchmarks.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", header)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{path} answered {message['status']}")

    async def serve_all(count: int) -> None:
        for _ in range(count):
            await application(dict(scope), _one_request_body(), send)

    loop = asyncio.new_event_loop()
    return lambda count: loop.run_until_complete(serve_all(count))


def _one_request_body() -> Callable[[], Awaitable[dict[str, Any]]]:
    """An ASGI ``receive``: an empty body, then nothing (the client stays connected)."""
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    connected: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        return await connected

    return receive


def count_instructions(path: str, requests: int, workdir: Path) -> int:
    """Instructions executed by a process that serves ``requests`` requests on ``path``."""
    environment = project_environment()
    environment["PYTHONHASHSEED"] = "0"
    environment["BENCH_SQLITE_PATH"] = str(workdir / f"{requests}.sqlite3")
    valgrind = shutil.which("valgrind") or "valgrind"
    command = [
        valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.instructions", "--serve", path, str(requests),
    ]  # fmt: skip
    completed = subprocess.run(  # noqa: S603 - valgrind on our own interpreter and module
        command, capture_output=True, text=True, check=False, cwd=ROOT, env=environment
    )
    found = _COLLECTED_RE.search(completed.stderr)
    if completed.returncode != 0 or found is None:
        raise RuntimeError(f"counting {path} failed:\n{completed.stderr[-3000:]}")
    return int(found.group(1))


def per_request(path: str, requests: int) -> float:
    with tempfile.TemporaryDirectory(prefix="async-api-key-instructions-") as directory:
        workdir = Path(directory)
        served = count_instructions(path, requests, workdir)
        idle = count_instructions(path, 0, workdir)
    return (served - idle) / requests


def render(counts: dict[str, float], requests: int) -> str:
    """The page ``make bench-instructions`` writes: what was counted, on what, and the table."""
    paragraphs = (__doc__ or "").split("\n\n")[1:]
    valgrind = subprocess.run(  # noqa: S603 - a version query
        [shutil.which("valgrind") or "valgrind", "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    commit = subprocess.run(  # noqa: S603 - a version query
        [shutil.which("git") or "git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout.strip()
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("django-async-api-key", "Django", "djangorestframework", "django-ninja")
    )
    lines = [
        "# Instructions per request",
        "",
        "Measured by `make bench-instructions` (`benchmarks/instructions.py`): how many "
        "instructions one request costs on a protected endpoint and on the same endpoint "
        "without protection, counted by valgrind.",
        "",
        *(line for paragraph in paragraphs for line in (" ".join(paragraph.split()), "")),
        f"- Commit {commit or 'unknown'}; {platform.python_implementation()} "
        f"{platform.python_version()}; {versions}; {valgrind}",
        f"- {requests} requests per counted run, after {WARM_UP_REQUESTS} to warm up; "
        "the library's default settings, but for "
        + ", ".join(f"`{name}` {value}" for name, value in RUN_SETTINGS.items()),
        "",
        "| endpoint | instructions per request | more than open | open / this |",
        "| --- | --- | --- | --- |",
    ]
    for case in CASES:
        count, baseline = counts[case.path], counts[case.baseline]
        lines.append(
            f"| {case.label} | {count:,.0f} | {count - baseline:,.0f} | {baseline / count:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks-instructions.md",
        help="where to write the page ('-': print it only)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("PATH", "REQUESTS"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        serve(options.serve[0], int(options.serve[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    counts: dict[str, float] = {}
    for case in CASES:
        counts[case.path] = per_request(case.path, options.requests)
        print(f"{case.path}: {counts[case.path]:,.0f} instructions per request", file=sys.stderr)
    page = render(counts, options.requests)
    print(page)
    if str(options.output) != "-":
        options.output.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
