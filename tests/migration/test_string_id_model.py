"""A review of ``AbstractStringIdAPIKey`` as a project migrating in place would use it.

Every path of the library was first written for an integer primary key; these tests take each
one with djangorestframework-api-key's string primary key, ``"<prefix>.<hashed key>"`` (up to
150 characters, with ``.`` and ``$``). Tests marked ``xfail(strict=True)`` are findings: each
``reason`` says what breaks. The others are paths found sound, kept as regression tests.

The models are the suite's own: ``tests.support.upstream_project.ProjectAPIKey`` (an upstream custom
model migrated in place, with an owner and a model of the project's pointing at it) and
``tests.support.admin_custom_app.LegacyAPIKey`` (a string-id model with no owner, in the admin).
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin import AdminSite
from django.contrib.auth.hashers import make_password
from django.core.cache import CacheKeyWarning
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField, AlterField
from django.db.migrations.state import ModelState, ProjectState
from django.test import Client, override_settings
from django.test.utils import isolate_apps
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_api_key.models import AbstractAPIKey as UpstreamAbstractAPIKey
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key import models as models_module
from async_api_key.admin import APIKeyModelAdmin
from async_api_key.drf import APIKeyAuthentication, APIKeyRateThrottle, HasAPIKey
from async_api_key.keys import GeneratedKey, generate_key
from async_api_key.models import AbstractAPIKey, AbstractStringIdAPIKey
from tests.support import REPO_ROOT
from tests.support.admin_custom_app.models import LegacyAPIKey
from tests.support.upstream_project.models import Delivery, Project, ProjectAPIKey

pytestmark = pytest.mark.django_db

DOCS = REPO_ROOT / "docs"
LEGACY_MODEL = "admin_custom_app.LegacyAPIKey"
PROJECT_MODEL = "upstream_project.ProjectAPIKey"
#: An installed app whose label models built in an isolated registry borrow.
REVIEW_APP = "tests.support.upstream_project"
REVIEW_APP_LABEL = "upstream_project"


def run_command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def upstream_row(
    project: Project, generator: KeyGenerator | None = None, **fields: Any
) -> tuple[str, ProjectAPIKey]:
    """A key stored exactly as djangorestframework-api-key wrote it into the project's table
    (the in-place migration keeps rows as they are); return its raw key and the row."""
    raw, prefix, hashed_key = (generator or KeyGenerator()).generate()
    row = ProjectAPIKey(
        id=f"{prefix}.{hashed_key}",
        prefix=prefix,
        hashed_key=hashed_key,
        name=fields.pop("name", "upstream"),
        project=project,
        **fields,
    )
    # As the old code inserted it: past this library's save().
    ProjectAPIKey.objects.bulk_create([row])
    return raw, ProjectAPIKey.objects.get(pk=row.pk)


def hex_digest(api_key: Any) -> str:
    digest: str = api_key.hashed_key.split("$")[-1]
    return digest


# --- findings: management commands ---------------------------------------------------------------


def test_createapikey_works_for_a_manager_whose_create_key_has_its_own_signature() -> None:
    acme = Project.objects.create(slug="acme")

    output = run_command(
        "createapikey", "--name", "ci", "--model", PROJECT_MODEL, "--owner", str(acme.pk)
    )

    assert ProjectAPIKey.objects.get_from_key(output.strip()).project == acme


@pytest.mark.parametrize("command", ["createapikey", "listapikeys", "rotateapikey"])
def test_json_output_never_shows_a_hash_for_a_string_id_model(command: str) -> None:
    api_key, _ = LegacyAPIKey.objects.create_key(name="ci")
    args = {
        "createapikey": ["--name", "other"],
        "listapikeys": ["--all"],
        "rotateapikey": [api_key.prefix],
    }[command]

    output = run_command(command, *args, "--model", LEGACY_MODEL, "--json")

    assert json.loads(output)
    for stored in LegacyAPIKey.objects.all():
        assert hex_digest(stored) not in output


# --- findings: importapikeys into a string-id model ----------------------------------------------


def test_importapikeys_gives_an_imported_key_its_upstream_primary_key() -> None:
    upstream, _ = UpstreamAPIKey.objects.create_key(name="partner")

    run_command("importapikeys", "--model", LEGACY_MODEL)

    assert LegacyAPIKey.objects.get().pk == upstream.pk


def test_importapikeys_copies_several_keys_into_a_string_id_model() -> None:
    raws = [UpstreamAPIKey.objects.create_key(name=name)[1] for name in ("one", "two")]

    run_command("importapikeys", "--model", LEGACY_MODEL)

    assert all(LegacyAPIKey.objects.is_valid(raw) for raw in raws)


# --- findings: what upstream custom models carried -----------------------------------------------


@pytest.mark.parametrize(
    ("prefix_length", "secret_key_length"), [(8, 48), (8, 64), (6, 32)], ids=str
)
def test_upstream_keys_of_a_custom_key_generator_keep_working(
    prefix_length: int, secret_key_length: int
) -> None:
    generator = KeyGenerator(prefix_length=prefix_length, secret_key_length=secret_key_length)
    raw, _ = upstream_row(Project.objects.create(slug="acme"), generator)

    assert ProjectAPIKey.objects.is_valid(raw)


def test_an_upstream_admin_that_lists_has_expired_still_passes_its_checks() -> None:
    class UpstreamStyleAdmin(APIKeyModelAdmin):
        list_display = ("prefix", "name", "created", "expiry_date", "_has_expired", "revoked")

    assert UpstreamStyleAdmin(LegacyAPIKey, AdminSite()).check() == []


# --- findings: rate limiting ---------------------------------------------------------------------


class ThrottledView(APIView):
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey,)
    throttle_classes = (APIKeyRateThrottle,)

    def get(self, request: Request) -> Response:
        api_key = request.auth
        assert isinstance(api_key, AbstractAPIKey)
        return Response({"prefix": api_key.prefix})


class AuthenticateLegacy(APIKeyAuthentication):
    model = LegacyAPIKey


class HasLegacyAPIKey(HasAPIKey):
    model = LegacyAPIKey


class LegacyThrottledView(ThrottledView):
    authentication_classes = (AuthenticateLegacy,)
    permission_classes = (HasLegacyAPIKey,)


def _throttled(raw_key: str) -> Any:
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return LegacyThrottledView.as_view()(request)


def test_a_string_id_key_is_authenticated_and_counted_against_its_own_rate() -> None:
    api_key, raw = LegacyAPIKey.objects.create_key(name="limited", rate_limit="2/min")
    other, other_raw = LegacyAPIKey.objects.create_key(name="other", rate_limit="2/min")

    assert [_throttled(raw).status_code for _ in range(3)] == [200, 200, 429]
    assert _throttled(other_raw).data == {"prefix": other.prefix}
    assert api_key.prefix != other.prefix


def test_the_rate_limit_counter_key_fits_memcached_with_a_cache_key_prefix() -> None:
    _, raw = LegacyAPIKey.objects.create_key(name="limited", rate_limit="100/s")
    cache = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_PREFIX": "billing-service-production-eu-west-1-v2",
    }
    with override_settings(CACHES={"default": cache}), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", CacheKeyWarning)
        response = _throttled(raw)

    assert response.status_code == 200
    assert not [warning for warning in seen if issubclass(warning.category, CacheKeyWarning)]


# --- findings: docs/migrating.md -----------------------------------------------------------------


def test_path_a_says_what_becomes_of_foreign_keys_to_the_old_model() -> None:
    guide = (DOCS / "migrating.md").read_text()
    path_a = guide.split("## Path A", 1)[1].split("## Path B", 1)[0]

    assert "foreign key" in path_a.lower()


# --- sound: the admin ----------------------------------------------------------------------------


def _links(content: bytes, needle: str) -> list[str]:
    return [link for link in re.findall(r'href="([^"]+)"', content.decode()) if needle in link]


def test_the_admin_changes_and_rotates_a_key_through_its_quoted_primary_key(
    admin_client: Client,
) -> None:
    api_key, old_raw = LegacyAPIKey.objects.create_key(name="legacy")
    changelist = admin_client.get(reverse("admin:admin_custom_app_legacyapikey_changelist"))
    (change,) = _links(changelist.content, api_key.prefix)
    assert "$" not in change  # quoted: "$" becomes "_24"

    change_page = admin_client.get(change)
    (rotate,) = _links(change_page.content, "/rotate/")
    rotated = admin_client.post(rotate, {"grace_period": "0"}, follow=True)

    assert change_page.status_code == 200
    assert rotated.status_code == 200
    raw = re.search(r'id="api-key-value"[^>]*\svalue="([^"]+)"', rotated.content.decode())
    assert raw is not None
    successor = LegacyAPIKey.objects.get_from_key(raw.group(1))
    assert successor.rotated_from_id == api_key.pk
    assert successor.pk == f"{successor.prefix}.{successor.hashed_key}"
    assert not LegacyAPIKey.objects.is_valid(old_raw)


def test_the_admin_edits_a_string_id_key_without_touching_its_primary_key(
    admin_client: Client,
) -> None:
    api_key, raw = LegacyAPIKey.objects.create_key(name="legacy")
    change = reverse("admin:admin_custom_app_legacyapikey_change", args=[api_key.pk])
    form = {
        "name": "renamed",
        "expiry_date_0": "",
        "expiry_date_1": "",
        "scopes": "orders:read",
        "allowed_networks": "",
        "rate_limit": "",
    }

    response = admin_client.post(change, form)

    assert response.status_code == 302
    stored = LegacyAPIKey.objects.get()
    assert (stored.pk, stored.name, stored.scopes) == (api_key.pk, "renamed", ["orders:read"])
    assert LegacyAPIKey.objects.is_valid(raw)


def test_the_admin_revoke_action_takes_string_primary_keys(admin_client: Client) -> None:
    first, first_raw = LegacyAPIKey.objects.create_key(name="first")
    _, second_raw = LegacyAPIKey.objects.create_key(name="second")

    response = admin_client.post(
        reverse("admin:admin_custom_app_legacyapikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [first.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not LegacyAPIKey.objects.is_valid(first_raw)
    assert LegacyAPIKey.objects.is_valid(second_raw)


# --- sound: the model ----------------------------------------------------------------------------


def test_a_lookup_id_collision_is_retried_for_a_string_id_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken, _ = LegacyAPIKey.objects.create_key(name="first")
    fresh = generate_key("ak")
    forced = iter([GeneratedKey(lookup=taken.prefix, raw="ak_collision"), fresh])
    monkeypatch.setattr(models_module, "generate_key", lambda namespace: next(forced))

    api_key, raw = LegacyAPIKey.objects.create_key(name="second")

    assert (raw, api_key.prefix) == (fresh.raw, fresh.lookup)
    assert api_key.pk == f"{fresh.lookup}.{api_key.hashed_key}"
    assert LegacyAPIKey.objects.count() == 2


def test_a_new_key_id_fits_the_upstream_column_with_either_hash_algorithm() -> None:
    """``<12-char lookup>.sha512$$<128 hex>`` is 149 characters: upstream's column holds 150."""
    acme = Project.objects.create(slug="acme")
    sha512_key, _ = ProjectAPIKey.objects.create_key(acme)
    with override_settings(ASYNC_API_KEY={"HASH_ALGORITHM": "sha256"}):
        sha256_key, raw = ProjectAPIKey.objects.create_key(acme)
        assert ProjectAPIKey.objects.is_valid(raw)

    id_field = ProjectAPIKey._meta.get_field("id")
    assert isinstance(id_field, models.CharField)
    assert id_field.max_length is not None
    assert len(sha512_key.pk) <= id_field.max_length
    assert sha256_key.pk == f"{sha256_key.prefix}.{sha256_key.hashed_key}"
    assert sha256_key.hashed_key.startswith("sha256$$")
    assert ProjectAPIKey.objects.get(pk=sha256_key.pk).pk == sha256_key.pk


