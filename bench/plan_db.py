"""Benchmark: the product's daily planning on a real database, the indexed run against a full plan.

``bench/plan.py`` measures the rules engine alone (invoices generated in memory). This one runs
the planning step of the daily run exactly as the product does it
(``dispatch.run.plan_and_insert``: candidates from the ``next_action_on`` index, snapshots read
from the mirror and the outbox, ``rules.plan_and_next``, rows inserted, dates stored), on a
database holding every company's invoices and the history earlier runs left.

The book: ``--companies`` companies of ``--invoices`` open invoices, two per customer, cycling
through the four presets and four countries (zones, currencies, holidays), due dates spread like
an ordinary net-30 book (70 % not yet due, up to 45 days ahead; 20 % up to 30 days late; 7 %
31–90; 3 % 91–180). The companies were connected on different days over the last 30: each
first ran a full plan (its catch-up), then an indexed run every day, as the product does. The
history is what those runs inserted.

Then, each measured day (from a Wednesday, a whole week by default), on the same morning
state: a full plan of every company on a copy of the database (what a run without the index
would do), and the indexed run on the database itself. Both insert rows; the benchmark checks
they inserted the same actions. Times are wall-clock seconds of this process (SQLite runs in
it); nothing is asserted.

    .venv/bin/python bench/plan_db.py                              # 100 companies x 1,000 invoices
    .venv/bin/python bench/plan_db.py --companies 1000             # 1,000,000 invoices (long)
    .venv/bin/python bench/plan_db.py --companies 20 --days 2      # quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import phonenumbers
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_collector import rules, snapshot  # noqa: E402
from qbo_collector.db import migrate, models  # noqa: E402
from qbo_collector.db.session import Database  # noqa: E402
from qbo_collector.dispatch import run as dispatch_run  # noqa: E402
from bench.plan import BALANCES, PRESETS, TODAY, ZONES, due_offset  # noqa: E402  (the same book as bench/plan.py)

PER_CUSTOMER = 2
WARM_DAYS = 30
SYNCED = dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)  # the mirror's rows, synced long before the runs


def run_at(day: dt.date) -> dt.datetime:
    """10:00 UTC: the same local date in Los Angeles, Paris, Auckland and Tokyo."""
    return dt.datetime.combine(day, dt.time(10), dt.timezone.utc)


def build(db: Database, *, companies: int, invoices: int, seed: int = 7) -> list[tuple[int, dt.date]]:
    """The mirror; returns (company id, first run day) per company."""
    rng = random.Random(seed)
    base = TODAY.toordinal()
    out = []
    with db.session() as s:
        for k in range(companies):
            zone, country, currency = ZONES[k % len(ZONES)]
            preset = PRESETS[(k // len(ZONES)) % len(PRESETS)]
            company = models.Company(
                realm_id=f"9130{k:012d}", name=f"Bench company {k}", country=country, currency=currency,
                timezone=zone, language="fr" if country == "FR" else "en",
                policy=rules.PRESETS[preset].model_dump(mode="json"), settings={})
            s.add(company)
            s.flush()
            example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
            mobile = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            n_customers = (invoices + PER_CUSTOMER - 1) // PER_CUSTOMER
            s.execute(insert(models.Customer), [
                {"company_id": company.id, "qbo_id": str(c), "display_name": f"Customer {c:05d}", "currency": currency,
                 "email": f"customer{c}@example.com", "mobile": mobile if c % 3 == 0 else None,
                 "balance": Decimal(0), "synced_at": SYNCED} for c in range(n_customers)])
            rows = []
            for n in range(invoices):
                due = dt.date.fromordinal(base + due_offset(rng))
                amount = BALANCES[rng.randrange(len(BALANCES))]
                if currency == "JPY":
                    amount = amount.quantize(Decimal(1))
                rows.append({"company_id": company.id, "qbo_id": str(n), "doc_number": str(1000 + n),
                             "customer_qbo_id": str(n // PER_CUSTOMER), "txn_date": due - dt.timedelta(days=30),
                             "due_date": due, "total": amount, "balance": amount, "currency": currency,
                             "status": models.InvoiceStatus.open.value, "synced_at": SYNCED})
            for start in range(0, len(rows), 5000):
                s.execute(insert(models.Invoice), rows[start:start + 5000])
            # connected on different days over the last month, so the catch-ups are spread out
            out.append((company.id, TODAY - dt.timedelta(days=1 + (k * 7) % WARM_DAYS)))
    return out


class Runs:
    """The planning step of each company's daily run, with what the product keeps between runs."""

    def __init__(self, db: Database, starts: list[tuple[int, dt.date]]) -> None:
        self.db = db
        self.starts = dict(starts)
        self.last: dict[int, dt.datetime] = {}  # company → when its last run read (the lease's done_at)
        with db.session() as s:
            self.fingerprints = {c.id: snapshot.plan_fingerprint(s, c) for c in s.scalars(select(models.Company))}

    def day(self, db: Database, day: dt.date, *, full: bool, remember: bool) -> tuple[float, int, int]:
        """Plan ``day`` for every company that runs then; (seconds, rows inserted, customers planned)."""
        now = run_at(day)
        took, inserted, planned = 0.0, 0, 0
        for company_id, first in self.starts.items():
            if first > day:
                continue
            first_run = company_id not in self.last
            summary = dispatch_run.RunSummary(realm=str(company_id))
            started = time.perf_counter()
            dispatch_run.plan_and_insert(db, company_id, today=day, now=now, dry_run=False, full=full or first_run,
                                         since=self.last.get(company_id), summary=summary,
                                         fingerprint=self.fingerprints[company_id])
            took += time.perf_counter() - started
            if summary.errors:
                raise SystemExit(f"company {company_id} on {day}: {summary.errors[0]}")
            inserted += summary.planned
            planned += summary.planned_customers
            if remember:
                self.last[company_id] = now
        return took, inserted, planned


