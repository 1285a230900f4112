"""Who gets in, seen from outside: behaviours of the security core that mutation testing
found unguarded (issue 22). Each test is a behaviour a user or an attacker would notice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import BasePasswordHasher
from django.core.cache import cache as default_cache
from django.db import OperationalError
from django.db.backends.utils import CursorWrapper
from django.db.models import QuerySet
from django.test import Client, override_settings

from async_api_key import cache as cache_module
from async_api_key import hashing
from async_api_key.hashing import check_key, hash_key, is_fast_hash
from async_api_key.keys import NAMESPACE_MAX_LENGTH, parse_key
from async_api_key.models import APIKey, BaseAPIKeyManager
from async_api_key.networks import client_address
from async_api_key.scopes import MAX_SCOPE_LENGTH
from async_api_key.signals import verification_failed, verification_succeeded
from async_api_key.verification import Reason, Verifier
from tests.support.key_factories import a_second_ago, unknown_key, wrong_secret_for
from tests.support.outages import refuse_sql_updates
from tests.support.testapp.models import Organization, OrganizationAPIKey

pytestmark = pytest.mark.django_db

#: An upstream-format key (``<prefix>.<secret>``), as djangorestframework-api-key made them.
LEGACY_RAW = "QrStUvWx.abcdefghijklmnopqrstuvwxyz987654"
INSIDE: dict[str, Any] = {"REMOTE_ADDR": "10.1.2.3"}
OUTSIDE: dict[str, Any] = {"REMOTE_ADDR": "203.0.113.9"}


def lookup_of(raw: str) -> str:
    parsed = parse_key(raw)
    assert parsed is not None
    return parsed.lookup


def _inactive_organization_key() -> str:
    organization = Organization.objects.create(name="Gone", active=False)
    return OrganizationAPIKey.objects.create_key(name="k", organization=organization)[1]


# --- 1. A key served by the shared tier still meets its allowlist and its scopes -----------


@pytest.mark.usefixtures("shared_tier")
def test_a_key_served_by_the_shared_tier_is_still_held_to_its_ip_allowlist() -> None:
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["10.0.0.0/8"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw, request_meta=INSIDE).is_valid
    cache_module.clear_local()  # another process, which finds the key in the shared tier
    outcome = verifier.verify(raw, request_meta=OUTSIDE)
    assert outcome.reason is Reason.IP_NOT_ALLOWED
    assert outcome.prefix == lookup_of(raw)


@pytest.mark.usefixtures("shared_tier")
def test_a_key_served_by_the_shared_tier_is_still_held_to_its_scopes() -> None:
    _, raw = APIKey.objects.create_key(name="x", scopes=["orders:read"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw).is_valid
    cache_module.clear_local()
    outcome = verifier.verify(raw, scopes=["orders:write"])
    assert outcome.reason is Reason.INSUFFICIENT_SCOPE
    assert outcome.missing_scopes == ("orders:write",)


@pytest.mark.urls("tests.support.parity_urls")
@pytest.mark.usefixtures("shared_tier")
@pytest.mark.parametrize("framework", ["ninja", "drf"])
def test_both_adapters_refuse_by_policy_a_key_that_the_shared_tier_serves(
    client: Client, framework: str
) -> None:
    _, fenced = APIKey.objects.create_key(name="fenced", allowed_networks=["10.0.0.0/8"])
    _, reader = APIKey.objects.create_key(name="reader", scopes=["billing:read"])
    assert client.get(f"/{framework}/plain", HTTP_X_API_KEY=fenced, **INSIDE).status_code == 200
    assert client.get(f"/{framework}/plain", HTTP_X_API_KEY=reader).status_code == 200
    cache_module.clear_local()
    from_outside = client.get(f"/{framework}/plain", HTTP_X_API_KEY=fenced, **OUTSIDE)
    assert from_outside.status_code == 403
    assert from_outside.json()["code"] == "ip_not_allowed"
    cache_module.clear_local()
    out_of_scope = client.get(f"/{framework}/scoped", HTTP_X_API_KEY=reader)
    assert out_of_scope.status_code == 403
    assert out_of_scope.json()["missing_scopes"] == ["orders:read"]


# --- 2 and 3. Each manager answers by its own rules, whatever another one cached -----------


@pytest.mark.parametrize("shared", [False, True], ids=["local tier", "shared tier"])
def test_a_key_accepted_through_a_broader_manager_is_refused_through_a_narrower_one(
    shared: bool,
) -> None:
    settings = {"SHARED_CACHE_ALIAS": "default"} if shared else {}
    default_cache.clear()
    with override_settings(ASYNC_API_KEY=settings):
        raw = _inactive_organization_key()
        assert OrganizationAPIKey.plain.verifier.verify(raw).is_valid  # cached for `plain`
        if shared:
            cache_module.clear_local()
        assert OrganizationAPIKey.objects.verifier.verify(raw).reason is Reason.UNUSABLE
        assert not OrganizationAPIKey.objects.is_valid(raw)
    default_cache.clear()


def test_a_key_refused_through_a_narrower_manager_is_accepted_through_a_broader_one() -> None:
    raw = _inactive_organization_key()
    assert OrganizationAPIKey.objects.verifier.verify(raw).reason is Reason.UNUSABLE
    assert OrganizationAPIKey.plain.verifier.verify(raw).is_valid


def test_a_manager_other_than_the_default_one_keeps_its_own_rules() -> None:
    raw = _inactive_organization_key()
    # `objects`, the default manager, leaves out keys of inactive organizations; `plain`
    # does not: through it, and only through it, the key is good.
    assert OrganizationAPIKey.plain.verifier.manager is OrganizationAPIKey.plain
    assert OrganizationAPIKey.plain.is_valid(raw)
    assert OrganizationAPIKey.plain.get_from_key(raw).name == "k"
    assert not OrganizationAPIKey.objects.is_valid(raw)
    with pytest.raises(OrganizationAPIKey.DoesNotExist):
        OrganizationAPIKey.objects.get_from_key(raw)


@pytest.mark.django_db(transaction=True)
async def test_a_manager_other_than_the_default_one_keeps_its_own_rules_async() -> None:
    from asgiref.sync import sync_to_async

    raw = await sync_to_async(_inactive_organization_key)()
    assert await OrganizationAPIKey.plain.ais_valid(raw)
    assert not await OrganizationAPIKey.objects.ais_valid(raw)


# --- 4. Managers made on the fly share a verifier only when they behave alike --------------


def test_managers_made_on_the_fly_from_different_managers_keep_their_own_rules() -> None:
    raw = _inactive_organization_key()
    narrow = OrganizationAPIKey.objects.db_manager("default")
    broad = OrganizationAPIKey.plain.db_manager("default")
    assert broad.is_valid(raw)
    assert not narrow.is_valid(raw)
    assert OrganizationAPIKey.plain.db_manager("default").is_valid(raw)
    assert not OrganizationAPIKey.objects.db_manager("default").is_valid(raw)


def test_a_manager_made_for_another_database_verifies_against_that_database() -> None:
    for alias in ("default", "replica", "default"):
        assert APIKey.objects.db_manager(alias).verifier.manager.db == alias
    assert APIKey.objects.verifier.manager.db == "default"


def test_a_manager_made_on_the_fly_with_state_of_its_own_gets_its_own_verifier() -> None:
    acme = Organization.objects.create(name="Acme")
    _, raw = OrganizationAPIKey.plain.create_key(name="k", organization=acme)
    seeing, blind = (OrganizationAPIKey.plain.db_manager("default") for _ in range(2))
    blind.blind = True  # type: ignore[attr-defined]  # state a project sets on its copy
    assert blind.verifier is not seeing.verifier
    assert blind.verifier.manager is blind
    assert seeing.is_valid(raw)


class HintRouter:
    """Reads keys from the database that a manager's ``alias`` hint names."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return hints.get("alias")


