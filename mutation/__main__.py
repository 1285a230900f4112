"""Mutation testing of the security core: ``make mutation`` (see docs/testing.md).

Runs mutmut (configured in pyproject.toml, ``[tool.mutmut]``) on one module at a time, with
at most ``--max-children`` test processes, then prints a score per module that leaves out the
mutants listed in ``mutation/equivalent.txt`` as equivalent or message-only (each with its reason).

mutmut 3.8 does not mutate decorated functions; the security core has some that decide
(``Verifier.verify``/``averify`` under ``masks_key_locals``, the properties of
``VerificationOutcome`` and ``KeySource``, the cache's change receiver). ``patch_mutmut``
lets it: the trampoline keeps the decorators, and the copies it dispatches to keep only those
that are transparent to a call (``masks_key_locals``, ``staticmethod``, ``classmethod``).

    python -m mutation                     # every module of the core, a fresh run
    python -m mutation keys verification   # these modules only
    python -m mutation --report            # the scores of the last run, running nothing
    python -m mutation --mutmut show NAME  # any mutmut command, with the patch applied
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "async_api_key"
#: The security core, in the order it is run (fast, pure modules first).
MODULES = (
    "keys",
    "hashing",
    "scopes",
    "networks",
    "reasons",
    "refusals",
    "headers",
    "password_hash_budget",
    "ratelimit",
    "cache",
    "verification",
)
#: Modules of which only one class belongs to the core (default: the whole module). Of
#: ratelimit.py, the throttling decision: the limiter, not the parsing of rate strings.
CLASSES = {"ratelimit": "RateLimiter"}
#: Decorators a copy of a mutated function keeps: they only wrap a call. The others
#: (``property``, ``lru_cache``, ``receiver(...)``) stay on the trampoline alone.
KEPT_ON_COPIES = frozenset({"staticmethod", "classmethod", "masks_key_locals"})
EQUIVALENT_FILE = Path(__file__).with_name("equivalent.txt")
#: Where a run works: a copy of the project taken when it starts, so that edits made during a
#: long run (mutmut copies tests/ again for each module) neither change nor break it.
SNAPSHOT = ROOT / "build" / "mutation"
#: What the tests need of the project (the docs' snippets, the demo, the benchmarks' statistics),
#: besides src/ and tests/.
SNAPSHOT_PARTS = (
    "src",
    "tests",
    "mutation",
    "docs",
    "demo",
    "benchmarks",
    "pyproject.toml",
    "README.md",
    "mkdocs.yml",
    "CHANGELOG.md",
)


def patch_mutmut() -> None:
    """Let mutmut mutate decorated functions (see the module docstring)."""
    import libcst as cst
    from mutmut.mutation import file_mutation

    skip = file_mutation.MutationVisitor._skip_node_and_children

    def skip_ignoring_decorators(self: Any, node: cst.CSTNode) -> bool:
        if not isinstance(node, cst.FunctionDef) or not node.decorators:
            return skip(self, node)
        decorators = node.decorators
        # The node is looked up by identity (positions, pragmas): hide its decorators in place.
        object.__setattr__(node, "decorators", ())
        try:
            return skip(self, node)
        finally:
            object.__setattr__(node, "decorators", decorators)

    arrange = file_mutation.function_trampoline_arrangement

    def arrange_with_plain_copies(
        function: cst.FunctionDef, mutants: Iterable[Any], class_name: str | None
    ) -> Any:
        declarations, methods, assignments, names = arrange(function, mutants, class_name)
        trampoline, *copies = methods
        plain = [_keep_call_decorators(copy) for copy in copies]
        return declarations, [trampoline, *plain], assignments, names

    file_mutation.MutationVisitor._skip_node_and_children = skip_ignoring_decorators  # type: ignore[method-assign]
    file_mutation.function_trampoline_arrangement = arrange_with_plain_copies


def _keep_call_decorators(node: Any) -> Any:
    import libcst as cst

    if not isinstance(node, cst.FunctionDef):
        return node
    kept = [d for d in node.decorators if _decorator_name(d.decorator) in KEPT_ON_COPIES]
    return node.with_changes(decorators=kept)


def _decorator_name(expression: Any) -> str:
    import libcst as cst

    if isinstance(expression, cst.Call):
        return _decorator_name(expression.func)
    if isinstance(expression, cst.Attribute):
        return str(expression.attr.value)
    if isinstance(expression, cst.Name):
        return str(expression.value)
    return ""


def run_mutmut(arguments: Sequence[str]) -> int:
    """Run one mutmut command in this process, patched."""
    patch_mutmut()
    from mutmut.__main__ import cli

    try:
        cli.main(list(arguments), prog_name="mutmut", standalone_mode=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def _mutmut_in_child(arguments: Sequence[str]) -> int:
    command = [sys.executable, "-m", "mutation", "--mutmut", *arguments]
    return subprocess.run(command, cwd=SNAPSHOT, check=False).returncode  # noqa: S603


def take_snapshot() -> None:
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    SNAPSHOT.mkdir(parents=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in SNAPSHOT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, SNAPSHOT / part, ignore=skip)
        elif source.exists():
            shutil.copy2(source, SNAPSHOT / part)


def mutant_count(module: str) -> int:
    """How many mutants the (patched) generator makes of ``module``."""
    patch_mutmut()
    from mutmut.mutation.file_mutation import mutate_file_contents

    path = SNAPSHOT / "src" / PACKAGE / f"{module}.py"
    mutated = mutate_file_contents(str(path), path.read_text(encoding="utf-8"))
    return len(mutated.mutant_names)


# ---------------------------------------------------------------------------------------------
# Scores


def load_equivalents() -> list[tuple[str, str, str]]:
    """``(mutant name pattern, mutated line, reason)`` of the mutants left out of the score."""
    entries = []
    for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, mutated, reason = (part.strip() for part in line.split(" || ", 2))
        entries.append((pattern, mutated, reason))
    return entries


def _results(module: str) -> dict[str, str]:
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    data = SourceFileMutationData(path=Path("src") / PACKAGE / f"{module}.py")
    data.load()
    pattern = _pattern(module)
    return {
        name: status_by_exit_code[code]
        for name, code in data.exit_code_by_key.items()
        if fnmatch.fnmatchcase(name, pattern)
    }


def _pattern(module: str) -> str:
    """The mutmut names of the module's mutants that count."""
    from mutmut.mutation.trampoline_templates import CLASS_NAME_SEPARATOR as SEP

    cls = CLASSES.get(module)
    return f"{PACKAGE}.{module}.{f'x{SEP}{cls}{SEP}' if cls else ''}*"


