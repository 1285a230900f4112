"""Revocation across processes: every recorded change reaches every serving process within
``MAX_STALENESS`` of its commit.

Each configuration runs an ASGI server (uvicorn) and a WSGI server (gunicorn), both serving
Ninja and DRF endpoints, and a third process that changes keys (see
``tests/support/propagation_harness.py``). Before each change the key is hot in both servers; after
it, the test probes every endpoint until it refuses the key and measures how long after the
commit that was. Configurations: a SQLite file always; SQLite with Redis (which pushes
changes) when ``REDIS_URL`` is set; PostgreSQL (with its push channel), alone and with Redis
as the shared tier, when ``DATABASE_URL`` says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.propagation_harness import Deployment, configurations, deploy, pushes_changes

#: The bound the servers run with (the default ``MAX_STALENESS``).
BOUND = 1.0
#: Scheduling slack on a busy 2-core machine, added when asserting the bound: probes run
#: one after another over four endpoints, and each answer takes a few milliseconds.
MARGIN = 0.35
#: The bound asserted where a push channel carries changes (PostgreSQL, or Redis).
PUSHED_BOUND = 0.1

#: Every way of changing a key the library records, with the key model it applies to.
CHANGES = [
    ("revoke", "apikey"),
    ("save_revoked", "apikey"),
    ("save_expired", "apikey"),
    ("delete", "apikey"),
    ("queryset_update", "apikey"),
    ("queryset_delete", "apikey"),
    ("rotate", "apikey"),
    ("revoke_command", "apikey"),
    ("admin_action", "apikey"),
    ("leak_alert", "apikey"),
    ("cascade", "organization"),
]


@pytest.fixture(scope="module", params=configurations())
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp(str(request.param).replace("+", "_"))
    with deploy(str(request.param), workdir) as started:
        yield started


def _hot_key(deployment: Deployment, model: str = "apikey") -> tuple[str, str]:
    created = deployment.changer.do("create", model=model)
    deployment.warm(created["raw"], model)
    return created["prefix"], created["raw"]


def _assert_within_bound(deployment: Deployment, delays: dict[str, float]) -> None:
    bound = PUSHED_BOUND if pushes_changes(deployment.configuration) else BOUND
    late = {url: round(delay, 3) for url, delay in delays.items() if delay > bound + MARGIN}
    assert not late, f"refused later than {bound}s (+{MARGIN}s) after the commit: {late}"


@pytest.mark.parametrize(("change", "model"), CHANGES)
def test_every_process_refuses_a_changed_key_within_the_bound(
    deployment: Deployment, change: str, model: str
) -> None:
    prefix, raw = _hot_key(deployment, model)
    delays = deployment.refusal_delays(raw, change, model, prefix=prefix)
    _assert_within_bound(deployment, delays)


def test_a_revocation_carried_over_by_importapikeys_propagates(deployment: Deployment) -> None:
    """A key imported from djangorestframework-api-key, then revoked upstream: the next
    ``importapikeys`` run tightens (revokes) the imported key, in its own transaction."""
    created = deployment.changer.do("upstream_create")
    deployment.warm(created["raw"])
    delays = deployment.refusal_delays(created["raw"], "import_tighten", prefix=created["prefix"])
    _assert_within_bound(deployment, delays)


def test_a_change_in_raw_sql_waits_for_record_change_and_then_propagates(
    deployment: Deployment,
) -> None:
    prefix, raw = _hot_key(deployment)
    deployment.changer.do("raw_sql", prefix=prefix)  # revoked, but nobody says so
    # The servers keep serving their cached verification: the cache is really in play,
    # and only recorded changes propagate (CACHE_TTL bounds unrecorded ones).
    assert deployment.statuses_for(raw, BOUND * 2) == {200}
    _assert_within_bound(deployment, deployment.refusal_delays(raw, "record", prefix=prefix))


def test_a_revocation_is_refused_once_its_transaction_commits(deployment: Deployment) -> None:
    prefix, raw = _hot_key(deployment)
    deployment.changer.do("begin", prefix=prefix)  # revoked inside an open transaction
    # Meanwhile the servers read the committed row, still valid, and cache it again.
    assert deployment.statuses_for(raw, BOUND * 1.5) == {200}
    _assert_within_bound(deployment, deployment.refusal_delays(raw, "commit"))


def test_a_rolled_back_revocation_leaves_the_key_valid_everywhere(deployment: Deployment) -> None:
    prefix, raw = _hot_key(deployment)
    deployment.changer.do("begin", prefix=prefix)
    assert deployment.statuses_for(raw, BOUND * 0.5) == {200}
    deployment.changer.do("rollback")
    assert deployment.statuses_for(raw, BOUND * 2) == {200}
