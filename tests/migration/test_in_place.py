"""A custom key model of djangorestframework-api-key, migrated in place as docs/migrating.md says.

``tests.support.upstream_project`` holds what a project would have: ``0001`` is the migration
``makemigrations`` wrote for a model subclassing djangorestframework-api-key 3.1's
``AbstractAPIKey`` (string primary key ``"<prefix>.<hashed key>"``), with an owner foreign key
and a model of the project's own pointing at the keys; ``0002`` is what ``makemigrations``
wrote after the import changed to ``AbstractStringIdAPIKey``. Each test takes the table back
to ``0001``, fills it as djangorestframework-api-key did, migrates, and uses every key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps as current_apps
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import AddField, AlterField
from django.db.migrations.state import ProjectState
from django.test import Client, modify_settings
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator

from tests.support.upstream_project.models import Delivery, Project, ProjectAPIKey

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.support.upstream_project.urls"),
]

APP = "upstream_project"
BEFORE = (APP, "0001_initial")


def _migrate(target: tuple[str, str]) -> Any:
    """Migrate ``APP`` to ``target`` and return the apps registry of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state(target).apps


def _latest() -> tuple[str, str]:
    executor = MigrationExecutor(connection)
    leaves: list[tuple[str, str]] = executor.loader.graph.leaf_nodes()
    return next(node for node in leaves if node[0] == APP)


@pytest.fixture
def upstream_state() -> Iterator[Any]:
    """The app's tables as djangorestframework-api-key left them; migrated forward after."""
    historical = _migrate(BEFORE)
    try:
        yield historical
    finally:
        _migrate(_latest())


@dataclass
class StoredKey:
    raw: str
    pk: str


def _upstream_key(historical: Any, project: Any, name: str, **fields: Any) -> StoredKey:
    """A key exactly as djangorestframework-api-key 3.1 writes one."""
    raw, prefix, hashed_key = KeyGenerator().generate()
    pk = f"{prefix}.{hashed_key}"
    historical.get_model(APP, "ProjectAPIKey").objects.create(
        id=pk, prefix=prefix, hashed_key=hashed_key, name=name, project=project, **fields
    )
    historical.get_model(APP, "Delivery").objects.create(api_key_id=pk, target=f"{name} hook")
    return StoredKey(raw, pk)


def _pre_3_key(historical: Any, project: Any) -> StoredKey:
    """A key as djangorestframework-api-key < 3.0 stored it: a PBKDF2 password hash."""
    generator = KeyGenerator()
    prefix, secret = generator.get_prefix(), generator.get_secret_key()
    raw = f"{prefix}.{secret}"
    hashed_key = make_password(raw, hasher="pbkdf2_sha256")
    pk = f"{prefix}.{hashed_key}"
    historical.get_model(APP, "ProjectAPIKey").objects.create(
        id=pk, prefix=prefix, hashed_key=hashed_key, name="old", project=project
    )
    return StoredKey(raw, pk)


def _answers(raw: str) -> tuple[tuple[int, Any], tuple[int, Any]]:
    """What the project's DRF view and its async Ninja operation answer ``raw``."""
    client = Client(headers={"Authorization": f"Api-Key {raw}"})
    drf = client.get("/drf/project")
    ninja = client.get("/ninja/project")
    return (drf.status_code, drf.json()), (ninja.status_code, ninja.json())


def test_changing_the_import_writes_only_additive_migrations() -> None:
    """What ``makemigrations`` writes: columns added, two widened, help texts; the primary
    key and every column djangorestframework-api-key made stay as they are."""
    executor = MigrationExecutor(connection)
    before = executor.loader.project_state(BEFORE)
    changes = MigrationAutodetector(before, ProjectState.from_apps(current_apps)).changes(
        graph=executor.loader.graph
    )
    operations: list[Any] = [
        op for migration in changes.get(APP, []) for op in migration.operations
    ]
    assert operations, "changing the base class changes the model"
    assert all(isinstance(op, AddField | AlterField) for op in operations), operations
    assert all(op.model_name == "projectapikey" for op in operations)
    altered = {op.name: op.field for op in operations if isinstance(op, AlterField)}
    assert "id" not in altered
    # Widened, never narrowed or retyped: existing values fit.
    assert altered["prefix"].max_length == 16
    assert altered["hashed_key"].max_length == 255
    added = {op.name for op in operations if isinstance(op, AddField)}
    assert added == {
        "revoked_at",
        "last_used_at",
        "scopes",
        "allowed_networks",
        "rate_limit",
        "rotated_from",
    }
    # And the app's own 0002 is what makemigrations writes today.
    shipped = executor.loader.get_migration(APP, _latest()[1])
    shipped_operations: list[Any] = list(shipped.operations)
    assert [type(op).__name__ + ":" + op.name for op in shipped_operations] == sorted(
        (type(op).__name__ + ":" + op.name for op in operations),
        key=lambda entry: (entry.startswith("Alter"), entry),
    )


