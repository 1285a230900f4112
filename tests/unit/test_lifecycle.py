"""Key lifecycle: rotation with a grace period, audit signals, error-report hygiene."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import RequestFactory, override_settings
from django.utils import timezone
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter
from rest_framework_api_key.models import APIKey as UpstreamAPIKey

from async_api_key import signals
from async_api_key.checks import check_error_reports_mask_key_headers
from async_api_key.exceptions import KeyNotRotatable
from async_api_key.models import APIKey
from async_api_key.reporting import APIKeyExceptionReporterFilter
from async_api_key.verification import Reason, Verifier
from tests.support.key_factories import with_bad_checksum
from tests.support.testapp.models import Organization, OrganizationAPIKey


@pytest.mark.django_db
def test_rotation_issues_a_linked_successor_that_copies_the_key() -> None:
    expiry = timezone.now() + timedelta(days=30)
    old, old_raw = APIKey.objects.create_key(
        name="partner", scopes=["orders:read"], expiry_date=expiry
    )
    new, new_raw = old.rotate(grace_period=timedelta(hours=1))
    assert new_raw != old_raw
    assert new.pk != old.pk
    assert new.prefix != old.prefix
    assert (new.name, new.scopes, new.expiry_date) == ("partner", ["orders:read"], expiry)
    assert new.rotated_from_id == old.pk
    assert list(old.successors.all()) == [new]
    assert APIKey.objects.is_valid(new_raw)
    assert APIKey.objects.is_valid(old_raw)  # still within its grace period


@pytest.mark.django_db
def test_old_key_expires_at_the_earlier_of_grace_and_its_own_expiry() -> None:
    soon = timezone.now() + timedelta(minutes=5)
    old, _ = APIKey.objects.create_key(name="x", expiry_date=soon)
    old.rotate(grace_period=timedelta(days=1))
    assert APIKey.objects.get(pk=old.pk).expiry_date == soon
    other, _ = APIKey.objects.create_key(name="y")
    before = timezone.now()
    other.rotate(grace_period=timedelta(hours=2))
    stored = APIKey.objects.get(pk=other.pk).expiry_date
    assert stored is not None
    assert before + timedelta(hours=2) <= stored <= timezone.now() + timedelta(hours=2)


@pytest.mark.django_db
def test_rotation_without_grace_stops_the_old_key_at_once() -> None:
    old, old_raw = APIKey.objects.create_key(name="x")
    _, new_raw = old.rotate()
    assert Verifier(APIKey).verify(old_raw).reason is Reason.EXPIRED
    assert APIKey.objects.is_valid(new_raw)


@pytest.mark.django_db
def test_rotation_copies_the_owner_of_a_custom_key() -> None:
    organization = Organization.objects.create(name="Acme")
    old, _ = OrganizationAPIKey.objects.create_key(name="acme", organization=organization)
    new, new_raw = old.rotate()
    assert new.organization == organization
    assert OrganizationAPIKey.objects.get_from_key(new_raw).organization == organization


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("prepare", "why"),
    [
        (lambda key: key.revoke(), "revoked"),
        (
            lambda key: APIKey.objects.filter(pk=key.pk).update(
                expiry_date=timezone.now() - timedelta(seconds=1)
            ),
            "expired",
        ),
        (lambda key: key.rotate(timedelta(hours=1)), "already been rotated"),
        (lambda key: APIKey.objects.filter(pk=key.pk).delete(), "does not exist"),
    ],
    ids=["revoked", "expired", "rotated twice", "deleted"],
)
def test_keys_that_cannot_be_rotated(prepare: Any, why: str) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    prepare(api_key)
    count = APIKey.objects.count()
    with pytest.raises(KeyNotRotatable, match=why) as excinfo:
        APIKey.objects.rotate_key(api_key)
    assert excinfo.value.prefix == api_key.prefix
    assert APIKey.objects.count() == count


@pytest.mark.django_db
def test_negative_grace_is_refused() -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    with pytest.raises(ValueError, match="negative"):
        api_key.rotate(timedelta(seconds=-1))


@pytest.mark.django_db(transaction=True)
async def test_arotate() -> None:
    old, old_raw = await APIKey.objects.acreate_key(name="x")
    new, new_raw = await old.arotate(timedelta(minutes=10))
    assert await APIKey.objects.ais_valid(new_raw)
    assert await APIKey.objects.ais_valid(old_raw)
    again, _ = await APIKey.objects.arotate_key(new)
    assert again.rotated_from_id == new.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_yield_exactly_one_successor() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are meaningful on PostgreSQL (CI runs this with DATABASE_URL)")
    api_key, _ = APIKey.objects.create_key(name="x")
    barrier = threading.Barrier(4)
    results: list[object] = []

    def rotate() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(APIKey.objects.rotate_key(api_key, timedelta(hours=1))[0])
        except KeyNotRotatable as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    successes = [r for r in results if isinstance(r, APIKey)]
    refusals = [r for r in results if isinstance(r, KeyNotRotatable)]
    assert len(successes) == 1
    assert len(refusals) == 3
    assert APIKey.objects.filter(rotated_from=api_key).count() == 1


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def receiver(self, name: str) -> Any:
        def receive(sender: Any, signal: Any, **payload: Any) -> None:
            self.calls.append((name, {"sender": sender, **payload}))

        return receive


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    connected = []
    for name in (
        "api_key_created",
        "api_key_revoked",
        "api_key_rotated",
        "verification_succeeded",
        "verification_failed",
    ):
        receiver = recorder.receiver(name)
        getattr(signals, name).connect(receiver, weak=False)
        connected.append((name, receiver))
    yield recorder
    for name, receiver in connected:
        getattr(signals, name).disconnect(receiver)


@pytest.mark.django_db
def test_signals_for_create_rotate_revoke_and_verification(
    recorder: Recorder, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        api_key, raw = APIKey.objects.create_key(name="x")
    assert recorder.calls == [("api_key_created", {"sender": APIKey, "api_key": api_key})]
    recorder.calls.clear()

    Verifier(APIKey).verify(raw)
    Verifier(APIKey).verify("garbage")
    Verifier(APIKey).verify(None)
    assert recorder.calls == [
        (
            "verification_succeeded",
            {"sender": APIKey, "api_key": api_key, "prefix": api_key.prefix},
        ),
        ("verification_failed", {"sender": APIKey, "reason": Reason.MALFORMED, "prefix": None}),
    ]
    recorder.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        new, _ = api_key.rotate(timedelta(hours=1))
    names = [name for name, _ in recorder.calls]
    assert names == ["api_key_created", "api_key_rotated"]
    assert recorder.calls[1][1]["new_api_key"] == new
    recorder.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        new.revoke()
        new.revoke()  # idempotent: no second signal
    assert [name for name, _ in recorder.calls] == ["api_key_revoked"]
    recorder.calls.clear()
    Verifier(APIKey).verify(with_bad_checksum(raw))
    assert recorder.calls[0][1]["reason"] is Reason.MALFORMED


@pytest.mark.django_db
def test_revoking_through_save_sends_the_signal(
    recorder: Recorder, django_capture_on_commit_callbacks: Any
) -> None:
    api_key, _ = APIKey.objects.create_key(name="x")
    recorder.calls.clear()
    api_key.revoked = True
    with django_capture_on_commit_callbacks(execute=True):
        api_key.save()
    assert [name for name, _ in recorder.calls] == ["api_key_revoked"]


@pytest.mark.django_db(transaction=True)
async def test_async_verification_signals_do_not_run_sync_receivers_on_the_loop(
    recorder: Recorder,
) -> None:
    from asgiref.sync import sync_to_async

    api_key, raw = await APIKey.objects.acreate_key(name="x")
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def sync_receiver(sender: Any, **payload: Any) -> None:
        threads.append(threading.get_ident())
        APIKey.objects.filter(pk=payload["api_key"].pk).exists()  # ORM is allowed here

    signals.verification_succeeded.connect(sync_receiver, weak=False)
    try:
        outcome = await Verifier(APIKey).averify(raw)
    finally:
        signals.verification_succeeded.disconnect(sync_receiver)
    assert outcome.is_valid
    assert threads
    assert loop_thread not in threads
    assert (
        "verification_succeeded",
        {"sender": APIKey, "api_key": outcome.api_key, "prefix": api_key.prefix},
    ) in recorder.calls
    await sync_to_async(lambda: None)()


def _error_report(request_meta: dict[str, str], reporter_filter: Any = None) -> str:
    request = RequestFactory().get("/orders/", **request_meta)  # type: ignore[arg-type]
    if reporter_filter is not None:
        request.exception_reporter_filter = reporter_filter
    del request_meta  # only the request should carry the key into the report
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter = ExceptionReporter(request, *sys.exc_info())
        return reporter.get_traceback_text() + reporter.get_traceback_html()


@pytest.mark.django_db
def test_default_error_reports_mask_the_default_headers_or_the_check_says_so() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    meta = {"HTTP_AUTHORIZATION": f"Api-Key {raw}", "HTTP_X_API_KEY": raw}
    with override_settings(
        DEFAULT_EXCEPTION_REPORTER_FILTER="django.views.debug.SafeExceptionReporterFilter"
    ):
        warnings = check_error_reports_mask_key_headers()
    report = _error_report(meta, reporter_filter=SafeExceptionReporterFilter())
    assert "boom" in report
    if SafeExceptionReporterFilter.hidden_settings.search("HTTP_AUTHORIZATION"):
        assert raw not in report
        assert warnings == []
    else:  # Django 4.2 shows Authorization in reports: W001 asks for the library's filter
        assert [warning.id for warning in warnings] == ["async_api_key.W001"]
        assert "HTTP_AUTHORIZATION" in warnings[0].msg
        assert raw not in _error_report(meta, reporter_filter=APIKeyExceptionReporterFilter())


@pytest.mark.django_db
@override_settings(ASYNC_API_KEY={"HEADER": "X-Partner-Credential"})
def test_custom_header_needs_and_gets_the_library_filter() -> None:
    _, raw = APIKey.objects.create_key(name="x")
    with override_settings(
        DEFAULT_EXCEPTION_REPORTER_FILTER="django.views.debug.SafeExceptionReporterFilter"
    ):
        warnings = check_error_reports_mask_key_headers()
    assert [warning.id for warning in warnings] == ["async_api_key.W001"]
    assert "HTTP_X_PARTNER_CREDENTIAL" in warnings[0].msg
    with override_settings(
        DEFAULT_EXCEPTION_REPORTER_FILTER="async_api_key.reporting.APIKeyExceptionReporterFilter"
    ):
        assert check_error_reports_mask_key_headers() == []
    meta = {"HTTP_X_PARTNER_CREDENTIAL": raw}
    assert raw in _error_report(meta, reporter_filter=SafeExceptionReporterFilter())
    report = _error_report(
        {"HTTP_X_PARTNER_CREDENTIAL": raw}, reporter_filter=APIKeyExceptionReporterFilter()
    )
    assert raw not in report


def test_library_filter_masks_every_key_header() -> None:
    request = RequestFactory().get("/", HTTP_X_API_KEY="k1", HTTP_AUTHORIZATION="Api-Key k2")
    meta = APIKeyExceptionReporterFilter().get_safe_request_meta(request)
    assert meta["HTTP_X_API_KEY"] != "k1"
    assert meta["HTTP_AUTHORIZATION"] != "Api-Key k2"


@pytest.mark.django_db
@override_settings(API_KEY_CUSTOM_HEADER="HTTP_X_PARTNER_CREDENTIAL")
def test_library_filter_masks_the_upstream_custom_header() -> None:
    """Projects migrating with djangorestframework-api-key's setting keep their key masked."""
    _, raw = APIKey.objects.create_key(name="x")
    meta = {"HTTP_X_PARTNER_CREDENTIAL": raw}
    assert raw in _error_report(meta, reporter_filter=SafeExceptionReporterFilter())
    assert raw not in _error_report(meta, reporter_filter=APIKeyExceptionReporterFilter())


