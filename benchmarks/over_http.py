"""Over HTTP: one server process on 127.0.0.1, a bounded load from a separate client process.

Servers: uvicorn (ASGI, one worker) for the Ninja and DRF endpoints, gunicorn (WSGI, one
sync worker) for the DRF ones. The load comes from wrk when it is installed, otherwise from
``benchmarks.loadgen`` (Python, slower: the ratios still hold, the absolute numbers are
lower). Every run is bounded in time; the fallback is bounded in requests too.

Each round measures every protected endpoint once, in a rotated order, each time right next
to its framework's open endpoint (first or second in turns; each endpoint's first run after
a short warm-up). Runs are short (1 s) and many (20 rounds): the load of a shared machine
drifts over seconds, and the shorter a pair, the less of that drift lies between its two
runs. The tables give the median over runs, and each protected/open ratio is the median of
the ratios of those adjacent runs: the machine's load changes from second to second, and two
runs made apart would charge that change to protection. Besides requests/s, each run reads
how much CPU time the server's threads used (``/proc/<pid>/task/*/schedstat``), so the cost
of a request can be compared even when other work on the machine takes CPU from the server.
"""

from __future__ import annotations

import dataclasses
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
#: Hard limits of one load run, whatever the settings say.
MAX_DURATION_SECONDS = 30
MAX_REQUESTS_PER_RUN = 200_000
SERVER_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class LoadSettings:
    threads: int = 1
    connections: int = 32
    duration: int = 1
    warmup: int = 2
    rounds: int = 20


@dataclass(frozen=True)
class Endpoint:
    name: str
    label: str
    path: str
    raw_key: str
    protected: bool


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    #: Server CPU time (all its threads and child processes) per request, in µs.
    cpu_us_per_request: float = float("nan")


@dataclass(frozen=True)
class EndpointResult:
    endpoint: Endpoint
    runs: tuple[LoadResult, ...]

    @property
    def requests_per_second(self) -> float:
        return median(run.requests_per_second for run in self.runs)

    @property
    def p50_ms(self) -> float:
        return median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return median(run.p99_ms for run in self.runs)

    @property
    def cpu_us_per_request(self) -> float:
        return median(run.cpu_us_per_request for run in self.runs)

    @property
    def failures(self) -> int:
        return sum(run.failures for run in self.runs)


@dataclass(frozen=True)
class ServerResults:
    server: str
    description: str
    endpoints: dict[str, EndpointResult]
    #: For each protected endpoint, the run of its framework's open endpoint made right next
    #: to each of its own runs (see :func:`measure_server`).
    adjacent_open: dict[str, tuple[LoadResult, ...]]

    def ratios(self, name: str, baseline: str) -> list[float]:
        """``name``'s requests/s over ``baseline``'s, one ratio per pair of runs."""
        return [
            a.requests_per_second / b.requests_per_second for a, b in self._pairs(name, baseline)
        ]

    def cpu_ratios(self, name: str, baseline: str) -> list[float]:
        """Requests per server CPU-second of ``name`` over ``baseline``'s, one per pair."""
        return [b.cpu_us_per_request / a.cpu_us_per_request for a, b in self._pairs(name, baseline)]

    def _pairs(self, name: str, baseline: str) -> list[tuple[LoadResult, LoadResult]]:
        """Runs of ``name`` with the run of ``baseline`` to compare each with: the adjacent
        one for a protected endpoint against its open endpoint, otherwise the same round's."""
        mine = self.endpoints[name].runs
        if name == baseline:
            return [(run, run) for run in mine]
        if baseline == open_endpoint_of(name):
            return list(zip(mine, self.adjacent_open[name], strict=True))
        return list(zip(mine, self.endpoints[baseline].runs, strict=True))


def open_endpoint_of(name: str) -> str:
    """The open endpoint of the framework an endpoint belongs to (``drf/ours`` -> ``drf/open``)."""
    return name.partition("/")[0] + "/open"


def load_tool() -> str:
    """``"wrk"`` when wrk is on the PATH, else ``"python"`` (benchmarks.loadgen)."""
    return "wrk" if shutil.which("wrk") else "python"


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "not installed"
    completed = subprocess.run(  # noqa: S603 - a fixed command
        [wrk, "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    first_line = (completed.stdout or completed.stderr).splitlines()[:1]
    return first_line[0].split(" Copyright")[0].strip() if first_line else "unknown"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def project_environment() -> dict[str, str]:
    """The environment of a child process that runs the benchmark project (a server, a load
    generator, a counted run of ``benchmarks.instructions``)."""
    environment = dict(os.environ)
    environment["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH", "")])
    )
    return environment


