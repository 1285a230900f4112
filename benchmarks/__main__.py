"""``python -m benchmarks``: run every benchmark, print the tables, write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import over_http, propagation

if TYPE_CHECKING:
    from benchmarks.report import Environment

ROOT = Path(__file__).resolve().parent.parent


def _progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    defaults = over_http.LoadSettings()
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="rounds per server")
    parser.add_argument(
        "--duration", type=int, default=defaults.duration, help="seconds per load run"
    )
    parser.add_argument(
        "--warmup", type=int, default=defaults.warmup, help="seconds of warm-up per endpoint"
    )
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="wrk threads")
    parser.add_argument("--skip-http", action="store_true", help="no load runs over HTTP")
    parser.add_argument("--skip-gunicorn", action="store_true")
    parser.add_argument(
        "--skip-propagation",
        action="store_true",
        help="skip revocation propagation across processes (benchmarks/propagation.py)",
    )
    parser.add_argument(
        "--revocations",
        type=int,
        default=propagation.REVOCATIONS,
        help="revocations per propagation configuration",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the report to write ('-' to write none)",
    )
    return parser.parse_args()


def main() -> int:
    arguments = _arguments()
    workdir = Path(tempfile.mkdtemp(prefix="async-api-key-bench-"))
    if "DATABASE_URL" not in os.environ:
        os.environ["BENCH_SQLITE_PATH"] = str(workdir / "bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    try:
        return _run(arguments, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(arguments: argparse.Namespace, workdir: Path) -> int:
    import django

    django.setup()

    from django.core.management import call_command

    from benchmarks import inprocess, report

    started = time.time()
    environment: Environment = report.describe_environment()
    _progress(f"database: {environment.database}; load: {environment.load_tool}")
    call_command("migrate", verbosity=0)
    keys = inprocess.create_keys()
    try:
        in_process = inprocess.run(keys, _progress)
        settings = over_http.LoadSettings(
            threads=arguments.threads,
            connections=arguments.connections,
            duration=arguments.duration,
            warmup=arguments.warmup,
            rounds=arguments.rounds,
        )
        servers: list[over_http.ServerResults] = []
        if not arguments.skip_http:
            servers = over_http.measure_all(
                hot_key=keys.hot,
                upstream_key=keys.upstream,
                settings=settings,
                log_dir=workdir,
                with_gunicorn=not arguments.skip_gunicorn,
                progress=_progress,
            )
    finally:
        _forget_keys()
    propagated = None
    if not arguments.skip_propagation:
        propagated = propagation.run(workdir, _progress, arguments.revocations)
    environment = environment.finished(time.time() - started)
    text = report.render(environment, in_process, servers, settings, propagated)
    print(text)
    if str(arguments.output) != "-":
        arguments.output.write_text(text, encoding="utf-8")
        _progress(f"wrote {arguments.output}")
    return 0


def _forget_keys() -> None:
    """Delete the keys this run made (they matter only on a DATABASE_URL database)."""
    from rest_framework_api_key.models import APIKey as UpstreamAPIKey

    from async_api_key.models import APIKey

    APIKey.objects.filter(name__startswith="bench-").delete()
    UpstreamAPIKey.objects.filter(name__startswith="bench-").delete()


if __name__ == "__main__":
    sys.exit(main())
