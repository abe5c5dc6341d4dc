"""Resilience: injected 429 / 500 / timeouts / cut-off JSON / a rejected token; the mirror ends equal to the source."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from qbo_collector import errors
from qbo_collector.db import models
from qbo_collector.sync import client as sync_client
from qbo_collector.sync import run
from tests.integration import test_sync_support as support


@pytest.fixture
def company(fresh_sandbox, settings_factory, db, vault):  # type: ignore[no-untyped-def]
    realm = next(iter(fresh_sandbox.intuit.companies))
    settings = support.connect(settings_factory, db, vault, fresh_sandbox, realm)
    yield fresh_sandbox, realm, settings
    fresh_sandbox.intuit_faults.reset()


def _sync(settings, db, vault, realm, policy=support.FAST):  # type: ignore[no-untyped-def]
    return run.sync_company(settings, db, vault, realm, policy=policy, limiter=support.UNLIMITED)


def test_full_sync_recovers_from_429_500_timeout_and_malformed_json(company, db, vault):
    sb, realm, settings = company
    faults = sb.intuit_faults
    faults.timeout_seconds = 1.6          # the client gives up reading after 1 s
    faults.force_429, faults.force_500, faults.force_timeout, faults.force_malformed = 2, 2, 1, 2
    summary = _sync(settings, db, vault, realm)
    assert summary.ok, summary.errors
    assert summary.retries == 7
    assert sb.log.counts().get("intuit:query", 0) >= summary.api_calls - 1  # the timed-out call may be unlogged yet
    support.assert_mirror_equals_source(db, sb, realm)


def test_incremental_sync_under_random_faults_ends_equal_to_the_source(company, db, vault):
    sb, realm, settings = company
    assert _sync(settings, db, vault, realm).ok
    ids = [r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0]
    sb.intuit.pay_invoice(realm, ids[0])
    sb.intuit.void_invoice(realm, ids[1])
    sb.intuit.delete(realm, "Invoice", ids[2])
    faults = sb.intuit_faults
    faults.throttle_rate, faults.error_rate, faults.timeout_rate, faults.timeout_seconds = 0.3, 0.3, 0.1, 1.3
    policy = sync_client.RetryPolicy(attempts=30, initial_wait=0.01, max_wait=0.02, max_retry_after=0.02,
                                     connect_timeout=2.0, read_timeout=1.0)
    for _ in range(3):
        summary = _sync(settings, db, vault, realm, policy=policy)
        assert summary.ok, summary.errors
    faults.reset()
    support.assert_mirror_equals_source(db, sb, realm)


def test_retries_are_bounded_and_the_failure_is_recorded(company, db, vault):
    sb, realm, settings = company
    sb.intuit_faults.force_500 = 100
    policy = sync_client.RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02)
    summary = _sync(settings, db, vault, realm, policy=policy)
    assert not summary.ok and "after 3 tries" in summary.errors[0]
    sb.intuit_faults.reset()
    with db.session() as s:
        kinds = [a.kind for a in s.scalars(select(models.Activity).order_by(models.Activity.id))]
    assert kinds[-1] == "sync.failed"
    resumed = _sync(settings, db, vault, realm)    # nothing lost: the next sync completes the mirror
    assert resumed.ok
    support.assert_mirror_equals_source(db, sb, realm)


def test_a_rejected_access_token_is_refreshed_once_and_the_call_retried(company, db, vault):
    sb, realm, settings = company
    with sb.oauth.state.lock:
        sb.oauth.state.access.clear()     # Intuit forgot our (unexpired) access token: 401
    summary = _sync(settings, db, vault, realm)
    assert summary.ok, summary.errors
    support.assert_mirror_equals_source(db, sb, realm)
    with db.session() as s:
        token = s.scalar(select(models.Token))
        assert token.version == 2         # refreshed exactly once


def test_a_revoked_grant_needs_a_reconnect(company, db, vault):
    sb, realm, settings = company
    with sb.oauth.state.lock:
        for record in list(sb.oauth.state.access.values()):
            record.grant.revoked = True
        sb.oauth.state.access.clear()
    with pytest.raises(errors.ReconnectNeeded):
        _sync(settings, db, vault, realm)
    with db.session() as s:
        company = s.scalar(select(models.Company))
        assert company.status == models.CompanyStatus.needs_reconnect and company.last_sync_at is None
        last = s.scalars(select(models.Activity).order_by(models.Activity.id.desc())).first()
        assert last.kind == "sync.failed"
