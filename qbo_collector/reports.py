"""Figures read straight from the mirror; the CLI and the dashboard call the same functions.

    aging(db, realm_id, on) -> {"realm", "on", "currencies": {"USD": {"current", "1-30", "31-60", "61-90", "90+", "total",
                                                                       "credits", "net"}}}

``total`` is what the open invoices still owe; ``credits`` what the customers have to their credit
and not yet applied (credit memos' remaining credit, payments' unapplied amounts); ``net`` = total −
credits, the sum of QuickBooks' customer balances. For a past ``on`` the invoice balances are
rebuilt (today's + what payments dated later paid); the credits are today's.

Amounts are decimal strings with the currency's own decimals ("1234.50", JPY "1200").
"""

from __future__ import annotations

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


def aging(db: Database, realm_id: str, on: date) -> dict[str, Any]:
    """Open invoice balances per currency and days past due, as of ``on``; unapplied credits; net.

    As of ``on``: invoices dated after it are left out (QuickBooks' aging does the same), and for
    a past day what payments dated after it paid is added back to the invoices they paid. Credits
    are those of the credit memos and payments dated by ``on``: what is left of them today, plus, for
    a credit memo, what payments dated after ``on`` used of it."""
    inv, memo, pay = models.Invoice, models.CreditMemo, models.Payment
    with db.session() as s:
        company = s.execute(select(models.Company.id, models.Company.currency)
                            .where(models.Company.realm_id == realm_id)).first()
        if company is None:
            raise errors.InvalidInput(f"No company with realm {realm_id}.", field="realm")
        company_id = company.id
        due = func.coalesce(inv.due_date, inv.txn_date)
        # Compared with bound dates, so the same SQL runs on SQLite and PostgreSQL.
        bucket = case(
            (due.is_(None), "current"),
            (due >= on, "current"),
            (due >= on - timedelta(days=30), "1-30"),
            (due >= on - timedelta(days=60), "31-60"),
            (due >= on - timedelta(days=90), "61-90"),
            else_="90+",
        ).label("bucket")
        issued = func.coalesce(inv.txn_date, inv.due_date)
        rows = s.execute(
            select(inv.currency, bucket, func.sum(inv.balance))
            .where(inv.company_id == company_id, inv.deleted.is_(False),
                   inv.status == models.InvoiceStatus.open, inv.balance > 0, or_(issued.is_(None), issued <= on))
            .group_by(inv.currency, bucket)
        ).all()
        # a past day: what was still owed then = today's balance + what payments dated after it paid
        paid_since = s.scalar(select(func.count()).where(pay.company_id == company_id, pay.deleted.is_(False),
                                                         pay.txn_date > on))
        if paid_since:
            link = models.PaymentLink
            rows += s.execute(
                select(inv.currency, bucket, func.sum(link.amount))
                .join(link, and_(link.company_id == inv.company_id, link.invoice_qbo_id == inv.qbo_id))
                .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
                .where(inv.company_id == company_id, inv.deleted.is_(False),
                       inv.status.in_([models.InvoiceStatus.open, models.InvoiceStatus.paid]), issued <= on,
                       pay.deleted.is_(False), pay.txn_date > on)
                .group_by(inv.currency, bucket)).all()
        credits: dict[str, Decimal] = {}
        for mine in unused_credits(s, company_id, company.currency, on).values():
            for code, amount in mine.items():
                credits[code] = credits.get(code, Decimal(0)) + amount
        if paid_since:  # and the credit those payments used of memos dated by then
            used = models.CreditMemoLink
            currency = func.coalesce(memo.currency, company.currency)
            for code, amount in s.execute(
                    select(currency, func.sum(used.amount))
                    .join(memo, and_(memo.company_id == used.company_id, memo.qbo_id == used.credit_memo_qbo_id))
                    .join(pay, and_(pay.company_id == used.company_id, pay.qbo_id == used.payment_qbo_id))
                    .where(used.company_id == company_id, memo.deleted.is_(False),
                           or_(memo.txn_date.is_(None), memo.txn_date <= on), pay.deleted.is_(False), pay.txn_date > on)
                    .group_by(currency)):
                credits[code] = credits.get(code, Decimal(0)) + _dec(amount)
    totals: dict[str, dict[str, Decimal]] = {}
    for currency, name, amount in rows:
        per = totals.setdefault(currency, {b: Decimal(0) for b in AGING_BUCKETS})
        per[name] += _dec(amount)
    currencies = {}
    for currency in sorted(set(totals) | set(credits)):
        per = totals.get(currency) or {b: Decimal(0) for b in AGING_BUCKETS}
        total = sum(per.values(), Decimal(0))
        currencies[currency] = {b: _amount(per[b], currency) for b in AGING_BUCKETS}
        currencies[currency]["total"] = _amount(total, currency)
        currencies[currency]["credits"] = _amount(credits.get(currency, Decimal(0)), currency)
        currencies[currency]["net"] = _amount(total - credits.get(currency, Decimal(0)), currency)
    return {"realm": realm_id, "on": on.isoformat(), "currencies": currencies}


def format_aging(figures: dict[str, Any]) -> str:
    """The aging report as a plain text table, one line per currency (the CLI without --json)."""
    header = ["currency", *AGING_BUCKETS, "total", "credits", "net"]
    rows = [[currency, *(per[b] for b in (*AGING_BUCKETS, "total", "credits", "net"))]
            for currency, per in figures["currencies"].items()]
    if not rows:
        return f"realm {figures['realm']} on {figures['on']}: no open balances"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"realm {figures['realm']}, open balances by days past due on {figures['on']}"]
    for r in [header, *rows]:
        lines.append("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


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
