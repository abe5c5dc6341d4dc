"""plan → outbox → claim → one fresh QuickBooks read → send → record → notes write-back.

``run_company`` in order, for one company:

1. Take the company's ``dispatch`` lease (``leases``): two workers never dispatch one company
   at once, so rows found ``sending`` are a crash's leftovers (``recover_sending``) and
   ``unknown`` rows are reconciled from provider events first.
2. Read the payments, credit memos and customers changed since the last sync (one CDC call,
   ``sync.run.catch_up``): money recorded unapplied since then holds the invoices it settles in
   this run's plan, and a customer made inactive since (what "deleting" one does in QuickBooks) is
   neither reminded nor charged. If that read fails, rows chasing invoices wait (deferred).
   Plan (``rules.plan`` over the ``snapshot``) for the company's local today and insert the
   actions: ``INSERT … ON CONFLICT (dedupe_key) DO NOTHING``. A run plans the customers with an
   invoice whose ``next_action_on`` has come (or is unknown), evaluating only those invoices,
   and, in full, the customers whose invoices or own row changed since the last run or who got
   a pause since (``snapshot.candidate_customers``). Every customer is planned (a full plan)
   on the first run, in dry runs, when ``snapshot.plan_fingerprint`` (policy, settings, zone,
   terms, engine version) differs from the one stored by the last full plan, and when that
   full plan is ``FULL_PLAN_EVERY`` days old. The next-action dates of the invoices evaluated
   are stored from the same pass (``rules.plan_and_next``).
3. Claim the due rows (``due_at <= now``). Texts outside 8:00–21:00 in the recipient's time
   zone wait: their ``due_at`` moves to the next allowed minute. The earliest row left planned
   for later (such a text, a send window after the run, a customer in another zone) is the
   summary's ``wake_at``: the scheduler comes back then. Rows for a channel that is
   not configured, an address that bounced or a number that opted out are cancelled with the
   reason (the step counts as done: a later send would be out of sequence).
4. ONE query per 1000 invoices re-reads the balances of the whole batch from QuickBooks
   (``SELECT * FROM Invoice WHERE Id IN (…)``, with ``include=invoiceLink``). Paid, voided or
   deleted invoices cancel their rows; a changed balance or due date cancels them too and
   gives the dedupe key up, so the next run plans the same step on fresh figures. The
   fresh rows are written to the mirror. A reminder, fee or task naming an invoice that the
   customer's unused credit now settles (planned before the credit came) is cancelled the same way.
   The interest up to the day an invoice was paid (a fee row with ``paid_on``) and its notice are
   about a paid invoice: they go on while it is paid, and are cancelled once it is voided or
   deleted, or its payment undone (the balance changed: the key is given up).
5. Each row: render, mark ``sending`` and COMMIT, call the channel once, mark ``sent`` (with
   the provider's id) or ``failed``/``unknown``/back to ``planned`` (nothing was sent),
   COMMIT. Retries (tenacity) only for errors that prove nothing was sent. Before any fee is
   posted, the run asks once whether QuickBooks will take fee lines (outside the US each needs a
   tax code: ``fee_tax_code``); when not, every fee of the run is held — left ``planned`` with its
   dedupe key and the reason, counted in ``held``, posted by the first run that finds the code —
   and the owner is told once for as long as the same cause holds them (``alerts.fees_held``).
6. A posted fee queues an email telling the customer (``late_fee_notice``, when the policy's
   ``late_fees.notify_customer`` is on), sent at the end of the run on the balances it read.
7. Each email, text and fee adds a line to the customer's notes section in QuickBooks; the
   lines are written in batches of ≤ 30 sparse updates.

Per-company settings read (``company.settings``): ``dry_run`` (bool), ``sender_name``,
``reply_to``, ``company_phone``, ``owner_email``, ``owner_phone``, ``late_fee_mode``
("invoice", default, or "line"), ``fee_tax_code`` (the QuickBooks TaxCode Id put on fee lines
outside the US; see ``channels.qbo_notes``), ``templates``, ``holiday_subdivision``, ``attach_invoice_pdf``
(email reminders carry the PDF QuickBooks makes of each invoice they name).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import datetime as dt
import logging
import re
import time
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, get_args

import tenacity
from sqlalchemy import func, select, update

from qbo_collector import (alerts, clock, config, errors, leases, rules, scheduler, snapshot, templates, timeline,
                           translation)
from qbo_collector.channels import base as channel_base
from qbo_collector.channels import qbo_notes, registry
from qbo_collector.channels import sms as sms_channel
from qbo_collector.channels import webhooks as channel_webhooks
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.dispatch import messages, outbox
from qbo_collector.dispatch.outbox import PlannedRow
from qbo_collector.money import Money, to_decimal
from qbo_collector.rules import policy as rules_policy
from qbo_collector.sync import client as qbo_client
from qbo_collector.sync import limiter as limiter_mod
from qbo_collector.sync import mirror, streams
from qbo_collector.sync import run as sync_run

log = logging.getLogger(__name__)
S = models.OutboxStatus
LEASE_KIND = "dispatch"
FULL_PLAN_EVERY = 7  # days: a full plan at least this often, whatever the index says
QUERY_LIMIT = 1000
CUSTOMER_CHANNELS = ("email", "sms")
ONE_PER_ADDRESS = ("statement", "late_fee_notice")  # the messages of a run told as one per address
OWNER_CHANNELS = ("owner_email", "owner_sms")
# the owner's alerts of one message, the most pressing first (the subject and the text name the first):
# nothing goes out until QuickBooks is reconnected; every text fails; no fee is posted; a customer wrote; then
# the others
ALERT_ORDER = ("reconnect", "undeliverable", "fee_tax_code", "reply", "promise_broken", "instalment_missed",
               "unreachable", "step", "credit", "late")
TONES = get_args(rules_policy.Tone)  # gentlest first: a statement for several customers takes the firmest
# 21635: a landline outside the US, Canada and the UK, refused at once (there, Twilio tries it: 30006 later)
BLOCKING_SMS_CODES = {21610: "stop", 21211: "invalid", 21614: "landline", 21635: "landline", 21612: "unreachable"}
PDF_ATTACH_MAX = 10                   # invoice PDFs on one email; a statement lists the others with their links
PDF_ATTACH_BYTES = 20 * 1024 * 1024   # SendGrid takes 30 MB a message, and base64 adds a third
# read before planning, in the same CDC call: money the invoice query cannot see, and customers made inactive
CATCH_UP_STREAMS = (streams.PAYMENT, streams.CREDIT_MEMO, streams.CUSTOMER)
PDF_ATTEMPTS = 2                      # a PDF QuickBooks cannot make fails every time: do not wait minutes for it


@dataclasses.dataclass(frozen=True, kw_only=True)
class SendRetry:
    """Retries of one provider call, only for errors that prove nothing was sent (429, refused connection)."""

    attempts: int = 3
    initial_wait: float = 0.5
    max_wait: float = 5.0


@dataclasses.dataclass
class RunSummary:
    """What one run of one company did. ``errors`` are the problems recorded along the way (``ok``:
    none, which names the run's activity); ``problems`` adds the outcomes a person must act on, and
    is what makes ``qbo-collector run`` exit 1; ``warnings`` are told and change nothing."""

    realm: str
    dry_run: bool = False
    planned: int = 0                       # new outbox rows this run
    statuses: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    channels: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    api_calls: int = 0                     # QuickBooks HTTP requests (retries included)
    freshness_queries: int = 0
    freshness_invoices: int = 0
    credit_reads: int = 0                  # QuickBooks calls reading the payments, credit memos and customers changed since the sync
    note_batches: int = 0
    notes_written: int = 0
    pdfs_attached: int = 0                 # invoice PDFs sent with emails (one QuickBooks call each)
    pdfs_missing: int = 0                  # asked for and not attached: the email went without them
    waiting: int = 0                       # texts moved out of quiet hours
    wake_at: dt.datetime | None = None     # the earliest moment one of those, or a row planned for later, may go
    deferred: int = 0                      # nothing sent, tried again next run
    held: int = 0                          # late fees waiting for a setting (no tax code for their lines)
    held_reason: str | None = None         # what to set, as a sentence
    recovered: int = 0
    reconciled: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    duration: float = 0.0
    full_plan: bool = False                # every customer planned (else only the candidates)
    planned_customers: int = 0
    contended: bool = False                # another worker holds the company: nothing done here, nothing lost
    # reason → rows cancelled because their channel is not configured, to customers / to the owner
    unconfigured: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    owner_unconfigured: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def problems(self) -> list[str]:
        """What a person must act on, as sentences: the errors (QuickBooks unreachable or to be
        reconnected, customers skipped for an invalid policy, notes not written, a provider refusing
        our credentials), rows deferred, failed for good or of unknown outcome, and messages to
        customers cancelled because their channel is not configured (the policy asks for it)."""
        if self.contended:
            return []  # the worker holding the company does the work and reports it
        found = list(self.errors)
        found += [f"{n} message(s) to customers cancelled: {why} Configure it, or take that channel out of the "
                  "policy's steps." for why, n in sorted(self.unconfigured.items())]
        if self.deferred:
            found.append(f"{self.deferred} row(s) deferred: nothing was sent, the next run tries again.")
        if self.held:
            found.append(f"{self.held} late fee(s) on hold, not posted: {self.held_reason}")
        if self.statuses["failed"]:
            found.append(f"{self.statuses['failed']} row(s) failed for good (a template that cannot be written, "
                         "an address or number the provider refused, a fee QuickBooks refused): see their "
                         "reasons on the Upcoming page.")
        if self.statuses["unknown"]:
            found.append(f"{self.statuses['unknown']} message(s) with an unknown outcome: never resent; provider "
                         "events settle them, or decide on the Upcoming page.")
        return found

    @property
    def warnings(self) -> list[str]:
        """Told, not failures: another worker holding the company, owner alerts with no configured channel."""
        found = list(self.errors) if self.contended else []
        found += [f"{n} owner alert(s) not sent that way: {why}" for why, n in sorted(self.owner_unconfigured.items())]
        if self.pdfs_missing:
            found.append(f"{self.pdfs_missing} invoice PDF(s) could not be attached: those emails went without them "
                         "(the timeline says why).")
        return found

    def line(self) -> str:
        done = ", ".join(f"{n} {k}" for k, n in sorted(self.statuses.items())) or "nothing due"
        mode = " (dry run)" if self.dry_run else ""
        problems = self.problems
        extra = (f"; {len(problems)} problem(s): {problems[0]}" if problems
                 else f"; {self.warnings[0]}" if self.warnings else "")
        return (f"run {self.realm}{mode}: {self.planned} planned, {done}; {self.waiting} waiting for daytime, "
                f"{self.deferred} deferred; {self.api_calls} QuickBooks API calls ({self.credit_reads} read of the "
                f"payments, credit memos and customers, {self.freshness_queries} freshness "
                f"quer{'y' if self.freshness_queries == 1 else 'ies'}, {self.note_batches} note batch(es)) "
                f"in {self.duration:.1f}s{extra}")

    def as_dict(self) -> dict[str, Any]:
        return {"realm": self.realm, "dry_run": self.dry_run, "planned": self.planned, "statuses": dict(self.statuses),
                "channels": dict(self.channels), "api_calls": self.api_calls,
                "freshness_queries": self.freshness_queries, "credit_reads": self.credit_reads,
                "note_batches": self.note_batches,
                "notes_written": self.notes_written, "pdfs_attached": self.pdfs_attached,
                "pdfs_missing": self.pdfs_missing, "waiting": self.waiting, "deferred": self.deferred,
                "held": self.held,
                "recovered": self.recovered, "reconciled": self.reconciled, "errors": list(self.errors),
                "problems": self.problems, "warnings": self.warnings,
                "full_plan": self.full_plan, "planned_customers": self.planned_customers,
                "duration": round(self.duration, 3)}


def utcnow() -> dt.datetime:
    return clock.now()  # UTC; the demo's "advance one day" moves it


def _company(s: Any, realm_id: str) -> models.Company:
    company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
    if company is None:
        raise errors.InvalidInput(f"No company with realm {realm_id}.", field="realm")
    return company


def local_today(company: models.Company, now: dt.datetime) -> dt.date:
    return now.astimezone(zoneinfo.ZoneInfo(company.timezone or "UTC")).date()


# --- planning ----------------------------------------------------------------------------

def _rows_of(company: models.Company, snap: snapshot.CustomerSnapshot, actions: list[rules.Action],
             dry_run: bool) -> list[PlannedRow]:
    numbers = {i.id: i.doc_number or i.id for i in snap.invoices}
    balances = {i.id: format(i.balance.amount, "f") for i in snap.invoices}  # "500", not SQLite's "5E+2"
    due_dates = {i.id: (r.due_date.isoformat() if r.due_date else None) for i, r in
                 ((i, snap.invoice_rows[i.id]) for i in snap.invoices)}
    _email, owner_phone = alerts.owner_contacts(company)
    nowhere = snap.email is None and snap.phone is None
    rows: list[PlannedRow] = []
    for action in actions:
        rows.extend(outbox.rows_for(action, customer_name=snap.customer.display_name, numbers=numbers,
                                    balances=balances, due_dates=due_dates, unreachable_everywhere=nowhere,
                                    owner_phone=bool(owner_phone), dry_run=dry_run))
    return rows


def _plan_snapshots(company: models.Company, snaps: list[snapshot.CustomerSnapshot], *, today: dt.date,
                    days: int, dry_run: bool, problems: list[str],
                    focus: dict[str, set[str] | None] | None = None,
                    ) -> tuple[list[PlannedRow], dict[str, dict[str, dt.date | None]]]:
    """The rows to insert and, for a one-day plan, the next-action dates (from tomorrow) of the invoices
    evaluated, per customer. ``focus``: customer → the invoices to evaluate (None or absent: all)."""
    ctx = snapshot.company_context(company)
    rows: list[PlannedRow] = []
    dates: dict[str, dict[str, dt.date | None]] = {}
    for snap in snaps:
        if snap.policy is None:
            problems.append(f"customer {snap.customer.display_name}: {snap.policy_error}")
            continue
        try:
            kwargs = dict(company=ctx, invoices=snap.invoices, customer=snap.customer, policy=snap.policy,
                          history=snap.history, pauses=snap.pauses, today=today)
            if days > 1:
                actions = rules.plan_calendar(days=days, **kwargs)  # type: ignore[arg-type]
            else:
                actions, dates[snap.customer.id] = rules.plan_and_next(  # type: ignore[arg-type]
                    focus=(focus or {}).get(snap.customer.id), **kwargs)
        except Exception as exc:  # noqa: BLE001 - one bad customer never stops a run (invariant 8)
            log.exception("planning customer %s of %s failed", snap.customer.id, company.realm_id)
            problems.append(f"customer {snap.customer.display_name} skipped: {exc}")
            continue
        rows.extend(_rows_of(company, snap, actions, dry_run))
    return rows, dates


def plan_company(settings: config.Settings, db: Database, realm_id: str, *, on: dt.date,
                 days: int = 1, problems: list[str] | None = None) -> list[PlannedRow]:
    """What would happen on ``on`` and the ``days - 1`` days after, if nothing changes. Changes nothing.

    A customer that cannot be planned (a stored policy that does not validate…) is left out of the
    rows, logged, and described in ``problems`` when given."""
    with db.sessions() as s:
        company = _company(s, realm_id)
        dry = bool((company.settings or {}).get("dry_run"))
        snaps = snapshot.load(s, company, today=on, dry_run=dry)
        found: list[str] = []
        rows, _dates = _plan_snapshots(company, snaps, today=on, days=max(1, days), dry_run=dry, problems=found)
        for p in found:
            log.warning("plan %s: %s", realm_id, p)
        if problems is not None:
            problems.extend(found)
        s.rollback()
    return sorted(rows, key=lambda r: (r.due_at, r.customer, r.dedupe_key))


def plan_and_insert(db: Database, company_id: int, *, today: dt.date, now: dt.datetime, dry_run: bool,
                    full: bool, since: dt.datetime | None, summary: RunSummary, fingerprint: str) -> None:
    """Step 2 of ``run_company``: plan every customer (``full``) or the candidates changed since
    ``since`` or due by ``today``, insert the actions, store the next-action dates."""
    with db.session() as s:
        company = s.get(models.Company, company_id)
        assert company is not None
        # customer → the invoices to evaluate (None: all of them); None: every customer, in full
        candidates = None if full else snapshot.candidate_customers(s, company, today=today, since=since)
        snaps = (snapshot.load(s, company, today=today, customer_ids=candidates, dry_run=dry_run)
                 if candidates is None or candidates else [])
        rows, dates = _plan_snapshots(company, snaps, today=today, days=1, dry_run=dry_run, problems=summary.errors,
                                      focus=candidates)
        summary.full_plan, summary.planned_customers = full, len(snaps)
        summary.planned += outbox.insert_rows(s, company.id, rows, dry_run=dry_run, now=now)
        if not dry_run:  # the scheduler's index follows the real history only
            snapshot.refresh_next_action(s, snaps, dates=dates)
            if full:
                company.plan_fingerprint, company.full_plan_on = fingerprint, today


# --- channels ----------------------------------------------------------------------------

class _Channels:
    """The configured ways out, built lazily; a missing configuration is a reason, not a crash."""

    def __init__(self, settings: config.Settings, *, sms_from: str | None = None) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {}
        self.disabled: dict[str, str] = {}
        # The company's own sender from the Channels page wins over the server-wide one.
        self.from_number, self.messaging_service_sid = settings.twilio_from_number, settings.twilio_messaging_service_sid
        self.sender = models.SHARED_SENDER  # as ``ContactBlock.sender`` names it
        if sms_from:
            self.sender = sms_channel.sender_id(sms_from)
            if sms_from.startswith("MG"):
                self.from_number, self.messaging_service_sid = None, sms_from
            else:
                self.from_number, self.messaging_service_sid = sms_from, None

    @property
    def sms_from(self) -> str:
        """What the texts go out from (a messaging service SID or a number), as the outbox row keeps it."""
        return sms_channel.sender_id(self.messaging_service_sid or self.from_number or "")

    def reason_missing(self, name: str) -> timeline.Text | None:
        st = self.settings
        if name in self.disabled:
            return timeline.text("error", error=timeline.error(self.disabled[name]))
        if name == "email" and not (st.sendgrid_api_key and st.sendgrid_from_email):
            return timeline.text("cancel.email_not_configured")
        if name == "sms" and not (st.twilio_account_sid and st.twilio_auth_token
                                  and (self.from_number or self.messaging_service_sid)):
            return timeline.text("cancel.sms_not_configured")
        return None

    def get(self, name: str) -> channel_base.Channel:
        if name not in self._built:
            st = self.settings
            cls = registry.get(name)
            if name == "email":
                self._built[name] = cls(api_key=st.sendgrid_api_key, from_email=st.sendgrid_from_email,  # type: ignore[call-arg]
                                        host=st.sendgrid_api_host)
            else:
                self._built[name] = cls(account_sid=st.twilio_account_sid, auth_token=st.twilio_auth_token,  # type: ignore[call-arg]
                                        from_number=self.from_number,
                                        messaging_service_sid=self.messaging_service_sid,
                                        api_base_url=st.twilio_api_base_url)
        return self._built[name]


def _provider(channel: str | None) -> str | None:
    return {"email": "email", "owner_email": "email", "sms": "sms", "owner_sms": "sms"}.get(channel or "")


def send_once(channel: channel_base.Channel, message: channel_base.OutboundMessage, retry: SendRetry) -> channel_base.Receipt:
    """``channel.send`` retried only for ``TransientFailure`` that is not ``OutcomeUnknown``."""
    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(float(after), retry.max_wait)
        return min(retry.initial_wait * 2 ** (state.attempt_number - 1), retry.max_wait)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retry.attempts), wait=wait, reraise=True,
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, errors.TransientFailure)
                                          and not isinstance(e, channel_base.OutcomeUnknown)))
    return retrying(channel.send, message)


# --- the run -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _FeeHold:
    """Why a run holds its fees: the sentence of ``QboNotes.fee_tax_code``'s refusal (what to set), and the
    ``payload["held"]`` of the rows it holds (``outbox.HELD``)."""

    reason: str
    held: dict[str, Any]


@dataclasses.dataclass
class _Ctx:
    settings: config.Settings
    db: Database
    company_id: int
    realm: str
    now: dt.datetime
    today: dt.date
    dry_run: bool
    summary: RunSummary
    channels: _Channels
    retry: SendRetry
    qbo: qbo_client.QboClient | None
    notes: qbo_notes.QboNotes | None
    qbo_problem: str | None = None
    notices: list[int] = dataclasses.field(default_factory=list)  # late-fee notices queued by this run
    pdf_failed: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)  # invoice Id → why no PDF (``timeline.error``)
    # (invoice Id, SyncToken) → its PDF, the newest last, at most PDF_CACHE_BYTES together
    pdf_cache: collections.OrderedDict[tuple[str, str], bytes] = dataclasses.field(
        default_factory=collections.OrderedDict)
    pdf_cache_bytes: int = 0
    credit_read: bool | None = None  # the payments, credit memos and customers read just before planning (False: that failed)
    inactive: set[str] = dataclasses.field(default_factory=set)  # customers inactive in QuickBooks: nothing goes to them
    # customer Id → its name, for a job reached at the parent it is billed with: its messages name it
    jobs: dict[str, str] = dataclasses.field(default_factory=dict)
    names: dict[str, str] = dataclasses.field(default_factory=dict)  # customer Id → its own name (owner alerts)
    # customer Id → its own row (a job billed with its parent: the job's, not the parent's): whose exclusion,
    # waiver and policy a fee answers to (``_fee_not_owed``); ``customers`` are whom a message reaches
    own: dict[str, models.Customer] = dataclasses.field(default_factory=dict)
    fee_hold: _FeeHold | None = None  # why this run's fees wait (``_check_fee_tax_code``); None: they may be posted


def run_company(settings: config.Settings, db: Database, vault: Vault, realm_id: str, *,
                now: dt.datetime | None = None, dry_run: bool = False,
                retry: SendRetry | None = None, qbo_policy: qbo_client.RetryPolicy | None = None,
                limiter: limiter_mod.RateLimiter | None = None,
                lease_ttl: dt.timedelta = dt.timedelta(minutes=15)) -> RunSummary:
    """Carry out what is due for one company (see the module docstring). Never raises for a bad row."""
    started = time.monotonic()
    now = now or utcnow()
    with db.session() as s:
        company = _company(s, realm_id)
        company_id = company.id
        dry = dry_run or bool((company.settings or {}).get("dry_run"))
        company_sms_from = (company.settings or {}).get("sms_from") or None
        fee_tax = {"country": company.country, "fee_tax_code": (company.settings or {}).get("fee_tax_code")}
        today = local_today(company, now)
        connected = company.status == models.CompanyStatus.connected
        disconnected = company.status == models.CompanyStatus.disconnected
        status_reason = company.status_reason or "the QuickBooks grant was refused"
        lease = s.get(models.WorkLease, (company_id, LEASE_KIND))
        last_day, last_at = (lease.done_on, lease.done_at) if lease is not None else (None, None)
        fingerprint = snapshot.plan_fingerprint(s, company)
        full = (dry or last_day is None or last_at is None or company.plan_fingerprint != fingerprint
                or company.full_plan_on is None or (today - company.full_plan_on).days >= FULL_PLAN_EVERY)
    summary = RunSummary(realm=realm_id, dry_run=dry)
    if disconnected:  # on purpose: nobody is to be chased, nor the owner asked to reconnect
        summary.errors.append(f"The company is disconnected ({status_reason}): nothing planned or sent; "
                              "connect it again (the Connect page, or `qbo-collector connect`) to resume.")
        return summary
    owner = f"{leases.default_owner()}:{uuid.uuid4().hex[:8]}"
    if not leases.claim(db, company_id, LEASE_KIND, owner, now=utcnow(), ttl=lease_ttl):
        summary.errors.append("Another worker is dispatching this company right now; nothing done.")
        summary.contended = True
        return summary
    # a long run keeps its lease: another process's run would take the rows it is sending for a crash's leftovers
    keeping = (leases.kept(db, company_id, {LEASE_KIND: lease_ttl}, owner, now=utcnow,
                           every=lease_ttl.total_seconds() / 3) if lease_ttl > dt.timedelta(0) else contextlib.nullcontext())
    with keeping:
        failure: str | None = None
        read_at = utcnow()  # changes from here on are the next run's to see (``candidate_customers``)
        try:
            summary.recovered = outbox.recover_sending(db, company_id=company_id)
            summary.reconciled = outbox.reconcile_unknown(db, company_id=company_id)
            qbo = notes = None
            problem = None
            if connected:
                qbo = qbo_client.QboClient(settings, db, vault, realm_id, policy=qbo_policy, limiter=limiter)
                notes = qbo_notes.QboNotes(qbo, **fee_tax)
            else:
                problem = f"QuickBooks is not connected ({status_reason})"
                alerts.reconnect_needed(db, realm_id, status_reason, on=today, at=now)
                summary.errors.append(f"{problem}: reconnect the company (the Connect page, or `qbo-collector connect`); "
                                      "until then nothing naming an invoice is sent and no note or fee is written.")
            ctx = _Ctx(settings=settings, db=db, company_id=company_id, realm=realm_id, now=now, today=today,
                       dry_run=dry, summary=summary, channels=_Channels(settings, sms_from=company_sms_from), retry=retry or SendRetry(),
                       qbo=qbo, notes=notes, qbo_problem=problem)
            _read_credit(ctx)
            plan_and_insert(db, company_id, today=today, now=now, dry_run=dry, full=full, since=last_at,
                            summary=summary, fingerprint=fingerprint)
            _check_fee_tax_code(ctx)
            _process_due(ctx)
            if not dry:
                _pause_notes(ctx)
                _write_notes(ctx)
                _wake_for_later(ctx)
            if qbo is not None:
                summary.api_calls = qbo.api_calls
        except Exception as exc:
            failure = str(exc)
            raise
        finally:
            summary.duration = time.monotonic() - started
            leases.release(db, company_id, LEASE_KIND, owner, now=utcnow(),
                           done_on=today if failure is None and not dry else None, error=failure,
                           done_at=(last_at or read_at) if dry else read_at)  # a dry run does not move the index on
            if failure is None:
                with db.session() as s:
                    outbox.activity(s, company_id, "dispatch.run" if summary.ok else "dispatch.run.problems",
                                    summary.line(), data=summary.as_dict())
    log.info(summary.line())
    return summary


def _read_credit(ctx: _Ctx) -> None:
    """Before planning: the payments, credit memos and customers changed in QuickBooks since the last
    sync, in one CDC call (``sync.run.catch_up``). The invoice query of the freshness check cannot see
    money recorded as an unapplied payment or a credit memo, which leaves the invoice's balance as it
    was; read here, it holds the invoices it settles (``rules.credit_covered``) in this very run. Nor
    does it see a customer made inactive, whose invoices stay as they were: read here, the plan leaves
    that customer out and the rows planned for them earlier are cancelled. When the read fails,
    reminders, fees and tasks that name an invoice wait (deferred) for the next run."""
    qbo = ctx.qbo
    if qbo is None:
        return
    before = qbo.api_calls
    try:
        ctx.credit_read = sync_run.catch_up(qbo, ctx.db, ctx.realm, ctx.company_id, CATCH_UP_STREAMS)
    except errors.ReconnectNeeded as exc:
        alerts.reconnect_needed(ctx.db, ctx.realm, exc.message, on=ctx.today, at=ctx.now)
        ctx.summary.errors.append(f"QuickBooks needs reconnecting: {exc.message}")
        ctx.qbo = ctx.notes = None  # nothing naming an invoice goes out, no note or fee is written
        ctx.qbo_problem = exc.message
    except errors.QboCollectorError as exc:
        ctx.credit_read = False
        ctx.summary.errors.append("The payments, credit memos and customers changed since the last sync could not be "
                                  f"read, so no reminder, fee or task naming an invoice was carried out: {exc.message}")
    finally:
        ctx.summary.credit_reads += qbo.api_calls - before
    if ctx.credit_read is False:
        log.warning("%s: payments, credit memos and customers not read before planning; rows chasing invoices wait",
                    ctx.realm)


def _chases(row: models.Outbox) -> bool:
    """A row that asks the customer for money (or posts a fee, or a task to chase it) about invoices."""
    return bool(row.invoice_ids) and row.kind in ("reminder", "fee", "task")


def _settled_by_credit(ctx: _Ctx, company: models.Company, rows: list[models.Outbox]
                       ) -> dict[str, tuple[Money, str | None]]:
    """Invoice id → the unused credit that settles it in full and the parent whose credit counts
    (``snapshot.settled_by_credit``), for the customers of ``rows`` that chase invoices and hold credit
    (a parent's, for a job billed with it). The plan of this run already left those invoices alone;
    this catches rows planned by an earlier run (texts waiting for daytime)."""
    wanted = {r.customer_qbo_id for r in rows if _chases(r) and r.customer_qbo_id}
    if not wanted:
        return {}
    with ctx.db.session() as s:
        holders = sorted(wanted & set(snapshot.shared_credits(s, company, ctx.today).credits))
        return snapshot.settled_by_credit(s, company, holders, ctx.today)


def _due_rows(ctx: _Ctx) -> list[models.Outbox]:
    with ctx.db.session() as s:
        return list(s.scalars(select(models.Outbox).where(
            models.Outbox.company_id == ctx.company_id, models.Outbox.status == S.planned,
            models.Outbox.due_at <= ctx.now, models.Outbox.dry_run.is_(ctx.dry_run),
            models.Outbox.kind != "note").order_by(models.Outbox.due_at, models.Outbox.id)))


def _cancel(ctx: _Ctx, row: models.Outbox, reason: timeline.Text, *, free: bool = False,
            refused: bool = False) -> None:
    with ctx.db.session() as s:
        outbox.set_status(s, row.id, S.cancelled, reason, now=utcnow())
        if free:
            outbox.free_key(s, row, refused=refused)
        outbox.activity(s, ctx.company_id, "outbox.cancelled", reason, row=row)
    ctx.summary.statuses["cancelled"] += 1


def _process_due(ctx: _Ctx) -> None:
    rows = _due_rows(ctx)
    if not rows:
        return
    with ctx.db.session() as s:
        company = s.get(models.Company, ctx.company_id)
        assert company is not None
        s.expunge(company)
        ids = sorted({r.customer_qbo_id for r in rows if r.customer_qbo_id})
        own = {c.qbo_id: c for c in snapshot._chunked(s, models.Customer, ctx.company_id, ids)}
        # who a message reaches, by which address and in which language: a job billed with its parent, the parent
        customers = snapshot.contact_rows(s, ctx.company_id, own)
        ctx.jobs = {cid: c.display_name for cid, c in own.items() if customers[cid] is not c}
        ctx.names = {cid: c.display_name for cid, c in own.items()}
        ctx.inactive |= {cid for cid, c in own.items() if not c.active}
        ctx.own = own
        for c in {id(c): c for c in (*customers.values(), *own.values())}.values():
            s.expunge(c)
        blocked = {(b.channel, b.address) for b in s.scalars(select(models.ContactBlock).where(
            models.ContactBlock.sender.in_(snapshot.sms_blocks_for(company))))}
    ready: list[tuple[models.Outbox, str | None]] = []
    for row in rows:
        if _for_inactive(ctx, row):
            continue
        address = _precheck(ctx, company, customers.get(row.customer_qbo_id or ""), row, blocked)
        if address is not False:
            ready.append((row, address))  # type: ignore[arg-type]
    fresh = _freshness(ctx, company, [r for r, _ in ready])
    mirrors = _mirror_invoices(ctx, {i for r, _ in ready for i in r.invoice_ids or ()})
    settled = _settled_by_credit(ctx, company, [r for r, _ in ready]) if fresh is not None else {}
    message_of = {r.id: group for group in one_message_per_address(ready, customers, told_apart(company))
                  for r, _ in group}
    done: set[int] = set()
    for row, _address in ready:
        if row.id in done:
            continue
        # each row is checked right before it is carried out (a fee posted as a line earlier in this run
        # changed its invoice in ``fresh``); the rows of one message are checked together, as it goes
        group = [(r, a) for r, a in message_of[row.id] if r.id not in done]
        done.update(r.id for r, _ in group)
        go = [(r, a) for r, a in group if _may_go(ctx, r, fresh, settled)]
        if not go:
            continue
        (lead, address), companions = go[0], [r for r, _ in go[1:]]
        try:
            if companions:
                _send_message(ctx, company, customers.get(lead.customer_qbo_id or ""), lead, address or "",
                              fresh or {}, mirrors, companions)
            else:
                _carry_out(ctx, company, customers.get(lead.customer_qbo_id or ""), lead, address, fresh or {}, mirrors)
        except Exception as exc:  # noqa: BLE001 - one bad row never stops the run (invariant 8)
            for r, _ in go:
                _row_failed(ctx, r, exc)
    if ctx.notices:
        _send_notices(ctx, company, customers, blocked, fresh or {}, mirrors)


def _may_go(ctx: _Ctx, row: models.Outbox, fresh: dict[str, dict[str, Any]] | None,
            settled: dict[str, tuple[Money, str | None]]) -> bool:
    """Whether the row may be carried out now, on the invoices as this run read them: not when
    QuickBooks could not be read (deferred), nor when an invoice it names was paid, voided, changed or
    is settled by unused credit, nor when its customer was found inactive (cancelled, with the reason)."""
    if _for_inactive(ctx, row):
        return False  # found by a fee QuickBooks refused earlier in this run
    if row.invoice_ids and (fresh is None or (ctx.credit_read is False and _chases(row))):
        ctx.summary.deferred += 1
        return False  # QuickBooks could not be read: nothing that names an invoice goes out unchecked
    if not row.invoice_ids:
        return True
    stale = _stale(row, fresh or {})
    credited = next((i for i in row.invoice_ids if i in settled), None) if _chases(row) else None
    if stale is None and credited is not None:
        numbers = dict(zip(row.invoice_ids, (row.payload or {}).get("numbers") or row.invoice_ids))
        credit, holder = settled[credited][0].rounded(), settled[credited][1]
        stale = timeline.text("cancel.credit.parent" if holder else "cancel.credit",
                              invoice=str(numbers.get(credited, credited)),
                              credit=timeline.money(credit.amount, credit.currency),
                              **({"holder": holder} if holder else {})), True
    if stale is None:
        return True
    reason, free = stale
    _cancel(ctx, row, reason, free=free)
    return False


def _for_inactive(ctx: _Ctx, row: models.Outbox) -> bool:
    """Cancel a reminder, fee or task for a customer inactive in QuickBooks (what "deleting" a customer
    there does: QuickBooks itself then refuses a fee invoice for them, fault 610). Nothing goes to an
    inactive customer, as the plan leaves them out; the key is given up, so that a customer made active
    again is planned as if this row had never been: no step skipped, no fee period lost."""
    cid = row.customer_qbo_id
    if not cid or cid not in ctx.inactive or row.kind not in ("reminder", "fee", "task"):
        return False
    _cancel(ctx, row, timeline.text("cancel.customer_inactive", name=ctx.names.get(cid, cid)), free=True)
    return True


def _made_inactive(ctx: _Ctx, row: models.Outbox) -> bool:
    """After QuickBooks refused a fee with 610: whether that is because its customer is inactive now
    (one query). If so the customer is written to the mirror, so that no later run plans them until a
    sync sees them active again, and the rest of this run leaves them alone (``ctx.inactive``)."""
    cid = row.customer_qbo_id or ""
    if not cid or ctx.notes is None:
        return False
    try:
        current = ctx.notes.read_customers([cid]).get(cid)
    except errors.QboCollectorError as exc:
        log.warning("%s: customer %s not read after QuickBooks refused a fee: %s", ctx.realm, cid, exc.message)
        return False
    if current is None or current.get("Active") is not False:
        return False
    with ctx.db.session() as s:
        company = s.get(models.Company, ctx.company_id)
        assert company is not None
        context = streams.Context(home_currency=company.currency or "USD", term_days=mirror.term_days(s, ctx.company_id))
        try:
            mapped = streams.map_row(streams.CUSTOMER, current, context)
        except streams.BadRecord as exc:
            log.warning("customer %s of %s not mirrored: %s", cid, ctx.realm, exc)
        else:
            mirror.upsert(s, "customer", ctx.company_id, [mapped.values], utcnow())
            ctx.names.setdefault(cid, str(mapped.values.get("display_name") or cid))
    ctx.inactive.add(cid)
    return True


# the placeholder a template must loop over to tell every row of one message
LISTED_BY = {"statement": "invoices", "late_fee_notice": "fees", "owner_alert": "alerts"}


def told_apart(company: models.Company) -> set[str]:
    """The templates whose rows go out one message each: those the owner edited (in any language) without
    their list (``LISTED_BY``), which would tell only the first row of a message that told several."""
    edited = ((company.settings or {}).get("templates") or {})
    apart = set()
    for per in edited.values():
        for key, parts in (per.items() if isinstance(per, dict) else ()):
            if key in LISTED_BY and isinstance(parts, dict) and not any(
                    LISTED_BY[key] in str(parts.get(part) or "") for part in ("text", "html")):
                apart.add(key)
    return apart


def one_message_per_address(go: Sequence[tuple[models.Outbox, str | None]],
                            customers: dict[str, models.Customer], apart: set[str] | frozenset[str] = frozenset(),
                            ) -> list[list[tuple[models.Outbox, str | None]]]:
    """The rows of this run, in order, as messages: the statements due to one address — a parent and
    the jobs billed with it, reached at the same email or phone — are one message, led by the parent's
    own when it has one, and so are the late-fee notices of the fees it posted for them (a customer
    with five late invoices reads one email listing five fees, not five emails); every other row is a
    message of its own. Customers who only share an address (one bookkeeper for two clients) keep
    theirs apart. The owner's alerts of a run are one email and one text: the first run of a firm
    policy on a book with 300 late invoices tells the owner once, listing them, not 300 times, the most
    pressing first (``ALERT_ORDER``). Templates in ``apart`` (``told_apart``) are never merged."""
    out: list[list[tuple[models.Outbox, str | None]]] = []
    groups: dict[tuple[str, str, str, str], list[tuple[models.Outbox, str | None]]] = {}
    for row, address in go:
        contact = customers.get(row.customer_qbo_id or "")
        if row.channel in OWNER_CHANNELS and address and "owner_alert" not in apart:
            key = ("owner_alert", row.channel, address, "")  # everything this run tells the owner
        elif (row.kind == "reminder" and row.template_key in ONE_PER_ADDRESS and row.template_key not in apart
              and row.channel in CUSTOMER_CHANNELS and address and contact is not None):
            key = (row.template_key or "", row.channel, address, contact.qbo_id)
        else:
            out.append([(row, address)])
            continue
        if key not in groups:
            groups[key] = []
            out.append(groups[key])
        groups[key].append((row, address))
    for key, group in groups.items():
        if key[0] == "owner_alert":
            topic = [ALERT_ORDER.index(t) if (t := (r.payload or {}).get("topic")) in ALERT_ORDER else len(ALERT_ORDER)
                     for r, _ in group]
            group[:] = [g for _, g in sorted(zip(topic, group), key=lambda pair: pair[0])]  # stable: then as due
            continue
        lead = next((k for k, (r, _) in enumerate(group) if r.customer_qbo_id in customers
                     and customers[r.customer_qbo_id].qbo_id == r.customer_qbo_id), 0)
        group.insert(0, group.pop(lead))
    return out


def messages_ahead(company: models.Company, go: Sequence[tuple[models.Outbox, str | None]],
                   customers: dict[str, models.Customer], *, now: dt.datetime
                   ) -> list[list[tuple[models.Outbox, str | None]]]:
    """The rows not carried out yet (planned, or queued) as the runs ahead will tell them, for the
    Upcoming page: each goes in the run that comes when it is due (``scheduler.carried_at``; a text due
    at night where its number is, in the run that comes at daytime there, as ``_precheck`` holds it),
    dry-run rows apart, and the rows of one run are messages as ``one_message_per_address`` makes them."""
    runs: dict[tuple[dt.datetime, bool], list[tuple[models.Outbox, str | None]]] = {}
    for row, address in go:
        at = scheduler.carried_at(company, row.due_at, now)
        contact = customers.get(row.customer_qbo_id or "")
        if row.channel == "sms" and address and contact is not None:
            zone = snapshot.time_zone_of(company, contact) or company.timezone or "UTC"
            zones = sms_channel.number_time_zones(address)
            for _ in range(3):  # the run that comes at daytime may begin later still (the next send hour)
                try:
                    allowed, _where = _text_allowed(at, zone, zones)
                except errors.InvalidInput:  # a zone Python does not know: the run says so
                    break
                if allowed <= at:
                    break
                at = scheduler.carried_at(company, allowed, now)
        runs.setdefault((at, bool(row.dry_run)), []).append((row, address))
    apart = told_apart(company)
    return [message for _key, rows in sorted(runs.items(), key=lambda kv: kv[0])
            for message in one_message_per_address(rows, customers, apart)]


def _send_notices(ctx: _Ctx, company: models.Company, customers: dict[str, models.Customer],
                  blocked: set[tuple[str, str]], fresh: dict[str, dict[str, Any]],
                  mirrors: dict[str, models.Invoice]) -> None:
    """The late-fee notices the fees of this run queued, on the invoices as this run read them."""
    with ctx.db.session() as s:
        rows = list(s.scalars(select(models.Outbox).where(models.Outbox.id.in_(ctx.notices),
                                                          models.Outbox.status == S.planned)))
        for r in rows:
            s.expunge(r)
    ctx.notices.clear()
    ready: list[tuple[models.Outbox, str | None]] = []
    for row in rows:
        if _for_inactive(ctx, row):
            continue
        address = _precheck(ctx, company, customers.get(row.customer_qbo_id or ""), row, blocked)
        if address is not False:
            ready.append((row, address))  # type: ignore[arg-type]
    for (row, address), *others in one_message_per_address(ready, customers, told_apart(company)):
        try:
            _send_message(ctx, company, customers.get(row.customer_qbo_id or ""), row, address or "", fresh, mirrors,
                          [r for r, _ in others])
        except Exception as exc:  # noqa: BLE001 - one bad row never stops the run
            for r in (row, *(r for r, _ in others)):
                _row_failed(ctx, r, exc)


def _cancel_unconfigured(ctx: _Ctx, row: models.Outbox, reason: timeline.Text) -> None:
    """A row whose channel is not configured: cancelled (the step counts as done) and counted by reason."""
    _cancel(ctx, row, reason)
    owner = row.channel not in CUSTOMER_CHANNELS
    (ctx.summary.owner_unconfigured if owner else ctx.summary.unconfigured)[reason.english()] += 1


def _row_failed(ctx: _Ctx, row: models.Outbox, exc: Exception) -> None:
    """An unexpected error while carrying a row out: logged, and a row left ``sending`` settled."""
    log.exception("outbox row %s failed", row.id)
    with ctx.db.session() as s:
        current = s.get(models.Outbox, row.id)
        if current is not None and current.status == S.sending:
            target = S.unknown if _provider(row.channel) else S.planned
            outbox.set_status(s, row.id, target, f"Unexpected error while carrying it out: {exc!r}")
    ctx.summary.errors.append(f"row {row.id}: {exc}")


def _precheck(ctx: _Ctx, company: models.Company, customer: models.Customer | None, row: models.Outbox,
              blocked: set[tuple[str, str]]) -> str | None | bool:
    """The address to use, None when the row needs none, or False when the row was cancelled / must wait."""
    provider = _provider(row.channel)
    if provider is None:
        return None
    missing = None if ctx.dry_run else ctx.channels.reason_missing(provider)
    if missing:
        if row.channel in CUSTOMER_CHANNELS or row.channel.startswith("owner_"):
            log.warning("%s: %s", ctx.realm, missing)
            _cancel_unconfigured(ctx, row, missing)
            return False
    owner_email, owner_phone = alerts.owner_contacts(company)
    if row.channel == "owner_email":
        if not owner_email:
            _cancel(ctx, row, timeline.text("cancel.no_owner_email", action=timeline.action(row)))
            return False
        return owner_email
    if row.channel == "owner_sms":
        try:
            number = sms_channel.to_e164(owner_phone or "", snapshot.country_code(company.country))
        except errors.InvalidInput as exc:
            _cancel(ctx, row, timeline.text("cancel.owner_phone", error=timeline.error(exc.message)))
            return False
        # the owner's own daytime: where the number is (a Paris company whose owner carries a Montreal
        # mobile), else the company's zone
        return number if _daytime(ctx, row, company.timezone or "UTC", sms_channel.number_time_zones(number)) else False
    if customer is None:
        _cancel(ctx, row, timeline.text("cancel.customer_gone"))
        return False
    if row.channel == "email":
        addresses = snapshot.email_addresses(customer.email)
        if not addresses:
            _cancel(ctx, row, timeline.text("cancel.no_email", name=customer.display_name))
            return False
        reachable = [a for a in addresses if ("email", a.lower()) not in blocked]
        if customer.email_stopped or not reachable:
            _cancel(ctx, row, timeline.text("cancel.email_stopped", address=", ".join(addresses),
                                            reason=timeline.term("stop", customer.email_stopped or "blocked")))
            return False
        return ", ".join(reachable)
    number = snapshot.phone_e164(company, customer)
    if number is None:
        _cancel(ctx, row, timeline.text("cancel.no_phone", name=customer.display_name))
        return False
    if customer.sms_stopped or ("sms", number) in blocked:
        _cancel(ctx, row, timeline.text("cancel.sms_stopped", name=customer.display_name,
                                        reason=timeline.term("stop", customer.sms_stopped or "stop")))
        return False
    zone = snapshot.time_zone_of(company, customer) or company.timezone or "UTC"
    # The recipient's local time is the number's (a New York company texting a 415 number texts
    # someone in Los Angeles); the customer's country or the company's zone when the number says nothing.
    return number if _daytime(ctx, row, zone, sms_channel.number_time_zones(number)) else False


def _daytime(ctx: _Ctx, row: models.Outbox, zone: str, number_zones: tuple[str, ...] = ()) -> bool:
    allowed, where = _text_allowed(ctx.now, zone, number_zones)
    if allowed <= ctx.now:
        return True
    with ctx.db.session() as s:
        outbox.set_status(s, row.id, S.planned, f"Waits for daytime in {where}: texts go out only 8:00–21:00.",
                          due_at=allowed)
    ctx.summary.waiting += 1
    ctx.summary.wake_at = min(ctx.summary.wake_at or allowed, allowed)
    return False


def _text_allowed(now: dt.datetime, zone: str, number_zones: tuple[str, ...] = ()) -> tuple[dt.datetime, str]:
    """The earliest moment from ``now`` a text may go (daytime where the number is, else in ``zone``), and where."""
    if number_zones:
        try:
            return sms_channel.next_allowed_send(now, number_zones), ", ".join(number_zones)
        except errors.InvalidInput:  # zones with no daytime in common (a non-geographic number)
            pass
    return sms_channel.next_allowed_send(now, zone), zone


def _wake_for_later(ctx: _Ctx) -> None:
    """``wake_at`` also covers the earliest row planned for later than this run (a send window later
    than the company's send hour, a customer in another time zone): due after ``now``, so the run it
    wakes carries it out, cancels it or defers it, and never wakes for it again."""
    with ctx.db.reading() as s:
        later = s.scalar(select(models.Outbox.due_at).where(
            models.Outbox.company_id == ctx.company_id, models.Outbox.status == S.planned,
            models.Outbox.due_at > ctx.now, models.Outbox.dry_run.is_(False), models.Outbox.kind != "note")
            .order_by(models.Outbox.due_at).limit(1))
    if later is not None:
        ctx.summary.wake_at = min(ctx.summary.wake_at or later, later)


def _freshness(ctx: _Ctx, company: models.Company, rows: list[models.Outbox]) -> dict[str, dict[str, Any]] | None:
    """Invoice Id → QuickBooks row, in ⌈n/1000⌉ queries; None when QuickBooks cannot be read."""
    ids = sorted({i for r in rows for i in (r.invoice_ids or ())}, key=lambda x: (len(x), x))
    if not ids:
        return {}
    if ctx.qbo is None:
        return None  # run_company recorded why (ctx.qbo_problem); the rows wait, counted as deferred
    found: dict[str, dict[str, Any]] = {}
    try:
        for start in range(0, len(ids), QUERY_LIMIT):
            part = ids[start:start + QUERY_LIMIT]
            quoted = ", ".join("'" + i.replace("'", "") + "'" for i in part)
            page = ctx.qbo.query(f"SELECT * FROM Invoice WHERE Id IN ({quoted}) MAXRESULTS {QUERY_LIMIT}",
                                 include="invoiceLink")
            ctx.summary.freshness_queries += 1
            for row in page.get("Invoice") or ():
                found[str(row["Id"])] = row
    except errors.ReconnectNeeded as exc:
        alerts.reconnect_needed(ctx.db, ctx.realm, exc.message, on=ctx.today, at=ctx.now)
        ctx.summary.errors.append(f"QuickBooks needs reconnecting: {exc.message}")
        return None
    except errors.QboCollectorError as exc:
        ctx.summary.errors.append(f"The balances could not be checked, so nothing naming an invoice was sent: {exc.message}")
        return None
    ctx.summary.freshness_invoices += len(ids)
    _refresh_mirror(ctx, company, found, [i for i in ids if i not in found])
    return found


def _refresh_mirror(ctx: _Ctx, company: models.Company, found: dict[str, dict[str, Any]], gone: list[str]) -> None:
    """Write what the freshness check read to the mirror: only the invoices QuickBooks changed since
    (another SyncToken), so that an unchanged one does not look synced (``synced_at``) to the next
    run's candidate selection."""
    with ctx.db.session() as s:
        known = {r.qbo_id: r for r in snapshot._chunked(s, models.Invoice, ctx.company_id, sorted(found))}
        changed = [raw for iid, raw in found.items() if iid not in known or known[iid].deleted
                   or known[iid].sync_token != str(raw.get("SyncToken"))]
        if not changed and not gone:
            return
        context = streams.Context(home_currency=company.currency or "USD", term_days=mirror.term_days(s, ctx.company_id))
        values = []
        for raw in changed:
            try:
                values.append(streams.map_row(streams.INVOICE, raw, context).values)
            except streams.BadRecord as exc:
                log.warning("fresh invoice %s of %s not mirrored: %s", raw.get("Id"), ctx.realm, exc)
        mirror.upsert(s, "invoice", ctx.company_id, values, utcnow())
        mirror.mark_deleted(s, "invoice", ctx.company_id, gone, utcnow())


def _mirror_invoices(ctx: _Ctx, ids: set[str]) -> dict[str, models.Invoice]:
    if not ids:
        return {}
    with ctx.db.session() as s:
        rows = snapshot._chunked(s, models.Invoice, ctx.company_id, sorted(ids))
        for r in rows:
            s.expunge(r)
    return {r.qbo_id: r for r in rows}


def _stale(row: models.Outbox, fresh: dict[str, dict[str, Any]]) -> tuple[timeline.Text, bool] | None:
    """Why the row must not go out any more, and whether its dedupe key is given up (re-plan on fresh figures)."""
    payload = row.payload or {}
    numbers = dict(zip(row.invoice_ids or [], (payload.get("numbers") or row.invoice_ids or [])))
    several = len(row.invoice_ids or ()) > 1
    for iid in row.invoice_ids or ():
        current = fresh.get(iid)
        label = str(current.get("DocNumber") if current else numbers.get(iid, iid))
        if current is None:
            return timeline.text("cancel.deleted", invoice=label), several
        moved_to = str((current.get("CustomerRef") or {}).get("value") or "")
        if row.customer_qbo_id and moved_to and moved_to != row.customer_qbo_id:
            # a wrong customer corrected, or a merge: never chase (or charge) the old one for it
            return timeline.text("cancel.customer_changed", invoice=label), True
        balance = to_decimal(current.get("Balance", 0))
        if balance <= 0:
            voided = str(current.get("PrivateNote") or "").strip().lower().startswith("voided")
            # The interest up to the day it was paid (``paid_on``) is charged because it is paid: it goes
            # on while it still is (its basis is the nothing left; a payment undone since changes that),
            # not once voided (QuickBooks Online zeroes a voided invoice's total).
            if payload.get("paid_on") and not voided:
                voided = streams.is_voided(current, to_decimal(current.get("TotalAmt", 0)), balance)
            if voided or not payload.get("paid_on"):
                # a fee gives its key up: the interest up to the payment day is then billed as such
                # (``rules.paid_on``), and a payment undone brings the period back
                return (timeline.text("cancel.voided" if voided else "cancel.paid", invoice=label),
                        several or row.kind == "fee")
        if row.kind in ("alert", "task"):
            continue  # still open: a task or an alert stays relevant whatever the amount
        if row.kind == "fee" and (payload.get("fee_kind") in ("flat", "indemnity")):
            continue
        planned = (payload.get("balances") or {}).get(iid)
        if row.kind == "fee" and (payload.get("basis") or {}).get("amount") is not None:
            # a percent or interest fee is taken on the balance without the fee lines (late_fee_mode "line"):
            # a fee line this run added to the invoice changes its balance, not what the next fee is taken on;
            # nor on the part of the customer's unused credit that pays it (``credit``), which QuickBooks'
            # balance still counts
            credit = Decimal(str((payload.get("credit") or {}).get("amount") or 0))
            planned, balance = Decimal(str(payload["basis"]["amount"])), Money(
                max(balance - streams.fee_lines(current) - credit, Decimal(0)), row.currency or "USD").rounded().amount
        if planned is not None and Decimal(str(planned)) != balance:
            return timeline.text("cancel.balance_changed", invoice=label, before=timeline.number(planned),
                                 after=timeline.number(balance)), True
        due = (payload.get("due_dates") or {}).get(iid)
        if due and current.get("DueDate") and str(current["DueDate"])[:10] != due:
            return timeline.text("cancel.due_date_changed", invoice=label, before=timeline.date(due),
                                 after=timeline.date(str(current["DueDate"]))), True
    return None


# --- carrying a row out ------------------------------------------------------------------

def _mark_sending(ctx: _Ctx, row: models.Outbox) -> bool:
    """planned → sending, committed, by compare-and-set: False when the row is no longer ``planned``
    (a run whose lease ran out while this one worked took it first): then it is not ours to send."""
    with ctx.db.session() as s:
        taken = outbox.claim(s, row)
    if not taken:
        log.warning("outbox row %s was taken by another run; not sent by this one", row.id)
    return taken  # committed: from here a crash leaves the row in "sending" (→ unknown), never a silent resend


def _note(s: Any, ctx: _Ctx, row: models.Outbox, text: timeline.Text) -> None:
    if ctx.dry_run or not row.customer_qbo_id:
        return
    outbox.enqueue(s, ctx.company_id, dedupe_key=f"{ctx.realm}:note:{row.id}", kind="note", channel="qbo_notes",
                   reason=text, customer_id=row.customer_qbo_id, invoice_ids=row.invoice_ids or (),
                   payload={"line": f"{ctx.today.isoformat()} {text.english()}"})


def _carry_out(ctx: _Ctx, company: models.Company, customer: models.Customer | None, row: models.Outbox,
               address: str | None, fresh: dict[str, dict[str, Any]], mirrors: dict[str, models.Invoice]) -> None:
    if row.kind == "task":
        with ctx.db.session() as s:
            outbox.set_status(s, row.id, S.sent, "Task created for a person.", sent_at=utcnow())
            outbox.activity(s, ctx.company_id, f"task.{(row.payload or {}).get('task', 'call')}",
                            timeline.text("task", action=timeline.action(row)), row=row)
        ctx.summary.statuses["sent"] += 1
        ctx.summary.channels[row.channel or "task"] += 1
        return
    if row.kind == "fee":
        if _fee_not_owed(company, ctx.own.get(row.customer_qbo_id or "", customer), row, mirrors):
            numbers = (row.payload or {}).get("numbers") or row.invoice_ids or ["?"]
            _cancel(ctx, row, timeline.text("cancel.fee_not_owed", invoice=str(numbers[0])))
            return
        _post_fee(ctx, company, customer, row, fresh)
        return
    _send_message(ctx, company, customer, row, address or "", fresh, mirrors)


def _fee_not_owed(company: models.Company, customer: models.Customer | None, row: models.Outbox,
                  mirrors: dict[str, models.Invoice]) -> bool:
    """Whether a planned fee is no longer owed by the time it goes: its customer excluded or their fees
    waived, its invoice's fees waived, or the customer's policy no longer charging that kind. A fee goes in
    the run that plans it, but one on hold (``outbox.HELD``) can wait weeks for a setting, meanwhile."""
    if customer is None:
        return False
    invoice = mirrors.get((row.invoice_ids or [""])[0])
    if customer.excluded or customer.fees_waived or (invoice is not None and invoice.fees_waived):
        return True
    try:
        policy = snapshot.policy_for(company, customer)
    except errors.InvalidInput:
        return False  # the run's plan already told the owner; the fee was planned under a valid one
    return policy.fee_rule(str((row.payload or {}).get("fee_kind") or "")) is None  # type: ignore[arg-type]


def _post_fee(ctx: _Ctx, company: models.Company, customer: models.Customer | None, row: models.Outbox,
              fresh: dict[str, dict[str, Any]]) -> None:
    invoice = fresh.get((row.invoice_ids or [""])[0]) or {}
    number = str(invoice.get("DocNumber") or (row.invoice_ids or ["?"])[0])
    amount = Decimal(row.amount or 0)
    currency = row.currency or company.currency or "USD"
    period = (row.payload or {}).get("period")
    paid_on = (row.payload or {}).get("paid_on")
    description = f"Late fee for invoice {number}" + (f" (period from {period})" if period and period != "once" else "")
    if paid_on:
        description = f"Late-payment interest for invoice {number}, from {period} to {paid_on}, the day it was paid"
    if ctx.dry_run:
        with ctx.db.session() as s:
            outbox.set_status(s, row.id, S.sent, "Dry run: the fee was computed and checked, not posted.",
                              sent_at=utcnow(), provider_id="dry-run")
        ctx.summary.statuses["sent"] += 1
        return
    assert ctx.notes is not None
    if ctx.fee_hold is not None:
        _hold_fee(ctx, row)
        return
    if outbox.HELD in (row.payload or {}):  # the code is there now: whatever comes next, it is no longer on hold
        with ctx.db.session() as s:
            s.execute(update(models.Outbox).where(models.Outbox.id == row.id).values(
                payload={k: v for k, v in (row.payload or {}).items() if k != outbox.HELD})
                .execution_options(synchronize_session=False))
    if not _mark_sending(ctx, row):
        return
    # The interest up to the day an invoice was paid goes as its own invoice even in line mode: a line
    # would reopen an invoice the customer has settled and change a document already paid.
    mode = "invoice" if paid_on else (company.settings or {}).get("late_fee_mode", "invoice")
    try:
        if mode == "line":
            posted = ctx.notes.add_fee_line(key=row.dedupe_key, invoice_id=row.invoice_ids[0], amount=amount,
                                            description=description)
            provider_id = f"line:{posted.get('Id', row.invoice_ids[0])}"
            if posted.get("Id"):
                fresh[str(posted["Id"])] = posted  # the balance now includes the fee
        else:
            with ctx.db.reading() as s:
                attempt = outbox.refusals(s, ctx.company_id, row.dedupe_key)
            posted = ctx.notes.post_fee(key=row.dedupe_key, customer_id=row.customer_qbo_id or "",
                                        invoice_number=number, amount=amount, currency=currency, on=ctx.today,
                                        description=description,
                                        bill_email=(invoice.get("BillEmail") or {}).get("Address"), attempt=attempt)
            provider_id = str(posted.get("Id"))
    except errors.PermanentFailure as exc:
        if exc.code == qbo_notes.NO_TAX_CODE:  # the codes could not be read before (``_check_fee_tax_code``)
            _fees_on_hold(ctx, exc)
            _hold_fee(ctx, row)
            return
        if str(exc.code) == "610" and _made_inactive(ctx, row):
            # made inactive in QuickBooks since the last sync: not charged, and not tried again while
            # inactive; the period is charged if the customer is made active again (a new requestid)
            _cancel(ctx, row, timeline.text("cancel.customer_inactive", name=ctx.names.get(row.customer_qbo_id or "",
                                                                                          row.customer_qbo_id)),
                    free=True, refused=mode != "line")
            return
        with ctx.db.session() as s:
            refused = timeline.text("fee.refused", error=timeline.error(exc.message))
            outbox.set_status(s, row.id, S.failed, refused)
            outbox.activity(s, ctx.company_id, "fee.failed", refused, row=row)
        ctx.summary.statuses["failed"] += 1
        return
    except errors.QboCollectorError as exc:
        # Safe to redo: the same requestid replays the first result in QuickBooks.
        with ctx.db.session() as s:
            outbox.set_status(s, row.id, S.planned, f"QuickBooks could not take the fee now ({exc.message}); the next "
                              "run posts it with the same requestid.")
        ctx.summary.deferred += 1
        return
    text = (timeline.text("fee.charged", amount=timeline.money(amount, currency), invoice=number,
                          fee_invoice=str(posted.get("DocNumber") or provider_id)) if mode != "line" else
            timeline.text("fee.charged.line", amount=timeline.money(amount, currency), invoice=number))
    with ctx.db.session() as s:
        outbox.set_status(s, row.id, S.sent, "Posted in QuickBooks.", sent_at=utcnow(), provider_id=provider_id)
        outbox.activity(s, ctx.company_id, "fee.charged", text, row=row, data={"qbo_id": provider_id})
        _note(s, ctx, row, text)
        if _notify_fee(ctx, company, customer):
            # Sent at the end of this run, on the balances just read (no planned balance in the payload:
            # the fee itself changes it in line mode); a run that stops before leaves it to the next one,
            # whose freshness check cancels it if the invoice is paid by then.
            key = f"{row.dedupe_key}:notice"
            queued = outbox.enqueue(
                s, ctx.company_id, dedupe_key=key, kind="reminder", channel="email", template_key="late_fee_notice",
                customer_id=row.customer_qbo_id, invoice_ids=row.invoice_ids or (), amount=amount, currency=currency,
                due_at=ctx.now, payload={"on": ctx.today.isoformat(), "numbers": [number], "fee_key": row.dedupe_key,
                                         **({"paid_on": paid_on} if paid_on else {})},
                reason=timeline.text("fee.notice", amount=timeline.money(amount, currency), invoice=number))
            if queued:
                ctx.notices.append(int(s.scalar(select(models.Outbox.id).where(models.Outbox.dedupe_key == key))))  # type: ignore[arg-type]
    ctx.summary.statuses["sent"] += 1
    ctx.summary.channels["qbo_fee"] += 1


def _check_fee_tax_code(ctx: _Ctx) -> None:
    """Before any fee is posted: whether QuickBooks will take fee lines (outside the US each carries a tax
    code, ``QboNotes.fee_tax_code``), asked once a run and only when a fee is due. When it would not, the
    run's fees are held (``_hold_fee``) and the owner is told in this run's owner email (``_fees_on_hold``).
    A failure to read the codes is left to the first fee, which meets it again and is deferred."""
    if ctx.notes is None or ctx.dry_run:
        return
    with ctx.db.reading() as s:
        due = s.scalar(select(models.Outbox.id).where(
            models.Outbox.company_id == ctx.company_id, models.Outbox.kind == "fee",
            models.Outbox.status == S.planned, models.Outbox.due_at <= ctx.now,
            models.Outbox.dry_run.is_(False)).limit(1))
    if due is None:
        return
    try:
        ctx.notes.fee_tax_code()  # the codes are kept for the rest of the run
    except errors.PermanentFailure as exc:
        if exc.code == qbo_notes.NO_TAX_CODE:
            _fees_on_hold(ctx, exc)
    except errors.QboCollectorError as exc:
        log.warning("%s: tax codes not read before posting fees: %s", ctx.realm, exc.message)


def _fees_on_hold(ctx: _Ctx, exc: errors.PermanentFailure) -> None:
    """The run's fees wait for a tax code: note why and since when (the day the same cause first held a
    fee, which the held rows keep), and tell the owner — once for that cause and day (``alerts.fees_held``),
    due now so that this run's owner email carries it with the others."""
    cause = str(exc.context.get("cause") or qbo_notes.NO_FITTING_CODE)
    code = exc.context.get("tax_code")
    code = None if code is None else str(code)
    with ctx.db.session() as s:
        before = outbox.fees_held(s, ctx.company_id)
        since = before.since if before is not None and (before.cause, before.tax_code) == (cause, code) else ctx.today
        company = s.get(models.Company, ctx.company_id)
        assert company is not None
        alerts.fees_held(s, company, cause=cause, tax_code=code, since=since, at=ctx.now)
    ctx.fee_hold = _FeeHold(exc.message, {"cause": cause, "tax_code": code, "since": since.isoformat()})
    log.warning("%s: late fees on hold: %s", ctx.realm, exc.message)


def _hold_fee(ctx: _Ctx, row: models.Outbox) -> None:
    """A fee this run cannot post for want of a setting: left ``planned`` with its dedupe key (the planner
    counts its period as charged, so none is planned twice) and its reason; each run checks it again on
    fresh figures, and the first one that finds the code posts it. Nothing is written on the timeline,
    nothing told the customer: the owner's alert says it once."""
    assert ctx.fee_hold is not None
    with ctx.db.session() as s:
        outbox.set_status(s, row.id, S.planned, f"On hold: {ctx.fee_hold.reason}",
                          payload={**(row.payload or {}), outbox.HELD: ctx.fee_hold.held})
    ctx.summary.held += 1
    ctx.summary.held_reason = ctx.fee_hold.reason


def _notify_fee(ctx: _Ctx, company: models.Company, customer: models.Customer | None) -> bool:
    """Whether a posted fee is followed by an email to the customer (the policy's ``notify_customer``;
    not when the customer has no usable email or email is not configured)."""
    if customer is None or not (customer.email or "").strip() or customer.email_stopped:
        return False
    if ctx.channels.reason_missing("email"):
        return False
    try:
        policy = snapshot.policy_for(company, customer)
    except errors.InvalidInput:
        return False
    return policy.late_fees.notify_customer


def _owner_text(row: models.Outbox, language: str, locale: str) -> str:
    """The alert's sentence in the company's language: the one ``alerts`` wrote in it (``payload["said"]``); in
    English, as the program or the engine wrote it; in another, the row's sentence key, or the engine's alert
    told from its figures (``payload["sentence"]``)."""
    said = (row.payload or {}).get("said") or {}
    if isinstance(said, dict) and said.get(language):
        return str(said[language])
    if language == "en":
        return str((row.payload or {}).get("alert") or row.reason)
    return translation.reader(language, locale).action(timeline.action(row)["action"])


def _send_message(ctx: _Ctx, company: models.Company, customer: models.Customer | None, row: models.Outbox,
                  address: str, fresh: dict[str, dict[str, Any]], mirrors: dict[str, models.Invoice],
                  companions: Sequence[models.Outbox] = ()) -> None:
    """Write and send ``row``'s message. ``companions``: the other rows of this run the same message
    tells (``one_message_per_address``: statements or late-fee notices to one address, the owner's
    alerts); each row is still settled on its own (status, timeline, note), all with the one provider id."""
    provider = _provider(row.channel)
    assert provider is not None
    rows = [row, *companions]
    owner = row.channel.startswith("owner_")
    language = (company.language or "en")[:2] if owner or customer is None else snapshot.language_of(company, customer)
    language = language if language in ("en", "fr") else "en"
    country = snapshot.country_code(company.country) if owner or customer is None else snapshot.customer_region(company, customer)
    fees: dict[str, Money] = {}  # a late-fee notice: invoice → the fees this message tells of
    for r in rows:
        if r.template_key == "late_fee_notice" and r.amount is not None and r.invoice_ids:
            fee = Money(Decimal(r.amount), r.currency or company.currency or "USD")
            i = r.invoice_ids[0]
            fees[i] = fees[i].add(fee) if i in fees and fees[i].currency == fee.currency else fees.get(i, fee)
    shown: list[str] = []
    lines: list[templates.InvoiceLine] = []
    for r in rows:
        job = None if owner else ctx.jobs.get(r.customer_qbo_id or "")
        for i in r.invoice_ids or ():
            if (fresh.get(i) or mirrors.get(i)) and i not in shown:
                shown.append(i)
                lines.append(messages.invoice_line(fresh.get(i) or {}, mirrors.get(i), ctx.today, job=job,
                                                   fee=fees.get(i)))
    if companions:  # one statement: every invoice by due date, whichever customer it bills
        order = sorted(range(len(lines)), key=lambda k: (lines[k].due_date, len(lines[k].number), lines[k].number))
        shown, lines = [shown[k] for k in order], [lines[k] for k in order]
    try:
        policy = snapshot.policy_for(company, customer) if not owner else None
    except errors.InvalidInput:
        policy = None
    key = "owner_alert" if owner else (row.template_key or "reminder_overdue_gentle")
    try:
        context = messages.reminder_context(
            company=company, row=row, customer=customer, language=language, country=country, lines=lines,
            policy=policy, today=ctx.today,
            alert=_owner_text(row, language, messages.locale_for(language, country)) if owner else None,
            action_link=_action_link(ctx, row) if owner else None)
        if owner:  # each thing told, with the invoice it is about: several when the run told several
            line_of = dict(zip(shown, lines))
            context = context.replace(alerts=tuple(templates.OwnerAlert(
                alert=_owner_text(r, language, messages.locale_for(language, country)),
                action_link=_action_link(ctx, r, customer_page=True),
                customer_name=ctx.names.get(r.customer_qbo_id or "") or None,
                invoice=next((line_of[i] for i in r.invoice_ids or () if i in line_of), None)) for r in rows))
        told = {f.currency for f in fees.values()}
        if companions:
            if len(told) == 1:  # the notice's "a late fee of …": all the fees it tells of
                context = context.replace(fee=Money(sum((f.amount for f in fees.values()), Decimal(0)), told.pop()))
            context = context.replace(tone=max((str((r.payload or {}).get("tone") or "friendly") for r in rows),
                                               key=lambda t: TONES.index(t) if t in TONES else 0))
        rendered = messages.render(company, key, language, context)
        if provider == "sms":
            body = rendered.sms if rendered.sms else (rendered.subject if owner else None)
            if not body:
                raise errors.InvalidInput(f"The {key} template has no SMS text.", field="sms")
            link = lines[0].payment_link if lines and lines[0].payment_link else ""
            text = sms_channel.fit_sms(body, link, 2)
        else:
            text = rendered.text
            for part, said in (("subject", rendered.subject), ("text", text)):
                if not said.strip():  # SendGrid would refuse it; it says nothing about the address
                    raise errors.InvalidInput(f"The {key} template's {part} is empty for this customer.", field=part)
    except errors.InvalidInput as exc:
        unwritable = timeline.text("message.unwritable", error=timeline.error(exc.message))
        with ctx.db.session() as s:
            for r in rows:
                outbox.set_status(s, r.id, S.failed, unwritable)
                outbox.activity(s, ctx.company_id, "message.failed", unwritable, row=r)
        ctx.summary.statuses["failed"] += len(rows)
        return
    settings = company.settings or {}
    pdfs = ([(i, line.number, _version(i, fresh, mirrors)) for i, line in zip(shown, lines)][:PDF_ATTACH_MAX]
            if provider == "email" and not owner and settings.get("attach_invoice_pdf") else [])
    message = channel_base.OutboundMessage(
        outbox_id=str(row.id), realm=ctx.realm, to=address, text=text,
        subject=rendered.subject if provider == "email" else None,
        html=rendered.html if provider == "email" else None,
        reply_to=(settings.get("reply_to") or None) if provider == "email" else None,
        from_name=settings.get("sender_name") or company.name, language=language,
        status_callback_url=(f"{ctx.settings.public_url}/webhooks/twilio/status?outbox_id={row.id}"
                             if provider == "sms" else None),
        custom_args={"outbox_id": str(row.id), "realm": ctx.realm})
    together = f" in one message with row {row.id}"
    if ctx.dry_run:
        with ctx.db.session() as s:
            for r in rows:
                outbox.set_status(s, r.id, S.sent, f"Dry run: written for {address}{together if r is not row else ''}, "
                                  "not sent.", sent_at=utcnow(), provider_id="dry-run",
                                  payload={**(r.payload or {}), "preview": {
                                      "subject": message.subject, "text": text[:4000],
                                      **({"attachments": [pdf_filename(language, n) for _, n, _v in pdfs]}
                                         if pdfs else {})}})
        ctx.summary.statuses["sent"] += len(rows)
        ctx.summary.channels[row.channel or "?"] += len(rows)
        return
    try:
        channel = ctx.channels.get(provider)
    except errors.ConfigError as exc:
        ctx.channels.disabled[provider] = exc.message
        for r in rows:
            _cancel_unconfigured(ctx, r, timeline.text("cancel.misconfigured", channel=timeline.term("channel", provider),
                                                       error=timeline.error(exc.message)))
        return
    missing: dict[str, dict[str, str]] = {}
    if pdfs:
        attached, missing = _invoice_pdfs(ctx, pdfs, language)
        message = dataclasses.replace(message, attachments=tuple(attached))
    if not _mark_all_sending(ctx, rows):
        return
    # which sender texted which number: a reply to that sender is told to this company (events.record_twilio_inbound)
    # ``sent_as``: that sender as ``ContactBlock.sender`` names it, for a 21610 that comes back later
    sent_by = ({"sent_from": ctx.channels.sms_from, "sent_as": ctx.channels.sender, "sent_to": address}
               if provider == "sms" else {})
    try:
        receipt = send_once(channel, message, ctx.retry)
    except channel_base.OutcomeUnknown as exc:
        with ctx.db.session() as s:
            for r in rows:
                outbox.set_status(s, r.id, S.unknown, f"{exc.message} Provider events settle it, or decide on the "
                                  "outbox page." + (f" Sent{together}." if r is not row else ""),
                                  **({"payload": {**(r.payload or {}), **sent_by}} if sent_by else {}))
                outbox.activity(s, ctx.company_id, f"{provider}.unknown",
                                timeline.text("error", error=timeline.error(exc.message)), row=r)
        ctx.summary.statuses["unknown"] += len(rows)
        return
    except errors.TransientFailure as exc:
        with ctx.db.session() as s:
            for r in rows:
                outbox.set_status(s, r.id, S.planned, f"Nothing was sent ({exc.message}); the next run tries again.",
                                  **({"provider_id": None} if companions else {}))
        ctx.summary.deferred += len(rows)
        return
    except errors.ConfigError as exc:
        ctx.channels.disabled[provider] = exc.message
        with ctx.db.session() as s:
            for r in rows:
                outbox.set_status(s, r.id, S.planned, f"Nothing was sent: {exc.message}",
                                  **({"provider_id": None} if companions else {}))
                outbox.activity(s, ctx.company_id, f"{provider}.config",
                                timeline.text("error", error=timeline.error(exc.message)), row=r)
        ctx.summary.errors.append(exc.message)
        ctx.summary.deferred += len(rows)
        return
    except errors.PermanentFailure as exc:
        for r in rows:
            _permanent(ctx, r, provider, address, exc, owner)
        return
    what = "reminder" if row.kind == "reminder" else "alert"
    by = timeline.term("channel", provider)
    number_of = dict(zip(shown, (line.number for line in lines)))
    with ctx.db.session() as s:
        for r in rows:
            numbers = [number_of[i] for i in r.invoice_ids or () if i in number_of]
            sent = (timeline.text(f"{what}.sent", channel=by, invoices=timeline.invoices(numbers), num=len(numbers),
                                  address=address)
                    if numbers else timeline.text(f"{what}.sent.no_invoice", channel=by, address=address))
            # A status callback may have landed before this line: statuses only move forward.
            current = s.get(models.Outbox, r.id)
            seen = current.provider_status if current is not None else None
            status = (seen or "processed") if provider == "email" else channel_webhooks.advance(seen, receipt.raw_status)
            outbox.set_status(s, r.id, S.sent, f"Accepted by the provider ({receipt.raw_status})"
                              f"{together if r is not row else ''}.", sent_at=utcnow(),
                              provider_id=receipt.provider_id or None, provider_status=status[:32],
                              **({"payload": {**(r.payload or {}), **sent_by}} if sent_by else {}))
            outbox.activity(s, ctx.company_id, f"{provider}.sent", sent, row=r, data={
                "provider_id": receipt.provider_id,
                **({"with_row": row.id} if r is not row else {}),
                **({"with_rows": [c.id for c in companions]} if r is row and companions else {}),
                **({"attachments": [a.filename for a in message.attachments]} if message.attachments else {})})
            if not owner:
                _note(s, ctx, r, timeline.text("note.reminder.sent", channel=by, invoices=timeline.invoices(numbers),
                                               num=len(numbers)) if numbers else
                      timeline.text("note.reminder.sent.no_invoice", channel=by))
        by_reason: dict[str, list[str]] = {}  # one line per reason, each read in the reader's language
        for number, why in missing.items():
            by_reason.setdefault(json.dumps(why, sort_keys=True), []).append(number)
        for why_json, numbers_ in by_reason.items():
            why = json.loads(why_json)
            outbox.activity(s, ctx.company_id, "email.pdf_missing", timeline.text(
                "pdf.missing", invoices=timeline.invoices(numbers_), num=len(numbers_), error=why), row=row,
                data={"missing": {n: timeline.plain(why) for n in numbers_}})
    ctx.summary.statuses["sent"] += len(rows)
    ctx.summary.channels[row.channel or "?"] += len(rows)


def _action_link(ctx: _Ctx, row: models.Outbox, *, customer_page: bool = False) -> str | None:
    """Where the owner acts on an alert: the link it carries, else (``customer_page``) its customer's page."""
    link = (row.payload or {}).get("action_link")
    if link:
        return f"{ctx.settings.public_url}{link}"
    if customer_page and row.customer_qbo_id and ctx.settings.public_url:
        return f"{ctx.settings.public_url}/companies/{ctx.realm}/customers/{row.customer_qbo_id}"
    return None


def _mark_all_sending(ctx: _Ctx, rows: Sequence[models.Outbox]) -> bool:
    """``_mark_sending`` for the rows of one message, all or none: when another run took one of them
    first, the others are given back (still planned) and nothing goes out from this run."""
    if len(rows) == 1:
        return _mark_sending(ctx, rows[0])
    with ctx.db.session() as s:
        taken = [outbox.claim(s, r) for r in rows]
        if not all(taken):
            s.rollback()
            log.warning("outbox rows %s: one was taken by another run; none sent by this one", [r.id for r in rows])
            return False
        # the others name the row whose provider events settle them, whatever happens next (a crash included)
        s.execute(update(models.Outbox).where(models.Outbox.id.in_([r.id for r in rows[1:]]))
                  .values(provider_id=f"{outbox.WITH_ROW}{rows[0].id}").execution_options(synchronize_session=False))
    return True


def pdf_filename(language: str, number: str) -> str:
    """``Invoice-1001.pdf`` in the customer's language; a character a mail program or a file system
    would choke on (``/``, quotes, spaces…) becomes ``_``."""
    safe = re.sub(r"[^\w.-]", "_", number, flags=re.UNICODE).strip("._")[:60] or "invoice"
    return translation.reader(language, language).gettext(translation.ATTACHMENT_NAME, number=safe)


def _version(invoice_id: str, fresh: dict[str, dict[str, Any]], mirrors: dict[str, models.Invoice]) -> str | None:
    """The invoice's SyncToken as this run last read it: it changes with every edit, a fee line included."""
    token = (fresh.get(invoice_id) or {}).get("SyncToken")
    if token is None and invoice_id in mirrors:
        token = mirrors[invoice_id].sync_token
    return None if token is None else str(token)


def _invoice_pdfs(ctx: _Ctx, invoices: list[tuple[str, str, str | None]], language: str
                  ) -> tuple[list[channel_base.Attachment], dict[str, dict[str, str]]]:
    """The PDFs QuickBooks makes of ``invoices`` (Id, number, SyncToken), one ``GET /invoice/<id>/pdf``
    each — one per run and version of an invoice: a statement and a fee notice naming the same
    unchanged invoice share it —, and for each one not attached, why (number → ``timeline.error``).
    The email goes either way: the invoices and their payment links are in its text."""
    attached: list[channel_base.Attachment] = []
    missing: dict[str, dict[str, str]] = {}
    size = 0
    for invoice_id, number, version in invoices:
        content = ctx.pdf_cache.get((invoice_id, version)) if version is not None else None
        why = None
        if content is None:
            content, why = _invoice_pdf(ctx, invoice_id, number)
            if content is not None and version is not None:
                _keep_pdf(ctx, (invoice_id, version), content)
        if content is not None and size + len(content) > PDF_ATTACH_BYTES:
            content, why = None, timeline.error(translation.PDF_TOO_LARGE)  # this email's limit only
        if content is None:
            missing[number] = why or timeline.error(translation.PDF_NOT_MADE)
            ctx.summary.pdfs_missing += 1
            log.warning("invoice PDF not attached realm=%s invoice=%s: %s", ctx.realm, invoice_id,
                        timeline.plain(missing[number]))
            continue
        size += len(content)
        attached.append(channel_base.Attachment(pdf_filename(language, number), content))
        ctx.summary.pdfs_attached += 1
    return attached, missing


PDF_CACHE_BYTES = 32 * 1024 * 1024  # a run keeps this much of the PDFs it downloaded, the newest


def _keep_pdf(ctx: _Ctx, key: tuple[str, str], content: bytes) -> None:
    cache = ctx.pdf_cache
    cache[key] = content
    ctx.pdf_cache_bytes += len(content)
    while ctx.pdf_cache_bytes > PDF_CACHE_BYTES and len(cache) > 1:
        ctx.pdf_cache_bytes -= len(cache.popitem(last=False)[1])


def _invoice_pdf(ctx: _Ctx, invoice_id: str, number: str) -> tuple[bytes | None, dict[str, str] | None]:
    """One invoice's PDF from QuickBooks, or why not (``timeline.error``: one of the program's sentences,
    with QuickBooks' own words in it for a refusal). A failure is remembered for the rest of the run
    (a statement and a fee notice of one run may name the same invoice): QuickBooks is asked once."""
    if invoice_id in ctx.pdf_failed:
        return None, ctx.pdf_failed[invoice_id]
    if ctx.qbo is None:
        return None, timeline.error(translation.PDF_NOT_CONNECTED)
    try:
        content = ctx.qbo.call(f"download the PDF of invoice {number}",
                               lambda qb: qb.download_pdf("Invoice", invoice_id), attempts=PDF_ATTEMPTS)
    except errors.TransientFailure:
        why = timeline.error(translation.PDF_NOT_MADE)
    except errors.QboCollectorError as exc:
        why = timeline.error(translation.PDF_REFUSED, detail=str(exc.context.get("said") or exc.message))
    else:
        if isinstance(content, bytes) and content.startswith(b"%PDF"):
            return content, None
        why = timeline.error(translation.PDF_NOT_PDF)
    ctx.pdf_failed[invoice_id] = why
    return None, why


def _permanent(ctx: _Ctx, row: models.Outbox, provider: str, address: str, exc: errors.PermanentFailure,
               owner: bool) -> None:
    code = exc.code
    block: str | None = None
    if provider == "email" and code == "invalid_address":  # SendGrid named the recipient (``email``)
        block = "invalid"
    elif provider == "sms" and isinstance(code, int) and code in BLOCKING_SMS_CODES:
        block = BLOCKING_SMS_CODES[code] if code != 21610 else "21610"
    # 21610: the person opted out of this sender's texts, not of every company's
    sender = ctx.channels.sender if block == "21610" else ""
    with ctx.db.session() as s:
        refused = timeline.text("send.refused", error=timeline.error(exc.message))
        outbox.set_status(s, row.id, S.failed, refused)
        outbox.activity(s, ctx.company_id, f"{provider}.failed", refused, row=row, data={"code": code})
        if block and not owner:
            block_contact(s, provider, address, block, company_id=ctx.company_id, customer_id=row.customer_qbo_id,
                          sender=sender)
    ctx.summary.statuses["failed"] += 1


def block_contact(s: Any, channel: str, address: str, reason: str, *, company_id: int | None = None,
                  customer_id: str | None = None, sender: str = "") -> None:
    """Stop ``channel`` to ``address`` for every customer using it (bounce, spam report, STOP, invalid number);
    ``sender``: for the companies texting from that sender only (``ContactBlock``)."""
    addr = address.strip().lower() if channel == "email" else address.strip()
    insert = outbox._insert(s, models.ContactBlock.__table__)
    s.execute(insert.values(channel=channel, address=addr, reason=reason[:64], at=utcnow(), sender=sender)
              .on_conflict_do_nothing(index_elements=["channel", "address", "sender"]))
    column = models.Customer.email_stopped if channel == "email" else models.Customer.sms_stopped
    q = select(models.Customer)
    if company_id is not None and customer_id is not None:
        q = q.where(models.Customer.company_id == company_id, models.Customer.qbo_id == customer_id)
    elif channel == "email":
        # equality, not ILIKE: "_" and "%" are characters of an address, not patterns
        q = q.where(func.lower(func.trim(models.Customer.email)) == addr)
    else:
        q = None  # numbers are matched by the caller (they are stored as typed, not E.164)
    if q is not None:
        for customer in s.scalars(q):
            setattr(customer, column.key, reason[:64])


# --- notes write-back --------------------------------------------------------------------

def _pause_words(p: models.Pause) -> tuple[timeline.Text, timeline.Text]:
    """The notes lines of a pause: when it was recorded, and when it ended."""
    if p.kind == "promise":
        amount = timeline.money(p.amount if p.amount is not None else "", p.currency)
        until = timeline.date(p.until_on) if p.until_on else "further notice"
        return timeline.text("note.promise", amount=amount, until=until), timeline.text("note.promise.end")
    if p.kind in ("dispute", "plan"):
        opened = (timeline.text(f"note.{p.kind}.invoices", invoices=timeline.invoices(p.invoice_ids)) if p.invoice_ids
                  else timeline.text(f"note.{p.kind}"))
        return opened, timeline.text(f"note.{p.kind}.end")
    opened = (timeline.text("note.manual", until=timeline.date(p.until_on)) if p.until_on
              else timeline.text("note.manual.open"))
    return opened, timeline.text("note.manual.end")


def _pause_notes(ctx: _Ctx) -> None:
    """Status changes a person recorded (promise, dispute, plan, pause) go to the notes section too."""
    prefix = f"{ctx.realm}:note:pause:"
    with ctx.db.session() as s:
        done = set(s.scalars(select(models.Outbox.dedupe_key).where(
            models.Outbox.company_id == ctx.company_id, models.Outbox.dedupe_key.startswith(prefix))))
        for p in s.scalars(select(models.Pause).where(models.Pause.company_id == ctx.company_id)):
            opened, closed = _pause_words(p)
            events = [(f"{prefix}{p.id}", p.start_on, opened)]
            if p.resolved_on is not None:
                events.append((f"{prefix}{p.id}:end", p.resolved_on, closed))
            for key, on, text in events:
                if key not in done:
                    outbox.enqueue(s, ctx.company_id, dedupe_key=key, kind="note", channel="qbo_notes", reason=text,
                                   customer_id=p.customer_qbo_id, invoice_ids=p.invoice_ids or (),
                                   payload={"line": f"{on.isoformat()} {text.english()}"})


def _write_notes(ctx: _Ctx) -> None:
    if ctx.notes is None:
        return
    with ctx.db.session() as s:
        # claimed in id order, rows another run holds skipped and rows it took meanwhile left to it:
        # two overlapping runs (one outlived its lease) neither write a note twice nor wait on each other
        # (PostgreSQL's "deadlock detected"); SQLite has one writer at a time and ignores FOR UPDATE
        candidates = list(s.scalars(select(models.Outbox).where(
            models.Outbox.company_id == ctx.company_id, models.Outbox.kind == "note",
            models.Outbox.status == S.planned).order_by(models.Outbox.id).with_for_update(skip_locked=True)))
        rows = [r for r in candidates if outbox.claim(s, r)]
        if not rows:
            return
        rows.reverse()  # a customer's new lines newest first
        ids = sorted({r.customer_qbo_id for r in rows if r.customer_qbo_id})
        customers = {c.qbo_id: (c.notes, c.sync_token) for c in snapshot._chunked(s, models.Customer, ctx.company_id, ids)}
    by_customer: dict[str, list[models.Outbox]] = collections.defaultdict(list)
    for r in rows:
        by_customer[r.customer_qbo_id or ""].append(r)
    updates = [qbo_notes.NoteUpdate(cid, [str((r.payload or {}).get("line") or r.reason) for r in mine],
                                    *customers.get(cid, (None, None)))
               for cid, mine in by_customer.items() if cid in customers]
    try:
        result = ctx.notes.write_notes(updates)
    except errors.QboCollectorError as exc:
        with ctx.db.session() as s:
            for r in sorted(rows, key=lambda r: r.id):
                outbox.set_status(s, r.id, S.planned, f"Notes not written yet: {exc.message}")
        ctx.summary.errors.append(f"Customer notes not written: {exc.message}")
        return
    ctx.summary.note_batches += result.batches
    ctx.summary.notes_written += len(result.written)
    with ctx.db.session() as s:
        # every transaction locks customers in id order, then outbox rows in id order: two overlapping runs
        # (one outlived its lease) never each wait for the other (PostgreSQL's "deadlock detected")
        for cid, (notes_text, token) in sorted(result.written.items()):
            s.execute(models.Customer.__table__.update().where(
                models.Customer.company_id == ctx.company_id, models.Customer.qbo_id == cid)
                .values(notes=notes_text, sync_token=token,
                        changed_at=models.Customer.changed_at))  # our own notes change no plan
        for r in sorted(rows, key=lambda r: r.id):
            cid = r.customer_qbo_id or ""
            if cid in result.written:
                outbox.set_status(s, r.id, S.sent, "Written to the customer's notes in QuickBooks.",
                                  sent_at=utcnow(), provider_id=cid)
            elif cid in result.failed and "try again" not in result.failed[cid]:
                outbox.set_status(s, r.id, S.failed, result.failed[cid])
            else:
                outbox.set_status(s, r.id, S.planned, result.failed.get(cid, "The customer is not in the mirror."))


# --- fees waived -------------------------------------------------------------------------

def waive_fee(settings: config.Settings, db: Database, vault: Vault, outbox_id: int, user_id: int | None) -> str | None:
    """Undo a posted late fee in QuickBooks and record it (the settings page's "waive" button).

    A fee invoice is voided; a fee posted as a line of the original invoice (``late_fee_mode``
    ``line``) has that line taken off. Returns ``"invoice"`` or ``"line"`` for what was done,
    None when the fee was already waived.
    """
    with db.session() as s:
        row = s.get(models.Outbox, outbox_id)
        if row is None or row.kind != "fee":
            raise errors.InvalidInput(f"Outbox row {outbox_id} is not a late fee.", field="outbox_id")
        if row.status != S.sent or not row.provider_id or row.provider_id == "dry-run":
            raise errors.InvalidInput("This fee was never posted to QuickBooks; nothing to void.", field="outbox_id")
        if (row.payload or {}).get("waived"):
            return None
        company = s.get(models.Company, row.company_id)
        assert company is not None
        realm, provider_id, key = company.realm_id, row.provider_id, row.dedupe_key
        amount, invoice_id = Decimal(row.amount or 0), (row.invoice_ids or [""])[0]
    writer = qbo_notes.QboNotes(qbo_client.QboClient(settings, db, vault, realm))
    line = provider_id.startswith("line:")
    if line:
        try:
            writer.remove_fee_line(key=key, invoice_id=invoice_id, amount=amount)
        except errors.PermanentFailure as exc:
            log.warning("fee %s: the line could not be taken off invoice %s: %s", outbox_id, invoice_id, exc.message)
            raise
    else:
        writer.void_fee(provider_id)
    with db.session() as s:
        row = s.get(models.Outbox, outbox_id)
        assert row is not None
        row.payload = {**(row.payload or {}), "waived": True, "waived_by": user_id}
        fee = timeline.money(row.amount if row.amount is not None else "", row.currency)
        text = (timeline.text("fee.waived.line", amount=fee, invoice=invoice_id) if line else
                timeline.text("fee.waived.voided", amount=fee, fee_invoice=provider_id))
        outbox.activity(s, row.company_id, "fee.waived", text, row=row, data={"user_id": user_id})
        today = dt.date.today()
        outbox.enqueue(s, row.company_id, dedupe_key=f"{realm}:note:waive:{row.id}", kind="note", channel="qbo_notes",
                       reason=text, customer_id=row.customer_qbo_id, invoice_ids=row.invoice_ids or (),
                       payload={"line": f"{today.isoformat()} {text.english()}"})
    return "line" if line else "invoice"


def run_all(settings: config.Settings, db: Database, vault: Vault, *, now: dt.datetime | None = None,
            dry_run: bool = False, progress: Callable[[RunSummary], None] | None = None) -> list[RunSummary]:
    """``run_company`` for every connected company; one company's failure does not stop the others."""
    with db.session() as s:
        realms = list(s.scalars(select(models.Company.realm_id).order_by(models.Company.id)))
    out = []
    for realm in realms:
        try:
            summary = run_company(settings, db, vault, realm, now=now, dry_run=dry_run)
        except errors.QboCollectorError as exc:
            summary = RunSummary(realm=realm)
            summary.errors.append(exc.message)
        out.append(summary)
        if progress is not None:
            progress(summary)
    return out