def server_command(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "benchmarks.asgi:application",
            "--host", HOST, "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning", "--lifespan", "off",
        ]  # fmt: skip
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application",
            "--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", "sync",
            "--log-level", "warning",
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def _get(port: int, path: str, raw_key: str | None, timeout: float = 5.0) -> int:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {} if raw_key is None else {"Authorization": f"Api-Key {raw_key}"}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@contextmanager
def running_server(server: str, log_path: Path) -> Iterator[tuple[int, int]]:
    """Start ``server`` on a free loopback port; yield (port, pid); always stop it by PID."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            server_command(server, port),
            cwd=ROOT,
            env=project_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_until_serving(process, port, log_path)
            yield port, process.pid
        finally:
            _stop(process)


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited at start-up:\n{log_path.read_text()}")
        try:
            if _get(port, "/ninja/open", None, timeout=1.0) == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server by its PID; if it lingers, SIGKILL its own process group."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        # The group is the server's own (start_new_session): its master and its worker.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def server_cpu_seconds(pid: int) -> float:
    """CPU time used so far by the threads of ``pid`` and of its child processes (Linux)."""
    pids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:  # the field after the state is the parent's pid
            pids.append(int(stat.parent.name))
    nanoseconds = 0
    for process in pids:
        for schedstat in Path(f"/proc/{process}/task").glob("*/schedstat"):
            try:
                nanoseconds += int(schedstat.read_text().split()[0])
            except OSError:
                continue
    return nanoseconds / 1e9


def check_endpoint(port: int, endpoint: Endpoint) -> None:
    """Refuse to measure an endpoint that does not behave: 200 with the key, and refusal
    without a usable one when it is protected (else we would time the wrong thing)."""
    status = _get(port, endpoint.path, endpoint.raw_key)
    if status != 200:
        raise RuntimeError(f"{endpoint.name}: expected 200 with the key, got {status}")
    if endpoint.protected:
        last = endpoint.raw_key[-1]
        refused = _get(port, endpoint.path, endpoint.raw_key[:-1] + ("x" if last != "x" else "y"))
        if refused not in (401, 403):
            raise RuntimeError(f"{endpoint.name}: a bad key got {refused}, not 401/403")


_LATENCY_RE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> LoadResult:
    percentiles = {
        int(p): float(value) * _UNIT_TO_MS[unit] for p, value, unit in _LATENCY_RE.findall(output)
    }
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    if rate is None or total is None or set(percentiles) != {50, 99}:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    refused = re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.findall(r"(?:connect|read|write|timeout) (\d+)", output)
    failures = sum(int(n) for n in [*refused, *socket_errors])
    return LoadResult(float(rate[1]), percentiles[50], percentiles[99], int(total[1]), failures)


def run_load(port: int, endpoint: Endpoint, settings: LoadSettings, duration: int) -> LoadResult:
    duration = min(duration, MAX_DURATION_SECONDS)
    url = f"http://{HOST}:{port}{endpoint.path}"
    header = f"Authorization: Api-Key {endpoint.raw_key}"
    wrk = shutil.which("wrk")
    if wrk is not None:
        command = [
            wrk, f"-t{settings.threads}", f"-c{settings.connections}", f"-d{duration}s",
            "--timeout", "5s", "--latency", "-H", header, url,
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "benchmarks.loadgen", "--url", url, "--header", header,
            "--connections", str(settings.connections), "--duration", str(duration),
            "--max-requests", str(MAX_REQUESTS_PER_RUN),
        ]  # fmt: skip
    completed = subprocess.run(  # noqa: S603 - a fixed command on a loopback URL
        command,
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
        cwd=ROOT,
        env=project_environment(),
    )
    if wrk is not None:
        return parse_wrk(completed.stdout)
    return LoadResult(**json.loads(completed.stdout))


def measure_server(
    *,
    server: str,
    description: str,
    endpoints: Sequence[Endpoint],
    settings: LoadSettings,
    log_dir: Path,
    progress: Callable[[str], None],
) -> ServerResults:
    runs: dict[str, list[LoadResult]] = {endpoint.name: [] for endpoint in endpoints}
    adjacent_open: dict[str, list[LoadResult]] = {}
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    protected = [endpoint for endpoint in endpoints if endpoint.protected]
    warmed: set[str] = set()
    with running_server(server, log_dir / f"{server}.log") as (port, pid):
        progress(f"{server}: serving on {HOST}:{port} (pid {pid})")
        for endpoint in endpoints:
            check_endpoint(port, endpoint)
        for round_number in range(settings.rounds):
            shift = round_number % len(protected)
            for index, endpoint in enumerate([*protected[shift:], *protected[:shift]]):
                baseline = by_name[open_endpoint_of(endpoint.name)]
                # Next to each other, so that what the machine does meanwhile weighs on both;
                # in turns first and second, so that neither order is favoured.
                pair = (baseline, endpoint) if (round_number + index) % 2 else (endpoint, baseline)
                measured: dict[str, LoadResult] = {}
                for member in pair:
                    if settings.warmup and member.name not in warmed:
                        run_load(port, member, settings, settings.warmup)
                        warmed.add(member.name)
                    measured[member.name] = _measured_run(port, pid, member, settings)
                    progress(
                        f"{server} round {round_number + 1}/{settings.rounds}: {member.name}: "
                        + _summary(measured[member.name])
                    )
                runs[endpoint.name].append(measured[endpoint.name])
                runs[baseline.name].append(measured[baseline.name])
                adjacent_open.setdefault(endpoint.name, []).append(measured[baseline.name])
    return ServerResults(
        server=server,
        description=description,
        endpoints={
            endpoint.name: EndpointResult(endpoint, tuple(runs[endpoint.name]))
            for endpoint in endpoints
        },
        adjacent_open={name: tuple(pairs) for name, pairs in adjacent_open.items()},
    )


def _measured_run(port: int, pid: int, endpoint: Endpoint, settings: LoadSettings) -> LoadResult:
    """One load run, with the server CPU time it cost per request."""
    cpu_before = server_cpu_seconds(pid)
    result = run_load(port, endpoint, settings, settings.duration)
    cpu_used = server_cpu_seconds(pid) - cpu_before
    return dataclasses.replace(result, cpu_us_per_request=cpu_used * 1e6 / max(result.requests, 1))


def _summary(result: LoadResult) -> str:
    return (
        f"{result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, CPU {result.cpu_us_per_request:,.0f} µs/req"
        + (f", {result.failures} failures" if result.failures else "")
    )


def gunicorn_available() -> bool:
    return importlib.util.find_spec("gunicorn") is not None


def measure_all(
    *,
    hot_key: str,
    upstream_key: str,
    settings: LoadSettings,
    log_dir: Path,
    with_gunicorn: bool,
    progress: Callable[[str], None],
) -> list[ServerResults]:
    """Ninja and DRF on uvicorn, then DRF on gunicorn (when installed and wanted)."""
    ninja = [
        Endpoint("ninja/open", "Ninja async, open", "/ninja/open", hot_key, False),
        Endpoint("ninja/ours", "Ninja async, `APIKeyAuth`", "/ninja/ours", hot_key, True),
        Endpoint(
            "ninja/upstream",
            "Ninja async, upstream `is_valid` in `sync_to_async`",
            "/ninja/upstream",
            upstream_key,
            True,
        ),
        Endpoint(
            "ninja/floor",
            "Ninja async, floor: a dictionary lookup and a new key object (a reference)",
            "/ninja/floor",
            hot_key,
            True,
        ),
    ]
    drf = [
        Endpoint("drf/open", "DRF, open", "/drf/open", hot_key, False),
        Endpoint("drf/ours-permission", "DRF, `HasAPIKey`", "/drf/ours-permission", hot_key, True),
        Endpoint(
            "drf/ours",
            "DRF, `HasAPIKey` + `APIKeyAuthentication`",
            "/drf/ours",
            hot_key,
            True,
        ),
        Endpoint("drf/upstream", "DRF, upstream `HasAPIKey`", "/drf/upstream", upstream_key, True),
        Endpoint(
            "drf/floor",
            "DRF, floor: a dictionary lookup and a new key object (a reference)",
            "/drf/floor",
            hot_key,
            True,
        ),
    ]
    results = [
        measure_server(
            server="uvicorn",
            description="uvicorn, one worker (ASGI; DRF's sync views run in one worker thread)",
            endpoints=[*ninja, *drf],
            settings=settings,
            log_dir=log_dir,
            progress=progress,
        )
    ]
    if with_gunicorn and gunicorn_available():
        results.append(
            measure_server(
                server="gunicorn",
                description="gunicorn, one sync worker (WSGI)",
                endpoints=drf,
                settings=settings,
                log_dir=log_dir,
                progress=progress,
            )
        )
    elif with_gunicorn:
        progress("gunicorn is not installed: the DRF-on-gunicorn table is skipped")
    return results
