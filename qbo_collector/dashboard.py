"""Where the money stands: the figures of the dashboard and of the weekly digest.

Pure functions of the mirror and a date (``on``, the company's local date): the same inputs
give the same figures. Every query aggregates in SQL, so a company with 100,000 invoices
renders quickly (``bench/web.py``); Python only sees grouped rows.

    build(db, realm, on, *, dso_target=None) -> Dashboard
    dso_trend(s, company, on, months=12) -> list[DsoPoint]
    expected_cash(s, company, on, weeks=8) -> dict[currency, list[CashWeek]]
    top_late_customers(s, company, on, limit=10) -> list[LateCustomer]
    reminder_effect(s, company, on, days=90, within_days=30) -> ReminderEffect

DSO (days sales outstanding) for a window of N days = receivables at the end of the window ÷
credit sales (invoice totals) of the window × N. Receivables at a past date d are rebuilt from
the mirror: today's open balances of invoices issued by d, plus what was paid on them after d.

Expected cash: each open invoice's balance × its probability of collection, in the week of
its predicted pay date — the model of ``rules.forecast`` (the customer's usual delay, the
industry prior refined by the company's own payment record), evaluated over grouped rows
instead of one record per invoice.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session

from qbo_collector import errors, money, reports
from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.rules import forecast

DSO_WINDOWS = (30, 90)


def N_(message: str) -> str:  # noqa: N802 - gettext_noop: the page translates the message
    return message
_record = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)


@_record
class Dso:
    currency: str
    days: int
    receivables: Decimal
    credit_sales: Decimal
    value: Decimal | None  # None when there were no credit sales in the window


@_record
class DsoPoint:
    on: dt.date
    values: dict[str, dict[int, Decimal | None]]  # currency → {30: days, 90: days}


@_record
class CashWeek:
    start: dt.date  # Monday
    expected: Decimal  # probability-weighted
    open_balance: Decimal  # what is predicted to be paid that week, unweighted


@_record
class LateCustomer:
    customer_id: str
    name: str
    currency: str
    overdue: Decimal
    oldest_due: dt.date
    days_late: int
    invoices: int


@_record
class ReminderEffect:
    days: int
    within_days: int
    sent: int
    paid_after: int
    collected: dict[str, Decimal]
    weeks: list[tuple[dt.date, int, int]]  # (Monday, sent, followed by a payment)

    @property
    def rate(self) -> Decimal | None:
        return (Decimal(self.paid_after) / self.sent).quantize(Decimal("0.001")) if self.sent else None


@_record
class Dashboard:
    realm: str
    company_name: str
    currency: str
    on: dt.date
    aging: dict[str, dict[str, Decimal]]  # currency → bucket → amount (reports.aging)
    dso: list[Dso]
    dso_target: Decimal | None
    trend: list[DsoPoint]
    cash: dict[str, list[CashWeek]]
    cash_later: dict[str, Decimal]
    top_late: list[LateCustomer]
    reminders: ReminderEffect

    @property
    def currencies(self) -> list[str]:
        found = set(self.aging) | {d.currency for d in self.dso}
        return sorted(found, key=lambda c: (c != self.currency, c))


def build(db: Database, realm_id: str, on: dt.date, *, dso_target: Decimal | None = None) -> Dashboard:
    """Every figure of the dashboard for ``realm_id`` as of ``on``."""
    aging = reports.aging(db, realm_id, on)
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            raise errors.InvalidInput(f"No company with realm {realm_id}.", field="realm")
        if dso_target is None:
            dso_target = target_of(company)
        trend = dso_trend(s, company, on)
        cash, later = expected_cash(s, company, on)
        return Dashboard(
            realm=realm_id, company_name=company.name, currency=company.currency, on=on,
            aging={cur: {k: Decimal(v) for k, v in buckets.items()} for cur, buckets in aging["currencies"].items()},
            dso=_current_dso(s, company, on), dso_target=dso_target, trend=trend, cash=cash, cash_later=later,
            top_late=top_late_customers(s, company, on), reminders=reminder_effect(s, company, on),
        )


def target_of(company: models.Company) -> Decimal | None:
    value = (company.settings or {}).get("dso_target")
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except ArithmeticError:
        return None


def parse_target(value: str) -> Decimal | None:
    """The DSO target a person typed: whole days from 1 to 365, or empty for none."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        days = Decimal(text.replace(",", "."))
    except ArithmeticError:
        raise errors.InvalidInput(N_("Enter a number of days, such as 45."), field="dso_target") from None
    if not days.is_finite() or days != days.to_integral_value() or not 1 <= days <= 365:
        raise errors.InvalidInput(N_("Enter a whole number of days from 1 to 365."), field="dso_target")
    return days


