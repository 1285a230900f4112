# Everything runs from a virtual environment this Makefile makes itself:
# on a fresh machine with Python 3.10+, `make test` and `make demo` are all it takes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CI_STAMP := $(VENV)/.installed-ci
PYTEST_ARGS ?=

.PHONY: test lint typecheck pytest demo docs clean matrix coverage build-check migrations-check

$(STAMP): pyproject.toml requirements/test.txt requirements/lint.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is required") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[ninja,drf]" -r requirements/test.txt -r requirements/lint.txt
	touch $(STAMP)

## test: lint, type-check and run the whole suite (SQLite and local memory unless DATABASE_URL / REDIS_URL say otherwise)
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## demo: migrate the demo shop (SQLite, or DATABASE_URL), create an admin user and one API key,
## serve it on 127.0.0.1:8000 and print curl commands to try (see demo/run.py)
demo: $(STAMP)
	$(BIN)/python demo/run.py

## docs: build the documentation site into site/ (mkdocs --strict: any warning fails)
docs: $(STAMP) requirements/docs.txt
	$(BIN)/python -m pip install --quiet -r requirements/docs.txt
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The quality gates CI runs besides `make test` (see .ci/run). Their tools (nox, build) come from
# requirements/ci.txt, installed into the same virtual environment on first use.
$(CI_STAMP): $(STAMP) requirements/ci.txt
	$(BIN)/python -m pip install --quiet -r requirements/ci.txt
	touch $(CI_STAMP)

## matrix: the suite on every supported Python x Django cell (noxfile.py; SQLite, interpreters from pyenv)
matrix: $(CI_STAMP)
	$(BIN)/nox --no-color --report .nox/report.json

## coverage: the suite with branch coverage of src/async_api_key, reported per file; fails under 95%
coverage: $(STAMP)
	$(BIN)/pytest --cov --cov-branch --cov-report=term-missing --cov-fail-under=95 $(PYTEST_ARGS)

## migrations-check: fail if the models have changes that no migration records
migrations-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=tests.support.settings PYTHONPATH=. \
		$(BIN)/django-admin makemigrations --check --dry-run --verbosity 2

## build-check: sdist and wheel build; the wheel installs and imports with only [ninja], then only [drf]
build-check: $(CI_STAMP)
	@set -eu; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/python -m build --outdir "$$tmp/dist" . >"$$tmp/build.log" 2>&1 || { cat "$$tmp/build.log"; exit 1; }; \
	ls "$$tmp/dist"; wheel=$$(ls "$$tmp"/dist/*.whl); \
	$(BIN)/python -m zipfile -l "$$wheel" >"$$tmp/wheel-contents.txt"; \
	for member in async_api_key/py.typed async_api_key/migrations/0001_initial.py \
		async_api_key/templates/async_api_key/admin/key_created.html; do \
		grep -q "^$$member " "$$tmp/wheel-contents.txt" \
			|| { echo "build-check: $$member missing from $$wheel"; exit 1; }; \
	done; echo "wheel holds py.typed, migrations and templates"; \
	printf '%s\n' 'SECRET_KEY = "build-check"' 'USE_TZ = True' \
		'INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "async_api_key"]' \
		'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}' \
		>"$$tmp/minimal_settings.py"; \
	for extra in ninja:ninja:rest_framework drf:drf:ninja; do \
		name=$${extra%%:*}; rest=$${extra#*:}; adapter=$${rest%%:*}; absent=$${rest#*:}; \
		$(PYTHON) -m venv "$$tmp/venv-$$name"; \
		"$$tmp/venv-$$name/bin/python" -m pip install --quiet "$$wheel[$$name]"; \
		(cd "$$tmp" && DJANGO_SETTINGS_MODULE=minimal_settings PYTHONPATH="$$tmp" \
			"$$tmp/venv-$$name/bin/python" -c "import importlib.util, django; django.setup(); \
		import async_api_key, async_api_key.models, async_api_key.$$adapter; \
		assert importlib.util.find_spec('$$absent') is None, '$$absent installed by [$$name]'; \
		print('[$$name] wheel: import async_api_key, async_api_key.models, async_api_key.$$adapter: ok')"); \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov build dist site

## bench: benchmarks against djangorestframework-api-key, in-process and over HTTP on 127.0.0.1
## (uvicorn and gunicorn, loaded by wrk); prints the tables and writes docs/benchmarks.md
.PHONY: bench
BENCH_ARGS ?=
bench: $(STAMP) requirements/bench.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; } \
		|| echo "bench: wrk could not be installed; the Python load generator stands in (lower req/s, same ratios)"
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## bench-instructions: instructions per request (valgrind's callgrind), protected against open,
## in process: ratios without the machine's noise; writes docs/benchmarks-instructions.md
.PHONY: bench-instructions
bench-instructions: $(STAMP) requirements/bench.txt
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	@command -v valgrind >/dev/null 2>&1 || apt-get install -y -qq valgrind >/dev/null 2>&1 \
		|| echo "bench-instructions: valgrind could not be installed"
	$(BIN)/python -m benchmarks.instructions $(INSTRUCTIONS_ARGS)

## mutation: mutation testing of the security core, one module at a time (MUTATION_ARGS: modules,
## --max-children 1|2); prints a score per module (docs/testing.md). Slow: not part of CI
.PHONY: mutation
MUTATION_ARGS ?=
mutation: $(STAMP) requirements/mutation.txt
	$(BIN)/python -m pip install --quiet -r requirements/mutation.txt
	nice -n 10 $(BIN)/python -m mutation $(MUTATION_ARGS)