def keys(db: Database) -> set[str]:
    with db.reading() as s:
        return set(s.scalars(select(models.Outbox.dedupe_key)))


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy (the backup API: whatever the journal mode)."""
    target.unlink(missing_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--companies", type=int, default=100)
    ap.add_argument("--invoices", type=int, default=1000, help="open invoices per company")
    ap.add_argument("--days", type=int, default=7, help="measured days, from a Wednesday")
    ap.add_argument("--keep", action="store_true", help="keep the database directory")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="qbo-bench-plan-db-"))
    path = home / "plan.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    wall = time.perf_counter()
    t = time.perf_counter()
    starts = build(db, companies=args.companies, invoices=args.invoices)
    total = args.companies * args.invoices
    customers = args.companies * ((args.invoices + PER_CUSTOMER - 1) // PER_CUSTOMER)
    print(f"built {total:,} open invoices, {customers:,} customers, {args.companies:,} companies "
          f"in {time.perf_counter() - t:.1f} s (SQLite, {path})")

    runs = Runs(db, starts)
    t = time.perf_counter()
    for n in range(WARM_DAYS, 0, -1):
        runs.day(db, TODAY - dt.timedelta(days=n), full=False, remember=True)
    with db.reading() as s:
        history = s.scalar(select(func.count()).select_from(models.Outbox))
    print(f"the last {WARM_DAYS} days of daily runs replayed in {time.perf_counter() - t:.1f} s: "
          f"{history:,} outbox rows of history")

    print()
    print(f"{'day':<16}{'customers':>10}{'rows':>8}{'indexed s':>11}{'full plan s':>13}{'speed-up':>10}  same rows")
    measured = []
    scratch = home / "full.db"
    for n in range(args.days):
        day = TODAY + dt.timedelta(days=n)
        copy_sqlite(path, scratch)
        copy = Database(f"sqlite:///{scratch}")
        before = keys(copy)
        full_s, full_rows, _ = runs.day(copy, day, full=True, remember=False)
        full_keys = keys(copy) - before
        copy.engine.dispose()
        indexed_s, rows, planned = runs.day(db, day, full=False, remember=True)
        indexed_keys = keys(db) - before
        same = "yes" if indexed_keys == full_keys else (
            f"NO: {len(full_keys - indexed_keys)} missing, {len(indexed_keys - full_keys)} extra")
        measured.append((day, planned, rows, indexed_s, full_s))
        print(f"{day.isoformat()} {day.strftime('%a'):<5}{planned:>10,}{rows:>8,}{indexed_s:>11.2f}{full_s:>13.2f}"
              f"{full_s / indexed_s:>9.1f}x  {same}")
    scratch.unlink(missing_ok=True)

    indexed_total = sum(m[3] for m in measured)
    full_total = sum(m[4] for m in measured)
    planned_total = sum(m[1] for m in measured)
    rows_total = sum(m[2] for m in measured)
    print()
    print("=" * 72)
    print("SUMMARY (measured on this machine, wall seconds of the planning step; no time is asserted)")
    print(f"  invoices / customers / companies     {total:,} / {customers:,} / {args.companies:,}")
    print(f"  days measured                        {len(measured)} ({measured[0][0]} to {measured[-1][0]})")
    print(f"  indexed runs, per day                {indexed_total / len(measured):.2f} s  "
          f"({planned_total / len(measured):,.0f} customers planned, {rows_total / len(measured):,.0f} rows a day)")
    print(f"  full plans, per day                  {full_total / len(measured):.2f} s  "
          f"({customers:,} customers planned; {total / (full_total / len(measured)):,.0f} invoices/s)")
    print(f"  speed-up over the days               {full_total / indexed_total:.1f}x "
          f"(planned customers: {planned_total / len(measured) / customers:.1%} of all a day)")
    print(f"  ceiling at equal cost                {customers * len(measured) / planned_total:.1f}x "
          "(customers x days / planned customers: what an indexed run could reach if a planned customer "
          "cost no more than a customer in a full plan)")
    week = (6 * indexed_total / len(measured) + full_total / len(measured)) / 7
    print(f"  the product's average day            {week:.2f} s  (a full plan every {dispatch_run.FULL_PLAN_EVERY} days "
          f"as a safety net: {full_total / len(measured) / week:.1f}x less than a full plan daily)")
    print(f"  per planned customer / per customer  {indexed_total / planned_total * 1e6:,.0f} µs indexed / "
          f"{full_total / (customers * len(measured)) * 1e6:,.0f} µs in a full plan")
    print(f"  total wall time of this benchmark    {time.perf_counter() - wall:.1f} s")
    print("=" * 72)
    db.engine.dispose()
    if args.keep:
        print(f"kept: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
