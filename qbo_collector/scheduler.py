"""Running by itself: APScheduler 3.11 wiring around one idempotent ``tick``.

Every process that schedules (``serve`` with its embedded scheduler, each ``worker``) runs the
same tick once a minute. The tick looks at every connected company *in the company's own time
zone* and claims each unit of work through a lease (``leases.claim``), so the work is done
once whatever the number of processes:

- ``sync``     incremental sync (CDC) when the last one is older than 15 minutes;
- ``run``      the daily run, once per local date, from the company's send hour on. A machine
               that was off for days runs once on restart; the rules send only the newest
               due step, never a burst (catch-up without bursts). Rows due later than the run
               (the policy's send window after the send hour, a customer in another time zone,
               texts waiting for daytime where their recipient is) bring it back at the moment
               the earliest may go (``Again``), when that comes before the next day's run;
- ``catchup``  nightly, from 02:00 local: a CDC pass with a day of overlap, because webhooks
               are a hint, not the truth;
- ``digest``   weekly, Mondays from the send hour: the owner's digest email;
- every tick:  refresh tokens within 15 minutes of expiry, flag refresh tokens near their
               5-year cap, settle ``unknown`` outbox rows from provider events, heartbeat — at
               its start, renewed every minute while it works (after each company, and while a
               unit of work runs, with its leases), so ``/healthz`` never takes a long tick
               (30 minutes for 1,000 companies) for a dead scheduler.

Time comes from ``clock.now`` (the demo can move it). APScheduler's own store is in memory —
one scheduler per process, never a shared job store (REFERENCE.md) — and holds only the tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from qbo_collector import clock, config, errors, leases, logs
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database

log = logging.getLogger(__name__)

SYNC_EVERY = timedelta(minutes=15)
TOKEN_MARGIN = timedelta(minutes=15)
HARD_EXPIRY_WARNING = timedelta(days=30)
CATCHUP_HOUR = 2
DEFAULT_SEND_HOUR = 9
RETRY_AFTER = timedelta(minutes=5)  # a transient failure is retried after this, the same day
# Work a second attempt would visibly repeat (the digest is one email with no outbox row): it is
# marked done *before* it runs, by compare-and-set, so two processes whose clocks disagree about
# a lease's expiry still send it once. Undone only when the failure proves nothing was sent.
AT_MOST_ONCE = frozenset({"digest"})
RENEW_EVERY = timedelta(minutes=1)  # a unit of work renews its leases this often while it runs
TTL = {"sync": timedelta(minutes=20), "run": timedelta(minutes=30), "catchup": timedelta(minutes=30),
       "digest": timedelta(minutes=10)}


def send_hour(company: models.Company) -> int:
    value = (company.settings or {}).get("send_hour", DEFAULT_SEND_HOUR)
    return value if isinstance(value, int) and 0 <= value <= 23 else DEFAULT_SEND_HOUR


def local_now(company: models.Company, now: datetime) -> datetime:
    return now.astimezone(_zone(company))


def _zone(company: models.Company) -> ZoneInfo:
    try:
        return ZoneInfo(company.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r realm=%s; using UTC", company.timezone, company.realm_id)
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Due:
    """What is due for a company at a moment: pure, from its settings and local time."""

    kind: str
    once_for: date | None
    not_done_since: datetime | None = None


def next_run(company: models.Company, now: datetime) -> datetime:
    """When the next local date's daily run becomes due (its send hour): a row due from then on is its."""
    return run_start(company, local_now(company, now).date() + timedelta(days=1))


def run_start(company: models.Company, day: date) -> datetime:
    """When the daily run of the company's local ``day`` becomes due (its send hour), in UTC."""
    return datetime(day.year, day.month, day.day, send_hour(company), tzinfo=_zone(company)).astimezone(timezone.utc)


def carried_at(company: models.Company, due_at: datetime, now: datetime) -> datetime:
    """When a run carries out a row due at ``due_at``, as seen at ``now``: the day's run begins at the
    send hour and comes back at the earliest row due later (``Again``), so at ``due_at``, or when that
    day's run begins if later; a row already due goes in the next run (``now``, or the day's beginning)."""
    at = max(due_at, now)
    return max(at, run_start(company, local_now(company, at).date()))


def due_work(company: models.Company, now: datetime) -> list[Due]:
    local = local_now(company, now)
    today = local.date()
    due: list[Due] = []
    if company.last_sync_at is None or now - company.last_sync_at >= SYNC_EVERY:
        due.append(Due("sync", None, not_done_since=now - SYNC_EVERY))
    if local.hour >= CATCHUP_HOUR and company.last_sync_at is not None:  # nothing to catch up before a first sync
        due.append(Due("catchup", today))
    if local.hour >= send_hour(company) and company.last_sync_at is not None:  # never plan on an empty mirror
        due.append(Due("run", today))
        if local.weekday() == 0:
            due.append(Due("digest", today))
    return due