@override_settings(DATABASE_ROUTERS=[f"{__name__}.HintRouter"])
def test_managers_made_with_other_routing_hints_verify_where_their_hints_route() -> None:
    for alias in ("default", "replica", "default"):
        hints: dict[str, Any] = {"alias": alias}
        manager = APIKey.objects.db_manager(hints=hints)
        assert manager.verifier.manager.db == alias


def test_a_manager_made_with_hints_that_cannot_be_hashed_still_verifies() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    unsaved = APIKey(name="unsaved")  # a model instance without a primary key has no hash
    manager = APIKey.objects.db_manager("default", hints={"instance": unsaved})
    assert manager.verifier.model is APIKey
    assert manager.is_valid(raw)


def test_a_manager_made_with_hints_that_cannot_be_hashed_keeps_its_own_rules() -> None:
    raw = _inactive_organization_key()
    unsaved = OrganizationAPIKey(name="unsaved")
    broad = OrganizationAPIKey.plain.db_manager("default", hints={"instance": unsaved})
    narrow = OrganizationAPIKey.objects.db_manager("default", hints={"instance": unsaved})
    assert broad.is_valid(raw)
    assert not narrow.is_valid(raw)


class NamedKeysManager(BaseAPIKeyManager[APIKey]):
    """Sees only keys with the names it was built with, which it keeps nowhere but in the
    constructor arguments Django records on every manager."""

    def __init__(self, *names: str) -> None:
        super().__init__()

    def get_queryset(self) -> QuerySet[APIKey]:  # type: ignore[override]
        names = getattr(self, "_constructor_args")[0]  # noqa: B009  (no stub declares it)
        return super().get_queryset().filter(name__in=names)