def test_a_pre_3_key_keeps_its_primary_key_when_its_hash_is_upgraded(
    django_capture_on_commit_callbacks: Any,
) -> None:
    acme = Project.objects.create(slug="acme")
    generator = KeyGenerator()
    prefix, secret = generator.get_prefix(), generator.get_secret_key()
    hashed_key = make_password(f"{prefix}.{secret}", hasher="pbkdf2_sha256")
    pk = f"{prefix}.{hashed_key}"
    ProjectAPIKey.objects.bulk_create(
        [ProjectAPIKey(id=pk, prefix=prefix, hashed_key=hashed_key, name="old", project=acme)]
    )
    Delivery.objects.create(api_key_id=pk, target="hook")

    with django_capture_on_commit_callbacks(execute=True):  # the upgrade waits for a commit
        assert ProjectAPIKey.objects.is_valid(f"{prefix}.{secret}")

    upgraded = ProjectAPIKey.objects.get()
    assert upgraded.pk == pk
    assert upgraded.hashed_key.startswith("sha512$$")
    assert Delivery.objects.get().api_key_id == pk
    successor, raw = upgraded.rotate(timedelta(hours=1))
    assert successor.rotated_from_id == pk
    assert ProjectAPIKey.objects.is_valid(raw)
    assert ProjectAPIKey.objects.is_valid(f"{prefix}.{secret}")