# --- DSO ---------------------------------------------------------------------------------

def _issued(inv: Any) -> Any:
    return func.coalesce(inv.txn_date, inv.due_date)


def _bucket(column: Any, points: list[dt.date]) -> Any:
    """Index of the first point on or after ``column`` (len(points) when after the last); SQL, portable."""
    return case(*[(column <= p, i) for i, p in enumerate(points)], else_=len(points))


def _receivables_at(s: Session, company: models.Company, points: list[dt.date]) -> dict[str, list[Decimal]]:
    """Receivables per currency at each point: open balances issued by then + payments received after it."""
    inv, link, pay = models.Invoice, models.PaymentLink, models.Payment
    live = and_(inv.company_id == company.id, inv.deleted.is_(False),
                inv.status.in_([models.InvoiceStatus.open, models.InvoiceStatus.paid]))
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(points))
    issued = _bucket(_issued(inv), points)
    for currency, i, amount in s.execute(select(inv.currency, issued, func.sum(inv.balance))
                                         .where(live, inv.balance != 0).group_by(inv.currency, issued)):
        for j in range(int(i), len(points)):
            out[currency][j] += _dec(amount)
    paid = _bucket(pay.txn_date, points)
    rows = s.execute(
        select(inv.currency, issued, paid, func.sum(link.amount))
        .join(link, and_(link.company_id == inv.company_id, link.invoice_qbo_id == inv.qbo_id))
        .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
        .where(live, pay.deleted.is_(False), pay.txn_date > points[0])
        .group_by(inv.currency, issued, paid))
    for currency, i, m, amount in rows:
        for j in range(int(i), min(int(m), len(points))):
            out[currency][j] += _dec(amount)
    return out


def _sales_by_day(s: Session, company: models.Company, start: dt.date, end: dt.date) -> dict[str, dict[dt.date, Decimal]]:
    inv = models.Invoice
    issued = _issued(inv)
    out: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for currency, day, amount in s.execute(
            select(inv.currency, issued, func.sum(inv.total))
            .where(inv.company_id == company.id, inv.deleted.is_(False), inv.status != models.InvoiceStatus.voided,
                   issued > start, issued <= end)
            .group_by(inv.currency, issued)):
        if day is not None:
            out[currency][_as_date(day)] = _dec(amount)
    return out


def _dso(receivables: Decimal, sales: Decimal, days: int) -> Decimal | None:
    if sales <= 0:
        return None
    return (receivables / sales * days).quantize(Decimal("0.1"))


def _points(on: dt.date, months: int) -> list[dt.date]:
    ends = []
    first = on.replace(day=1)
    for k in range(months - 1, 0, -1):
        ends.append(_add_months(first, 1 - k) - dt.timedelta(days=1))
    return [*ends, on]


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, 1)