def _named(*names: str) -> NamedKeysManager:
    manager = NamedKeysManager(*names)
    manager.model = APIKey
    return manager


def test_managers_built_with_other_arguments_keep_their_own_rules() -> None:
    _, raw = APIKey.objects.create_key(name="alpha")
    assert _named("alpha").is_valid(raw)
    assert not _named("beta").is_valid(raw)
    assert _named("beta", "alpha").is_valid(raw)


def test_only_a_genuine_usable_key_is_authenticated() -> None:
    verifier = Verifier(APIKey)
    raw = _stored(scopes=["a"], allowed_networks=["10.0.0.0/8"])
    assert verifier.verify(raw).is_authenticated
    assert verifier.verify(raw, scopes=["b"]).is_authenticated  # genuine, refused by policy
    assert verifier.verify(raw, request_meta=OUTSIDE).is_authenticated
    for refused in (None, "not a key", unknown_key(), wrong_secret_for(lookup_of(raw))):
        assert not verifier.verify(refused).is_authenticated
    assert not verifier.verify(_revoked()).is_authenticated


# --- 5. Hash formats and the HASH_ALGORITHM setting -----------------------------------------


class EmptySaltSHA1Hasher(BasePasswordHasher):
    """A password hasher whose hashes read ``<algorithm>$$<...>``, as bcrypt_sha256's do."""

    algorithm = "empty_salt_sha1"

    def encode(self, password: str, salt: str) -> str:
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest()
        return f"{self.algorithm}$${digest}"

    def verify(self, password: str, encoded: str) -> bool:
        return encoded == self.encode(password, "")

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        return {"algorithm": self.algorithm}


EMPTY_SALT_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    f"{__name__}.EmptySaltSHA1Hasher",
]


def _store_legacy_key(hashed_key: str) -> APIKey:
    api_key = APIKey(name="legacy", prefix=lookup_of(LEGACY_RAW), hashed_key=hashed_key)
    api_key.save()
    return api_key


@override_settings(PASSWORD_HASHERS=EMPTY_SALT_HASHERS)
def test_a_password_hash_with_an_empty_salt_field_is_checked_as_a_password_hash() -> None:
    stored = EmptySaltSHA1Hasher().encode(LEGACY_RAW, "")
    assert stored.startswith("empty_salt_sha1$$")
    assert not is_fast_hash(stored)
    assert check_key(LEGACY_RAW, stored).matches
    assert not check_key(LEGACY_RAW.replace("a", "b"), stored).matches


