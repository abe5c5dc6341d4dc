"""Syncing a company: which streams need a full read, which a CDC read; and debounced requests.

    sync_company(settings, db, vault, realm_id, *, full=False, progress=None) -> SyncSummary
    sync_all(settings, db, vault, *, full=False, progress=None) -> list[SyncSummary]
    SyncRequests(settings, db, vault).request(realm_id)   # webhooks: a burst is one sync
    catch_up(qbo, db, realm_id, company_id, selected) -> bool   # one CDC call for a few streams

A stream is read in full when asked (``full=True``), when it was never read, when a full
read of it was interrupted (it resumes), or when its CDC cursor is older than QBO's 30 days.
Every other stream is read through one CDC call. The company's ``last_sync_at`` and an
Activity row ``sync`` (counts, API calls used, duration) record each sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from qbo_collector import config, errors, leases
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sync import cdc, full, mirror, streams
from qbo_collector.sync import client as client_mod
from qbo_collector.sync import limiter as limiter_mod
from qbo_collector.sync.summary import SyncSummary  # re-exported: ``run.SyncSummary``

log = logging.getLogger(__name__)

Progress = full.Progress
__all__ = ["Progress", "SyncRequests", "SyncSummary", "catch_up", "plan", "sync_all", "sync_company"]

LEASE_TTL = timedelta(minutes=20)  # as the scheduler's sync work (renewed while the sync goes on)
LEASE_WAIT = 60.0  # seconds a sync from outside the scheduler waits for another process's work on the company

_guard = threading.Lock()
_running: dict[str, threading.Lock] = {}


def _realm_lock(realm_id: str) -> threading.Lock:
    with _guard:
        return _running.setdefault(realm_id, threading.Lock())


def plan(cursors: dict[str, models.SyncCursor], *, full_requested: bool, now: datetime
         ) -> tuple[list[tuple[streams.Stream, bool]], list[streams.Stream]]:
    """Pure: (streams to read in full with ``fresh`` flags, streams to read through CDC)."""
    full_reads: list[tuple[streams.Stream, bool]] = []
    incremental: list[streams.Stream] = []
    for stream in streams.STREAMS:
        cur = cursors.get(stream.entity)
        interrupted = cur is not None and cur.full_sync_started_at is not None and bool(cur.full_sync_position)
        if interrupted:
            full_reads.append((stream, False))
        elif full_requested or cur is None or cur.full_sync_at is None:
            full_reads.append((stream, True))
        elif stream.cdc and cdc.too_old(cur.changed_since, now):
            full_reads.append((stream, True))
        elif stream.cdc:
            incremental.append(stream)
    return full_reads, incremental


def catch_up(qbo: client_mod.QboClient, db: Database, realm_id: str, company_id: int,
             selected: tuple[streams.Stream, ...], *, now: Callable[[], datetime] | None = None) -> bool:
    """Apply the changes of ``selected`` since their cursors, in one CDC call, as an incremental sync
    would (under the same per-realm lock, moving the same cursors). The dispatcher calls it right
    before planning, for what its invoice query cannot see: payments, credit memos, customers made inactive.
    Rows the mirror already holds at the same SyncToken are left alone (``cdc.sync_streams(changed_only=True)``).

    False, and nothing read, when one of them is not synced incrementally yet (never read in full,
    a full read interrupted, or a cursor past CDC's 30 days): the next sync reads it in full. False
    too when more changes than one CDC answer holds had to be read in full. Raises ``ReconnectNeeded``,
    ``TransientFailure`` and ``PermanentFailure`` as the client does."""
    clock = now or _utcnow
    with _realm_lock(realm_id):
        with db.session() as s:
            cursors = mirror.cursors(s, company_id)
        _full, incremental = plan(cursors, full_requested=False, now=clock())
        if not selected or any(stream not in incremental for stream in selected):
            return False
        since = min(c.changed_since for c in (cursors[s.entity] for s in selected) if c.changed_since is not None)
        try:
            fallback = cdc.sync_streams(qbo, db, company_id, list(selected), since,
                                        summary=SyncSummary(realm=realm_id), now=clock, changed_only=True)
        except cdc.WindowTooOld as exc:
            log.info("changes of %s not read for realm=%s: %s", "/".join(s.entity for s in selected), realm_id,
                     exc.message)
            return False
    return not fallback


def _mode(full_reads: list[tuple[streams.Stream, bool]], incremental: list[streams.Stream]) -> str:
    if not full_reads:
        return "incremental" if incremental else "none"
    if not incremental:
        return "full" if all(fresh for _, fresh in full_reads) else "resumed"
    return "mixed"


def sync_company(settings: config.Settings, db: Database, vault: Vault, realm_id: str, *, full: bool = False,
                 progress: Progress | None = None, policy: client_mod.RetryPolicy | None = None,
                 limiter: limiter_mod.RateLimiter | None = None, overlap: timedelta | None = None,
                 now: Callable[[], datetime] | None = None, wait: float = LEASE_WAIT) -> SyncSummary:
    """Bring the mirror of one company up to date. Raises ``ReconnectNeeded``; other failures are in the summary.

    ``overlap``: read changes from this long before the cursor (default 30 s). Intuit calls
    webhooks a hint, not the truth; a daily catch-up with a day's overlap re-reads anything a
    lost notification or a lagging Intuit server could have hidden (still one call for ≤ 1000).

    The company's ``sync`` lease is held meanwhile (the scheduler's jobs already hold it): a sync from
    a webhook, "Sync now" or the command line waits up to ``wait`` seconds for another process's sync,
    catch-up or daily run of the company to finish, then raises ``TransientFailure`` (code
    ``leases.BUSY``) having read nothing.
    """
    clock = now or _utcnow
    started = time.monotonic()
    summary = SyncSummary(realm=realm_id)
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            raise errors.InvalidInput(f"No company with realm {realm_id} is connected.", field="realm")
        company_id = company.id
    qbo = client_mod.QboClient(settings, db, vault, realm_id, policy=policy, limiter=limiter)
    with leases.exclusive(db, company_id, "sync", ttl=LEASE_TTL, now=clock, wait=wait), _realm_lock(realm_id):
        with db.session() as s:
            cursors = mirror.cursors(s, company_id)
        full_reads, incremental = plan(cursors, full_requested=full, now=clock())
        summary.mode = _mode(full_reads, incremental)
        try:
            _run(qbo, db, company_id, full_reads, incremental, cursors, summary=summary, progress=progress,
                 now=clock, overlap=overlap or cdc.OVERLAP)
        except errors.QboCollectorError as exc:   # ReconnectNeeded, InvalidInput: recorded, then raised
            summary.errors.append(exc.message)
            raise
        finally:
            summary.api_calls = qbo.api_calls
            summary.retries = qbo.retries
            summary.duration = time.monotonic() - started
            _record(db, company_id, summary, clock())
    log.info(summary.line())
    return summary


def _run(qbo: client_mod.QboClient, db: Database, company_id: int,
         full_reads: list[tuple[streams.Stream, bool]], incremental: list[streams.Stream],
         cursors: dict[str, models.SyncCursor], *, summary: SyncSummary, progress: Progress | None,
         now: Callable[[], datetime], overlap: timedelta) -> None:
    def read_full(stream: streams.Stream, fresh: bool) -> None:
        try:
            full.sync_stream(qbo, db, company_id, stream, summary=summary, fresh=fresh, progress=progress, now=now)
        except (errors.TransientFailure, errors.PermanentFailure) as exc:
            log.warning("full sync of %s company=%s stopped: %s", stream.entity, company_id, exc.message)
            summary.errors.append(f"{stream.entity}: {exc.message}")

    for stream, fresh in full_reads:
        read_full(stream, fresh)
    if not incremental:
        return
    since = min(c.changed_since for c in (cursors[s.entity] for s in incremental) if c.changed_since is not None)
    try:
        fallback = cdc.sync_streams(qbo, db, company_id, incremental, since, summary=summary, progress=progress,
                                    now=now, overlap=overlap)
    except cdc.WindowTooOld as exc:
        log.warning("CDC refused company=%s (%s); reading in full", company_id, exc.message)
        fallback = incremental
    except (errors.TransientFailure, errors.PermanentFailure) as exc:
        log.warning("incremental sync company=%s stopped: %s", company_id, exc.message)
        summary.errors.append(f"changes: {exc.message}")
        return
    if fallback:
        summary.mode = "mixed"
    for stream in fallback:
        read_full(stream, True)
    if any(stream.table in mirror.BALANCE_TABLES for stream in fallback):
        # The customers were read through CDC, which does not report QBO's changes to their
        # balance: derive the balances from the transactions just read, as a CDC read does.
        with db.session() as s:
            mirror.recompute_customer_balances(s, company_id, mirror.customer_ids(s, company_id))


def _record(db: Database, company_id: int, summary: SyncSummary, at: datetime) -> None:
    with db.session() as s:
        company = s.get(models.Company, company_id)
        if company is None:
            return
        if summary.ok:
            company.last_sync_at = at
        s.add(models.Activity(company_id=company_id, kind="sync" if summary.ok else "sync.failed",
                              message=summary.line(),
                              data={"mode": summary.mode, "api_calls": summary.api_calls,
                                    "retries": summary.retries, "duration": round(summary.duration, 3),
                                    **summary.counts(), "errors": summary.errors}))


def _utcnow() -> datetime:
    return full.utcnow()



def sync_all(settings: config.Settings, db: Database, vault: Vault, *, full: bool = False,
             progress: Progress | None = None, policy: client_mod.RetryPolicy | None = None) -> list[SyncSummary]:
    """Sync every connected company, one after the other; one company's failure does not stop the others."""
    with db.session() as s:
        realms = list(s.scalars(select(models.Company.realm_id)
                                .where(models.Company.status == models.CompanyStatus.connected)
                                .order_by(models.Company.id)))
    results: list[SyncSummary] = []
    for realm in realms:
        try:
            results.append(sync_company(settings, db, vault, realm, full=full, progress=progress, policy=policy))
        except errors.QboCollectorError as exc:
            log.warning("sync of realm %s failed: %s", realm, exc.message)
            failed = SyncSummary(realm=realm, mode="failed")
            failed.errors.append(exc.message)
            results.append(failed)
    return results


