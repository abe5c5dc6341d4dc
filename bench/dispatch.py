"""Dispatch at volume: about 10,000 due actions across 100 companies, against the local sandbox.

Prints measured figures only (no assertion on time):
- the QuickBooks calls used for the freshness checks and the notes write-back, beside the
  optimum (⌈n/1000⌉ queries per company's batch of n invoices, ⌈c/30⌉ batch calls per
  company's c customers with new notes lines);
- messages per second excluding provider latency (the time spent inside the SendGrid and
  Twilio calls is measured and taken out), and overall.

    .venv/bin/python bench/dispatch.py [--companies 100] [--customers 12] [--invoices 76] [--attach-pdf] [--families]

(76 invoices per company give about 10,000 due actions on the sandbox's generated books; the
count follows the generator, so it is printed, not assumed.)

Set BENCH_DATABASE_URL to a postgresql+psycopg:// URL to run on PostgreSQL (default: SQLite
in a temporary folder).
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import logging

import requests
from sqlalchemy import select

from qbo_collector import config, dispatch, rules
from qbo_collector.db import migrate, models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.dispatch import outbox
from qbo_collector.dispatch import run as dispatch_run
from qbo_collector.sandbox import server
from qbo_collector.sync import auth, limiter
from qbo_collector.sync import client as qbo_client
from qbo_collector.sync import run as sync_run

UNLIMITED = limiter.RateLimiter(windows=(limiter.Window(1_000_000, 1.0),))
FAST = qbo_client.RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--customers", type=int, default=12)
    parser.add_argument("--invoices", type=int, default=76)
    parser.add_argument("--attach-pdf", action="store_true",
                        help="attach the invoice PDFs to the email reminders (one QuickBooks download each)")
    parser.add_argument("--families", action="store_true",
                        help="statements, and every customer of a company a job billed with its first customer (a "
                             "property manager and its units): one message per address and channel")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    home = Path(tempfile.mkdtemp(prefix="qbo-bench-dispatch-"))
    sb = server.Sandbox(seed=5, rate_limit_per_second=None, rate_limit_per_minute=None, batch_limit_per_minute=None)
    realms = [sb.add_company(server.CompanySpec(name=f"Bench {n:03d}", customers=args.customers, invoices=args.invoices,
                                                payments=args.invoices // 4, seed=1000 + n, timezone="America/Chicago"))
              for n in range(args.companies)]
    if args.families:
        for realm in realms:
            head, *units = sorted(sb.intuit.entities(realm, "Customer"), key=lambda c: int(c["Id"]))
            for unit in units:
                sb.intuit.update(realm, "Customer", unit["Id"], Job=True, ParentRef={"value": head["Id"]},
                                 BillWithParent=True)
    sb.start()
    try:
        settings = config.load(
            env_file=None, qbo_collector_home=home,
            qbo_collector_database_url=os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{home / 'bench.db'}",
            intuit_client_id=sb.client_id, intuit_client_secret=sb.client_secret, intuit_environment=sb.discovery_url,
            intuit_api_base_url=sb.api_base_url, intuit_redirect_uri="http://127.0.0.1:9/connect/callback",
            sendgrid_api_key=sb.sendgrid.api_key, sendgrid_api_host=sb.sendgrid_host,
            sendgrid_from_email="billing@bench.example", twilio_account_sid=sb.twilio.account_sid,
            twilio_auth_token=sb.twilio.auth_token, twilio_from_number="+15017122661",
            twilio_api_base_url=sb.twilio_base_url)
        db = Database(settings.database_url)
        migrate.upgrade(db)
        vault = Vault(settings.secret_key())
        policy = rules.PRESETS["firm"].model_dump(mode="json")
        policy["send_window"] = {"hour": 9, "minute": 0, "weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False}
        policy["group_by_customer"] = args.families
        started = time.perf_counter()
        for realm in realms:
            sb.next_realm = realm
            url, _state = auth.begin(settings, db, origin="cli")
            location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
            query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
            auth.complete(settings, db, vault, state=query.get("state"), code=query.get("code"),
                          realm_id=query.get("realmId"), error=None)
            sync_run.sync_company(settings, db, vault, realm, policy=FAST, limiter=UNLIMITED)
        with db.session() as s:
            for company in s.scalars(select(models.Company)):
                company.policy = policy
                company.settings = {"owner_email": "owner@bench.example", "sender_name": "Bench",
                                    "attach_invoice_pdf": args.attach_pdf}
        print(f"setup: {len(realms)} companies connected and synced in {time.perf_counter() - started:.1f} s")

        # Time spent inside the providers' calls (HTTP to the stand-ins), measured around each call.
        provider_time = [0.0]
        real_send = dispatch_run.send_once

        def timed_send(channel, message, retry):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return real_send(channel, message, retry)
            finally:
                provider_time[0] += time.perf_counter() - t0

        qbo_time = [0.0]
        real_call = qbo_client.QboClient.call

        def timed_call(self, action, fn, **kwargs):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return real_call(self, action, fn, **kwargs)
            finally:
                qbo_time[0] += time.perf_counter() - t0

        dispatch_run.send_once = timed_send  # type: ignore[assignment]
        qbo_client.QboClient.call = timed_call  # type: ignore[method-assign]
        queries0, batches0 = sb.log.count("intuit", "query"), sb.log.count("intuit", "batch")
        pdfs0, mails0 = sb.log.count("intuit", "pdf:invoice"), len(sb.sendgrid.messages)
        texts0 = len(sb.twilio.messages)
        t0 = time.perf_counter()
        summaries = []
        for realm in realms:
            summaries.append(dispatch.run_company(settings, db, vault, realm, qbo_policy=FAST, limiter=UNLIMITED,
                                                  now=_noon(sb)))
        elapsed = time.perf_counter() - t0
        dispatch_run.send_once = real_send  # type: ignore[assignment]
        qbo_client.QboClient.call = real_call  # type: ignore[method-assign]

        with db.session() as s:
            rows = list(s.scalars(select(models.Outbox)))
        due = [r for r in rows if r.kind != "note"]
        statuses = collections.Counter(r.status.value for r in due)
        per_company_invoices: dict[int, set[str]] = collections.defaultdict(set)
        per_company_noted: dict[int, set[str]] = collections.defaultdict(set)
        for r in due:
            per_company_invoices[r.company_id].update(r.invoice_ids or ())
        for r in rows:
            if r.kind == "note" and r.status.value == "sent":
                per_company_noted[r.company_id].add(r.customer_qbo_id or "")
        fresh_used = sum(s.freshness_queries for s in summaries)
        credit_used = sum(s.credit_reads for s in summaries)
        fresh_opt = sum(math.ceil(len(ids) / 1000) for ids in per_company_invoices.values())
        notes_used = sum(s.note_batches for s in summaries)
        notes_opt = sum(math.ceil(len(c) / 30) for c in per_company_noted.values())
        # what the providers took (one statement may settle several rows: --families)
        messages = len(sb.sendgrid.messages) - mails0 + len(sb.twilio.messages) - texts0
        fees = sum(s.channels["qbo_fee"] for s in summaries)
        api = sum(s.api_calls for s in summaries)
        print(f"due actions: {len(due)} across {len(realms)} companies ({dict(statuses)})")
        print(f"freshness checks: {fresh_used} QuickBooks queries for {sum(len(v) for v in per_company_invoices.values())} "
              f"invoices; optimum ⌈n/1000⌉ per company = {fresh_opt}")
        print(f"payments and credit memos read before planning: {credit_used} CDC calls; optimum one per company "
              f"= {len(realms)}")
        print(f"notes write-back: {notes_used} batch calls for {sum(len(v) for v in per_company_noted.values())} "
              f"customers; optimum ⌈n/30⌉ per company = {notes_opt}")
        pdf_calls = sb.log.count("intuit", "pdf:invoice") - pdfs0
        mails = sb.sendgrid.messages[mails0:]
        attached = [a for m in mails for a in m.get("attachments") or ()]
        emailed = [r for r in due if r.channel == "email" and r.status.value == "sent"] if args.attach_pdf else []
        named = sum(min(len(r.invoice_ids or ()), dispatch_run.PDF_ATTACH_MAX) for r in emailed)
        # the default fee mode posts fees as invoices of their own: a named invoice does not change in the run
        distinct = len({(r.company_id, i) for r in emailed for i in (r.invoice_ids or ())[:dispatch_run.PDF_ATTACH_MAX]})
        print(f"invoice PDFs: {pdf_calls} downloads for {len(attached)} attachments on "
              f"{sum(1 for m in mails if m.get('attachments'))} of {len(mails)} emails "
              f"({sum(len(a['content']) for a in attached) / 1e6:.1f} MB); the emails name {named} invoices, "
              f"{distinct} different ones: optimum one download per invoice (and version) = {distinct}")
        alerts = [r for r in due if r.channel in ("owner_email", "owner_sms") and r.status.value == "sent"]
        print(f"owner alerts: {len(alerts)} alert rows told in {len({(r.channel, r.provider_id) for r in alerts})} "
              f"provider messages ({sum(1 for m in mails if m['to'] == 'owner@bench.example')} emails to the owners); "
              f"optimum one per company and channel = {len({(r.company_id, r.channel) for r in alerts})}")
        if args.families:
            sent = [r for r in due if r.template_key == "statement" and r.status.value == "sent"
                    and r.channel in ("email", "sms")]
            by_id = {r.id: r for r in sent}
            ids = {(r.company_id, r.channel, by_id[lead].provider_id if (lead := outbox.lead_of(r)) else r.provider_id)
                   for r in sent}
            print(f"statements: {len(sent)} statement rows sent as {len(ids)} provider messages; optimum one per "
                  f"address and channel = {len({(r.company_id, r.channel) for r in sent})} "
                  f"({len(mails)} emails and {len(sb.twilio.messages) - texts0} texts in all, late-fee notices included)")
        print(f"other QuickBooks calls: {api - fresh_used - credit_used - notes_used - pdf_calls} (late-fee invoices: {fees}, 'Late fee' item "
              f"lookups/creations, 5010 re-reads); sandbox log: {sb.log.count('intuit', 'query') - queries0} queries, "
              f"{sb.log.count('intuit', 'batch') - batches0} batches")
        print(f"run: {elapsed:.1f} s wall, {provider_time[0]:.1f} s inside SendGrid/Twilio calls, "
              f"{qbo_time[0]:.1f} s inside QuickBooks calls (sandbox on loopback)")
        print(f"messages: {messages} sent; {messages / max(elapsed - provider_time[0], 1e-9):.0f} messages/s excluding "
              f"provider latency, {messages / elapsed:.0f} messages/s overall; "
              f"{len(due) / max(elapsed, 1e-9):.0f} actions/s overall, "
              f"{len(due) / max(elapsed - provider_time[0] - qbo_time[0], 1e-9):.0f} actions/s excluding every "
              f"network call")
    finally:
        sb.stop()
    return 0


def _noon(sb: server.Sandbox):  # type: ignore[no-untyped-def]
    import datetime as dt
    import zoneinfo

    zone = zoneinfo.ZoneInfo("America/Chicago")
    today = sb.clock.now().astimezone(zone).date()
    return dt.datetime(today.year, today.month, today.day, 12, tzinfo=zone).astimezone(dt.timezone.utc)


if __name__ == "__main__":
    raise SystemExit(main())
