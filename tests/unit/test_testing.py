"""``async_api_key.testing``: keys that a project's sync and async tests can both use, and why
a key made under pytest-django's default ``db`` fixture fails in an async test (docs/testing.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient, TestCase

from async_api_key.commands import CreatedKey
from async_api_key.models import APIKey
from async_api_key.verification import Reason
from tests.support import REPO_ROOT

if TYPE_CHECKING:
    # Not imported at run time: pytest_plugins below loads the module as a plugin.
    from async_api_key.testing import APIKeyFactory

pytest_plugins = ["async_api_key.testing"]

WHOAMI = "/api/async/whoami"
#: The name the isolation pair of tests creates and then looks for.
ISOLATION_NAME = "made-by-the-factory"


def authorization(raw_key: str) -> dict[str, str]:
    return {"Authorization": f"Api-Key {raw_key}"}


@pytest.fixture
def key_in_the_test_transaction(db: None) -> CreatedKey:
    """What a project writes first: a sync fixture under pytest-django's default ``db``."""
    api_key, raw_key = APIKey.objects.create_key(name="uncommitted")
    if connection.vendor == "postgresql":
        # So that the async path meets a real database error on PostgreSQL too (on SQLite
        # the write above already locks the table).
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE async_api_key_apikey IN ACCESS EXCLUSIVE MODE")
    return CreatedKey(api_key=api_key, raw_key=raw_key)


def _set_lock_timeout(value: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = '{value}'")


# --- the trap: the default `db` fixture and an async test ---------------------------------------


@pytest.mark.urls("tests.support.ninja_urls")
async def test_a_key_from_the_default_db_fixture_is_refused_in_an_async_test(
    key_in_the_test_transaction: CreatedKey,
) -> None:
    # The view's verification runs in sync_to_async's thread, on a connection of its own,
    # which the test's open transaction keeps out: SQLite's shared in-memory test database
    # answers "database table is locked", PostgreSQL waits for the lock (here, 50 ms).
    await sync_to_async(_set_lock_timeout)("50ms")
    try:
        response = await AsyncClient().get(
            WHOAMI, headers=authorization(key_in_the_test_transaction.raw_key)
        )
    finally:
        await sync_to_async(_set_lock_timeout)("0")

    assert response.status_code == 503
    assert response.json()["code"] == "api_key_verification_unavailable"


async def test_the_unavailable_log_line_says_why_and_holds_no_key(
    key_in_the_test_transaction: CreatedKey, caplog: pytest.LogCaptureFixture
) -> None:
    raw_key = key_in_the_test_transaction.raw_key
    await sync_to_async(_set_lock_timeout)("50ms")
    try:
        with caplog.at_level(logging.ERROR, logger="async_api_key"):
            outcome = await APIKey.objects.verifier.averify(raw_key)
    finally:
        await sync_to_async(_set_lock_timeout)("0")

    assert outcome.reason is Reason.UNAVAILABLE
    [record] = caplog.records
    message = record.getMessage()
    cause = "database table is locked" if connection.vendor == "sqlite" else "lock timeout"
    assert cause in message
    assert f"prefix={key_in_the_test_transaction.api_key.prefix}" in message
    assert raw_key not in message
    assert raw_key.rsplit("_", 1)[1] not in message  # not even the secret alone


# --- the fixtures ---------------------------------------------------------------------------------


@pytest.mark.urls("tests.support.ninja_urls")
async def test_the_api_key_fixture_authenticates_in_an_async_test(api_key: CreatedKey) -> None:
    response = await AsyncClient().get(WHOAMI, headers=authorization(api_key.raw_key))

    assert response.status_code == 200
    assert await APIKey.objects.ais_valid(api_key.raw_key)


@pytest.mark.urls("tests.support.ninja_urls")
def test_the_api_key_fixture_authenticates_in_a_sync_test(api_key: CreatedKey) -> None:
    assert APIKey.objects.is_valid(api_key.raw_key)
    assert api_key.api_key.name == "test"


def test_a_key_revoked_in_the_test_is_refused_at_once(api_key: CreatedKey) -> None:
    assert APIKey.objects.is_valid(api_key.raw_key)  # now cached in this process

    api_key.api_key.revoke()

    assert not APIKey.objects.is_valid(api_key.raw_key)


async def test_the_factory_takes_the_keys_fields(api_key_factory: APIKeyFactory) -> None:
    created = await api_key_factory.acreate("orders", scopes=["orders:read"])

    outcome = await APIKey.objects.verifier.averify(created.raw_key, scopes=["orders:read"])
    assert outcome.reason is Reason.VALID
    assert outcome.api_key is not None
    assert outcome.api_key.name == "orders"


def test_keys_the_factory_makes_in_a_test_stay_in_that_test(
    api_key_factory: APIKeyFactory,
) -> None:
    api_key_factory.create(ISOLATION_NAME)

    assert APIKey.objects.filter(name=ISOLATION_NAME).exists()


@pytest.mark.django_db
def test_keys_the_factory_made_in_the_previous_test_are_gone() -> None:
    # Runs after the test above (pytest keeps a module's order): transactional_db emptied
    # the tables.
    assert not APIKey.objects.filter(name=ISOLATION_NAME).exists()


class DjangoTestCaseAsyncTests(TestCase):
    """Django's own TestCase needs no helper: it runs an async test method with
    ``async_to_sync``, so the ORM's sync work comes back to the test's thread and sees its
    transaction."""

    def setUp(self) -> None:
        self.api_key, self.raw_key = APIKey.objects.create_key(name="in-setup")

    async def test_a_key_made_in_set_up_is_valid_in_an_async_test(self) -> None:
        assert await APIKey.objects.ais_valid(self.raw_key)


# --- as a project uses it -------------------------------------------------------------------------

_PROJECT_CONFTEST = """
pytest_plugins = ["async_api_key.testing"]
"""

_PROJECT_TESTS = """
from async_api_key.models import APIKey


def test_sync(api_key):
    assert APIKey.objects.is_valid(api_key.raw_key)


async def test_async(api_key):
    assert await APIKey.objects.ais_valid(api_key.raw_key)


async def test_async_with_the_factory(api_key_factory):
    created = await api_key_factory.acreate("partner", scopes=["orders:read"])
    assert await APIKey.objects.ais_valid(created.raw_key)
"""


def _project_database() -> dict[str, str]:
    """A database of its own for the project's run: this run's test database is in use."""
    url = os.environ.get("DATABASE_URL")
    if not url or url.startswith("sqlite"):
        return {}
    return {"DATABASE_URL": f"{url}_project"}


def test_a_project_lists_the_plugin_and_its_sync_and_async_tests_pass(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(_PROJECT_CONFTEST))
    (tmp_path / "test_project.py").write_text(textwrap.dedent(_PROJECT_TESTS))

    result = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--ds=tests.support.settings", "-o", "asyncio_mode=auto",
            "-o", "asyncio_default_fixture_loop_scope=function", "--rootdir", str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**os.environ, **_project_database(), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
