"""A key's scopes, allowed networks and rate limit are validated on every write path: a
value a request could not parse never reaches the database (issue 16.2)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db.models import F, Value
from django.test import Client
from django.urls import reverse

from async_api_key.models import APIKey

pytestmark = pytest.mark.django_db

#: A wrong value of each validated field, and a word of the error that names it.
BAD_VALUES: list[tuple[str, Any]] = [
    ("scopes", "orders:read"),
    ("scopes", ["orders read"]),
    ("allowed_networks", ["garbage"]),
    ("allowed_networks", "10.0.0.0/8"),
    ("rate_limit", "100/minutes"),
]

#: What each field holds after ``create_key(name="x")``.
UNTOUCHED = {"scopes": [], "allowed_networks": [], "rate_limit": ""}


def _stored(api_key: APIKey, field: str) -> Any:
    return APIKey._base_manager.values_list(field, flat=True).get(pk=api_key.pk)


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_save_refuses_a_bad_value(field: str, value: Any) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    setattr(api_key, field, value)
    with pytest.raises(ValidationError) as excinfo:
        api_key.save()
    assert field in excinfo.value.message_dict
    assert _stored(api_key, field) == UNTOUCHED[field]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_create_key_refuses_a_bad_value(field: str, value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        APIKey.objects.create_key(name="x", **{field: value})
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--scopes", "orders read"), ("--allowed-networks", "garbage"), ("--rate", "100/minutes")],
)
def test_createapikey_refuses_a_bad_value(option: str, value: str) -> None:
    with pytest.raises(CommandError):
        call_command("createapikey", "--name", "x", option, value)
    assert not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("scopes", "orders read"), ("allowed_networks", "garbage"), ("rate_limit", "100/minutes")],
)
def test_the_admin_refuses_a_bad_value(admin_client: Client, field: str, value: str) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    form = {"name": "x", "expiry_date_0": "", "expiry_date_1": ""}
    form |= {"scopes": "", "allowed_networks": "", "rate_limit": "", field: value}
    change = reverse("admin:async_api_key_apikey_change", args=[api_key.pk])

    response = admin_client.post(change, form)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert _stored(api_key, field) == UNTOUCHED[field]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_queryset_update_refuses_a_bad_value_and_writes_nothing(field: str, value: Any) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    with pytest.raises(ValidationError) as excinfo:
        APIKey.objects.filter(pk=api_key.pk).update(name="renamed", **{field: value})
    assert list(excinfo.value.message_dict) == [field]
    assert (_stored(api_key, "name"), _stored(api_key, field)) == ("x", UNTOUCHED[field])


# The async path runs on a connection of its own: its keys must be committed and removed.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
async def test_queryset_aupdate_refuses_a_bad_value_and_writes_nothing(
    field: str, value: Any
) -> None:
    api_key, _ = await APIKey.objects.acreate_key(name="x")
    with pytest.raises(ValidationError):
        await APIKey.objects.filter(pk=api_key.pk).aupdate(**{field: value})
    stored = await APIKey._base_manager.values_list(field, flat=True).aget(pk=api_key.pk)
    assert stored == UNTOUCHED[field]


def test_queryset_update_stores_values_normalised() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    APIKey.objects.filter(pk=api_key.pk).update(
        scopes=["orders:read", "orders:read"], allowed_networks=["10.0.0.1/8"], rate_limit="5/s"
    )
    api_key.refresh_from_db()
    assert (api_key.scopes, api_key.allowed_networks, api_key.rate_limit) == (
        ["orders:read"],
        ["10.0.0.0/8"],
        "5/s",
    )


def test_queryset_update_passes_expressions_through_unvalidated() -> None:
    """An expression has no value before the database computes it; Django's own
    ``update()`` validates nothing, and this one validates the values it can see."""
    api_key, _ = APIKey.objects.create_key(name="x", rate_limit="5/s")
    APIKey.objects.filter(pk=api_key.pk).update(rate_limit=Value("7/s"), name=F("rate_limit"))
    api_key.refresh_from_db()
    assert (api_key.rate_limit, api_key.name) == ("7/s", "5/s")
