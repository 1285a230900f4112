"""``importapikeys``: keys made by djangorestframework-api-key 3.1.0 work after the import."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key.management.commands import importapikeys
from async_api_key.models import APIKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.support.drf_urls")]


def _import(*args: str) -> str:
    out = StringIO()
    call_command("importapikeys", *args, stdout=out)
    return out.getvalue()


def _status(raw: str, url: str = "/permission-only/") -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client.get(url).status_code


def _snapshot() -> list[tuple[Any, ...]]:
    return list(APIKey.objects.order_by("prefix").values_list())


def test_upstream_key_authenticates_through_has_api_key_after_the_import() -> None:
    upstream, raw = UpstreamAPIKey.objects.create_key(name="partner")
    assert _status(raw) == 403
    output = _import()
    assert _status(raw) == 200
    assert _status(raw, "/authenticated/") == 200
    assert output.strip() == (
        "Imported 1 key(s) from rest_framework_api_key.APIKey into async_api_key.APIKey; "
        "0 already there (0 tightened: revoked or expiring earlier upstream)."
    )
    imported = APIKey.objects.get()
    assert (imported.prefix, imported.hashed_key) == (upstream.prefix, upstream.hashed_key)
    assert (imported.name, imported.created) == ("partner", upstream.created)
    assert raw not in output


def test_running_twice_changes_nothing() -> None:
    UpstreamAPIKey.objects.create_key(name="one")
    UpstreamAPIKey.objects.create_key(name="two", revoked=True)
    _import()
    before = _snapshot()
    output = _import()
    assert _snapshot() == before
    assert output.startswith("Imported 0 key(s)")
    assert "2 already there (0 tightened" in output


def test_revoked_and_expired_keys_are_carried_over() -> None:
    _, revoked_raw = UpstreamAPIKey.objects.create_key(name="revoked", revoked=True)
    past = timezone.now() - timedelta(days=1)
    _, expired_raw = UpstreamAPIKey.objects.create_key(name="expired", expiry_date=past)
    future = timezone.now() + timedelta(days=30)
    _, later_raw = UpstreamAPIKey.objects.create_key(name="later", expiry_date=future)
    _import()
    assert APIKey.objects.get(name="revoked").revoked
    assert APIKey.objects.get(name="expired").expiry_date == past
    assert APIKey.objects.get(name="later").expiry_date == future
    assert _status(revoked_raw, "/authenticated/") == 401
    assert _status(expired_raw, "/authenticated/") == 401
    assert _status(later_raw, "/authenticated/") == 200


def test_a_later_run_carries_over_a_revocation_made_upstream() -> None:
    upstream, raw = UpstreamAPIKey.objects.create_key(name="leaked")
    _import()
    upstream.revoked = True
    upstream.save()
    output = _import()
    assert "1 already there (1 tightened" in output
    assert _status(raw) == 403


def test_a_later_run_never_loosens_a_key() -> None:
    upstream, raw = UpstreamAPIKey.objects.create_key(name="k")
    _import()
    imported = APIKey.objects.get()
    imported.revoke()
    upstream.expiry_date = timezone.now() + timedelta(days=1)
    upstream.save()
    _import()
    imported.refresh_from_db()
    assert imported.revoked
    assert _status(raw) == 403


@pytest.mark.django_db(transaction=True)  # the upgrade is written once the request commits
def test_keys_hashed_by_upstream_before_3_0_keep_working() -> None:
    upstream, raw = UpstreamAPIKey.objects.create_key(name="old")
    UpstreamAPIKey.objects.filter(pk=upstream.pk).update(hashed_key=make_password(raw))
    _import()
    assert _status(raw) == 200
    assert APIKey.objects.get().hashed_key.startswith("sha512$$")


def test_dry_run_writes_nothing() -> None:
    UpstreamAPIKey.objects.create_key(name="k")
    output = _import("--dry-run")
    assert output.startswith("Would import 1 key(s)")
    assert not APIKey.objects.exists()


def test_a_failure_midway_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    UpstreamAPIKey.objects.create_key(name="first")
    UpstreamAPIKey.objects.create_key(name="second")
    original = importapikeys._copy
    copied: list[str] = []

    def fail_on_second(upstream: Any, *args: Any) -> None:
        if copied:
            raise RuntimeError("disk full")
        copied.append(upstream.prefix)
        original(upstream, *args)

    monkeypatch.setattr(importapikeys, "_copy", fail_on_second)
    with pytest.raises(RuntimeError):
        _import()
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "nope.Missing"), "Unknown model"),
        (("--from", "auth.User"), "does not look like a djangorestframework-api-key model"),
        (("--from", "async_api_key.APIKey"), "already an async_api_key model"),
        (("--model", "auth.User"), "not an API key model"),
    ],
)
def test_bad_model_labels_are_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _import(*args)


def test_from_names_the_upstream_model_explicitly() -> None:
    _, raw = UpstreamAPIKey.objects.create_key(name="k")
    _import("--from", "rest_framework_api_key.APIKey", "--model", "async_api_key.APIKey")
    assert _status(raw) == 200