def dso_trend(s: Session, company: models.Company, on: dt.date, months: int = 12) -> list[DsoPoint]:
    """DSO over 30 and 90 days at the end of each of the last ``months`` months (the last point is ``on``)."""
    points = _points(on, months)
    receivables = _receivables_at(s, company, points)
    longest = max(DSO_WINDOWS)
    sales = _sales_by_day(s, company, points[0] - dt.timedelta(days=longest), on)
    out = []
    for j, point in enumerate(points):
        values: dict[str, dict[int, Decimal | None]] = {}
        for currency in sorted(set(receivables) | set(sales)):
            days_sales = sales.get(currency, {})
            values[currency] = {}
            for window in DSO_WINDOWS:
                start = point - dt.timedelta(days=window)
                total = sum((a for d, a in days_sales.items() if start < d <= point), Decimal(0))
                values[currency][window] = _dso(receivables.get(currency, [Decimal(0)] * len(points))[j], total, window)
        out.append(DsoPoint(on=point, values=values))
    return out


def _current_dso(s: Session, company: models.Company, on: dt.date) -> list[Dso]:
    receivables = _receivables_at(s, company, [on])
    sales = _sales_by_day(s, company, on - dt.timedelta(days=max(DSO_WINDOWS)), on)
    out = []
    for currency in sorted(set(receivables) | set(sales), key=lambda c: (c != company.currency, c)):
        ar = receivables.get(currency, [Decimal(0)])[0]
        for window in DSO_WINDOWS:
            total = sum((a for d, a in sales.get(currency, {}).items() if d > on - dt.timedelta(days=window)),
                        Decimal(0))
            out.append(Dso(currency=currency, days=window, receivables=_round(ar, currency),
                           credit_sales=_round(total, currency), value=_dso(ar, total, window)))
    return out


# --- expected cash -----------------------------------------------------------------------

def _days_between(s: Session, later: Any, earlier: Any) -> Any:
    if s.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return later - earlier


class _History:
    """The company's paid invoices as delay histograms (days from due date to last payment)."""

    def __init__(self, rows: Iterable[tuple[str, int, int]]) -> None:
        self.by_customer: dict[str, dict[int, int]] = defaultdict(dict)
        self.overall: dict[int, int] = defaultdict(int)
        for customer, delay, count in rows:
            self.by_customer[customer][int(delay)] = self.by_customer[customer].get(int(delay), 0) + int(count)
            self.overall[int(delay)] += int(count)
        self._delays = sorted(self.overall)
        # suffix sums: how many paid invoices were at least d days late
        self._suffix = []
        running = 0
        for d in reversed(self._delays):
            running += self.overall[d]
            self._suffix.append(running)
        self._suffix.reverse()
        self._probability: dict[int, Decimal] = {}
        self._later: dict[tuple[str | None, int], int] = {}

    def probability(self, days_late: int) -> Decimal:
        """``forecast.probability`` over the histogram."""
        age = max(days_late, 0)
        if age not in self._probability:
            k = bisect.bisect_left(self._delays, age)
            reached = self._suffix[k] if k < len(self._suffix) else 0
            prior = forecast.prior_probability(age)
            value = (prior * forecast.PRIOR_WEIGHT + reached) / (forecast.PRIOR_WEIGHT + reached)
            self._probability[age] = value.quantize(Decimal("0.0001"))
        return self._probability[age]

    def predict(self, customer: str, due: dt.date, today: dt.date) -> dt.date:
        """``forecast.predict`` over the histogram."""
        own = self.by_customer.get(customer)
        pool, key = (own, customer) if own else (self.overall, None)
        if not pool:
            return max(due, today)
        count = sum(pool.values())
        average = round(sum(d * n for d, n in pool.items()) / count)
        if due + dt.timedelta(days=average) >= today:
            return due + dt.timedelta(days=average)
        age = (today - due).days
        if (key, age) not in self._later:
            longer = [(d - age, n) for d, n in pool.items() if d > age]
            total = sum(n for _, n in longer)
            self._later[(key, age)] = (round(sum(x * n for x, n in longer) / total) if total
                                       else forecast.DEFAULT_DELAY_DAYS)
        return today + dt.timedelta(days=max(self._later[(key, age)], 1))