def _mutated_lines(name: str) -> set[str]:
    """The lines the mutant ``name`` adds, stripped, and those it only removes, stripped and
    marked ``-`` (how equivalent.txt recognises it: a mutant that deletes an argument adds
    no line)."""
    from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=find_mutant(name).path).splitlines()
    added = {line[1:].strip() for line in diff if line.startswith("+") and line[:3] != "+++"}
    removed = {line[1:].strip() for line in diff if line.startswith("-") and line[:3] != "---"}
    return added | {f"-{line}" for line in removed if not added}


def _equivalence(name: str, entries: list[tuple[str, str, str]]) -> str | None:
    matching = [e for e in entries if fnmatch.fnmatchcase(name, e[0])]
    if not matching:
        return None
    lines = _mutated_lines(name)
    for _pattern, mutated, reason in matching:
        if mutated in lines:
            return reason
    return None


def report(modules: Sequence[str], *, show: Callable[[str], None] = print) -> bool:
    """Print the score of each module; whether every one reaches 95%."""
    entries = load_equivalents()
    show(f"{'module':<24}{'mutants':>8}{'killed':>8}{'excluded':>9}{'survived':>9}{'score':>8}")
    all_pass = True
    survivors: list[str] = []
    for module in modules:
        counts: Counter[str] = Counter()
        for name, status in _results(module).items():
            if status in {"killed", "timeout", "caught by type check"}:
                counts["killed"] += 1
            elif status == "not checked":
                counts["unchecked"] += 1
            elif (reason := _equivalence(name, entries)) and not reason.startswith("counted:"):
                counts["excluded"] += 1
            else:
                counts["survived"] += 1
                survivors.append(f"{name}: {status}" + (f" ({reason})" if reason else ""))
        counted = counts["killed"] + counts["survived"]
        score = 100.0 * counts["killed"] / counted if counted else 100.0
        all_pass = all_pass and score >= 95.0 and not counts["unchecked"]
        unchecked = f"  ({counts['unchecked']} not checked)" if counts["unchecked"] else ""
        show(
            f"{module + '.py':<24}{sum(counts.values()):>8}{counts['killed']:>8}"
            f"{counts['excluded']:>9}{counts['survived']:>9}{score:>7.1f}%{unchecked}"
        )
    if survivors:
        show("\nSurvivors (counted):")
        for survivor in survivors:
            show(f"  {survivor}")
    return all_pass


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--mutmut"]:
        return run_mutmut(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", choices=[*MODULES, []], metavar="MODULE")
    parser.add_argument("--max-children", type=int, default=1, help="test processes (1 or 2)")
    parser.add_argument("--keep", action="store_true", help="reuse the last run's snapshot")
    parser.add_argument("--report", action="store_true", help="print the last run's scores")
    options = parser.parse_args(argv)
    modules = options.modules or list(MODULES)
    if not options.report:
        if not options.keep or not SNAPSHOT.exists():
            take_snapshot()
        for module in modules:
            print(f"\n=== mutation testing {PACKAGE}/{module}.py", flush=True)
            if not mutant_count(module):
                print("no mutants", flush=True)
                continue
            run = ["run", "--max-children", str(options.max_children), _pattern(module)]
            code = _mutmut_in_child(run)
            if code:
                return code
    print()
    os.chdir(SNAPSHOT)
    return 0 if report(modules) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
