"""The support matrix: one nox session per (Python, Django) cell, each running pytest on SQLite.

`make matrix` runs every cell; `nox -s "tests-3.10-django4.2"` runs one. Interpreters come
from ~/.pyenv/versions (the newest patch release of each minor version), else from PATH.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nox

nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = False

PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"


@dataclass(frozen=True)
class Cell:
    """One supported combination, with the pins it needs beyond `Django==<django>.*`."""

    python: str
    django: str
    pins: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"tests-{self.python}-django{self.django}"


CELLS = [
    # The floor of everything we declare: Django 4.2 LTS with DRF 3.15 (the lowest DRF we support;
    # DRF 3.18 needs Django 5.2, so without a pin pip would pick 3.17 here anyway) and
    # django-ninja 1.2 (the first with throttling, which the Ninja adapter builds on).
    Cell("3.10", "4.2", pins=("djangorestframework==3.15.*", "django-ninja==1.2.*")),
    Cell("3.11", "5.2"),
    Cell("3.12", "6.0"),
    Cell("3.13", "6.1"),
]


# Distribution versions, read without importing (django-ninja reads settings on import).
VERSIONS = (
    "import sys; from importlib.metadata import version; "
    "print(f'Python {sys.version.split()[0]}', *(f'{name} {version(name)}' for name in "
    "('Django', 'django-ninja', 'pydantic', 'djangorestframework', 'adrf', 'drf-spectacular')), "
    "sep=', ')"
)


def interpreter(minor: str) -> str:
    """Absolute path of the newest pyenv CPython `minor`, or `minor` for nox to find on PATH."""
    releases = [  # plain X.Y.Z releases only, not builds such as 3.13.0t or 3.13-dev
        path
        for path in PYENV_VERSIONS.glob(f"{minor}.*/bin/python{minor}")
        if path.parts[-3].replace(".", "").isdigit()
    ]
    candidates = sorted(
        releases, key=lambda path: tuple(int(part) for part in path.parts[-3].split("."))
    )
    return str(candidates[-1]) if candidates else minor


def register_session(cell: Cell) -> None:
    @nox.session(name=cell.name, python=interpreter(cell.python), venv_backend="venv")
    def tests(session: nox.Session) -> None:
        session.install("--upgrade", "pip")
        # One resolution for everything, so a pin that conflicts with an extra fails loudly.
        session.install(
            ".[ninja,drf]",
            "-r",
            "requirements/test.txt",
            f"Django=={cell.django}.*",
            *cell.pins,
        )
        session.run("python", "-c", VERSIONS)
        # SQLite and the local-memory cache, whatever the caller's environment says.
        session.run(
            "pytest",
            "-p",
            "no:cacheprovider",
            *session.posargs,
            env={"DATABASE_URL": "sqlite:///:memory:", "REDIS_URL": ""},
        )


for matrix_cell in CELLS:
    register_session(matrix_cell)
