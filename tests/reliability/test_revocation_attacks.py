"""Attacks on revocation inside one process: each test is an attack that once succeeded.

The real-process versions (servers in other processes, a third process making the change)
are in ``tests/reliability/test_propagation.py``.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet

from async_api_key.cache import key_digest
from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.verification import Reason, Verifier
from tests.support.key_factories import wrong_secret_for
from tests.support.testapp.models import HIDDEN_KEY_NAMES, Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db


def test_a_cascade_from_a_deleted_owner_drops_the_cached_key() -> None:
    organization = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.objects.create_key(name="acme", organization=organization)
    verifier = OrganizationAPIKey.plain.verifier
    assert verifier.verify(raw).is_valid  # cached
    organization.delete()  # on_delete=CASCADE removes the key row
    assert verifier.verify(raw).reason is Reason.UNKNOWN
    with pytest.raises(OrganizationAPIKey.DoesNotExist):
        OrganizationAPIKey.plain.get_from_key(raw)


def test_a_queryset_delete_of_owners_drops_every_cached_key_of_theirs() -> None:
    organizations = [Organization.objects.create(name=f"org{i}") for i in range(3)]
    raws = [
        OrganizationAPIKey.objects.create_key(name="k", organization=org)[1]
        for org in organizations
    ]
    verifier = OrganizationAPIKey.plain.verifier
    assert all(verifier.verify(raw).is_valid for raw in raws)
    Organization.objects.filter(name__in=["org0", "org1"]).delete()
    assert [verifier.verify(raw).is_valid for raw in raws] == [False, False, True]


def test_a_cached_key_shares_no_mutable_state_between_requests() -> None:
    _, raw = APIKey.objects.create_key(
        name="x", scopes=["orders:read"], allowed_networks=["10.0.0.0/8"]
    )
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    first = verifier.verify(raw).api_key  # from the cache
    assert first is not None
    first.scopes.append("*")  # one request's code changes its own copy...
    first.allowed_networks.clear()
    second = verifier.verify(raw, scopes=["admin"])  # ...and the next request must not see it
    assert second.reason is Reason.INSUFFICIENT_SCOPE
    assert second.api_key is not None
    assert second.api_key.scopes == ["orders:read"]
    assert second.api_key.allowed_networks == ["10.0.0.0/8"]


def test_the_request_that_read_a_key_from_the_database_shares_nothing_with_the_cache() -> None:
    _, raw = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    first = verifier.verify(raw).api_key  # read from the database, then cached
    assert first is not None
    first.scopes.append("*")  # the first request's code changes its key...
    second = verifier.verify(raw, scopes=["admin"])  # ...and the cached key must not change
    assert second.reason is Reason.INSUFFICIENT_SCOPE
    assert second.api_key is not None
    assert second.api_key.scopes == ["orders:read"]


def test_a_forged_probe_through_a_narrow_manager_does_not_lock_out_the_real_key() -> None:
    organization = Organization.objects.create(name="Acme")
    victim, raw = OrganizationAPIKey.objects.create_key(name="hidden", organization=organization)
    assert "hidden" in HIDDEN_KEY_NAMES  # invisible to OrganizationAPIKey.visible
    forged = wrong_secret_for(victim.prefix)  # the victim's public lookup id, a made-up secret
    assert OrganizationAPIKey.visible.verifier.verify(forged).reason is Reason.UNKNOWN
    # The real key, through the manager that sees it, still works: the probe found the
    # lookup id absent only from a narrow view, not from the table.
    assert OrganizationAPIKey.plain.verifier.verify(raw).is_valid


_current_tenant: ContextVar[str] = ContextVar("current_tenant", default="")


class TenantKeysManager(BaseAPIKeyManager[OrganizationAPIKey]):
    """Sees only the current tenant's keys (the organization's name stands for the tenant),
    as a multi-tenant project's manager does."""

    def get_queryset(self) -> QuerySet[OrganizationAPIKey]:  # type: ignore[override]
        return super().get_queryset().filter(organization__name=_current_tenant.get())


class ScopedTenantKeysManager(TenantKeysManager):
    """The same, saying what its answer depends on, so that it may be cached."""

    def cache_scope(self) -> str:
        return f"tenant:{_current_tenant.get()}"


def _tenant_verifier(manager_class: type[TenantKeysManager]) -> Verifier[OrganizationAPIKey]:
    manager = manager_class()
    manager.model = OrganizationAPIKey
    return Verifier(OrganizationAPIKey, manager=manager)


def _in_tenant(tenant: str, verifier: Verifier[Any], raw: str) -> Reason:
    token = _current_tenant.set(tenant)
    try:
        return verifier.verify(raw).reason
    finally:
        _current_tenant.reset(token)


def test_a_key_verified_in_one_tenant_is_not_accepted_in_another() -> None:
    beta = Organization.objects.create(name="beta")
    Organization.objects.create(name="alpha")
    _, raw = OrganizationAPIKey.objects.create_key(name="beta key", organization=beta)
    verifier = _tenant_verifier(TenantKeysManager)
    assert _in_tenant("alpha", verifier, raw) is Reason.UNKNOWN
    assert _in_tenant("beta", verifier, raw) is Reason.VALID
    assert _in_tenant("alpha", verifier, raw) is Reason.UNKNOWN  # not from beta's cache


def test_a_tenant_manager_that_declares_its_scope_is_cached_per_tenant() -> None:
    beta = Organization.objects.create(name="beta")
    _, raw = OrganizationAPIKey.objects.create_key(name="beta key", organization=beta)
    verifier = _tenant_verifier(ScopedTenantKeysManager)
    assert _in_tenant("beta", verifier, raw) is Reason.VALID
    digest = key_digest(raw)
    assert verifier.cache.get_local(digest, "tenant:beta") is not None  # cached for beta...
    assert verifier.cache.get_local(digest, "tenant:alpha") is None  # ...and for beta only
    assert _in_tenant("alpha", verifier, raw) is Reason.UNKNOWN


@pytest.mark.django_db(transaction=True)
def test_a_verification_racing_an_uncommitted_revocation_caches_nothing_stale() -> None:
    """The revoking transaction is open while another thread verifies the key (it reads the
    committed, valid row); once the revocation commits, the key is refused."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite in memory locks the table for readers during a write transaction")
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    between: list[Reason] = []

    def verify_elsewhere() -> None:
        try:
            between.append(verifier.verify(raw).reason)
        finally:
            connection.close()

    with transaction.atomic():
        api_key.revoke()
        other = threading.Thread(target=verify_elsewhere)
        other.start()
        other.join()
    assert between == [Reason.VALID]  # the revocation had not committed yet
    assert verifier.verify(raw).reason is Reason.REVOKED
    assert APIKey.objects.is_valid(raw) is False


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_revocation_leaves_the_key_valid() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid

    inside: list[Reason] = []
    with transaction.atomic():
        api_key.revoke()
        inside.append(verifier.verify(raw).reason)
        transaction.set_rollback(True)
    assert inside == [Reason.REVOKED]  # inside the transaction, the change counts
    api_key.refresh_from_db()
    assert api_key.revoked is False
    assert verifier.verify(raw).is_valid