def test_an_instance_built_with_a_revoked_keys_primary_key_cannot_revive_it() -> None:
    acme = Project.objects.create(slug="acme")
    raw, stored = upstream_row(acme, revoked=True)
    built = ProjectAPIKey(
        id=stored.pk, name="revived?", project=acme, created=stored.created, revoked=False
    )

    with pytest.raises(ValidationError, match="cannot be undone"):
        built.save()

    assert ProjectAPIKey.objects.get().revoked
    assert not ProjectAPIKey.objects.is_valid(raw)


def test_queryset_update_and_delete_reach_a_verified_string_id_key() -> None:
    acme = Project.objects.create(slug="acme")
    revoked_raw, _ = upstream_row(acme, name="to revoke")
    deleted_raw, _ = upstream_row(acme, name="to delete")
    assert ProjectAPIKey.objects.is_valid(revoked_raw)  # now cached
    assert ProjectAPIKey.objects.is_valid(deleted_raw)

    ProjectAPIKey.objects.filter(name="to revoke").update(revoked=True)
    ProjectAPIKey.objects.filter(name="to delete").delete()

    assert not ProjectAPIKey.objects.is_valid(revoked_raw)
    assert not ProjectAPIKey.objects.is_valid(deleted_raw)


def test_deleting_a_rotated_key_keeps_its_successor_and_the_projects_rows() -> None:
    acme = Project.objects.create(slug="acme")
    old_raw, old = upstream_row(acme)
    Delivery.objects.create(api_key=old, target="old hook")
    successor, new_raw = old.rotate(timedelta(hours=1))
    Delivery.objects.create(api_key=successor, target="new hook")

    old.delete()

    successor.refresh_from_db()
    assert successor.rotated_from_id is None
    assert [delivery.target for delivery in Delivery.objects.all()] == ["new hook"]
    assert not ProjectAPIKey.objects.is_valid(old_raw)
    assert ProjectAPIKey.objects.is_valid(new_raw)


