# Everything runs from a virtual environment this Makefile makes itself:
# on a fresh machine with Python 3.10+, `make test` and `make demo` are all it takes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test lint typecheck pytest demo clean

$(STAMP): pyproject.toml requirements/test.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is required") if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[ninja,drf]" -r requirements/test.txt
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

## demo: migrate a local SQLite database, create an API key and print it once
demo: $(STAMP)
	$(BIN)/python demo/manage.py migrate --verbosity 0
	$(BIN)/python demo/manage.py shell -c "from async_api_key.models import APIKey; print(APIKey.objects.create_key(name='demo')[1])"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov build dist site