def _history(s: Session, company: models.Company) -> _History:
    inv, link, pay = models.Invoice, models.PaymentLink, models.Payment
    paid_on = (select(link.invoice_qbo_id.label("invoice"), func.max(pay.txn_date).label("paid_on"))
               .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
               .where(link.company_id == company.id, pay.deleted.is_(False))
               .group_by(link.invoice_qbo_id).subquery())
    delay = _days_between(s, paid_on.c.paid_on, inv.due_date).label("delay")
    rows = s.execute(
        select(inv.customer_qbo_id, delay, func.count())
        .join(paid_on, paid_on.c.invoice == inv.qbo_id)
        .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.paid, inv.deleted.is_(False),
               inv.due_date.is_not(None), paid_on.c.paid_on.is_not(None))
        .group_by(inv.customer_qbo_id, delay))
    return _History((c, d, n) for c, d, n in rows if d is not None)


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def expected_cash(s: Session, company: models.Company, on: dt.date,
                  weeks: int = 8) -> tuple[dict[str, list[CashWeek]], dict[str, Decimal]]:
    """Probability-weighted cash per week for the next ``weeks`` weeks (from this Monday), and what comes later."""
    history = _history(s, company)
    inv = models.Invoice
    due = func.coalesce(inv.due_date, inv.txn_date)
    rows = s.execute(
        select(inv.customer_qbo_id, due, inv.currency, func.sum(inv.balance))
        .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.open, inv.deleted.is_(False),
               inv.balance > 0, due.is_not(None))
        .group_by(inv.customer_qbo_id, due, inv.currency))
    first = _monday(on)
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * weeks)
    unweighted: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * weeks)
    later: dict[str, Decimal] = defaultdict(Decimal)
    for customer, due_on, currency, balance in rows:
        due_on = _as_date(due_on)
        amount = _dec(balance)
        predicted = history.predict(customer, due_on, on)
        weighted = amount * history.probability((on - due_on).days)
        week = (predicted - first).days // 7
        if week < weeks:
            expected[currency][max(week, 0)] += weighted
            unweighted[currency][max(week, 0)] += amount
        else:
            later[currency] += weighted
    out = {}
    for currency in sorted(set(expected) | set(later), key=lambda c: (c != company.currency, c)):
        ex = expected.get(currency, [Decimal(0)] * weeks)
        un = unweighted.get(currency, [Decimal(0)] * weeks)
        out[currency] = [CashWeek(start=first + dt.timedelta(weeks=w), expected=_round(ex[w], currency),
                                  open_balance=_round(un[w], currency)) for w in range(weeks)]
    return out, {c: _round(v, c) for c, v in later.items()}


# --- late customers and reminders ---------------------------------------------------------

def top_late_customers(s: Session, company: models.Company, on: dt.date, limit: int = 10) -> list[LateCustomer]:
    """Customers owing the most on invoices past due, largest first."""
    inv, cust = models.Invoice, models.Customer
    due = func.coalesce(inv.due_date, inv.txn_date)
    overdue = func.sum(inv.balance).label("overdue")
    rows = s.execute(
        select(inv.customer_qbo_id, inv.currency, overdue, func.min(due), func.count())
        .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.open, inv.deleted.is_(False),
               inv.balance > 0, due < on)
        .group_by(inv.customer_qbo_id, inv.currency)
        .order_by(overdue.desc()).limit(limit)).all()
    names = dict(s.execute(select(cust.qbo_id, cust.display_name).where(
        cust.company_id == company.id, cust.qbo_id.in_([r[0] for r in rows] or [""]))).all())
    return [LateCustomer(customer_id=c, name=names.get(c, c), currency=cur, overdue=_round(_dec(a), cur),
                         oldest_due=_as_date(d), days_late=(on - _as_date(d)).days, invoices=int(n))
            for c, cur, a, d, n in rows]