def test_every_key_keeps_its_answer_through_both_adapters(upstream_state: Any) -> None:
    project = upstream_state.get_model(APP, "Project").objects.create(slug="docs")
    live = _upstream_key(upstream_state, project, "live")
    revoked = _upstream_key(upstream_state, project, "revoked", revoked=True)
    expired = _upstream_key(
        upstream_state, project, "expired", expiry_date=timezone.now() - timedelta(days=1)
    )
    old = _pre_3_key(upstream_state, project)

    _migrate(_latest())

    allowed = ((200, {"project": "docs"}), (200, {"project": "docs"}))
    assert _answers(live.raw) == allowed
    assert _answers(old.raw) == allowed
    for refused in (revoked, expired):
        # HasAPIKey alone answers 403 as djangorestframework-api-key did; Ninja answers 401.
        assert [status for status, _ in _answers(refused.raw)] == [403, 401]
    # Nothing was renumbered: the rows, their primary keys and what points at them.
    assert set(ProjectAPIKey.objects.values_list("pk", flat=True)) == {
        live.pk,
        revoked.pk,
        expired.pk,
        old.pk,
    }
    assert {delivery.api_key_id for delivery in Delivery.objects.all()} == {
        live.pk,
        revoked.pk,
        expired.pk,
    }
    # The pre-3.0 hash was rewritten to the fast one on first use.
    assert ProjectAPIKey.objects.get(pk=old.pk).hashed_key.startswith("sha512$$")


def test_the_project_keeps_making_and_managing_keys_after_the_migration(
    upstream_state: Any,
) -> None:
    upstream_state.get_model(APP, "Project").objects.create(slug="docs")
    _migrate(_latest())
    project = Project.objects.get(slug="docs")

    api_key, raw = ProjectAPIKey.objects.create_key(project)
    assert api_key.pk == f"{api_key.prefix}.{api_key.hashed_key}"
    assert str(api_key) == "docs token"
    assert _answers(raw)[0] == (200, {"project": "docs"})

    successor, new_raw = api_key.rotate()
    assert successor.rotated_from_id == api_key.pk
    assert successor.pk == f"{successor.prefix}.{successor.hashed_key}"
    assert _answers(new_raw)[1] == (200, {"project": "docs"})

    successor.revoke()
    assert [status for status, _ in _answers(new_raw)] == [403, 401]
    project.delete()  # cascades to the keys, and refuses them
    assert [status for status, _ in _answers(raw)] == [403, 401]


def test_the_old_app_leaves_without_a_trace(upstream_state: Any) -> None:
    """The guide's last step: djangorestframework-api-key's own (empty) table goes, then
    its app; the project's migrations never depended on it."""
    project = upstream_state.get_model(APP, "Project").objects.create(slug="docs")
    live = _upstream_key(upstream_state, project, "live")
    _migrate(_latest())
    try:
        call_command("migrate", "rest_framework_api_key", "zero", verbosity=0)
        with modify_settings(INSTALLED_APPS={"remove": ["rest_framework_api_key"]}):
            call_command("check", fail_level="WARNING")
            executor = MigrationExecutor(connection)
            # Nothing left to migrate, and nothing depends on the removed app.
            assert not executor.migration_plan(executor.loader.graph.leaf_nodes())
            assert _answers(live.raw)[1] == (200, {"project": "docs"})
    finally:
        call_command("migrate", "rest_framework_api_key", verbosity=0)


async def test_a_create_key_override_keeps_its_async_twin() -> None:
    """``acreate_key`` passes a project's own arguments on to its ``create_key``."""
    project = await Project.objects.acreate(slug="async")
    api_key, raw = await ProjectAPIKey.objects.acreate_key(project)
    assert api_key.name == "async token"
    assert await ProjectAPIKey.objects.ais_valid(raw)
