"""A company a person disconnected on purpose stays as they left it: no run chases its customers or
asks its owner to reconnect, and a token refresh that Intuit refuses because of that disconnect does
not turn it into "needs reconnecting" (which would fail every scheduled run and sync). SQLite and
PostgreSQL, against the sandbox's Intuit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from qbo_collector import dispatch, errors
from qbo_collector.db import models
from qbo_collector.sync import auth, tokens
from tests.integration import test_dispatch_support as ds

env = pytest.fixture(ds.quiet_env, name="env")


def _company(env):  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        return s.scalar(select(models.Company.status)), s.scalar(select(models.Company.status_reason))


def test_a_run_of_a_company_disconnected_on_purpose_does_nothing_and_says_why(env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: ``qbo-collector run --realm R`` on it planned every row and emailed the owner
    "QuickBooks needs to be reconnected: Disconnected by a user"."""
    auth.disconnect(env.settings, env.db, env.vault, env.realm)
    summary = dispatch.run_company(env.settings, env.db, env.vault, env.realm, now=env.now_at(12))
    env.flush()
    assert env.sb.sendgrid.messages == [] and env.sb.twilio.messages == []
    with env.db.session() as s:
        assert s.scalar(select(func.count()).select_from(models.Outbox)) == 0
    assert [p for p in summary.problems if "The company is disconnected" in p and "connect it again" in p]
    assert _company(env)[0] == models.CompanyStatus.disconnected


def test_a_refresh_refused_because_of_a_disconnect_leaves_it_disconnected(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Found in review: a refresh running while a person disconnects gets invalid_grant (their revoke
    reached Intuit first); if the disconnect's write lands before the refresh records the refusal, the
    company was flipped to "needs reconnecting"."""
    manager = tokens.TokenManager(env.settings, env.db, env.vault, env.realm)
    record_refusal = tokens.TokenManager._mark_reconnect

    def disconnect_lands_first(self, failure):  # type: ignore[no-untyped-def]
        with env.db.session() as s:
            company = s.scalar(select(models.Company))
            s.delete(s.get(models.Token, company.id))
            company.status, company.status_reason = models.CompanyStatus.disconnected, "Disconnected by a user."
        return record_refusal(self, failure)

    monkeypatch.setattr(tokens.TokenManager, "_mark_reconnect", disconnect_lands_first)
    with env.db.session() as s:
        token = s.scalar(select(models.Token))
        refresh, access = env.vault.decrypt(token.refresh_token), env.vault.decrypt(token.access_token)
    auth.new_auth_client(env.settings).revoke(token=refresh)  # the person's revoke reached Intuit first
    with pytest.raises(errors.ReconnectNeeded):
        manager.refresh(rejected=access)
    assert _company(env) == (models.CompanyStatus.disconnected, "Disconnected by a user.")
    with env.db.session() as s:
        assert not s.scalars(select(models.Activity).where(models.Activity.kind == "reconnect_needed")).all()