class SyncRequests:
    """Debounced sync requests (webhooks): requests for a realm within ``delay`` seconds are one sync.

    ``request()`` returns at once; a daemon thread runs the syncs, one realm at a time. A
    request arriving while that realm is syncing schedules one more sync after it (the
    change may have landed after the running sync's CDC call). ``max_delay`` bounds how long
    a steady stream of notifications can postpone a sync.
    """

    def __init__(self, settings: config.Settings, db: Database, vault: Vault, *, delay: float = 5.0,
                 max_delay: float = 30.0, sync: Callable[[str], object] | None = None) -> None:
        self.settings, self.db, self.vault = settings, db, vault
        self.delay, self.max_delay = delay, max_delay
        self._sync = sync or self._sync_and_refresh
        self._due: dict[str, tuple[float, float]] = {}   # realm → (first request, last request)
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.syncs_run = 0

    def _sync_and_refresh(self, realm: str) -> object:
        from qbo_collector import clock as app_clock
        from qbo_collector import scheduler

        # no waiting here: a busy lease sends the request back to the queue (tried again after ``delay``),
        # so this one thread keeps serving the other companies' webhooks meanwhile
        summary = sync_company(self.settings, self.db, self.vault, realm, wait=0)
        scheduler.refresh_figures(self.db, realm, app_clock.now())
        return summary

    def request(self, realm_id: str) -> None:
        now = time.monotonic()
        with self._cond:
            first, _last = self._due.get(realm_id, (now, now))
            self._due[realm_id] = (first, now)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="qbo-sync-requests", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self) -> bool:
        with self._cond:
            return bool(self._due or self._busy)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is pending or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._due or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _next(self) -> tuple[str | None, float]:
        now = time.monotonic()
        best: tuple[str | None, float] = (None, 3600.0)
        for realm, (first, last) in self._due.items():
            if realm in self._busy:
                continue
            at = min(first + self.max_delay, last + self.delay)
            if at <= now:
                return realm, 0.0
            best = (best[0], min(best[1], at - now))
        return None, best[1]

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped:
                        return
                    realm, wait = self._next()
                    if realm is not None:
                        del self._due[realm]
                        self._busy.add(realm)
                        break
                    self._cond.wait(wait)
            try:
                self._sync(realm)
                self.syncs_run += 1
            except errors.TransientFailure as exc:
                if exc.context.get("code") == leases.BUSY:  # a worker syncs it now; the change may have come
                    log.info("requested sync of realm %s waits: %s", realm, exc.message)  # after its read
                    self.request(realm)
                else:
                    log.warning("requested sync of realm %s failed: %s", realm, exc.message)
            except errors.QboCollectorError as exc:  # e.g. ReconnectNeeded: already recorded on the company
                log.warning("requested sync of realm %s failed: %s", realm, exc.message)
            except Exception:  # a failing sync must not stop the thread
                log.exception("requested sync of realm %s failed", realm)
            finally:
                with self._cond:
                    self._busy.discard(realm)
                    self._cond.notify_all()
