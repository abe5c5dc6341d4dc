"""Access tokens for one company, always valid, never lost.

Invariant 5: the newest refresh token is stored before it is used, and concurrent refreshes —
threads in one process (a lock per realm) or several processes (``BEGIN IMMEDIATE`` on
SQLite, ``SELECT … FOR UPDATE`` on PostgreSQL) — never lose it. A refresher that waited for
the lock re-reads the row and uses what the winner stored instead of refreshing again with a
refresh token that Intuit has already rotated.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from quickbooks import QuickBooks
from quickbooks import exceptions as qb_exceptions
from sqlalchemy import select

from qbo_collector import config, errors, logs
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sync import auth

log = logging.getLogger(__name__)
T = TypeVar("T")

_locks_guard = threading.Lock()
_realm_locks: dict[str, threading.Lock] = {}


def _realm_lock(realm_id: str) -> threading.Lock:
    with _locks_guard:
        return _realm_locks.setdefault(realm_id, threading.Lock())


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TokenManager:
    """Hands out a valid access token for one realm and refreshes it when needed."""

    def __init__(self, settings: config.Settings, db: Database, vault: Vault, realm_id: str, *,
                 now: Callable[[], datetime] = utcnow, margin: timedelta = timedelta(minutes=5)) -> None:
        self.settings, self.db, self.vault, self.realm_id = settings, db, vault, realm_id
        self.now, self.margin = now, margin
        self.refreshes = 0  # refreshes this manager performed itself (tests and benches read it)

    def _read(self) -> tuple[str, str, datetime, int]:
        with self.db.session() as s:
            company = s.scalar(select(models.Company).where(models.Company.realm_id == self.realm_id))
            if company is None:
                raise errors.InvalidInput(f"No company with realm {self.realm_id}.", field="realm")
            if company.status != models.CompanyStatus.connected or company.token is None:
                raise errors.ReconnectNeeded(f"“{company.name}” is not connected to QuickBooks "
                                             f"({company.status.value}); reconnect it on the settings page.")
            t = company.token
            return (logs.secret(self.vault.decrypt(t.access_token)), logs.secret(self.vault.decrypt(t.refresh_token)),
                    t.access_expires_at, t.version)

    def access_token(self) -> str:
        """A token valid for at least ``margin``; refreshes first if it is not."""
        access, _refresh, expires_at, _v = self._read()
        if expires_at - self.now() > self.margin:
            return access
        return self.refresh()

    def refresh(self, *, rejected: str | None = None) -> str:
        """Refresh unless someone else already did. ``rejected``: the access token QBO just refused (401)."""
        with _realm_lock(self.realm_id):
            with self.db.locked_session() as s:
                company = s.scalar(select(models.Company).where(models.Company.realm_id == self.realm_id)
                                   .with_for_update())
                if company is None or company.token is None or company.status != models.CompanyStatus.connected:
                    raise errors.ReconnectNeeded("The company is not connected to QuickBooks; reconnect it.")
                token = s.get(models.Token, company.id, with_for_update=True)
                assert token is not None
                access = logs.secret(self.vault.decrypt(token.access_token))
                if rejected is None and token.access_expires_at - self.now() > self.margin:
                    return access  # another thread or process refreshed while we waited for the lock
                if rejected is not None and access != rejected:
                    return access
                refresh_token = logs.secret(self.vault.decrypt(token.refresh_token))
                try:
                    client = auth.new_auth_client(self.settings, refresh_token=refresh_token, realm_id=self.realm_id)
                    with auth.map_intuit_errors("refresh the access token"):
                        client.refresh(refresh_token=refresh_token)
                except errors.ReconnectNeeded as exc:
                    failure: errors.ReconnectNeeded | None = exc
                else:
                    failure = None
                    now = self.now()
                    token.access_token = self.vault.encrypt(logs.secret(client.access_token))
                    token.refresh_token = self.vault.encrypt(logs.secret(client.refresh_token))
                    token.access_expires_at = now + timedelta(seconds=int(client.expires_in or 3600))
                    if client.x_refresh_token_expires_in:
                        token.refresh_expires_at = now + timedelta(seconds=int(client.x_refresh_token_expires_in))
                    hard = getattr(client, "x_refresh_token_hard_expires_in", None)
                    if hard:
                        token.refresh_hard_expires_at = now + timedelta(seconds=int(hard))
                    token.version += 1
                    token.updated_at = now
                    self.refreshes += 1
                    new_access = client.access_token
            # committed here: the rotated refresh token is on disk before anyone uses the new access token
        if failure is not None:
            self._mark_reconnect(failure)
            raise failure
        log.info("access token refreshed realm=%s", self.realm_id)
        return new_access

    def _mark_reconnect(self, failure: errors.ReconnectNeeded) -> None:
        """The grant was refused: the company needs a person to reconnect it — unless a person has just
        disconnected it (their revoke is why Intuit refused), which stays as they left it."""
        with self.db.session() as s:
            company = s.scalar(select(models.Company).where(models.Company.realm_id == self.realm_id)
                               .with_for_update())
            if company is None or company.status == models.CompanyStatus.disconnected:
                return
            company.status = models.CompanyStatus.needs_reconnect
            company.status_reason = failure.message
            s.add(models.Activity(company_id=company.id, kind="reconnect_needed",
                                  message="QuickBooks refused the stored grant (invalid_grant); a person must "
                                          "reconnect the company on the settings page."))
        log.warning("company needs reconnect realm=%s", self.realm_id)

    def client(self) -> QuickBooks:
        """A python-quickbooks client holding a currently valid access token."""
        access = self.access_token()
        _a, refresh, _e, _v = self._read()
        ac = auth.new_auth_client(self.settings, access_token=access, refresh_token=refresh, realm_id=self.realm_id)
        return auth.quickbooks_client(self.settings, ac, self.realm_id)

    def call(self, qb: QuickBooks, fn: Callable[[QuickBooks], T]) -> T:
        """Run ``fn(qb)``; on a 401, refresh once, put the new token on the session and try once more."""
        try:
            return fn(qb)
        except qb_exceptions.AuthorizationException as exc:
            if exc.error_code != 401:  # a 1–499 fault code in a body is not an expired token: no refresh
                raise
            rejected = qb.session.access_token
            log.info("access token rejected (401) realm=%s; refreshing", self.realm_id)
            qb.session.access_token = self.refresh(rejected=rejected)
            qb.session.token = {**(qb.session.token or {}), "access_token": qb.session.access_token}
            try:
                return fn(qb)
            except qb_exceptions.AuthorizationException:
                raise errors.ReconnectNeeded("QuickBooks refused a freshly refreshed token; reconnect the company.") from None
