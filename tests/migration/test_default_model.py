"""A project on djangorestframework-api-key's own ``APIKey``, migrated as docs/migrating.md says.

The old table is djangorestframework-api-key 3.1's, built by its own migrations and filled
by its own code (plus a key from before 3.0, stored with a PBKDF2 password hash). The test
runs the guide's steps: ``importapikeys``, then ``migrate rest_framework_api_key zero``, and
checks every key's answer through DRF and Ninja after each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, modify_settings, override_settings
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key.models import APIKey
from tests.support.default_model_project.models import Webhook

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.support.upstream_project.urls"),
]


@pytest.fixture
def restores_the_old_table() -> Iterator[None]:
    """The cleanup step drops djangorestframework-api-key's table: bring it back after."""
    yield
    call_command("migrate", verbosity=0)


def _statuses(raw: str) -> list[int]:
    """What a DRF view behind ``HasAPIKey`` and an async Ninja operation answer ``raw``."""
    client = Client(headers={"Authorization": f"Api-Key {raw}"})
    return [client.get("/drf/default").status_code, client.get("/ninja/default").status_code]


def _pre_3_key() -> str:
    """A key as djangorestframework-api-key < 3.0 stored it: a PBKDF2 password hash."""
    generator = KeyGenerator()
    prefix = generator.get_prefix()
    raw = f"{prefix}.{generator.get_secret_key()}"
    hashed_key = make_password(raw, hasher="pbkdf2_sha256")
    UpstreamAPIKey.objects.create(
        id=f"{prefix}.{hashed_key}", prefix=prefix, hashed_key=hashed_key, name="old"
    )
    return raw


def test_the_guide_moves_every_key_and_removes_the_old_table(
    restores_the_old_table: None,
) -> None:
    _, live = UpstreamAPIKey.objects.create_key(name="live")
    _, revoked = UpstreamAPIKey.objects.create_key(name="revoked", revoked=True)
    _, expired = UpstreamAPIKey.objects.create_key(
        name="expired", expiry_date=timezone.now() - timedelta(days=1)
    )
    old = _pre_3_key()
    assert _statuses(live) == [403, 401], "not ours until the import"

    # Step 4: copy the keys.
    out = StringIO()
    call_command("importapikeys", stdout=out)
    assert "Imported 4 key(s)" in out.getvalue()
    for refused in (revoked, expired):
        # HasAPIKey alone answers 403, as djangorestframework-api-key did; Ninja answers 401.
        assert _statuses(refused) == [403, 401]
    assert _statuses(live) == [200, 200]
    assert _statuses(old) == [200, 200]
    assert APIKey.objects.get(name="old").hashed_key.startswith("sha512$$")

    # Step 5: remove the old app's table. Its migrations cannot be reversed while it holds
    # 3.x keys (0005 widened the primary key to 150 characters, which PostgreSQL enforces on
    # the way back), so the guide empties it first.
    UpstreamAPIKey.objects.all().delete()
    call_command("migrate", "rest_framework_api_key", "zero", verbosity=0)
    assert UpstreamAPIKey._meta.db_table not in connection.introspection.table_names()
    assert _statuses(live) == [200, 200]
    assert _statuses(old) == [200, 200]
    assert _statuses(revoked) == [403, 401]
    assert APIKey.objects.count() == 4
    # Then the app leaves INSTALLED_APPS: the project checks clean and keeps its keys.
    with modify_settings(INSTALLED_APPS={"remove": ["rest_framework_api_key"]}):
        call_command("check", fail_level="WARNING")
        assert _statuses(live) == [200, 200]


HISTORY = {"default_model_project": "tests.support.default_model_project.history"}


def _migrate_app(target: str) -> None:
    """Migrate the project's app as its migrations were before the squash."""
    with override_settings(MIGRATION_MODULES=HISTORY):
        call_command("migrate", "default_model_project", target, verbosity=0)


def test_foreign_keys_to_the_old_model_follow_their_keys(restores_the_old_table: None) -> None:
    """Path A with a model of the project's own pointing at djangorestframework-api-key's
    ``APIKey``: the guide's steps re-point it by prefix, squash the dependency away, and the
    old app then leaves without taking the project's table with it."""
    # The project as it was: Webhook.api_key -> the old APIKey. (Built afresh: going back
    # through the history from the squashed table would reuse an index name on PostgreSQL.)
    call_command("migrate", "default_model_project", "zero", verbosity=0)
    _migrate_app("0001_initial")
    with override_settings(MIGRATION_MODULES=HISTORY):
        historical = (
            MigrationExecutor(connection)
            .loader.project_state(("default_model_project", "0001_initial"))
            .apps
        )
    OldWebhook = historical.get_model("default_model_project", "Webhook")
    keys = {}
    for name in ("ci", "partner"):
        upstream, raw = UpstreamAPIKey.objects.create_key(name=name)
        OldWebhook.objects.create(api_key_id=upstream.pk, url=f"https://{name}.example/hook")
        keys[name] = raw

    call_command("importapikeys", stdout=StringIO())  # A1
    _migrate_app("0004_webhook_api_key_to_the_new_model")  # the three migrations of the guide

    # The squashed migration, without its dependency on the old app, is all that is left.
    hooks = {hook.url: hook.api_key for hook in Webhook.objects.select_related("api_key")}
    for name, raw in keys.items():
        assert hooks[f"https://{name}.example/hook"] == APIKey.objects.get_from_key(raw)
    UpstreamAPIKey.objects.all().delete()  # A2
    call_command("migrate", "rest_framework_api_key", "zero", verbosity=0)
    assert Webhook.objects.count() == 2, "the project's table survived the old app's removal"
    with modify_settings(INSTALLED_APPS={"remove": ["rest_framework_api_key"]}):
        executor = MigrationExecutor(connection)
        assert not executor.migration_plan(executor.loader.graph.leaf_nodes())
        assert _statuses(keys["ci"]) == [200, 200]


def test_without_the_squash_removing_the_old_app_would_drop_the_projects_table() -> None:
    """Why the guide squashes: the project's migrations that depend on the old app would be
    unapplied with it."""
    with override_settings(MIGRATION_MODULES=HISTORY):
        plan = MigrationExecutor(connection).migration_plan([("rest_framework_api_key", None)])
    assert ("default_model_project", "0001_initial") in {
        (migration.app_label, migration.name) for migration, backwards in plan if backwards
    }