@pytest.mark.django_db(transaction=True)
def test_audit_signals_are_sent_only_for_changes_that_commit(recorder: Recorder) -> None:
    """A rolled-back creation, rotation or revocation never happened: no audit signal says
    it did (a dry run, a failed request under ATOMIC_REQUESTS, an import that fails)."""
    kept, _ = APIKey.objects.create_key(name="kept")
    recorder.calls.clear()

    def change_then_fail() -> None:
        with transaction.atomic():
            APIKey.objects.create_key(name="rolled back")
            kept.rotate()
            APIKey.objects.get(pk=kept.pk).revoke()
            assert recorder.calls == [], "nothing is sent before the commit"
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        change_then_fail()
    assert recorder.calls == []
    assert not APIKey.objects.get(pk=kept.pk).revoked

    with transaction.atomic():
        kept.revoke()
        assert recorder.calls == []
    assert [name for name, _ in recorder.calls] == ["api_key_revoked"]


@pytest.mark.django_db(transaction=True)
def test_importapikeys_dry_run_sends_no_audit_signal(recorder: Recorder) -> None:
    upstream, _ = UpstreamAPIKey.objects.create_key(name="partner")
    call_command("importapikeys", stdout=StringIO())
    UpstreamAPIKey.objects.filter(pk=upstream.pk).update(revoked=True)
    recorder.calls.clear()
    call_command("importapikeys", "--dry-run", stdout=StringIO())
    assert recorder.calls == []
    assert not APIKey.objects.get(prefix=upstream.prefix).revoked
    call_command("importapikeys", stdout=StringIO())
    assert [name for name, _ in recorder.calls] == ["api_key_revoked"]
