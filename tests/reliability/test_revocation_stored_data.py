"""Stored data and settings that once gave a 500 (an adversarial review, round two)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from async_api_key.checks import check_settings
from async_api_key.models import APIKey
from async_api_key.verification import Reason, Verifier


@pytest.mark.django_db
def test_save_refuses_an_allowlist_that_is_not_a_list_of_networks() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    api_key.allowed_networks = [["10.0.0.0/8"]]
    with pytest.raises(ValidationError):
        api_key.save()


@pytest.mark.django_db
def test_a_corrupt_stored_allowlist_is_a_refusal_not_a_500() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    APIKey._base_manager.filter(pk=api_key.pk).update(allowed_networks=[["10.0.0.0/8"]])
    outcome = Verifier(APIKey).verify(raw, request_meta={"REMOTE_ADDR": "10.1.2.3"})
    assert outcome.reason is Reason.IP_NOT_ALLOWED


@pytest.mark.django_db
def test_rotating_an_instance_built_from_a_primary_key_drops_the_cached_old_key() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = APIKey.objects.verifier
    assert verifier.verify(raw).is_valid
    APIKey.objects.rotate_key(APIKey(pk=api_key.pk))  # no grace: the old key expires now
    assert verifier.verify(raw).reason is Reason.EXPIRED


@pytest.mark.parametrize(
    "values", [{"LAST_USED_INTERVAL": "1 minute"}, {"TRUSTED_PROXY_COUNT": "one"}]
)
def test_bad_settings_are_reported_by_the_system_check(values: dict[str, object]) -> None:
    with override_settings(ASYNC_API_KEY=values):
        assert check_settings(), "no system check error: the first request will 500 instead"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "corrupt"),
    [
        ("allowed_networks", [["10.0.0.0/8"]]),
        ("allowed_networks", "10.0.0.0/8"),
        ("allowed_networks", ["not a network"]),
        ("scopes", "orders:read"),
        ("scopes", [["orders:read"]]),
    ],
)
def test_a_corrupt_stored_policy_field_is_refused_and_logged_with_the_prefix(
    field: str, corrupt: object, caplog: pytest.LogCaptureFixture
) -> None:
    """Written around the validation (raw SQL, _base_manager): a clear refusal, never a
    pass, and an ERROR that tells the operator which key to fix."""
    api_key, raw = APIKey.objects.create_key(
        name="x", scopes=["orders:read"], allowed_networks=["10.0.0.0/8"]
    )
    APIKey._base_manager.filter(pk=api_key.pk).update(**{field: corrupt})
    with caplog.at_level("ERROR", logger="async_api_key"):
        outcome = Verifier(APIKey).verify(
            raw, scopes=["orders:read"], request_meta={"REMOTE_ADDR": "10.1.2.3"}
        )
    assert outcome.reason in {Reason.IP_NOT_ALLOWED, Reason.INSUFFICIENT_SCOPE}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(api_key.prefix in message and field in message for message in errors), errors
    assert raw not in caplog.text
