"""Figures read straight from the mirror; the CLI and the dashboard call the same functions.

    aging(db, realm_id, on) -> {"realm", "on", "currencies": {"USD": {"current", "1-30", "31-60", "61-90", "90+", "total",
                                                                       "credits", "net", "credits_current", …,
                                                                       "credits_90+"}}}
    aging_by_customer(db, realm_id, on) -> {"realm", "on", "customers": [{"customer_id", "name", "currency",
                                                                         "current", …, "total", "credits", "net"}]}
    aging_csv(aging_by_customer(...)) -> str   # for a spreadsheet

``total`` is what the open invoices still owe; ``credits`` what the customers have to their credit
and not yet applied (credit memos' remaining credit, payments' unapplied amounts); ``net`` = total −
credits, the sum of QuickBooks' customer balances (customer by customer: its balance).
``credits_<bucket>`` splits ``credits`` by the age of each credit memo or payment, from its own date
(as QuickBooks' A/R aging shows them, as negatives in those columns): old ones are usually money
received and never applied, or credit to refund. For a past
``on`` both are rebuilt: invoice balances are today's + what payments dated later paid; credits are
those of the memos and payments dated by then, plus what later payments used of such a memo.

Amounts are decimal strings with the currency's own decimals ("1234.50", JPY "1200").
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from qbo_collector import errors, money
from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.db.types import amount_value as _dec

AGING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
CREDIT_AGES = tuple(f"credits_{b}" for b in AGING_BUCKETS)


def aging_bucket(due: date | None, on: date) -> str:
    """Pure: the bucket of an invoice due on ``due``, seen on ``on`` (no due date counts as current)."""
    if due is None:
        return "current"
    late = (on - due).days
    if late <= 0:
        return "current"
    if late <= 30:
        return "1-30"
    if late <= 60:
        return "31-60"
    if late <= 90:
        return "61-90"
    return "90+"


def _amount(value: Decimal, currency: str) -> str:
    try:
        return str(money.Money(value, currency).rounded().amount)
    except (ValueError, ArithmeticError):
        return str(value)


def unused_credits(s: Session, company_id: int, currency: str, on: date | None = None) -> dict[str, dict[str, Decimal]]:
    """Customer → currency → unused credit today: credit memos' remaining credit and payments'
    unapplied amounts (deleted ones aside; ``currency`` where a row names none). With ``on``, only
    the credit memos and payments dated by then."""
    memo, pay = models.CreditMemo, models.Payment
    out: dict[str, dict[str, Decimal]] = {}
    for table, column in ((memo, memo.balance), (pay, pay.unapplied)):
        code = func.coalesce(table.currency, currency)
        query = (select(table.customer_qbo_id, code, func.sum(column))
                 .where(table.company_id == company_id, table.deleted.is_(False), column > 0)
                 .group_by(table.customer_qbo_id, code))
        if on is not None:
            query = query.where(or_(table.txn_date.is_(None), table.txn_date <= on))
        for customer, cur, amount in s.execute(query):
            mine = out.setdefault(customer or "", {})
            mine[cur] = mine.get(cur, Decimal(0)) + _dec(amount)
    return out


def _bucket(day: Any, on: date) -> Any:
    """The aging bucket of ``day`` (a due date, or a credit's own date) seen on ``on``, in SQL. Compared
    with bound dates, so the same SQL runs on SQLite and PostgreSQL."""
    return case(
        (day.is_(None), "current"),
        (day >= on, "current"),
        (day >= on - timedelta(days=30), "1-30"),
        (day >= on - timedelta(days=60), "31-60"),
        (day >= on - timedelta(days=90), "61-90"),
        else_="90+",
    ).label("bucket")


def _aging_parts(s: Session, company_id: int, home_currency: str, on: date, *, by_customer: bool) -> tuple[
        dict[tuple[str, str], dict[str, Decimal]], dict[tuple[str, str], dict[str, Decimal]]]:
    """(customer, currency) → bucket → what open invoices owed on ``on``; (customer, currency) → bucket
    → unused credit then, by the age of each credit memo or payment (its own date).
    Without ``by_customer`` the customer is "" throughout (grouping by customer makes the query 3× slower).

    As of ``on``: invoices dated after it are left out (QuickBooks' aging does the same), and for
    a past day what payments dated after it paid is added back to the invoices they paid. Credits
    are those of the credit memos and payments dated by ``on``: what is left of them today, plus, for
    a credit memo, what payments dated after ``on`` used of it."""
    inv, memo, pay = models.Invoice, models.CreditMemo, models.Payment
    due = func.coalesce(inv.due_date, inv.txn_date)
    bucket = _bucket(due, on)
    issued = func.coalesce(inv.txn_date, inv.due_date)
    who = [inv.customer_qbo_id] if by_customer else []
    rows = s.execute(
        select(*who, inv.currency, bucket, func.sum(inv.balance))
        .where(inv.company_id == company_id, inv.deleted.is_(False),
               inv.status == models.InvoiceStatus.open, inv.balance > 0, or_(issued.is_(None), issued <= on))
        .group_by(*who, inv.currency, bucket)
    ).all()
    # a past day: what was still owed then = today's balance + what payments dated after it paid
    paid_since = s.scalar(select(func.count()).where(pay.company_id == company_id, pay.deleted.is_(False),
                                                     pay.txn_date > on))
    if paid_since:
        link = models.PaymentLink
        rows += s.execute(
            select(*who, inv.currency, bucket, func.sum(link.amount))
            .join(link, and_(link.company_id == inv.company_id, link.invoice_qbo_id == inv.qbo_id))
            .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
            .where(inv.company_id == company_id, inv.deleted.is_(False),
                   inv.status.in_([models.InvoiceStatus.open, models.InvoiceStatus.paid]), issued <= on,
                   pay.deleted.is_(False), pay.txn_date > on)
            .group_by(*who, inv.currency, bucket)).all()
    balances: dict[tuple[str, str], dict[str, Decimal]] = {}
    for row in rows:
        customer, (currency, name, amount) = ((row[0] or "") if by_customer else ""), row[-3:]
        per = balances.setdefault((customer, currency), {b: Decimal(0) for b in AGING_BUCKETS})
        per[name] += _dec(amount)
    credits: dict[tuple[str, str], dict[str, Decimal]] = {}

    def add_credit(customer: str, code: str, age: str, amount: Any) -> None:
        per_ = credits.setdefault((customer if by_customer else "", code), {b: Decimal(0) for b in AGING_BUCKETS})
        per_[age] += _dec(amount)

    for table, column in ((memo, memo.balance), (pay, pay.unapplied)):  # as ``unused_credits``, by age
        code_ = func.coalesce(table.currency, home_currency)
        owner = [table.customer_qbo_id] if by_customer else []
        age = _bucket(table.txn_date, on)
        for *customer, code, name, amount in s.execute(
                select(*owner, code_, age, func.sum(column))
                .where(table.company_id == company_id, table.deleted.is_(False), column > 0,
                       or_(table.txn_date.is_(None), table.txn_date <= on))
                .group_by(*owner, code_, age)):
            add_credit((customer[0] or "") if customer else "", code, name, amount)
    if paid_since:  # and the credit those payments used of memos dated by then
        used = models.CreditMemoLink
        currency_ = func.coalesce(memo.currency, home_currency)
        whose = [memo.customer_qbo_id] if by_customer else []
        age = _bucket(memo.txn_date, on)
        for *customer, code, name, amount in s.execute(
                select(*whose, currency_, age, func.sum(used.amount))
                .join(memo, and_(memo.company_id == used.company_id, memo.qbo_id == used.credit_memo_qbo_id))
                .join(pay, and_(pay.company_id == used.company_id, pay.qbo_id == used.payment_qbo_id))
                .where(used.company_id == company_id, memo.deleted.is_(False),
                       or_(memo.txn_date.is_(None), memo.txn_date <= on), pay.deleted.is_(False), pay.txn_date > on)
                .group_by(*whose, currency_, age)):
            add_credit((customer[0] or "") if customer else "", code, name, amount)
    return balances, credits


def _company(s: Session, realm_id: str) -> Any:
    company = s.execute(select(models.Company.id, models.Company.currency)
                        .where(models.Company.realm_id == realm_id)).first()
    if company is None:
        raise errors.InvalidInput(f"No company with realm {realm_id}.", field="realm")
    return company


def _no_buckets() -> dict[str, Decimal]:
    return {b: Decimal(0) for b in AGING_BUCKETS}


def _figures(per: dict[str, Decimal], credit_ages: dict[str, Decimal], currency: str) -> dict[str, str]:
    """One aging row: the buckets, their total, the unused credit, the net, and the credit by age
    (``credits_<bucket>``), as decimal strings."""
    total = sum(per.values(), Decimal(0))
    credit = sum(credit_ages.values(), Decimal(0))
    out = {b: _amount(per[b], currency) for b in AGING_BUCKETS}
    out.update(total=_amount(total, currency), credits=_amount(credit, currency), net=_amount(total - credit, currency))
    out.update({f"credits_{b}": _amount(credit_ages[b], currency) for b in AGING_BUCKETS})
    return out


def aging(db: Database, realm_id: str, on: date) -> dict[str, Any]:
    """Open invoice balances per currency and days past due, as of ``on``; unapplied credits; net
    (see ``_aging_parts`` for what "as of" rebuilds)."""
    with db.session() as s:
        company = _company(s, realm_id)
        balances, credits = _aging_parts(s, company.id, company.currency, on, by_customer=False)
    totals: dict[str, dict[str, Decimal]] = {}
    credit: dict[str, dict[str, Decimal]] = {}
    for parts, into_ in ((balances, totals), (credits, credit)):
        for (_customer, currency), per in parts.items():
            into = into_.setdefault(currency, _no_buckets())
            for b in AGING_BUCKETS:
                into[b] += per[b]
    currencies = {currency: _figures(totals.get(currency) or _no_buckets(), credit.get(currency) or _no_buckets(),
                                     currency)
                  for currency in sorted(set(totals) | set(credit))}
    return {"realm": realm_id, "on": on.isoformat(), "currencies": currencies}


def aging_by_customer(db: Database, realm_id: str, on: date) -> dict[str, Any]:
    """The same figures customer by customer (QuickBooks' "A/R aging summary"): one row per customer
    and currency that owes something or has unused credit, by name; the rows add up to ``aging``."""
    with db.session() as s:
        company = _company(s, realm_id)
        balances, credits = _aging_parts(s, company.id, company.currency, on, by_customer=True)
        keys = set(balances) | {k for k, v in credits.items() if any(v.values())}
        ids = sorted({customer for customer, _ in keys})
        names: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            names.update(s.execute(select(models.Customer.qbo_id, models.Customer.display_name).where(
                models.Customer.company_id == company.id, models.Customer.qbo_id.in_(ids[start:start + 500]))).all())
    customers = [
        {"customer_id": customer, "name": names.get(customer) or "", "currency": currency,
         **_figures(balances.get((customer, currency)) or _no_buckets(), credits.get((customer, currency)) or _no_buckets(),
                    currency)}
        for customer, currency in keys]
    customers.sort(key=lambda r: (r["name"].casefold(), r["customer_id"], r["currency"]))
    return {"realm": realm_id, "on": on.isoformat(), "customers": customers}


AGING_CSV_COLUMNS = ("customer_id", "customer", "currency", *AGING_BUCKETS, "total", "credits", "net")


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run: "=", "+", "-", "@" (and tab, CR) lead a formula in
    Excel, LibreOffice and Google Sheets, so such a value gets a leading apostrophe (OWASP's advice)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def aging_csv(figures: dict[str, Any], *, bom: bool = True) -> str:
    """``aging_by_customer`` as CSV for a spreadsheet: a byte-order mark (Excel then reads UTF-8; not
    for a pipe: ``bom=False``), a header, one row per customer and currency, amounts as plain
    decimals with a point, CRLF lines."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AGING_CSV_COLUMNS)
    for row in figures["customers"]:
        writer.writerow([_cell(row["customer_id"]), _cell(row["name"]), row["currency"],
                         *(row[c] for c in AGING_CSV_COLUMNS[3:])])
    return ("\ufeff" if bom else "") + out.getvalue()


def _table(title: str, header: list[str], rows: list[list[str]], *, text_columns: int = 1) -> str:
    """A plain text table: the first ``text_columns`` columns left-aligned, figures right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title]
    for r in [header, *rows]:
        lines.append("  ".join(str(v).ljust(w) if i < text_columns else str(v).rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def format_aging(figures: dict[str, Any]) -> str:
    """The aging report as a plain text table, one line per currency (the CLI without --json)."""
    header = ["currency", *AGING_BUCKETS, "total", "credits", "net"]
    rows = [[currency, *(per[b] for b in (*AGING_BUCKETS, "total", "credits", "net"))]
            for currency, per in figures["currencies"].items()]
    if not rows:
        return f"realm {figures['realm']} on {figures['on']}: no open balances"
    return _table(f"realm {figures['realm']}, open balances by days past due on {figures['on']}", header, rows)


def format_aging_by_customer(figures: dict[str, Any]) -> str:
    """``aging_by_customer`` as a plain text table, one line per customer and currency."""
    header = ["customer", "currency", *AGING_BUCKETS, "total", "credits", "net"]
    rows = [[r["name"] or r["customer_id"], r["currency"], *(r[b] for b in (*AGING_BUCKETS, "total", "credits", "net"))]
            for r in figures["customers"]]
    if not rows:
        return f"realm {figures['realm']} on {figures['on']}: no open balances"
    return _table(f"realm {figures['realm']}, open balances by customer and days past due on {figures['on']}",
                  header, rows, text_columns=2)


# -- DSO and expected cash: the dashboard's figures, for `qbo-collector report dso|forecast` --------


def dso(db: Database, realm_id: str, on: date) -> dict[str, Any]:
    """Days sales outstanding over 30 and 90 days per currency: receivables ÷ credit sales × days."""
    from qbo_collector import dashboard

    board = dashboard.build(db, realm_id, on)
    currencies: dict[str, dict[str, Any]] = {}
    for d in board.dso:
        currencies.setdefault(d.currency, {})[f"{d.days}d"] = {
            "dso": None if d.value is None else str(d.value.quantize(Decimal("0.1"))),
            "receivables": str(d.receivables), "credit_sales": str(d.credit_sales)}
    return {"realm": realm_id, "on": on.isoformat(), "formula": "receivables / credit sales x days",
            "target": None if board.dso_target is None else str(board.dso_target), "currencies": currencies}


def forecast(db: Database, realm_id: str, on: date) -> dict[str, Any]:
    """Expected cash by week (Monday), weighted by the probability of collection, per currency; promises and
    payment plans count on their dates, and what is in dispute is given apart ("disputed"), not expected."""
    from qbo_collector import dashboard

    board = dashboard.build(db, realm_id, on)
    return {"realm": realm_id, "on": on.isoformat(), "currencies": {
        currency: {"weeks": [{"week_of": w.start.isoformat(), "expected": str(w.expected),
                              "predicted_unweighted": str(w.open_balance)} for w in weeks],
                   "later": str(board.cash_later.get(currency, Decimal(0))),
                   "disputed": str(board.cash_disputed.get(currency, Decimal(0)))}
        for currency, weeks in board.cash.items()}}
