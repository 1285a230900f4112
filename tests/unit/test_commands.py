"""The management commands via ``call_command`` and as real processes; their async functions."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from async_api_key import commands, field_rules
from async_api_key.models import APIKey
from tests.support import REPO_ROOT
from tests.support.testapp.models import Organization, OrganizationAPIKey


def run_command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def key_table() -> list[tuple[Any, ...]]:
    return list(APIKey.objects.order_by("pk").values_list())


# --- createapikey -----------------------------------------------------------------------


@pytest.mark.django_db
def test_createapikey_prints_only_a_key_that_authenticates() -> None:
    output = run_command("createapikey", "--name", "ci")

    raw_key = output.removesuffix("\n")
    assert "\n" not in raw_key
    assert APIKey.objects.get_from_key(raw_key).name == "ci"


@pytest.mark.django_db
def test_createapikey_expires_in_a_duration() -> None:
    before = timezone.now()

    run_command("createapikey", "--name", "ci", "--expires-in", "12h")

    expiry = APIKey.objects.get().expiry_date
    assert expiry is not None
    assert before + timedelta(hours=12) <= expiry <= timezone.now() + timedelta(hours=12)


@pytest.mark.django_db
def test_createapikey_expires_on_an_iso_date() -> None:
    run_command("createapikey", "--name", "ci", "--expiry-date", "2999-01-31T18:00:00+00:00")

    assert APIKey.objects.get().expiry_date == datetime.fromisoformat("2999-01-31T18:00:00+00:00")


@pytest.mark.django_db
def test_createapikey_grants_comma_separated_scopes() -> None:
    run_command("createapikey", "--name", "ci", "--scopes", "orders:read, billing:*")

    assert APIKey.objects.get().scopes == ["orders:read", "billing:*"]


@pytest.mark.django_db
def test_createapikey_sets_a_rate_limit_and_allowed_networks() -> None:
    output = run_command(
        "createapikey", "--name", "ci", "--rate", "100/min",
        "--allowed-networks", "10.0.0.0/8, 2001:db8::/32,192.0.2.7", "--json",
    )  # fmt: skip

    api_key = APIKey.objects.get()
    assert api_key.rate_limit == "100/min"
    assert api_key.allowed_networks == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    data = json.loads(output)
    assert data["rate_limit"] == "100/min"
    assert data["allowed_networks"] == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]


@pytest.mark.django_db
def test_createapikey_without_limits_has_none() -> None:
    data = json.loads(run_command("createapikey", "--name", "ci", "--json"))

    assert (data["rate_limit"], data["allowed_networks"]) == (None, [])
    assert (APIKey.objects.get().rate_limit, APIKey.objects.get().allowed_networks) == ("", [])


@pytest.mark.django_db
def test_createapikey_json_prints_the_key_and_its_metadata() -> None:
    output = run_command("createapikey", "--name", "ci", "--scopes", "a:b", "--json")

    data = json.loads(output)
    api_key = APIKey.objects.get()
    assert APIKey.objects.get_from_key(data["key"]) == api_key
    assert data["prefix"] == api_key.prefix
    assert (data["name"], data["status"], data["scopes"]) == ("ci", "active", ["a:b"])
    assert data["model"] == "async_api_key.APIKey"
    assert "hashed_key" not in data
    assert api_key.hashed_key not in output


@pytest.mark.django_db
def test_createapikey_creates_a_custom_model_key_for_its_owner() -> None:
    acme = Organization.objects.create(name="Acme")

    output = run_command(
        "createapikey", "--name", "ci", "--model", "testapp.OrganizationAPIKey",
        "--owner", str(acme.pk), "--json",
    )  # fmt: skip

    data = json.loads(output)
    assert data["organization_id"] == acme.pk
    assert OrganizationAPIKey.objects.get_from_key(data["key"]).organization == acme


@pytest.mark.django_db
def test_createapikey_takes_the_owner_field_by_name() -> None:
    acme = Organization.objects.create(name="Acme")

    run_command(
        "createapikey", "--name", "ci", "--model", "testapp.OrganizationAPIKey",
        "--owner", str(acme.pk), "--owner-field", "organization",
    )  # fmt: skip

    assert OrganizationAPIKey.objects.get().organization == acme


BAD_CREATE_ARGS = {
    "bad duration": ["--expires-in", "30 days"],
    "zero duration": ["--expires-in", "0d"],
    "bad date": ["--expiry-date", "tomorrow"],
    "past date": ["--expiry-date", "2001-01-01"],
    "unknown model": ["--model", "nope.Nothing"],
    "not a key model": ["--model", "testapp.Organization"],
    "bad scope": ["--scopes", "orders:read,not a scope"],
    "owner on a model without one": ["--owner", "1"],
    "missing owner": ["--model", "testapp.OrganizationAPIKey"],
    "unknown owner": ["--model", "testapp.OrganizationAPIKey", "--owner", "999"],
    "malformed owner": ["--model", "testapp.OrganizationAPIKey", "--owner", "abc"],
    "unknown owner field": ["--model", "testapp.OrganizationAPIKey", "--owner-field", "team"],
    "owner field not a foreign key": [
        "--model", "testapp.OrganizationAPIKey", "--owner", "1", "--owner-field", "name",
    ],
    "name too long": ["--name", "x" * 51],
    "blank name": ["--name", "  "],
    "bad rate": ["--rate", "100/fortnight"],
    "zero rate": ["--rate", "0/min"],
    "rate without period": ["--rate", "100"],
    "bad network": ["--allowed-networks", "10.0.0.0/8,10.0.0.0/33"],
    "not a network": ["--allowed-networks", "intranet"],
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("args", BAD_CREATE_ARGS.values(), ids=BAD_CREATE_ARGS.keys())
def test_createapikey_refuses_bad_input_and_writes_nothing(args: list[str]) -> None:
    Organization.objects.create(name="Acme")

    with pytest.raises(CommandError) as error:
        run_command("createapikey", "--name", "ci", *args)

    assert "\n" not in str(error.value)
    assert not APIKey.objects.exists()
    assert not OrganizationAPIKey.objects.exists()


@pytest.mark.django_db
def test_createapikey_refuses_both_a_duration_and_a_date() -> None:
    with pytest.raises(CommandError, match="not both"):
        call_command(
            "createapikey", name="ci", expires_in="1d", expiry_date="2999-01-01", stdout=StringIO()
        )

    assert not APIKey.objects.exists()


# --- listapikeys --------------------------------------------------------------------------


@pytest.fixture
def keys_in_every_status() -> dict[str, APIKey]:
    live, _ = APIKey.objects.create_key(name="live", scopes=["orders:read"])
    old, _ = APIKey.objects.create_key(name="old", expiry_date=timezone.now() - timedelta(days=1))
    ended, _ = APIKey.objects.create_key(name="ended")
    ended.revoke()
    return {"live": live, "old": old, "ended": ended}


@pytest.mark.django_db
def test_listapikeys_shows_active_keys_only_by_default(
    keys_in_every_status: dict[str, APIKey],
) -> None:
    output = run_command("listapikeys")

    assert keys_in_every_status["live"].prefix in output
    assert "orders:read" in output
    assert keys_in_every_status["old"].prefix not in output
    assert keys_in_every_status["ended"].prefix not in output


@pytest.mark.django_db
def test_listapikeys_all_shows_revoked_and_expired_keys(
    keys_in_every_status: dict[str, APIKey],
) -> None:
    rows = json.loads(run_command("listapikeys", "--all", "--json"))

    assert {row["name"]: row["status"] for row in rows} == {
        "live": "active",
        "old": "expired",
        "ended": "revoked",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("args", [[], ["--all"], ["--json"], ["--all", "--json"]])
def test_listapikeys_never_shows_secrets_or_hashes(
    keys_in_every_status: dict[str, APIKey], args: list[str]
) -> None:
    output = run_command("listapikeys", *args)

    for api_key in keys_in_every_status.values():
        assert api_key.hashed_key.split("$")[-1] not in output
    assert "hashed_key" not in output


@pytest.mark.django_db
def test_listapikeys_shows_rate_limits_and_allowed_networks() -> None:
    limited, _ = APIKey.objects.create_key(
        name="limited", rate_limit="5/s", allowed_networks=["203.0.113.0/24", "2001:db8::/32"]
    )
    APIKey.objects.create_key(name="open")

    text = run_command("listapikeys")
    rows = {row["name"]: row for row in json.loads(run_command("listapikeys", "--json"))}

    header, *lines = text.splitlines()
    assert "RATE" in header
    assert "NETWORKS" in header
    [limited_line] = [line for line in lines if limited.prefix in line]
    assert "5/s" in limited_line
    assert "203.0.113.0/24,2001:db8::/32" in limited_line
    assert rows["limited"]["rate_limit"] == "5/s"
    assert rows["limited"]["allowed_networks"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert (rows["open"]["rate_limit"], rows["open"]["allowed_networks"]) == (None, [])


@pytest.mark.django_db
def test_listapikeys_lists_a_custom_key_model() -> None:
    acme = Organization.objects.create(name="Acme")
    OrganizationAPIKey.objects.create_key(name="acme-ci", organization=acme)

    rows = json.loads(run_command("listapikeys", "--json", "--model", "testapp.OrganizationAPIKey"))

    assert [(row["name"], row["organization_id"]) for row in rows] == [("acme-ci", acme.pk)]


@pytest.mark.django_db
def test_listapikeys_says_so_when_there_is_no_key() -> None:
    assert run_command("listapikeys") == "No active API keys.\n"


# --- revokeapikey ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_revokeapikey_revokes_keys_by_prefix() -> None:
    first, first_raw = APIKey.objects.create_key(name="first")
    second, second_raw = APIKey.objects.create_key(name="second")

    output = run_command("revokeapikey", first.prefix, second.prefix)

    assert output.count("Revoked ") == 2
    assert not APIKey.objects.is_valid(first_raw)
    assert not APIKey.objects.is_valid(second_raw)


@pytest.mark.django_db
def test_revokeapikey_twice_is_harmless() -> None:
    api_key, _ = APIKey.objects.create_key(name="ci")
    run_command("revokeapikey", api_key.prefix)
    revoked_at = APIKey.objects.get().revoked_at

    output = run_command("revokeapikey", api_key.prefix)

    assert "already revoked" in output
    assert APIKey.objects.get().revoked_at == revoked_at


@pytest.mark.django_db
def test_revokeapikey_with_an_unknown_prefix_revokes_nothing() -> None:
    api_key, raw_key = APIKey.objects.create_key(name="ci")

    with pytest.raises(CommandError, match=r"No async_api_key\.APIKey with prefix: unknown1"):
        run_command("revokeapikey", api_key.prefix, "unknown1")

    assert APIKey.objects.is_valid(raw_key)


# --- rotateapikey ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotateapikey_prints_only_a_new_key_that_authenticates() -> None:
    old, old_raw = APIKey.objects.create_key(
        name="ci", scopes=["orders:read"], rate_limit="10/min", allowed_networks=["10.0.0.0/8"]
    )

    output = run_command("rotateapikey", old.prefix)

    new_raw = output.removesuffix("\n")
    assert "\n" not in new_raw
    successor = APIKey.objects.get_from_key(new_raw)
    assert successor.rotated_from == old
    assert (successor.name, successor.scopes, successor.rate_limit) == (
        "ci",
        ["orders:read"],
        "10/min",
    )
    assert successor.allowed_networks == ["10.0.0.0/8"]
    # No grace period by default: the old key stops at once.
    assert not APIKey.objects.is_valid(old_raw)


@pytest.mark.django_db
def test_rotateapikey_grace_keeps_the_old_key_working_for_a_while() -> None:
    old, old_raw = APIKey.objects.create_key(name="ci")
    before = timezone.now()

    new_raw = run_command("rotateapikey", old.prefix, "--grace", "24h").strip()

    assert APIKey.objects.is_valid(old_raw)
    assert APIKey.objects.is_valid(new_raw)
    old.refresh_from_db()
    assert old.expiry_date is not None
    assert before + timedelta(hours=24) <= old.expiry_date <= timezone.now() + timedelta(hours=24)


@pytest.mark.django_db
def test_rotateapikey_grace_never_extends_the_old_expiry() -> None:
    expiry = timezone.now() + timedelta(hours=1)
    old, _ = APIKey.objects.create_key(name="ci", expiry_date=expiry)

    data = json.loads(run_command("rotateapikey", old.prefix, "--grace", "7d", "--json"))

    assert data["rotated_from"]["expiry_date"] == expiry.isoformat()
    assert data["expiry_date"] == expiry.isoformat()


@pytest.mark.django_db
def test_rotateapikey_json_describes_the_new_and_the_old_key() -> None:
    old, _ = APIKey.objects.create_key(name="ci", scopes=["a:b"], rate_limit="5/s")

    output = run_command("rotateapikey", old.prefix, "--grace", "30m", "--json")

    data = json.loads(output)
    successor = APIKey.objects.get(rotated_from=old)
    assert APIKey.objects.get_from_key(data["key"]) == successor
    assert (data["prefix"], data["name"], data["status"]) == (successor.prefix, "ci", "active")
    assert (data["scopes"], data["rate_limit"]) == (["a:b"], "5/s")
    assert data["rotated_from_id"] == old.pk
    assert data["rotated_from"]["prefix"] == old.prefix
    assert data["rotated_from"]["status"] == "active"
    old.refresh_from_db()
    assert old.expiry_date is not None
    assert data["rotated_from"]["expiry_date"] == old.expiry_date.isoformat()
    assert "key" not in data["rotated_from"]
    assert "hashed_key" not in output
    assert old.hashed_key not in output
    assert successor.hashed_key not in output


@pytest.mark.django_db
def test_rotateapikey_rotates_a_custom_key_model_keeping_its_owner() -> None:
    acme = Organization.objects.create(name="Acme")
    old, _ = OrganizationAPIKey.objects.create_key(name="acme-ci", organization=acme)

    new_raw = run_command(
        "rotateapikey", old.prefix, "--model", "testapp.OrganizationAPIKey"
    ).strip()

    assert OrganizationAPIKey.objects.get_from_key(new_raw).organization == acme


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0h", timedelta(0)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
    ],
)
def test_parse_grace_period_reads_zero_and_durations(text: str, expected: timedelta) -> None:
    assert commands.parse_grace_period(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "-1h", "1.5h", "24 hours", "1w"])
def test_parse_grace_period_refuses_anything_else(text: str) -> None:
    with pytest.raises(CommandError, match="Invalid grace period"):
        commands.parse_grace_period(text)


@pytest.fixture
def unrotatable_keys() -> dict[str, APIKey]:
    revoked, _ = APIKey.objects.create_key(name="revoked")
    revoked.revoke()
    expired, _ = APIKey.objects.create_key(
        name="expired", expiry_date=timezone.now() - timedelta(minutes=1)
    )
    rotated, _ = APIKey.objects.create_key(name="rotated")
    rotated.rotate(timedelta(hours=1))
    return {"revoked": revoked, "expired": expired, "rotated": rotated}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("revoked", "it is revoked"),
        ("expired", "it has expired"),
        ("rotated", "it has already been rotated"),
    ],
)
def test_rotateapikey_refuses_keys_that_cannot_be_rotated(
    unrotatable_keys: dict[str, APIKey], name: str, reason: str
) -> None:
    before = key_table()

    with pytest.raises(CommandError) as error:
        run_command("rotateapikey", unrotatable_keys[name].prefix)

    assert (
        str(error.value) == f"API key {unrotatable_keys[name].prefix} cannot be rotated: {reason}."
    )
    assert key_table() == before


BAD_ROTATE_ARGS = {
    "unknown prefix": ["unknown1"],
    "bad grace": ["{prefix}", "--grace", "a day"],
    "negative grace": ["{prefix}", "--grace", "-1h"],
    "unknown model": ["{prefix}", "--model", "nope.Nothing"],
    "not a key model": ["{prefix}", "--model", "testapp.Organization"],
    "prefix of another model": ["{prefix}", "--model", "testapp.OrganizationAPIKey"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("args", BAD_ROTATE_ARGS.values(), ids=BAD_ROTATE_ARGS.keys())
def test_rotateapikey_refuses_bad_input_and_writes_nothing(args: list[str]) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="ci")
    before = key_table()

    with pytest.raises(CommandError) as error:
        run_command("rotateapikey", *(arg.format(prefix=api_key.prefix) for arg in args))

    assert "\n" not in str(error.value)
    assert key_table() == before
    assert APIKey.objects.is_valid(raw_key)


# --- the async functions, reused from async code ------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_async_functions_create_list_and_revoke_keys() -> None:
    created = await commands.create_key(name="script", expires_in=timedelta(days=1))
    assert await APIKey.objects.ais_valid(created.raw_key)
    assert "raw_key" not in repr(created)

    listed = await commands.list_keys()
    assert [api_key.prefix for api_key in listed] == [created.api_key.prefix]

    [revoked] = await commands.revoke_keys([created.api_key.prefix])
    assert revoked.newly_revoked
    assert not await APIKey.objects.ais_valid(created.raw_key)
    assert await commands.list_keys() == []


@pytest.mark.django_db(transaction=True)
async def test_async_rotate_key_issues_a_successor() -> None:
    created = await commands.create_key(name="script", rate_limit="1/s")

    rotated = await commands.rotate_key(created.api_key.prefix, grace_period=timedelta(minutes=5))

    assert "raw_key" not in repr(rotated)
    assert rotated.raw_key not in repr(rotated)
    assert await APIKey.objects.ais_valid(rotated.raw_key)
    assert await APIKey.objects.ais_valid(created.raw_key)
    assert getattr(rotated.api_key, "rotated_from_id", None) == created.api_key.pk
    assert rotated.api_key.rate_limit == "1/s"
    assert rotated.old_key.expiry_date is not None
    with pytest.raises(CommandError, match="already been rotated"):
        await commands.rotate_key(created.api_key.prefix)


def test_split_networks_takes_commas_spaces_and_lines() -> None:
    assert field_rules.split_networks(" 10.0.0.0/8,\n2001:db8::/32 \r\n\n, 192.0.2.1 ") == [
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.0.2.1",
    ]


def test_parse_duration_reads_days_hours_and_minutes() -> None:
    assert commands.parse_duration("30d") == timedelta(days=30)
    assert commands.parse_duration("12h") == timedelta(hours=12)
    assert commands.parse_duration("90m") == timedelta(minutes=90)


def test_split_scopes_takes_commas_and_lines() -> None:
    assert field_rules.split_scopes(" a:b,\nc:d\r\n\n,e ") == ["a:b", "c:d", "e"]


# --- no command echoes a key ---------------------------------------------------------------------

#: The length of the shortest stretch of a key's secret that a message must not show.
SECRET_STRETCH = 17


def shows_part_of_the_secret(text: str, raw_key: str) -> bool:
    secret = raw_key.rsplit("_", 1)[1]
    return any(
        secret[start : start + SECRET_STRETCH] in text
        for start in range(len(secret) - SECRET_STRETCH + 1)
    )


def one_typo(raw_key: str) -> str:
    position = len(raw_key) - 10
    typo = "x" if raw_key[position] != "x" else "y"
    return raw_key[:position] + typo + raw_key[position + 1 :]


MISTYPED_KEYS = {
    "the whole key": lambda key: key,
    "quoted": lambda key: f'"{key}"',
    "after the keyword": lambda key: f"Api-Key {key}",
    "one character short": lambda key: key[:-1],
    "trailing comma": lambda key: f"{key},",
    "trailing period": lambda key: f"{key}.",
    "one typo": one_typo,
    "a typo that is not a letter": lambda key: key[:35] + "-" + key[36:],
    "the secret alone": lambda key: key.rsplit("_", 1)[1],
}

COMMANDS_GIVEN_A_KEY = {
    "revokeapikey": ["revokeapikey", "{key}"],
    "revokeapikey among prefixes": ["revokeapikey", "{prefix}", "{key}"],
    "rotateapikey": ["rotateapikey", "{key}"],
    "rotateapikey grace": ["rotateapikey", "{prefix}", "--grace", "{key}"],
    "createapikey duration": ["createapikey", "--name", "ci", "--expires-in", "{key}"],
    "createapikey date": ["createapikey", "--name", "ci", "--expiry-date", "{key}"],
    "createapikey rate": ["createapikey", "--name", "ci", "--rate", "{key}"],
    "createapikey networks": ["createapikey", "--name", "ci", "--allowed-networks", "{key}"],
    "createapikey model": ["createapikey", "--name", "ci", "--model", "{key}"],
    "listapikeys model": ["listapikeys", "--model", "{key}"],
    "createapikey owner": [
        "createapikey", "--name", "ci", "--model", "testapp.OrganizationAPIKey", "--owner", "{key}",
    ],
    "createapikey owner field": [
        "createapikey", "--name", "ci", "--model", "testapp.OrganizationAPIKey",
        "--owner", "1", "--owner-field", "{key}",
    ],
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("mistype", MISTYPED_KEYS.values(), ids=MISTYPED_KEYS.keys())
@pytest.mark.parametrize("args", COMMANDS_GIVEN_A_KEY.values(), ids=COMMANDS_GIVEN_A_KEY.keys())
def test_no_command_error_quotes_back_a_key(args: list[str], mistype: Any) -> None:
    api_key, raw_key = APIKey.objects.create_key(name="ci")
    given = mistype(raw_key)

    with pytest.raises(CommandError) as error:
        run_command(*(arg.format(key=given, prefix=api_key.prefix) for arg in args))

    assert not shows_part_of_the_secret(str(error.value), raw_key)


@pytest.mark.django_db
def test_an_unexpected_argument_that_is_a_key_is_not_quoted_back() -> None:
    _, raw_key = APIKey.objects.create_key(name="ci")

    # The shell split an unquoted "Api-Key <key>" in two.
    with pytest.raises(CommandError, match="unrecognized arguments") as error:
        run_command("rotateapikey", "Api-Key", raw_key)

    assert not shows_part_of_the_secret(str(error.value), raw_key)


@pytest.mark.django_db
def test_a_mistyped_key_given_as_a_prefix_names_its_prefix() -> None:
    api_key, raw_key = APIKey.objects.create_key(name="ci")

    with pytest.raises(CommandError) as error:
        run_command("revokeapikey", f"Api-Key {raw_key},")

    assert str(error.value) == (
        f"No async_api_key.APIKey with prefix: 'Api-Key ak_{api_key.prefix}_[38 characters "
        f"hidden],' (an API key, not its prefix: pass {api_key.prefix})."
    )


def test_redact_hides_long_runs_of_letters_and_digits_only() -> None:
    assert commands.redact("ak_3xQ9fLm2Ab7Z_" + "a" * 38) == (
        "ak_3xQ9fLm2Ab7Z_[38 characters hidden]"
    )
    assert commands.redact("billing.OrganizationKey 30d 2030-01-31") == (
        "billing.OrganizationKey 30d 2030-01-31"
    )


# --- real processes: `python -m django ...` against a SQLite file ------------------------------


class DjangoProcess:
    """Runs ``python -m django`` in a child process on a SQLite file of its own."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{database}",
            "PYTHONPATH": str(REPO_ROOT),
        }

    def __call__(
        self, *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603  (our own interpreter and arguments)
            [sys.executable, "-m", "django", *args, "--settings=tests.support.settings"],
            cwd=REPO_ROOT,
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def key_rows(self) -> list[tuple[Any, ...]]:
        """Every row of both key tables, read straight from the file."""
        with closing(sqlite3.connect(self.database)) as connection:
            return [
                *connection.execute("SELECT * FROM async_api_key_apikey ORDER BY id"),
                *connection.execute("SELECT * FROM testapp_organizationapikey ORDER BY id"),
            ]

    def authenticates(self, raw_key: str) -> bool:
        result = self("shell", "-c", _IS_VALID, extra_env={"KEY": raw_key})
        assert result.returncode == 0, result.stderr
        # The last line: Django 5.2's shell first reports the models it imported.
        return result.stdout.strip().splitlines()[-1] == "True"


_IS_VALID = (
    "import os; from async_api_key.models import APIKey; "
    "print(APIKey.objects.is_valid(os.environ['KEY']))"
)


@pytest.fixture(scope="module")
def django_process(tmp_path_factory: pytest.TempPathFactory) -> DjangoProcess:
    process = DjangoProcess(tmp_path_factory.mktemp("cli") / "db.sqlite3")
    migrated = process("migrate", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    return process


def test_process_createapikey_stdout_is_a_key_that_authenticates_until_revoked(
    django_process: DjangoProcess,
) -> None:
    created = django_process("createapikey", "--name", "deploy", "--expires-in", "90m")
    assert created.returncode == 0, created.stderr
    raw_key = created.stdout.strip()
    assert created.stdout == raw_key + "\n"
    assert django_process.authenticates(raw_key)

    prefix = raw_key.split("_")[1]
    revoked = django_process("revokeapikey", prefix)
    assert revoked.returncode == 0, revoked.stderr
    assert not django_process.authenticates(raw_key)
    again = django_process("revokeapikey", prefix)
    assert again.returncode == 0, again.stderr


def test_process_json_output_parses(django_process: DjangoProcess) -> None:
    created = django_process("createapikey", "--name", "json", "--scopes", "a:b", "--json")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    assert django_process.authenticates(data["key"])

    listed = django_process("listapikeys", "--json")
    assert listed.returncode == 0, listed.stderr
    assert data["prefix"] in [row["prefix"] for row in json.loads(listed.stdout)]
    assert data["key"] not in listed.stdout


def test_process_rotateapikey_prints_a_new_key_and_keeps_the_old_one_for_the_grace(
    django_process: DjangoProcess,
) -> None:
    created = django_process(
        "createapikey", "--name", "rotating", "--rate", "100/min",
        "--allowed-networks", "10.0.0.0/8,2001:db8::/32", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    old = json.loads(created.stdout)
    assert old["rate_limit"] == "100/min"
    assert old["allowed_networks"] == ["10.0.0.0/8", "2001:db8::/32"]

    rotated = django_process("rotateapikey", old["prefix"], "--grace", "30m")
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    assert rotated.stdout == new_key + "\n"
    assert rotated.stderr == ""
    assert new_key != old["key"]
    assert django_process.authenticates(new_key)
    assert django_process.authenticates(old["key"])

    listed = django_process("listapikeys", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["prefix"]: row for row in json.loads(listed.stdout)}
    successor = rows[new_key.split("_")[1]]
    assert successor["rotated_from_id"] == old["id"]
    assert (successor["rate_limit"], successor["allowed_networks"]) == (
        "100/min",
        ["10.0.0.0/8", "2001:db8::/32"],
    )
    assert new_key not in listed.stdout

    again = django_process("rotateapikey", old["prefix"])
    assert again.returncode != 0
    assert again.stdout == ""
    assert again.stderr == (
        f"CommandError: API key {old['prefix']} cannot be rotated: it has already been rotated.\n"
    )


def test_process_rotateapikey_json_parses(django_process: DjangoProcess) -> None:
    created = django_process("createapikey", "--name", "rotating-json")
    assert created.returncode == 0, created.stderr
    old_key = created.stdout.strip()

    rotated = django_process("rotateapikey", old_key.split("_")[1], "--json")
    assert rotated.returncode == 0, rotated.stderr
    data = json.loads(rotated.stdout)
    assert django_process.authenticates(data["key"])
    assert not django_process.authenticates(old_key)
    assert data["rotated_from"]["prefix"] == old_key.split("_")[1]
    assert data["rotated_from"]["status"] == "expired"


BAD_PROCESS_ARGS = {
    "bad duration": ["createapikey", "--name", "x", "--expires-in", "soon"],
    "unknown model": ["createapikey", "--name", "x", "--model", "nope.Nothing"],
    "missing owner": ["createapikey", "--name", "x", "--model", "testapp.OrganizationAPIKey"],
    "bad scope": ["createapikey", "--name", "x", "--scopes", "no spaces allowed"],
    "unknown prefix": ["revokeapikey", "unknown1"],
    "bad rate": ["createapikey", "--name", "x", "--rate", "lots"],
    "bad network": ["createapikey", "--name", "x", "--allowed-networks", "10.0.0.0/99"],
    "rotate unknown prefix": ["rotateapikey", "unknown1"],
    "rotate bad grace": ["rotateapikey", "unknown1", "--grace", "tomorrow"],
    "rotate unknown model": ["rotateapikey", "unknown1", "--model", "nope.Nothing"],
}


@pytest.mark.parametrize("args", BAD_PROCESS_ARGS.values(), ids=BAD_PROCESS_ARGS.keys())
def test_process_bad_input_fails_with_one_line_and_writes_nothing(
    django_process: DjangoProcess, args: list[str]
) -> None:
    before = django_process.key_rows()

    result = django_process(*args)

    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("CommandError: ")
    assert django_process.key_rows() == before


@pytest.mark.django_db(transaction=True)
async def test_async_functions_refuse_bad_arguments_and_write_nothing() -> None:
    created = await commands.create_key(name="script", model=APIKey)  # a model class works too
    with pytest.raises(CommandError, match="at least one key"):
        await commands.revoke_keys([])
    with pytest.raises(CommandError, match="cannot be negative"):
        await commands.rotate_key(created.api_key.prefix, grace_period=timedelta(minutes=-1))
    assert [api_key.prefix for api_key in await commands.list_keys()] == [created.api_key.prefix]
    assert await APIKey.objects.ais_valid(created.raw_key)