@pytest.mark.django_db(transaction=True)
@override_settings(PASSWORD_HASHERS=EMPTY_SALT_HASHERS)
def test_a_legacy_key_under_an_empty_salt_password_hash_verifies_and_is_upgraded() -> None:
    api_key = _store_legacy_key(EmptySaltSHA1Hasher().encode(LEGACY_RAW, ""))
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(LEGACY_RAW)


def test_a_fast_hash_is_recognised_only_in_its_exact_format() -> None:
    assert is_fast_hash(hash_key("k", "sha512"))
    assert is_fast_hash(hash_key("k", "sha256"))
    assert not is_fast_hash("sha512$salt$digest")  # a password hash named like an algorithm
    assert not is_fast_hash("md5$$digest")


SHA256 = {"HASH_ALGORITHM": "sha256"}


@override_settings(ASYNC_API_KEY=SHA256)
def test_with_sha256_new_keys_are_stored_and_verified_as_sha256() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    assert api_key.hashed_key == hash_key(raw, "sha256")
    assert Verifier(APIKey).verify(raw).is_valid


@pytest.mark.django_db(transaction=True)
@override_settings(ASYNC_API_KEY=SHA256)
@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(lambda: hash_key(LEGACY_RAW, "sha512"), id="sha512"),
        pytest.param(lambda: EmptySaltSHA1Hasher().encode(LEGACY_RAW, ""), id="password hash"),
    ],
)
def test_with_sha256_a_key_stored_otherwise_is_upgraded_to_sha256(
    stored: Callable[[], str],
) -> None:
    with override_settings(PASSWORD_HASHERS=EMPTY_SALT_HASHERS):
        api_key = _store_legacy_key(stored())
        assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(LEGACY_RAW, "sha256")
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid


@pytest.mark.django_db(transaction=True)
def test_with_sha512_a_sha512_key_is_not_rewritten() -> None:
    api_key = _store_legacy_key(hash_key(LEGACY_RAW, "sha512"))
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(LEGACY_RAW, "sha512")


@override_settings(ASYNC_API_KEY=SHA256)
def test_with_sha256_an_unknown_lookup_id_costs_the_hash_a_wrong_secret_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    algorithms: list[str] = []
    real_hash_key = hashing.hash_key

    def recording_hash_key(raw_key: str, algorithm: str = "sha512") -> str:
        algorithms.append(algorithm)
        return real_hash_key(raw_key, algorithm)

    _, raw = APIKey.objects.create_key(name="x")
    monkeypatch.setattr(hashing, "hash_key", recording_hash_key)
    verifier = Verifier(APIKey)
    assert verifier.verify(wrong_secret_for(lookup_of(raw))).reason is Reason.INVALID_SECRET
    assert verifier.verify(unknown_key()).reason is Reason.UNKNOWN
    assert algorithms == ["sha256", "sha256"]


# --- 6. Every audit event names the lookup id -----------------------------------------------


