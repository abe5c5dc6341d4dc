"""Dashboard render time for a company with 100,000 invoices (server time, through the Flask app).

Builds one company: 2,000 customers, 100,000 invoices over two years (about 70 % paid, each by
one payment), and 5,000 reminders sent in the last 90 days. Then logs in and renders
``/companies/<realm>/dashboard``: after a sync whose figures the scheduler refreshed
(``dashboard.refresh``, timed apart: it runs in the background) in a process with nothing in
memory; with the mirror unchanged; and, for comparison, with no scheduler at all (nothing
stored). Then where the time goes (aging, DSO and trend, expected cash, late customers,
reminders, charts and template), and the aging-by-customer CSV download.

    .venv/bin/python bench/web.py                          # SQLite in a temporary directory
    .venv/bin/python bench/web.py --invoices 20000         # smaller, same shape
    .venv/bin/python bench/web.py --database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres

Figures are measured in this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_collector import clock, config, dashboard, reports, users  # noqa: E402
from qbo_collector.db import migrate, models  # noqa: E402
from qbo_collector.db.session import Database  # noqa: E402

REALM = "9130000000000001"
TODAY = dt.date(2026, 11, 23)


def build(db: Database, *, invoices: int, customers: int, reminders: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with db.session() as s:
        company = models.Company(realm_id=REALM, name="Bench Plomberie SAS", currency="EUR", language="fr",
                                 country="FR", timezone="Europe/Paris", settings={"dso_target": "45"})
        s.add(company)
        s.flush()
        cid = company.id
        s.execute(insert(models.Customer), [
            {"company_id": cid, "qbo_id": str(c), "display_name": f"Client {c:05d}", "currency": "EUR",
             "email": f"client{c}@example.com", "balance": Decimal(0)} for c in range(1, customers + 1)])
        rows, payments, links = [], [], []
        for n in range(1, invoices + 1):
            issued = TODAY - dt.timedelta(days=rng.randint(0, 730))
            due = issued + dt.timedelta(days=30)
            total = Decimal(rng.randint(5000, 500000)) / 100
            customer = str(rng.randint(1, customers))
            paid = due < TODAY - dt.timedelta(days=rng.randint(-30, 200)) and rng.random() < 0.92
            rows.append({"company_id": cid, "qbo_id": str(n), "doc_number": f"F{n:06d}", "customer_qbo_id": customer,
                         "txn_date": issued, "due_date": due, "total": total, "balance": Decimal(0) if paid else total,
                         "currency": "EUR", "status": "paid" if paid else "open"})
            if paid:
                pay_day = min(due + dt.timedelta(days=rng.randint(-20, 90)), TODAY)
                payments.append({"company_id": cid, "qbo_id": f"P{n}", "customer_qbo_id": customer, "txn_date": pay_day,
                                 "total": total, "currency": "EUR"})
                links.append({"company_id": cid, "payment_qbo_id": f"P{n}", "invoice_qbo_id": str(n), "amount": total})
        for chunk in range(0, len(rows), 5000):
            s.execute(insert(models.Invoice), rows[chunk:chunk + 5000])
        for chunk in range(0, len(payments), 5000):
            s.execute(insert(models.Payment), payments[chunk:chunk + 5000])
            s.execute(insert(models.PaymentLink), links[chunk:chunk + 5000])
        open_ids = [r["qbo_id"] for r in rows if r["status"] == "open"] or ["1"]
        sent = []
        for k in range(reminders):
            at = dt.datetime.combine(TODAY - dt.timedelta(days=rng.randint(0, 89)), dt.time(8), dt.timezone.utc)
            invoice = rng.choice(open_ids + [r["qbo_id"] for r in rows[:2000]])
            sent.append({"company_id": cid, "dedupe_key": f"{REALM}:bench:{k}", "kind": "reminder", "channel": "email",
                         "status": "sent", "customer_qbo_id": "1", "invoice_ids": [invoice], "due_at": at, "sent_at": at,
                         "reason": "bench", "payload": {}, "attempts": 1, "dry_run": False, "created_at": at,
                         "updated_at": at})
        for chunk in range(0, len(sent), 5000):
            s.execute(insert(models.Outbox), sent[chunk:chunk + 5000])
        users.add_user(s, "bench@example.com", "correct horse battery", admin=True)
    print(f"  built: {invoices:,} invoices ({len(payments):,} paid), {customers:,} customers, {reminders:,} reminders")


def _record_pauses(db: Database, customers: int) -> int:
    kinds = ("promise", "plan", "dispute")
    with db.session() as s:
        cid = s.scalar(text("SELECT id FROM company WHERE realm_id = :r"), {"r": REALM})
        rows = []
        for n, customer in enumerate(range(1, customers + 1, 10)):
            kind = kinds[n % 3]
            day = lambda k: TODAY + dt.timedelta(days=k)  # noqa: E731
            rows.append({"company_id": cid, "kind": kind, "customer_qbo_id": str(customer), "invoice_ids": [],
                         "start_on": day(-3), "until_on": day(10) if kind == "promise" else day(60) if kind == "plan" else None,
                         "amount": Decimal("500.00") if kind == "promise" else None, "currency": "EUR", "note": "",
                         "data": {"instalments": [{"due_on": day(k).isoformat(), "amount": "400.00"} for k in (0, 30, 60)]}
                         if kind == "plan" else {}, "created_at": dt.datetime.now(dt.timezone.utc)})
        s.execute(insert(models.Pause), rows)
    return len(rows)


def _record_credits(db: Database, customers: int) -> int:
    """A credit memo with 100 € left for one customer in twenty (half of them also paused above)."""
    with db.session() as s:
        cid = s.scalar(text("SELECT id FROM company WHERE realm_id = :r"), {"r": REALM})
        rows = [{"company_id": cid, "qbo_id": f"CM{customer}", "customer_qbo_id": str(customer), "txn_date": TODAY,
                 "total": Decimal("100.00"), "balance": Decimal("100.00"), "currency": "EUR"}
                for customer in range(1, customers + 1, 20)] + [
                {"company_id": cid, "qbo_id": f"CM{customer}", "customer_qbo_id": str(customer), "txn_date": TODAY,
                 "total": Decimal("100.00"), "balance": Decimal("100.00"), "currency": "EUR"}
                for customer in range(6, customers + 1, 20)]
        s.execute(insert(models.CreditMemo), rows)
    return len(rows)


def _time_expected_cash(db: Database, label: str, note: str) -> None:
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == REALM))
        _first, median = _time(lambda: dashboard.expected_cash(s, company, TODAY), 5)
        print(f"    {label:<28} {median:7.1f}   ({note})")


def _time(fn, repeat: int = 5) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return runs[0], statistics.median(runs[1:] or runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--reminders", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="qbo-bench-web-"))
    url = args.database_url
    cleanup = None
    if url and url.startswith("postgresql"):
        name = f"qbo_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = url.rsplit("/", 1)[0] + f"/{name}"

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    url = url or f"sqlite:///{home / 'bench.db'}"
    print(f"dashboard bench on {url.split('@')[-1] if '@' in url else url}")
    db = Database(url)
    migrate.upgrade(db)
    started = time.perf_counter()
    build(db, invoices=args.invoices, customers=args.customers, reminders=args.reminders)
    if url.startswith("postgresql"):
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # as autovacuum would have done on a live database
    print(f"  data written in {time.perf_counter() - started:.1f} s")

    clock.now = lambda: dt.datetime(TODAY.year, TODAY.month, TODAY.day, 10, tzinfo=dt.timezone.utc)  # type: ignore[assignment]
    from web import create_app
    from tests.integration.web_helpers import login

    settings = config.load(env_file=None, qbo_collector_home=home, qbo_collector_database_url=url)
    app = create_app(settings, db=db)
    client = app.test_client()
    assert login(client, "bench@example.com").status_code == 302
    path = f"/companies/{REALM}/dashboard"

    def render() -> None:
        response = client.get(path)
        assert response.status_code == 200, response.status_code
        render.size = len(response.data)  # type: ignore[attr-defined]

    def unstore() -> None:
        with db.session() as s:
            s.execute(text("DELETE FROM dashboard_figures"))

    cold_runs = []
    for _ in range(3):  # nothing stored, nothing in memory: every figure aggregated from the mirror, every chart drawn
        unstore()
        dashboard.forget()
        cold_runs.append(_time(render, 1)[0])
    cold = statistics.median(cold_runs)
    refresh_runs, stored_runs, synced_runs = [], [], []
    for n in range(3):
        # a sync changed the mirror; the scheduler refreshed the figures in the background (timed
        # apart: the person never waits for it); then a web process that has nothing in memory renders
        with db.session() as s:
            s.execute(text("UPDATE invoice SET synced_at = :now WHERE qbo_id = :id"),
                      {"now": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=n + 1),
                       "id": str(n + 1)})
        dashboard.forget()
        started = time.perf_counter()
        assert dashboard.refresh(db, REALM, TODAY)
        refresh_runs.append((time.perf_counter() - started) * 1000)
        dashboard.forget()
        stored_runs.append(_time(render, 1)[0])
    stored = statistics.median(stored_runs)
    for n in range(3):  # a sync changed the mirror and nobody refreshed the figures (no scheduler running)
        unstore()
        with db.session() as s:
            s.execute(text("UPDATE invoice SET synced_at = :now WHERE qbo_id = :id"),
                      {"now": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=n + 10),
                       "id": str(n + 1)})
        synced_runs.append(_time(render, 1)[0])
    synced = statistics.median(synced_runs)
    _first, warm = _time(render, args.runs)
    print(f"\n  GET {path}  ({render.size / 1024:.0f} KiB of HTML with inline SVG)")  # type: ignore[attr-defined]
    print(f"    figures refreshed after the sync (the scheduler's way), process with nothing in memory:\n"
          f"                                             median {stored:.0f} ms of 3  {[round(x) for x in stored_runs]}")
    print(f"    mirror unchanged (figures, charts kept): median {warm:.0f} ms of {args.runs - 1}")
    print(f"    the refresh itself, in the background:   median {statistics.median(refresh_runs):.0f} ms of 3  "
          f"{[round(x) for x in refresh_runs]}")
    print("    without a scheduler (nothing refreshed):")
    print(f"      nothing stored, nothing in memory:     median {cold:.0f} ms of 3  {[round(x) for x in cold_runs]}")
    print(f"      after a sync, daily reads in memory:   median {synced:.0f} ms of 3  {[round(x) for x in synced_runs]}")

    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == REALM))
        parts = {
            "aging (reports.aging)": lambda: reports.aging(db, REALM, TODAY),
            "DSO and its 12-month trend": lambda: dashboard.dso_trend(s, company, TODAY),
            "expected cash, 8 weeks": lambda: dashboard.expected_cash(s, company, TODAY),
            "top late customers": lambda: dashboard.top_late_customers(s, company, TODAY),
            "reminders and payments": lambda: dashboard.reminder_effect(s, company, TODAY),
        }
        print("\n  where the time goes (median of 5, ms):")
        total = 0.0
        for label, fn in parts.items():
            _first, median = _time(fn, 5)
            total += median
            print(f"    {label:<28} {median:7.1f}")
        print(f"    {'figures, total':<28} {total:7.1f}")
        print(f"    {'charts + template (cold rest)':<28} {max(cold - total, 0):7.1f}")
        _first, median = _time(lambda: (dashboard.mirror_version(s, company), dashboard.outbox_version(s, company)), 5)
        print(f"    {'version checks (warm)':<28} {median:7.1f}")
    # the aging by customer download (dashboard/aging.csv): the same query grouped by customer too
    rows = len(reports.aging_by_customer(db, REALM, TODAY)["customers"])
    _first, median = _time(lambda: reports.aging_csv(reports.aging_by_customer(db, REALM, TODAY)), 5)
    print(f"\n  aging by customer as CSV ({rows:,} rows): median {median:.1f} ms of 5")
    # a person recorded a promise, a payment plan or a dispute for one customer in ten: their invoices
    # are read one by one (forecast.commitments) instead of in the grouped query
    paused = _record_pauses(db, args.customers)
    _time_expected_cash(db, f"expected cash, {paused:,} paused", "one customer in ten with a promise, plan or dispute")
    # and one in ten has unused credit (half of them among those paused): read one by one too
    credited = _record_credits(db, args.customers)
    _time_expected_cash(db, f"and {credited:,} with credit", "one customer in ten with a credit memo, half also paused")
    db.dispose()
    if args.keep:
        print(f"\n  kept: {url}")
    elif cleanup:
        cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
