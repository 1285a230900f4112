"""Every Python example in the docs and the README is checked, so the docs cannot rot.

The convention, for everyone who writes a page in ``docs/`` (or edits ``README.md``):

- Every fenced ``python`` block must compile. Top-level ``await`` is allowed, as in an
  async view or a notebook.
- A block directly preceded by the comment ``<!-- test: run -->`` (a blank line between
  them is fine) is also executed, in the test suite's settings, with a database:

  - the runnable blocks of one page run in order in one shared namespace, like a doctest
    file, so a later block can use the names an earlier one defined;
  - a block with top-level ``await`` runs in an event loop (the ORM is then off limits
    on the loop, exactly as in a real async view);
  - Django models a block defines belong to the app ``tests.support.testapp``; their tables are
    created before the next block runs and dropped when the page is done;
  - ``assert`` statements are how a block states what it shows.

- A block directly preceded by ``<!-- test: skip -->`` is neither compiled nor run. Use
  it only for text that is not meant to be Python on its own (say why next to it).

Write examples that are runnable whenever the example can honestly run in the test
settings; keep the rest compiling.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.db import connection, models

from async_api_key.conf import DEFAULTS
from async_api_key.keys import secret_scanning_pattern
from tests.support import REPO_ROOT

ROOT = REPO_ROOT
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("*.md"), ROOT / "README.md"])
SNIPPET_APP = "testapp"
#: Where that app lives, so that a block's models belong to it.
SNIPPET_APP_MODULE = "tests.support.testapp"

_FENCE_RE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
_MARKER_RE = re.compile(r"<!--\s*test:\s*(?P<mode>run|skip)\s*-->\s*\Z")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    code: str
    mode: str  # "compile", "run" or "skip"

    @property
    def label(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _dedent(body: str, indent: str) -> str:
    return "".join(
        line[len(indent) :] if line.startswith(indent) else line
        for line in body.splitlines(keepends=True)
    )


def extract_snippets(page: Path) -> list[Snippet]:
    """Return the ``python`` blocks of ``page`` with the mode their marker gives them."""
    text = page.read_text(encoding="utf-8")
    snippets = []
    for match in _FENCE_RE.finditer(text):
        language = match["info"].strip().split(" ")[0].lower() if match["info"].strip() else ""
        if language not in ("python", "py"):
            continue
        marker = _MARKER_RE.search(text[: match.start()].rstrip(" \t"))
        mode = marker["mode"] if marker else "compile"
        line = text.count("\n", 0, match.start()) + 2
        snippets.append(Snippet(page, line, _dedent(match["body"], match["indent"]), mode))
    return snippets


ALL_SNIPPETS = [snippet for page in PAGES for snippet in extract_snippets(page)]
RUNNABLE_PAGES = sorted({s.page for s in ALL_SNIPPETS if s.mode == "run"})


def _compile(snippet: Snippet) -> Any:
    return compile(
        "\n" * (snippet.line - 1) + snippet.code,
        str(snippet.page),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )


def test_the_docs_have_python_examples() -> None:
    assert len(ALL_SNIPPETS) >= 10
    assert RUNNABLE_PAGES, "no page marks a block with <!-- test: run -->"


@pytest.mark.parametrize(
    "snippet", [s for s in ALL_SNIPPETS if s.mode != "skip"], ids=lambda s: s.label
)
def test_every_python_block_compiles(snippet: Snippet) -> None:
    _compile(snippet)


class _SnippetModels:
    """Models defined by snippets: tables created after each block, all dropped at the end."""

    def __init__(self) -> None:
        self.before = set(apps.all_models[SNIPPET_APP])
        self.created: list[type[models.Model]] = []

    def create_new_tables(self) -> None:
        registered = apps.all_models[SNIPPET_APP]
        new = [model for name, model in registered.items() if name not in self.before]
        new = [model for model in new if model not in self.created]
        if new:
            with connection.schema_editor() as editor:
                for model in new:
                    editor.create_model(model)
            self.created.extend(new)

    def drop_all(self) -> None:
        if self.created:
            with connection.schema_editor() as editor:
                for model in reversed(self.created):
                    editor.delete_model(model)
        for name in set(apps.all_models[SNIPPET_APP]) - self.before:
            del apps.all_models[SNIPPET_APP][name]
        apps.clear_cache()


@pytest.fixture
def snippet_models(transactional_db: None) -> Iterator[_SnippetModels]:
    tracker = _SnippetModels()
    try:
        yield tracker
    finally:
        tracker.drop_all()


def _execute(code: Any, namespace: dict[str, Any]) -> None:
    result = eval(code, namespace)  # noqa: S307  (our own docs, the point of the test)
    if asyncio.iscoroutine(result):

        async def run_block() -> None:
            await result

        # async_to_sync keeps thread-sensitive ORM calls (sync_to_async) on this thread,
        # which holds the test database connection.
        async_to_sync(run_block)()


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runnable_blocks_run(page: Path, snippet_models: _SnippetModels) -> None:
    namespace: dict[str, Any] = {"__name__": f"{SNIPPET_APP_MODULE}.docs_{page.stem}"}
    for snippet in extract_snippets(page):
        if snippet.mode != "run":
            continue
        try:
            _execute(_compile(snippet), namespace)
        except Exception as exc:
            raise AssertionError(f"the example at {snippet.label} failed: {exc!r}") from exc
        snippet_models.create_new_tables()


# Pages that state facts the code defines: checked against the code itself.


def _markdown_table(page: Path, first_header: str) -> list[list[str]]:
    lines = page.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_published_secret_scanning_regex_is_the_one_the_code_builds() -> None:
    pattern = secret_scanning_pattern("ak")
    keys_page = (DOCS / "keys.md").read_text(encoding="utf-8")
    published = re.search(
        r"<!-- secret-scanning-pattern -->\s*```text\n(.*?)\n```", keys_page, re.S
    )
    assert published is not None, "docs/keys.md lost its marked regex block"
    assert published[1] == pattern
    assert f"`{pattern}`" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_reference_lists_every_setting_with_its_default() -> None:
    rows = _markdown_table(DOCS / "settings.md", "Setting")
    documented = {row[0].strip("`"): ast.literal_eval(row[1].strip("`")) for row in rows}
    assert documented == DEFAULTS


_TEST_REFERENCE_RE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_security_page_cites_tests_that_exist() -> None:
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    cited = _TEST_REFERENCE_RE.findall(text)
    assert len(cited) >= 8
    missing = []
    for path, name in cited:
        source = ROOT / path
        defined = (
            {
                node.name
                for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if source.exists()
            else set()
        )
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/security.md cites tests that do not exist: {missing}"
