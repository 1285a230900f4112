"""The third process of the propagation suite: it changes keys, one way per command.

``python -m tests.support.propagation_changer`` (with ``DJANGO_SETTINGS_MODULE`` set) reads one JSON
command a line on standard input and answers one JSON line on standard output. Each answer
carries ``committed_at``, the wall-clock time (``time.time()``) at which the command's last
commit returned (every recorded change commits through ``atomic()``), which the test
compares with the moments the servers start refusing the key.
Test-only: it prints the raw keys it creates, to the test that started it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.backends.base.base import BaseDatabaseWrapper  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from async_api_key.changes import record_change  # noqa: E402
from async_api_key.models import APIKey  # noqa: E402
from tests.support.testapp.models import Organization, OrganizationAPIKey  # noqa: E402

#: An open transaction (``begin``), closed by ``commit`` or ``rollback``.
_open: list[Any] = []
#: When the last commit returned (wall clock).
_commits: list[float] = []
_real_commit: Callable[[BaseDatabaseWrapper], None] = BaseDatabaseWrapper._commit  # type: ignore[attr-defined]


def _timed_commit(self: BaseDatabaseWrapper) -> None:
    _real_commit(self)
    _commits.append(time.time())


BaseDatabaseWrapper._commit = _timed_commit  # type: ignore[attr-defined]


def create(command: dict[str, Any]) -> dict[str, Any]:
    if command.get("model") == "organization":
        organization = Organization.objects.create(name=f"org-{time.time_ns()}")
        owned, raw = OrganizationAPIKey.objects.create_key(
            name="propagation", organization=organization
        )
        return {"prefix": owned.prefix, "raw": raw, "organization": organization.pk}
    api_key, raw = APIKey.objects.create_key(name="propagation")
    _raw_keys[api_key.prefix] = raw
    return {"prefix": api_key.prefix, "raw": raw}


#: The raw keys this process made, by prefix: a leak alert reports the key itself.
_raw_keys: dict[str, str] = {}


def leak_alert(command: dict[str, Any]) -> None:
    """A secret scanning alert that reports the key found in public: revoked at once."""
    from async_api_key.secret_scanning.alerts import Match, report_leaks

    match = Match(
        token=_raw_keys[command["prefix"]],
        token_type="async_api_key",
        url="https://example.com/leaked",
        source="content",
    )
    feedback = report_leaks([match])
    assert feedback[0]["label"] == "true_positive", feedback


def _key(command: dict[str, Any]) -> APIKey:
    return APIKey.objects.get(prefix=command["prefix"])


def revoke(command: dict[str, Any]) -> None:
    _key(command).revoke()


def save_expired(command: dict[str, Any]) -> None:
    api_key = _key(command)
    api_key.expiry_date = timezone.now() - timedelta(seconds=1)
    api_key.save()


def save_revoked(command: dict[str, Any]) -> None:
    api_key = _key(command)
    api_key.revoked = True
    api_key.save()


def delete(command: dict[str, Any]) -> None:
    _key(command).delete()


def queryset_update(command: dict[str, Any]) -> None:
    APIKey.objects.filter(prefix=command["prefix"]).update(revoked=True)


def queryset_delete(command: dict[str, Any]) -> None:
    APIKey.objects.filter(prefix=command["prefix"]).delete()


def cascade(command: dict[str, Any]) -> None:
    OrganizationAPIKey.objects.get(prefix=command["prefix"]).organization.delete()


def rotate(command: dict[str, Any]) -> None:
    _key(command).rotate()  # no grace period: the old key expires now


def revoke_command(command: dict[str, Any]) -> None:
    call_command("revokeapikey", command["prefix"], stdout=open("/dev/null", "w"))  # noqa: SIM115


def admin_action(command: dict[str, Any]) -> None:
    """The admin's "Revoke selected keys" action, confirmed, as a logged-in superuser."""
    user_model = get_user_model()
    user = user_model.objects.filter(username="propagation-admin").first()
    if user is None:  # hashing its password takes a while: not part of the change
        user = user_model.objects.create_superuser("propagation-admin", "a@example.com", "x")
    client = Client()
    client.force_login(user)
    pk = _key(command).pk
    response = client.post(
        "/admin/async_api_key/apikey/",
        {"action": "revoke_selected", "_selected_action": [pk], "post": "yes"},
    )
    if response.status_code != 302:
        raise RuntimeError(f"the admin answered {response.status_code}")


def upstream_create(command: dict[str, Any]) -> dict[str, Any]:
    """A djangorestframework-api-key key, imported with ``importapikeys``."""
    from rest_framework_api_key.models import APIKey as UpstreamAPIKey

    upstream, raw = UpstreamAPIKey.objects.create_key(name="propagation")
    call_command("importapikeys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return {"prefix": upstream.prefix, "raw": raw}


def import_tighten(command: dict[str, Any]) -> None:
    """Revoke the key upstream, then import again: the import revokes the imported key."""
    from rest_framework_api_key.models import APIKey as UpstreamAPIKey

    upstream = UpstreamAPIKey.objects.get(prefix=command["prefix"])
    upstream.revoked = True
    upstream.save()
    call_command("importapikeys", stdout=open("/dev/null", "w"))  # noqa: SIM115


def raw_sql(command: dict[str, Any]) -> None:
    """A change the library cannot see: not recorded."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {APIKey._meta.db_table} SET revoked = %s WHERE prefix = %s",  # noqa: S608
            [True, command["prefix"]],
        )


def record(command: dict[str, Any]) -> None:
    record_change(APIKey, [command["prefix"]])


def begin(command: dict[str, Any]) -> None:
    """Open a transaction and revoke the key in it; ``commit`` or ``rollback`` ends it."""
    atomic = transaction.atomic()
    atomic.__enter__()
    _open.append(atomic)
    _key(command).revoke()


def commit(command: dict[str, Any]) -> None:
    _open.pop().__exit__(None, None, None)


def rollback(command: dict[str, Any]) -> None:
    transaction.set_rollback(True)
    _open.pop().__exit__(None, None, None)


COMMANDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    function.__name__: function
    for function in (
        create,
        revoke,
        save_expired,
        save_revoked,
        delete,
        queryset_update,
        queryset_delete,
        cascade,
        rotate,
        revoke_command,
        admin_action,
        leak_alert,
        upstream_create,
        import_tighten,
        raw_sql,
        record,
        begin,
        commit,
        rollback,
    )
}


def main() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        try:
            _commits.clear()
            started_at = time.time()
            result = COMMANDS[command["do"]](command) or {}
            committed_at = _commits[-1] if _commits else None
            answer = {
                "ok": True,
                "started_at": started_at,
                "committed_at": committed_at,
                **result,
            }
        except Exception as exc:  # reported to the test, which fails with it
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
