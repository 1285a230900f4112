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
from django.test import Client, modify_settings
from django.utils import timezone
from rest_framework_api_key.crypto import KeyGenerator
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key.models import APIKey

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.upstream_project.urls"),
]


@pytest.fixture
def restores_the_old_table() -> Iterator[None]:
    """The cleanup step drops djangorestframework-api-key's table: bring it back after."""
    yield
    call_command("migrate", "rest_framework_api_key", verbosity=0)


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