Job = Callable[[str, datetime], Any]


@dataclass(frozen=True)
class Again:
    """A job's answer when the day's work is done except what may only happen from ``at`` (rows due
    later: a send window after the send hour, texts waiting for daytime where their recipient is):
    the work is not marked done for the day, and nobody claims it again before ``at``. Without it, a
    text to someone whose night always covers the send hour (a Paris company's 9:00 is 3:00 in New
    York) would wait for ever, and an email due at 9:00 in New York would go at the next day's run."""

    at: datetime


@dataclass
class Jobs:
    """What the tick calls for each kind of work, per realm. Tests swap in recorders."""

    sync: Job
    run: Job
    catchup: Job
    digest: Job


def refresh_figures(db: Database, realm: str, now: datetime) -> None:
    """After the mirror may have changed: the dashboard's figures for the company's local date, in
    the background, so the page reads one row (a failure here never fails the sync or the run)."""
    from qbo_collector import dashboard

    try:
        with db.reading() as s:
            company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
            on = local_now(company, now).date() if company is not None else None
        if on is not None:
            dashboard.refresh(db, realm, on, now=now)
    except Exception:
        log.exception("refreshing the dashboard figures failed realm=%s; the page computes them itself", realm)


def default_jobs(settings: config.Settings, db: Database, vault: Vault) -> Jobs:
    def sync(realm: str, now: datetime) -> Any:
        from qbo_collector.sync import run as sync_run

        result = sync_run.sync_company(settings, db, vault, realm)
        refresh_figures(db, realm, now)
        return result

    def catchup(realm: str, now: datetime) -> Any:
        from qbo_collector.sync import run as sync_run

        kwargs: dict[str, Any] = {}
        if "overlap" in sync_run.sync_company.__code__.co_varnames:
            kwargs["overlap"] = timedelta(days=1)
        result = sync_run.sync_company(settings, db, vault, realm, **kwargs)
        refresh_figures(db, realm, now)
        return result

    def run(realm: str, now: datetime) -> Any:
        from qbo_collector import dispatch

        summary = dispatch.run_company(settings, db, vault, realm, now=now)
        refresh_figures(db, realm, now)  # the run's fresh read of balances rewrote invoices
        contended = bool(summary.errors) and summary.errors[0].startswith("Another worker")
        if summary.deferred or contended:
            # nothing was lost, but the day's work is not finished: try again in a few minutes
            raise errors.TransientFailure(f"daily run incomplete ({summary.deferred} row(s) deferred): "
                                          f"{summary.errors[0] if summary.errors else 'QuickBooks unavailable'}")
        if summary.wake_at is not None:
            with db.reading() as s:
                company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
                until = next_run(company, now) if company is not None else None
            # a row due from the next run's moment on is that run's: a hold past it would delay that run
            if until is not None and summary.wake_at < until:
                return Again(summary.wake_at)
        return summary

    def digest(realm: str, now: datetime) -> Any:
        return send_digest(settings, db, realm, now)

    return Jobs(sync=sync, run=run, catchup=catchup, digest=digest)


def send_digest(settings: config.Settings, db: Database, realm: str, now: datetime) -> bool:
    """Email the owner the week's figures; skipped (logged) when no owner address or SendGrid."""
    from qbo_collector import digest
    from qbo_collector.channels import base, email

    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        owner = (company.settings or {}).get("owner_email") if company else None
        sender = (company.settings or {}).get("sender_name") if company else None
        today = local_now(company, now).date() if company else now.date()
    if not owner or not settings.sendgrid_api_key or not settings.sendgrid_from_email:
        log.info("weekly digest skipped realm=%s: no owner_email or SendGrid settings", realm)
        return False
    subject, text, html = digest.build(db, realm, today, link=f"{settings.public_url}/companies/{realm}/dashboard")
    channel = email.SendGridEmail(settings.sendgrid_api_key, settings.sendgrid_from_email,
                                  host=settings.sendgrid_api_host)
    channel.send(base.OutboundMessage(outbox_id=f"digest-{realm}-{today.isoformat()}", realm=realm, to=owner,
                                      subject=subject, text=text, html=html, reply_to=None,
                                      from_name=sender or "qbo-collector", language="en"))
    return True


@dataclass
class TickReport:
    done: list[tuple[str, str]] = field(default_factory=list)     # (realm, kind)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: int = 0