def test_dumpdata_and_loaddata_round_trip_string_primary_keys(tmp_path: Path) -> None:
    acme = Project.objects.create(slug="acme")
    old_raw, old = upstream_row(acme)
    successor, new_raw = old.rotate(timedelta(hours=1))
    Delivery.objects.create(api_key=successor, target="hook")
    fixture = tmp_path / "keys.json"
    call_command("dumpdata", "upstream_project", output=str(fixture), verbosity=0)
    assert ProjectAPIKey.objects.is_valid(new_raw)  # now cached

    Project.objects.all().delete()  # cascades to the keys and deliveries
    assert not ProjectAPIKey.objects.is_valid(new_raw)
    call_command("loaddata", str(fixture), verbosity=0)

    assert ProjectAPIKey.objects.get(pk=successor.pk).rotated_from_id == old.pk
    assert Delivery.objects.get().api_key_id == successor.pk
    assert ProjectAPIKey.objects.is_valid(new_raw)
    assert ProjectAPIKey.objects.is_valid(old_raw)


# --- sound: the key commands on a string-id model ------------------------------------------------


def test_revokeapikey_and_rotateapikey_find_string_id_keys_by_prefix() -> None:
    acme = Project.objects.create(slug="acme")
    revoked_raw, revoked = upstream_row(acme, name="leaked")
    rotated_raw, rotated = upstream_row(acme, name="rotated")

    run_command("revokeapikey", revoked.prefix, "--model", PROJECT_MODEL)
    new_raw = run_command("rotateapikey", rotated.prefix, "--model", PROJECT_MODEL).strip()

    assert not ProjectAPIKey.objects.is_valid(revoked_raw)
    assert not ProjectAPIKey.objects.is_valid(rotated_raw)
    successor = ProjectAPIKey.objects.get_from_key(new_raw)
    assert (successor.rotated_from_id, successor.project) == (rotated.pk, acme)