def _outage(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(CursorWrapper, "_execute_with_wrappers", refuse)


def _stored(**fields: Any) -> str:
    return APIKey.objects.create_key(name="x", **fields)[1]


def _revoked() -> str:
    api_key, raw = APIKey.objects.create_key(name="x")
    api_key.revoke()
    return raw


#: reason -> (the raw key to present, the scopes required, the request's META)
FAILURES: dict[Reason, Callable[[], tuple[str, list[str], dict[str, Any] | None]]] = {
    Reason.UNKNOWN: lambda: (unknown_key(), [], None),
    Reason.INVALID_SECRET: lambda: (wrong_secret_for(lookup_of(_stored())), [], None),
    Reason.REVOKED: lambda: (_revoked(), [], None),
    Reason.EXPIRED: lambda: (_stored(expiry_date=a_second_ago()), [], None),
    Reason.IP_NOT_ALLOWED: lambda: (_stored(allowed_networks=["10.0.0.0/8"]), [], OUTSIDE),
    Reason.INSUFFICIENT_SCOPE: lambda: (_stored(scopes=["a"]), ["b"], None),
}


class Events:
    """The audit signals sent while it is connected: ``(signal name, reason, prefix)``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reason, str | None]] = []

    def failed(self, sender: Any, reason: Reason, prefix: str | None, **kwargs: Any) -> None:
        self.sent.append(("failed", reason, prefix))

    def succeeded(self, sender: Any, api_key: Any, prefix: str | None, **kwargs: Any) -> None:
        self.sent.append(("succeeded", Reason.VALID, prefix))


@pytest.fixture
def events() -> Iterator[Events]:
    recorder = Events()
    verification_failed.connect(recorder.failed)
    verification_succeeded.connect(recorder.succeeded)
    yield recorder
    verification_failed.disconnect(recorder.failed)
    verification_succeeded.disconnect(recorder.succeeded)


@pytest.mark.parametrize("reason", list(FAILURES), ids=str)
def test_every_refusal_of_a_well_formed_key_is_reported_with_its_lookup_id(
    reason: Reason, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    raw, scopes, meta = FAILURES[reason]()
    outcome = Verifier(APIKey).verify(raw, scopes=scopes, request_meta=meta)
    assert outcome.reason is reason
    assert outcome.prefix == lookup_of(raw)
    assert events.sent == [("failed", reason, lookup_of(raw))]
    assert f"reason={reason.value} prefix={lookup_of(raw)}" in caplog.text


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reason", list(FAILURES), ids=str)
async def test_every_refusal_on_the_async_path_is_reported_with_its_lookup_id(
    reason: Reason, events: Events
) -> None:
    from asgiref.sync import sync_to_async

    raw, scopes, meta = await sync_to_async(FAILURES[reason])()
    outcome = await Verifier(APIKey).averify(raw, scopes=scopes, request_meta=meta)
    assert outcome.reason is reason
    assert events.sent == [("failed", reason, lookup_of(raw))]


def test_an_unusable_key_is_reported_with_its_lookup_id(events: Events) -> None:
    raw = _inactive_organization_key()
    assert OrganizationAPIKey.objects.verifier.verify(raw).reason is Reason.UNUSABLE
    assert events.sent == [("failed", Reason.UNUSABLE, lookup_of(raw))]


def test_an_unknown_key_seen_again_is_reported_with_its_lookup_id(events: Events) -> None:
    raw = unknown_key()
    verifier = Verifier(APIKey)
    verifier.verify(raw)
    verifier.verify(raw)  # answered from the negative cache
    assert events.sent == [("failed", Reason.UNKNOWN, lookup_of(raw))] * 2


def test_an_outage_is_reported_with_the_lookup_id_and_its_cause(
    events: Events, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    raw = unknown_key()
    _outage(monkeypatch)
    outcome = Verifier(APIKey).verify(raw)
    assert outcome.reason is Reason.UNAVAILABLE
    assert isinstance(outcome.error, OperationalError)
    assert events.sent == [("failed", Reason.UNAVAILABLE, lookup_of(raw))]
    assert (
        "the key store is unavailable (OperationalError: connection refused); "
        f"prefix={lookup_of(raw)}"
    ) in caplog.text


@pytest.mark.usefixtures("shared_tier")
def test_every_accepted_key_is_reported_with_its_lookup_id_wherever_it_was_found(
    events: Events,
) -> None:
    raw = _stored()
    verifier = Verifier(APIKey)
    verifier.verify(raw)  # the database
    verifier.verify(raw)  # this process's cache
    cache_module.clear_local()
    verifier.verify(raw)  # the shared tier
    assert events.sent == [("succeeded", Reason.VALID, lookup_of(raw))] * 3


@pytest.mark.usefixtures("shared_tier")
def test_a_policy_refusal_of_a_cached_key_is_reported_with_its_lookup_id(
    events: Events,
) -> None:
    raw = _stored(scopes=["a"], allowed_networks=["10.0.0.0/8"])
    verifier = Verifier(APIKey)
    assert verifier.verify(raw, request_meta=INSIDE).is_valid
    verifier.verify(raw, request_meta=OUTSIDE)  # this process's cache
    cache_module.clear_local()
    verifier.verify(raw, scopes=["b"])  # the shared tier
    assert events.sent[1:] == [
        ("failed", Reason.IP_NOT_ALLOWED, lookup_of(raw)),
        ("failed", Reason.INSUFFICIENT_SCOPE, lookup_of(raw)),
    ]


@pytest.fixture
def failures_only() -> Iterator[list[tuple[Reason, str | None]]]:
    """A receiver of verification_failed alone, as an audit log of refusals connects."""
    sent: list[tuple[Reason, str | None]] = []

    def failed(sender: Any, reason: Reason, prefix: str | None, **kwargs: Any) -> None:
        sent.append((reason, prefix))

    verification_failed.connect(failed)
    yield sent
    verification_failed.disconnect(failed)


def test_refusals_reach_a_project_that_listens_only_for_refusals(
    failures_only: list[tuple[Reason, str | None]],
) -> None:
    raw = unknown_key()
    assert Verifier(APIKey).verify(raw).reason is Reason.UNKNOWN
    assert failures_only == [(Reason.UNKNOWN, lookup_of(raw))]


@pytest.mark.django_db(transaction=True)
async def test_refusals_on_the_async_path_reach_a_project_that_listens_only_for_refusals(
    failures_only: list[tuple[Reason, str | None]],
) -> None:
    raw = unknown_key()
    assert (await Verifier(APIKey).averify(raw)).reason is Reason.UNKNOWN
    assert failures_only == [(Reason.UNKNOWN, lookup_of(raw))]


# --- The outcome tells what the adapters answer ----------------------------------------------


def test_the_outcome_names_the_code_and_status_that_the_adapters_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = Verifier(APIKey)
    raw = _stored(scopes=["a"], allowed_networks=["10.0.0.0/8"])
    expected = [
        (verifier.verify(raw), "valid", 200),
        (verifier.verify(raw, scopes=["b"]), "insufficient_scope", 403),
        (verifier.verify(raw, request_meta=OUTSIDE), "ip_not_allowed", 403),
        (verifier.verify(unknown_key()), "invalid_api_key", 401),
    ]
    _outage(monkeypatch)
    expected.append((verifier.verify(unknown_key()), "api_key_verification_unavailable", 503))
    for outcome, code, status in expected:
        assert (outcome.error_code, outcome.status_code) == (code, status)
        if status != 200:
            assert outcome.error_body()["code"] == code


# --- Bookkeeping: the key returned says when it was used; failures name the key -------------


@pytest.mark.django_db(transaction=True)
def test_the_key_a_verification_returns_says_when_it_was_last_used() -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    returned = Verifier(APIKey).verify(raw).api_key
    assert returned is not None
    assert returned.last_used_at is not None
    assert returned.last_used_at == APIKey.objects.get(pk=api_key.pk).last_used_at


@pytest.mark.django_db(transaction=True)
def test_a_last_used_time_that_cannot_be_written_is_logged_with_the_lookup_id(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    api_key, raw = APIKey.objects.create_key(name="x")
    refuse_sql_updates(monkeypatch)
    assert Verifier(APIKey).verify(raw).is_valid
    warning = f"Could not record last_used_at; prefix={api_key.prefix}"
    assert warning in [record.getMessage() for record in caplog.records]


# --- 7. Boundaries: the limits themselves are allowed ---------------------------------------


def test_a_namespace_of_the_maximum_length_makes_keys_that_verify() -> None:
    namespace = "n" * NAMESPACE_MAX_LENGTH
    assert NAMESPACE_MAX_LENGTH == 32
    with override_settings(ASYNC_API_KEY={"NAMESPACE": namespace}):
        _, raw = APIKey.objects.create_key(name="x")
    assert raw.startswith(namespace + "_")
    assert Verifier(APIKey).verify(raw).is_valid


def test_a_scope_of_the_maximum_length_is_granted_and_required() -> None:
    scope = "s" * MAX_SCOPE_LENGTH
    assert MAX_SCOPE_LENGTH == 100
    _, raw = APIKey.objects.create_key(name="x", scopes=[scope])
    assert Verifier(APIKey).verify(raw, scopes=[scope]).is_valid
    with pytest.raises(ValueError, match="Invalid scope"):
        APIKey.objects.create_key(name="y", scopes=[scope + "s"])


# --- 8. A hash upgrade never overwrites a hash written meanwhile ----------------------------


@pytest.mark.django_db(transaction=True)
def test_a_hash_upgrade_does_not_undo_a_new_key_set_while_it_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib.auth.hashers import make_password

    api_key = _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    replacement = LEGACY_RAW[:9] + "Z" * 32
    real_check = hashing.check_key

    def check_while_the_key_is_replaced(*args: Any, **kwargs: Any) -> Any:
        result = real_check(*args, **kwargs)
        # Another request gives the row a new secret while this one checks the old one.
        APIKey.objects.filter(pk=api_key.pk).update(hashed_key=hash_key(replacement))
        return result

    monkeypatch.setattr("async_api_key.verification.check_key", check_while_the_key_is_replaced)
    Verifier(APIKey).verify(LEGACY_RAW)
    monkeypatch.setattr("async_api_key.verification.check_key", real_check)
    assert APIKey.objects.get(pk=api_key.pk).hashed_key == hash_key(replacement)
    cache_module.clear_local()
    assert Verifier(APIKey).verify(LEGACY_RAW).reason is Reason.INVALID_SECRET
    assert Verifier(APIKey).verify(replacement).is_valid


@pytest.mark.django_db(transaction=True)
def test_the_key_a_hash_upgrade_returns_carries_its_new_hash_and_saves_safely() -> None:
    from django.contrib.auth.hashers import make_password

    _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    upgraded = Verifier(APIKey).verify(LEGACY_RAW).api_key
    assert upgraded is not None
    assert upgraded.hashed_key == hash_key(LEGACY_RAW)
    upgraded.name = "renamed"
    upgraded.save()  # what a view that edits the authenticated key does
    cache_module.clear_local()
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid


@pytest.mark.django_db(transaction=True)
def test_a_hash_upgrade_that_cannot_be_written_is_logged_with_the_lookup_id(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.contrib.auth.hashers import make_password

    api_key = _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    refuse_sql_updates(monkeypatch)
    assert Verifier(APIKey).verify(LEGACY_RAW).is_valid  # bookkeeping never refuses a key
    warning = f"Could not upgrade a legacy key hash; prefix={api_key.prefix}"
    assert warning in [record.getMessage() for record in caplog.records]


@pytest.mark.django_db(transaction=True)
def test_a_password_hashed_key_whose_upgrade_cannot_be_written_keeps_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib.auth.hashers import make_password

    from async_api_key.password_hash_budget import ATTEMPTS_PER_WINDOW, password_hash_budget

    password_hash_budget.reset()
    _store_legacy_key(make_password(LEGACY_RAW, hasher="pbkdf2_sha256"))
    refuse_sql_updates(monkeypatch)
    # Each use matches the password hash, which stays: the genuine key spends no attempts.
    for _ in range(ATTEMPTS_PER_WINDOW + 2):
        cache_module.clear_local()
        assert Verifier(APIKey).verify(LEGACY_RAW).is_valid
    password_hash_budget.reset()


# --- 9. The client address believes no forwarded header by default --------------------------

FORGED = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "10.1.2.3"}


def test_by_default_a_forged_x_forwarded_for_is_not_believed() -> None:
    assert str(client_address(FORGED)) == "203.0.113.9"
    _, raw = APIKey.objects.create_key(name="x", allowed_networks=["10.0.0.0/8"])
    assert Verifier(APIKey).verify(raw, request_meta=FORGED).reason is Reason.IP_NOT_ALLOWED


@override_settings(ASYNC_API_KEY={"TRUSTED_PROXY_COUNT": 1})
def test_without_an_explicit_count_the_setting_decides_which_entry_is_the_client() -> None:
    assert str(client_address(FORGED)) == "10.1.2.3"
    assert str(client_address(FORGED, 0)) == "203.0.113.9"