class Ticker:
    """One process's view of the work. ``tick()`` is safe to call from any number of processes."""

    def __init__(self, settings: config.Settings, db: Database, vault: Vault, *, owner: str | None = None,
                 jobs: Jobs | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.settings, self.db, self.vault = settings, db, vault
        self.owner = owner or leases.default_owner()
        self.jobs = jobs or default_jobs(settings, db, vault)
        # ``clock.now`` looked up at each tick, not bound once (a default of ``clock.now`` was bound when this
        # module was first imported: the demo's clock, moved since, or a test's frozen one, stayed with it)
        self.now = now or (lambda: clock.now())
        self.renew_every = RENEW_EVERY.total_seconds()
        self.stopping = threading.Event()
        self._beaten = float("-inf")  # time.monotonic() of the last heartbeat

    def tick(self) -> TickReport:
        report = TickReport()
        now = self.now()
        self.heartbeat(now)
        with self.db.session() as s:
            companies = list(s.scalars(select(models.Company).where(
                models.Company.status == models.CompanyStatus.connected).order_by(models.Company.id)))
        for company in companies:
            for due in due_work(company, now):
                if self.stopping.is_set():
                    return report
                self._do(company, due, now, report)
            self.beat()
        self.sweep_tokens(now)
        self.reconcile()
        return report

    def _do(self, company: models.Company, due: Due, now: datetime, report: TickReport) -> None:
        if not leases.claim(self.db, company.id, due.kind, self.owner, now=now, ttl=TTL[due.kind],
                            once_for=due.once_for, not_done_since=due.not_done_since):
            report.skipped += 1
            return
        # A catch-up is a sync, and a daily run must not plan on a mirror being rewritten: both also
        # hold the company's sync lease, so none of the three overlap for one company.
        also = "sync" if due.kind in ("catchup", "run") else None
        if also and not leases.claim(self.db, company.id, also, self.owner, now=now, ttl=TTL[also]):
            leases.release(self.db, company.id, due.kind, self.owner, now=now, error="sync in progress elsewhere")
            report.skipped += 1
            return
        job: Job = getattr(self.jobs, due.kind)
        held = {due.kind: TTL[due.kind], **({also: TTL[also]} if also else {})}
        try:
            with (leases.kept(self.db, company.id, held, self.owner, now=self.now, every=self.renew_every,
                              beat=self.beat),
                  leases.holding(company.id, held)):  # the job's own sync goes ahead under these
                self._run(company, due, now, report, job)
        finally:
            if also:
                leases.release_hold(self.db, company.id, also, self.owner)

    def _run(self, company: models.Company, due: Due, now: datetime, report: TickReport, job: Job) -> None:
        once = due.kind in AT_MOST_ONCE and due.once_for is not None
        if once and not leases.mark_done(self.db, company.id, due.kind, self.owner, once_for=due.once_for):
            leases.release_hold(self.db, company.id, due.kind, self.owner)
            report.skipped += 1
            return
        with logs.context(realm=company.realm_id, work=due.kind):
            try:
                result = job(company.realm_id, now)
            except Exception as exc:
                if once and self._nothing_sent(exc):
                    leases.unmark_done(self.db, company.id, due.kind, self.owner, once_for=due.once_for)
                elif once:
                    log.warning("%s realm=%s may have gone out (%s): not retried", due.kind, company.realm_id,
                                type(exc).__name__)
                self._failed(company, due, now, report, exc)
                return
        if isinstance(result, Again) and result.at > now:
            if once:
                leases.unmark_done(self.db, company.id, due.kind, self.owner, once_for=due.once_for)
            # claimable from ``at`` itself on: a claim takes a lease whose ``lease_until < now``
            leases.release(self.db, company.id, due.kind, self.owner, now=now,
                           hold_for=result.at - now - timedelta(microseconds=1))
        else:
            leases.release(self.db, company.id, due.kind, self.owner, now=now, done_on=due.once_for)
        report.done.append((company.realm_id, due.kind))

    @staticmethod
    def _nothing_sent(exc: Exception) -> bool:
        from qbo_collector.channels.base import OutcomeUnknown

        return not isinstance(exc, (OutcomeUnknown, errors.PermanentFailure))

    def _failed(self, company: models.Company, due: Due, now: datetime, report: TickReport, exc: Exception) -> None:
        if isinstance(exc, errors.TransientFailure):
            leases.release(self.db, company.id, due.kind, self.owner, now=now, error=exc.message, hold_for=RETRY_AFTER)
            report.failed.append((company.realm_id, due.kind, exc.message))
        elif isinstance(exc, errors.ReconnectNeeded):
            # the token manager marked the company; the work is "done" for today, nothing to retry
            leases.release(self.db, company.id, due.kind, self.owner, now=now, done_on=due.once_for)
            report.failed.append((company.realm_id, due.kind, exc.message))
        else:  # one company's failure never stops the others (invariant 8)
            log.error("%s failed realm=%s", due.kind, company.realm_id, exc_info=exc)
            leases.release(self.db, company.id, due.kind, self.owner, now=now,
                           error=f"{type(exc).__name__}: {exc}"[:500])
            report.failed.append((company.realm_id, due.kind, str(exc)))

    def heartbeat(self, now: datetime) -> None:
        with self.db.session() as s:
            row = s.get(models.Worker, self.owner)
            if row is None:
                s.add(models.Worker(name=self.owner, started_at=now, seen_at=now))
            else:
                row.seen_at, row.stopped_at = now, None
        self._beaten = time.monotonic()

    def beat(self) -> None:
        """Renew the heartbeat while a tick works, at most every ``renew_every`` (a write per company
        would weigh on SQLite); never once stopping, which marks the heartbeat stopped."""
        if self.stopping.is_set() or time.monotonic() - self._beaten < self.renew_every / 2:
            return
        try:
            self.heartbeat(self.now())
        except Exception:  # the database is away for a moment: the work goes on, the next beat may succeed
            log.exception("renewing the scheduler heartbeat failed owner=%s", self.owner)

    def sweep_tokens(self, now: datetime) -> None:
        from qbo_collector.sync import tokens

        with self.db.session() as s:
            rows = s.execute(select(models.Company.realm_id, models.Company.id, models.Token.access_expires_at,
                                    models.Token.refresh_hard_expires_at)
                             .join(models.Token, models.Token.company_id == models.Company.id)
                             .where(models.Company.status == models.CompanyStatus.connected)).all()
        for realm, company_id, access_expires, hard_expires in rows:
            if access_expires - now < TOKEN_MARGIN:
                try:
                    tokens.TokenManager(self.settings, self.db, self.vault, realm, margin=TOKEN_MARGIN).access_token()
                except errors.QboCollectorError as exc:
                    log.warning("token refresh failed realm=%s: %s", realm, exc.message)
            if hard_expires is not None and hard_expires - now < HARD_EXPIRY_WARNING:
                self._flag_hard_expiry(company_id, realm, hard_expires, now)

    def _flag_hard_expiry(self, company_id: int, realm: str, hard_expires: datetime, now: datetime) -> None:
        with self.db.session() as s:
            recent = s.scalar(select(models.Activity.id).where(
                models.Activity.company_id == company_id, models.Activity.kind == "refresh_token_expiring",
                models.Activity.at > now - timedelta(days=7)))
            if recent is None:
                s.add(models.Activity(company_id=company_id, kind="refresh_token_expiring", at=now,
                                      message=f"The QuickBooks authorization reaches Intuit's 5-year limit on "
                                              f"{hard_expires.date().isoformat()}: reconnect the company before then.",
                                      data={"hard_expires_at": hard_expires.isoformat()}))
                log.warning("refresh token near its hard expiry realm=%s on %s", realm, hard_expires.date())

    def reconcile(self) -> None:
        try:
            from qbo_collector import dispatch
        except ImportError:
            return
        if hasattr(dispatch, "reconcile_unknown"):
            try:
                dispatch.reconcile_unknown(self.db)
            except Exception:
                log.exception("reconciling unknown outbox rows failed")

    def shutdown(self) -> None:
        """Stop between units of work, free our leases, mark the heartbeat stopped."""
        self.stopping.set()
        freed = leases.release_all(self.db, self.owner)
        with self.db.session() as s:
            row = s.get(models.Worker, self.owner)
            if row is not None:
                row.stopped_at = self.now()
        log.info("scheduler stopped owner=%s leases_released=%d", self.owner, freed)


def start_background(ticker: Ticker, *, every_seconds: int = 60):  # type: ignore[no-untyped-def]
    """An APScheduler BackgroundScheduler running ``ticker.tick`` (coalesced, one at a time, generous misfire grace)."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(ticker.tick, "interval", seconds=every_seconds, id="tick", next_run_time=clock.now())
    scheduler.start()
    return scheduler


def run_forever(ticker: Ticker, *, every_seconds: int = 60) -> None:
    """The ``worker`` process: tick until SIGTERM/SIGINT, then finish the current unit and release leases."""
    import signal

    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    scheduler.add_job(ticker.tick, "interval", seconds=every_seconds, id="tick", next_run_time=clock.now())

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the current work, then stopping", signum)
        ticker.stopping.set()
        threading.Thread(target=lambda: scheduler.shutdown(wait=True), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        scheduler.start()
    finally:
        ticker.shutdown()