def reminder_effect(s: Session, company: models.Company, on: dt.date, days: int = 90,
                    within_days: int = 30) -> ReminderEffect:
    """Reminders sent in the last ``days`` days, and how many were followed by a payment on one of
    their invoices within ``within_days`` days."""
    start = on - dt.timedelta(days=days)
    ob = models.Outbox
    sent = s.execute(select(ob.invoice_ids, ob.sent_at).where(
        ob.company_id == company.id, ob.kind == "reminder", ob.status == models.OutboxStatus.sent,
        ob.dry_run.is_(False), ob.sent_at.is_not(None),
        ob.sent_at >= dt.datetime.combine(start, dt.time(), dt.timezone.utc))).all()
    link, pay = models.PaymentLink, models.Payment
    payments: dict[str, list[tuple[dt.date, Decimal, str]]] = defaultdict(list)
    for invoice, day, amount, currency in s.execute(
            select(link.invoice_qbo_id, pay.txn_date, link.amount, pay.currency)
            .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
            .where(link.company_id == company.id, pay.deleted.is_(False), pay.txn_date >= start)):
        if day is not None:
            payments[invoice].append((_as_date(day), _dec(amount), currency or company.currency))
    first_week = _monday(start)
    n_weeks = (_monday(on) - first_week).days // 7 + 1
    weeks = [[first_week + dt.timedelta(weeks=w), 0, 0] for w in range(n_weeks)]
    paid_after = 0
    collected: dict[str, Decimal] = defaultdict(Decimal)
    counted: set[tuple[str, dt.date]] = set()
    for invoice_ids, sent_at in sent:
        day = sent_at.date()
        week = weeks[min(max((day - first_week).days // 7, 0), n_weeks - 1)]
        week[1] += 1
        hit = False
        for invoice in invoice_ids or []:
            for paid_on, amount, currency in payments.get(str(invoice), ()):
                if day <= paid_on <= day + dt.timedelta(days=within_days):
                    hit = True
                    if (str(invoice), paid_on) not in counted:
                        counted.add((str(invoice), paid_on))
                        collected[currency] += amount
        if hit:
            paid_after += 1
            week[2] += 1
    return ReminderEffect(days=days, within_days=within_days, sent=len(sent), paid_after=paid_after,
                          collected={c: _round(v, c) for c, v in sorted(collected.items())},
                          weeks=[(w[0], w[1], w[2]) for w in weeks])


# --- helpers -----------------------------------------------------------------------------

def _dec(value: object) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):  # SUM over the Amount column comes back as its scaled integer
        return Decimal(value) / Decimal(10) ** 4
    return money.to_decimal(value)


def _round(value: Decimal, currency: str) -> Decimal:
    try:
        return money.Money(value, currency).rounded().amount
    except (ValueError, ArithmeticError):
        return value


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


# --- the company list ----------------------------------------------------------------------

API_ACTIVITY_KINDS = ("sync", "sync.failed", "dispatch.run", "dispatch.run.problems")


def api_calls_today(s: Session, company_ids: list[int], now: dt.datetime) -> dict[int, int]:
    """QuickBooks API calls per company since midnight UTC, from the syncs' and runs' activity rows."""
    start = dt.datetime.combine(now.astimezone(dt.timezone.utc).date(), dt.time(), dt.timezone.utc)
    out = {cid: 0 for cid in company_ids}
    if not company_ids:
        return out
    rows = s.execute(select(models.Activity.company_id, models.Activity.data).where(
        models.Activity.company_id.in_(company_ids), models.Activity.kind.in_(API_ACTIVITY_KINDS),
        models.Activity.at >= start))
    for company_id, data in rows:
        calls = (data or {}).get("api_calls")
        if isinstance(calls, int) and not isinstance(calls, bool):
            out[company_id] += calls
    return out