def test_listapikeys_table_lists_string_id_keys_by_prefix() -> None:
    acme = Project.objects.create(slug="acme")
    _, stored = upstream_row(acme, name="partner")

    output = run_command("listapikeys", "--model", PROJECT_MODEL)

    assert stored.prefix in output
    assert hex_digest(stored) not in output


# --- sound: the migration of an upstream model with Meta options of its own ----------------------


def _team_key_state(base: type[models.Model]) -> ProjectState:
    """The state of an upstream custom model with a verbose name, an index and a constraint
    of its own, subclassing ``base`` (upstream's ``AbstractAPIKey`` or ours)."""
    with isolate_apps(REVIEW_APP):

        class Owner(models.Model):
            class Meta:
                app_label = REVIEW_APP_LABEL

            def __str__(self) -> str:
                return str(self.pk)

        class TeamKey(base):  # type: ignore[valid-type,misc]
            owner = models.ForeignKey(Owner, on_delete=models.CASCADE)

            class Meta(base.Meta):  # type: ignore[name-defined,misc]
                app_label = REVIEW_APP_LABEL
                verbose_name = "team API key"
                indexes = [models.Index(fields=["owner", "name"], name="teamkey_owner_name")]
                constraints = [
                    models.UniqueConstraint(fields=["owner", "name"], name="teamkey_unique_name")
                ]

        state = ProjectState()
        state.add_model(ModelState.from_model(Owner))
        state.add_model(ModelState.from_model(TeamKey))
    return state


def test_a_model_with_meta_options_of_its_own_gets_added_and_widened_fields_only() -> None:
    before = _team_key_state(UpstreamAbstractAPIKey)
    after = _team_key_state(AbstractStringIdAPIKey)

    # The real graph: the autodetector keeps only changes of apps that have migrations.
    graph = MigrationLoader(connection).graph
    changes = MigrationAutodetector(before, after).changes(graph=graph)

    operations: list[Any] = [
        op for migration in changes.get(REVIEW_APP_LABEL, []) for op in migration.operations
    ]
    assert operations
    assert all(isinstance(op, AddField | AlterField) for op in operations), operations
    assert "id" not in {op.name for op in operations}


# --- sound: what the project's own views answer --------------------------------------------------


@pytest.mark.urls("tests.support.upstream_project.urls")
def test_a_string_id_key_reaches_drf_and_ninja_views_after_a_cascade_refuses_it() -> None:
    acme = Project.objects.create(slug="acme")
    raw, _ = upstream_row(acme)
    client = Client(headers={"Authorization": f"Api-Key {raw}"})
    assert client.get("/drf/project").json() == {"project": "acme"}
    assert client.get("/ninja/project").json() == {"project": "acme"}

    acme.delete()

    assert client.get("/drf/project").status_code == 403
    assert client.get("/ninja/project").status_code == 401
