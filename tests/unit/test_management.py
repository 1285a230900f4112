"""A project's own async management command, built on ``AsyncCommand``, keeps the caller's
transaction, its own all-or-nothing transaction and pytest-django's isolation; the naive
``asyncio.run()`` keeps none of them.

The commands are those of ``tests/support/command_app``, written as
docs/admin-and-commands.md shows.
"""

from __future__ import annotations

import threading
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.db import transaction

from async_api_key.management import AsyncCommand
from async_api_key.models import APIKey

#: The names the isolation pair of tests creates and then looks for.
ISOLATION_NAMES = ("isolation-a", "isolation-b")


def issue_keys(*args: str, command: str = "issuekeys") -> dict[str, str]:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return dict(line.split(": ", 1) for line in out.getvalue().splitlines())


@pytest.mark.django_db
def test_an_async_command_creates_keys_concurrently_and_prints_each_once() -> None:
    printed = issue_keys("alpha", "beta", "gamma")

    assert sorted(printed) == ["alpha", "beta", "gamma"]
    for name, raw_key in printed.items():
        assert APIKey.objects.get_from_key(raw_key).name == name


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_around_the_command_leaves_no_key() -> None:
    with transaction.atomic():
        issue_keys("alpha", "beta", "gamma")
        assert APIKey.objects.count() == 3  # the command wrote on this connection
        transaction.set_rollback(True)

    assert not APIKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failure_halfway_leaves_no_key_and_prints_none() -> None:
    out = StringIO()

    with pytest.raises(CommandError, match="named beta"):
        call_command("issuekeys", "alpha", "beta", "gamma", "--fail-on", "beta", stdout=out)

    # Every key was rolled back, so none exists whose raw value was never printed.
    assert not APIKey.objects.exists()
    assert out.getvalue() == ""


@pytest.mark.django_db
def test_keys_an_async_command_creates_in_a_test_stay_in_that_test() -> None:
    issue_keys(*ISOLATION_NAMES)

    assert APIKey.objects.filter(name__in=ISOLATION_NAMES).count() == 2


@pytest.mark.django_db
def test_keys_an_async_command_created_in_the_previous_test_are_gone() -> None:
    # Runs after the test above (pytest keeps a module's order): pytest-django rolled
    # back its transaction, which held the command's keys.
    assert not APIKey.objects.filter(name__in=ISOLATION_NAMES).exists()


@pytest.mark.django_db(transaction=True)
def test_asyncio_run_escapes_the_callers_transaction() -> None:
    # The trap the docs warn against: asyncio.run() runs the ORM on another thread, with a
    # connection of its own that commits at once.
    with transaction.atomic():
        issue_keys("alpha", "beta", "gamma", command="issuekeysnaively")
        transaction.set_rollback(True)

    assert APIKey.objects.count() == 3


def test_ahandle_runs_the_orms_sync_calls_on_the_commands_thread() -> None:
    seen: list[threading.Thread] = []

    class Probe(AsyncCommand):
        def transaction_database(self, options: dict[str, Any]) -> str | None:
            return None  # no database needed to see where sync_to_async runs

        async def ahandle(self, *args: Any, **options: Any) -> None:
            # What the ORM's a* methods and the library's acreate_key() do.
            seen.append(await sync_to_async(threading.current_thread)())

    call_command(Probe())

    assert seen == [threading.current_thread()]


@pytest.mark.django_db
def test_what_ahandle_returns_is_printed() -> None:
    class Greeting(AsyncCommand):
        async def ahandle(self, *args: Any, **options: Any) -> str:
            return f"{await APIKey.objects.acount()} keys"

    out = StringIO()
    call_command(Greeting(), stdout=out)

    assert out.getvalue() == "0 keys\n"


@pytest.mark.django_db(transaction=True)
def test_transaction_database_none_runs_without_a_transaction_of_its_own() -> None:
    class Unguarded(AsyncCommand):
        def transaction_database(self, options: dict[str, Any]) -> str | None:
            return None

        async def ahandle(self, *args: Any, **options: Any) -> None:
            await APIKey.objects.acreate_key(name="first")
            raise CommandError("stopped halfway")

    with pytest.raises(CommandError, match="stopped halfway"):
        call_command(Unguarded())

    assert list(APIKey.objects.values_list("name", flat=True)) == ["first"]
