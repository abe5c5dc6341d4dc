"""Where the money stands: the figures of the dashboard and of the weekly digest.

Pure functions of the mirror and a date (``on``, the company's local date): the same inputs
give the same figures. Every query aggregates in SQL, so a company with 100,000 invoices
renders quickly (``bench/web.py``); Python only sees grouped rows.

    build(db, realm, on, *, dso_target=None) -> Dashboard
    refresh(db, realm, on) -> bool      after a sync: compute and store the figures the page reads
    dso_trend(s, company, on, months=12) -> list[DsoPoint]
    expected_cash(s, company, on, weeks=8) -> (weeks, later, disputed), each per currency
    top_late_customers(s, company, on, limit=10) -> list[LateCustomer]
    reminder_effect(s, company, on, days=90, within_days=30) -> ReminderEffect

DSO (days sales outstanding) for a window of N days = receivables at the end of the window ÷
credit sales (invoice totals) of the window × N. Receivables at a past date d are rebuilt from
the mirror: today's open balances of invoices issued by d, plus what was paid on them after d.

Expected cash: each open invoice's balance × its probability of collection, in the week of
its predicted pay date — the model of ``rules.forecast`` (the customer's usual delay, the
industry prior refined by the company's own payment record: of its invoices that reached an
age, paid ones and open ones alike, the share paid), evaluated over grouped rows instead of
one record per invoice. The invoices of customers with an active promise, payment
plan or dispute are read one by one: what was promised or is owed under the plan counts on
its date, a disputed balance not at all until resolved (``forecast.commitments``).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import itertools
import logging
import threading
import time
import zoneinfo
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from qbo_collector import errors, money, reports, rules, snapshot
from qbo_collector.db import models
from qbo_collector.db.session import Database, is_sqlite
from qbo_collector.db.types import amount_value as _dec
from qbo_collector.rules import calendar as rules_calendar, forecast

log = logging.getLogger(__name__)

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
    receivables: dict[str, Decimal]  # currency → receivables on that day
    sales: dict[str, dict[int, Decimal]]  # currency → {30: credit sales of the 30 days before, 90: …}


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
    cash_disputed: dict[str, Decimal]  # open balances in dispute: not expected until resolved
    top_late: list[LateCustomer]
    reminders: ReminderEffect
    version: tuple[Any, ...] = ()  # what the mirror-derived figures were computed from

    @property
    def currencies(self) -> list[str]:
        found = set(self.aging) | {d.currency for d in self.dso}
        return sorted(found, key=lambda c: (c != self.currency, c))


def build(db: Database, realm_id: str, on: dt.date, *, dso_target: Decimal | None = None) -> Dashboard:
    """Every figure of the dashboard for ``realm_id`` as of ``on``.

    The figures drawn from the mirror alone (aging, DSO and trend, expected cash, late
    customers) come, in this order, from memory, from the row ``refresh`` stored after the last
    sync, or are computed — each only while the mirror is as it was (``mirror_version``). The
    reminders' figures are kept while no reminder is newly sent either (``outbox_version``).
    """
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            raise errors.InvalidInput(f"No company with realm {realm_id}.", field="realm")
        if dso_target is None:
            dso_target = target_of(company)
        mirror = mirror_version(s, company)
        version = (db.url, company.id, on, mirror)
        aging, trend, cash, later, disputed, top_late = memo(
            version, lambda: _stored(s, company, on, mirror) or _compute(db, s, company, on))
        return Dashboard(
            realm=realm_id, company_name=company.name, currency=company.currency, on=on, aging=aging,
            dso=current_dso(company, trend), dso_target=dso_target, trend=trend, cash=cash, cash_later=later,
            cash_disputed=disputed, top_late=top_late, version=version,
            # reminders and the payments that followed them: the outbox and the payments only
            reminders=memo((db.url, company.id, on, "reminders", mirror[4:6], outbox_version(s, company)),
                           lambda: reminder_effect(s, company, on)),
        )


_Figures = tuple[dict[str, dict[str, Decimal]], list["DsoPoint"], dict[str, list["CashWeek"]], dict[str, Decimal],
                 dict[str, Decimal],
                 list["LateCustomer"]]


def _compute(db: Database, s: Session, company: models.Company, on: dt.date) -> _Figures:
    # The payment record behind the forecast (paid invoices' delays, open invoices' ages) and the DSO of
    # past month-ends move slowly: read once a day.
    history, day_trend = memo((db.url, company.id, on, "daily"),
                              lambda: (_history(s, company, on), dso_trend(s, company, on)))
    aging = reports.aging(db, company.realm_id, on)
    trend = [*day_trend[:-1], *dso_trend(s, company, on, months=1)]  # today's point read fresh
    cash, later, disputed = expected_cash(s, company, on, history=history)
    return ({cur: {k: Decimal(v) for k, v in buckets.items()} for cur, buckets in aging["currencies"].items()},
            trend, cash, later, disputed, top_late_customers(s, company, on))


def mirror_version(s: Session, company: models.Company) -> tuple[Any, ...]:
    """Changes whenever the mirror rows the figures read do: a sync that changed something, or the
    dispatcher's fresh read of invoices. A sync that found nothing new leaves it as it was.

    Also a person's promise, dispute or payment plan (expected cash reads them): pauses are only
    added or resolved, so their count, newest id and resolved count tell.

    (newest invoice write, invoices, newest customer write, customers, newest payment write, payments,
    pauses, newest pause, resolved pauses, newest credit memo write, credit memos)."""
    inv, cust, pay, pause, memo = models.Invoice, models.Customer, models.Payment, models.Pause, models.CreditMemo
    invoices = s.execute(select(func.max(inv.synced_at), func.count()).where(inv.company_id == company.id)).one()
    customers = s.execute(select(func.max(cust.synced_at), func.count()).where(cust.company_id == company.id)).one()
    payments = s.execute(select(func.max(pay.synced_at), func.count()).where(pay.company_id == company.id)).one()
    pauses = s.execute(select(func.count(), func.max(pause.id), func.count(pause.resolved_on))
                       .where(pause.company_id == company.id)).one()
    memos = s.execute(select(func.max(memo.synced_at), func.count()).where(memo.company_id == company.id)).one()
    return (*invoices, *customers, *payments, *pauses, *memos)


def outbox_version(s: Session, company: models.Company) -> tuple[Any, ...]:
    """Changes whenever a reminder of the company is marked sent."""
    ob = models.Outbox
    return tuple(s.execute(select(func.max(ob.updated_at), func.count()).where(
        ob.company_id == company.id, ob.status == models.OutboxStatus.sent, ob.kind == "reminder")).one())


# --- figures computed after a sync -------------------------------------------------------

FIGURES_FORMAT = 7  # bump when the stored shape or meaning changes: older rows are then ignored


def _digest(on: dt.date, mirror: tuple[Any, ...]) -> str:
    text = repr((FIGURES_FORMAT, on.isoformat(), *(v.isoformat() if isinstance(v, dt.datetime) else v for v in mirror)))
    return hashlib.sha256(text.encode()).hexdigest()


def refresh(db: Database, realm_id: str, on: dt.date, *, now: dt.datetime | None = None) -> bool:
    """Compute and store the company's figures for ``on`` unless those stored are still current.

    Called by the scheduler after each sync, catch-up and daily run, so the page reads one row
    instead of aggregating the mirror. Returns whether anything was computed.
    """
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            return False
        mirror = mirror_version(s, company)
        digest = _digest(on, mirror)
        if s.scalar(select(models.DashboardFigures.version).where(
                models.DashboardFigures.company_id == company.id, models.DashboardFigures.on == on)) == digest:
            return False
        started = time.perf_counter()
        figures = memo((db.url, company.id, on, mirror), lambda: _compute(db, s, company, on))
        company_id = company.id
    values = {"company_id": company_id, "on": on, "version": digest, "computed_at": now or models.utcnow(),
              "data": _encode(figures)}
    insert = sqlite_insert if is_sqlite(db.engine) else pg_insert
    with db.session() as w:
        statement = insert(models.DashboardFigures).values(**values)
        w.execute(statement.on_conflict_do_update(
            index_elements=[models.DashboardFigures.company_id],
            set_={k: statement.excluded[k] for k in ("on", "version", "computed_at", "data")}))
    log.info("dashboard figures refreshed realm=%s on=%s in %.0f ms", realm_id, on,
             (time.perf_counter() - started) * 1000)
    return True


def _stored(s: Session, company: models.Company, on: dt.date, mirror: tuple[Any, ...]) -> _Figures | None:
    row = s.execute(select(models.DashboardFigures.version, models.DashboardFigures.data).where(
        models.DashboardFigures.company_id == company.id, models.DashboardFigures.on == on)).first()
    if row is None or row.version != _digest(on, mirror):
        return None
    try:
        return _decode(row.data)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        log.warning("stored dashboard figures of realm=%s unreadable; computing them", company.realm_id)
        return None


def _encode(figures: _Figures) -> dict[str, Any]:
    aging, trend, cash, later, disputed, top_late = figures
    return {
        "format": FIGURES_FORMAT,
        "aging": {cur: {k: str(v) for k, v in buckets.items()} for cur, buckets in aging.items()},
        "trend": [{"on": p.on.isoformat(),
                   "values": {cur: {str(w): (str(v) if v is not None else None) for w, v in by.items()}
                              for cur, by in p.values.items()},
                   "receivables": {cur: str(v) for cur, v in p.receivables.items()},
                   "sales": {cur: {str(w): str(v) for w, v in by.items()} for cur, by in p.sales.items()}}
                  for p in trend],
        "cash": {cur: [{"start": w.start.isoformat(), "expected": str(w.expected), "open": str(w.open_balance)}
                       for w in weeks] for cur, weeks in cash.items()},
        "later": {cur: str(v) for cur, v in later.items()},
        "disputed": {cur: str(v) for cur, v in disputed.items()},
        "top_late": [{"id": c.customer_id, "name": c.name, "currency": c.currency, "overdue": str(c.overdue),
                      "oldest_due": c.oldest_due.isoformat(), "days_late": c.days_late, "invoices": c.invoices}
                     for c in top_late],
    }


def _decode(data: dict[str, Any]) -> _Figures:
    if data.get("format") != FIGURES_FORMAT:
        raise ValueError("another format")
    day = dt.date.fromisoformat
    aging = {cur: {k: Decimal(v) for k, v in buckets.items()} for cur, buckets in data["aging"].items()}
    trend = [DsoPoint(on=day(p["on"]),
                      values={cur: {int(w): (Decimal(v) if v is not None else None) for w, v in by.items()}
                              for cur, by in p["values"].items()},
                      receivables={cur: Decimal(v) for cur, v in p["receivables"].items()},
                      sales={cur: {int(w): Decimal(v) for w, v in by.items()} for cur, by in p["sales"].items()})
             for p in data["trend"]]
    cash = {cur: [CashWeek(start=day(w["start"]), expected=Decimal(w["expected"]), open_balance=Decimal(w["open"]))
                  for w in weeks] for cur, weeks in data["cash"].items()}
    later = {cur: Decimal(v) for cur, v in data["later"].items()}
    disputed = {cur: Decimal(v) for cur, v in data["disputed"].items()}
    top_late = [LateCustomer(customer_id=c["id"], name=c["name"], currency=c["currency"], overdue=Decimal(c["overdue"]),
                             oldest_due=day(c["oldest_due"]), days_late=int(c["days_late"]), invoices=int(c["invoices"]))
                for c in data["top_late"]]
    return aging, trend, cash, later, disputed, top_late


MEMO_SIZE = 32
MEMO_SECONDS = 900.0
_memory: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
_memory_lock = threading.Lock()


def memo(key: tuple[Any, ...], compute: Any) -> Any:
    """``compute()``, or its value kept from an earlier call with the same key (at most MEMO_SECONDS old)."""
    now = time.monotonic()
    with _memory_lock:
        hit = _memory.get(key)
        if hit is not None and now - hit[0] < MEMO_SECONDS:
            _memory.move_to_end(key)
            return hit[1]
    value = compute()
    with _memory_lock:
        _memory[key] = (now, value)
        while len(_memory) > MEMO_SIZE:
            _memory.popitem(last=False)
    return value


def forget() -> None:
    """Drop the figures kept in memory (tests; a bench's cold run)."""
    with _memory_lock:
        _memory.clear()


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
    later = s.scalar(select(func.count()).where(pay.company_id == company.id, pay.deleted.is_(False),
                                                pay.txn_date > points[0]))
    if not later:  # e.g. only today's point: nothing was paid after it, no join to walk
        return out
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
    currencies = sorted(set(receivables) | set(sales), key=lambda c: (c != company.currency, c))
    out = []
    for j, point in enumerate(points):
        values: dict[str, dict[int, Decimal | None]] = {}
        ar: dict[str, Decimal] = {}
        sold: dict[str, dict[int, Decimal]] = {}
        for currency in currencies:
            days_sales = sales.get(currency, {})
            ar[currency] = receivables.get(currency, [Decimal(0)] * len(points))[j]
            values[currency], sold[currency] = {}, {}
            for window in DSO_WINDOWS:
                start = point - dt.timedelta(days=window)
                sold[currency][window] = sum((a for d, a in days_sales.items() if start < d <= point), Decimal(0))
                values[currency][window] = _dso(ar[currency], sold[currency][window], window)
        out.append(DsoPoint(on=point, values=values, receivables=ar, sales=sold))
    return out


def current_dso(company: models.Company, trend: list[DsoPoint]) -> list[Dso]:
    """The DSO figures of the last point of the trend (``on``), with their receivables and credit sales."""
    last = trend[-1]
    return [Dso(currency=currency, days=window, receivables=_round(last.receivables[currency], currency),
                credit_sales=_round(last.sales[currency][window], currency), value=last.values[currency][window])
            for currency in last.values for window in DSO_WINDOWS]


# --- expected cash -----------------------------------------------------------------------

def _days_between(s: Session, later: Any, earlier: Any) -> Any:
    if s.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return later - earlier


class _AtLeast:
    """How many values of a histogram (value → count) are at least some number: bisection over suffix sums."""

    def __init__(self, histogram: dict[int, int]) -> None:
        self._values = sorted(histogram)
        self._suffix = list(itertools.accumulate(histogram[d] for d in reversed(self._values)))[::-1]

    def __call__(self, least: int) -> int:
        k = bisect.bisect_left(self._values, least)
        return self._suffix[k] if k < len(self._suffix) else 0


class _History:
    """The company's payment record as histograms: its paid invoices by delay (days from due date to
    last payment), per customer and overall, and its open invoices by days late today (``unpaid``).

    An open invoice counts against the probability of collection at the ages it has stayed unpaid
    ``forecast.UNPAID_AFTER_DAYS`` beyond, as a ``forecast.PaidRecord`` with ``paid_on=None`` does
    (an invoice not yet due, or a week late, says nothing yet). Voided and deleted
    invoices count for nothing: the mirror does not say when they were given up, and most are
    corrections, not bad debts. (A credit memo QuickBooks applies to an invoice comes through a payment:
    the invoice counts as paid that day.)"""

    def __init__(self, rows: Iterable[tuple[str, int, int]], unpaid: Iterable[tuple[int, int]] = ()) -> None:
        self.by_customer: dict[str, dict[int, int]] = defaultdict(dict)
        overall: dict[int, int] = defaultdict(int)
        for customer, delay, count in rows:
            d, n = int(delay), int(count)
            per = self.by_customer[customer]
            per[d] = per.get(d, 0) + n
            overall[d] += n
        self.overall = dict(overall)
        ages: dict[int, int] = defaultdict(int)
        for age, count in unpaid:
            ages[int(age)] += int(count)
        self.unpaid = dict(ages)
        # forecast.predict's "usual delay": round(mean) of the customer's delays, else the company's
        self._average = {c: round(sum(d * n for d, n in h.items()) / sum(h.values())) for c, h in self.by_customer.items()}
        self._overall_average = (round(sum(d * n for d, n in self.overall.items()) / sum(self.overall.values()))
                                 if self.overall else None)
        self._paid_at_least = _AtLeast(self.overall)
        self._unpaid_at_least = _AtLeast(self.unpaid)
        self._probability: dict[int, Decimal] = {}
        self._later: dict[tuple[str | None, int], int] = {}

    def probability(self, days_late: int) -> Decimal:
        """``forecast.probability`` over the histograms: of the invoices that reached ``days_late``
        (paid at least that late, or open and at least that late today), the share paid, blended with the prior."""
        if days_late not in self._probability:
            paid = self._paid_at_least(days_late)
            reached = paid + self._unpaid_at_least(days_late + forecast.UNPAID_AFTER_DAYS)
            prior = forecast.prior_probability(days_late)
            value = (prior * forecast.PRIOR_WEIGHT + paid) / (forecast.PRIOR_WEIGHT + reached)
            self._probability[days_late] = value.quantize(Decimal("0.0001"))
        return self._probability[days_late]

    def predict(self, customer: str, due: dt.date, today: dt.date) -> dt.date:
        """``forecast.predict`` over the histogram."""
        average = self._average.get(customer)
        key: str | None = customer
        if average is None:
            average, key = self._overall_average, None
        if average is None:
            return max(due, today)
        if due + dt.timedelta(days=average) >= today:
            return due + dt.timedelta(days=average)
        age = (today - due).days
        if (key, age) not in self._later:
            pool = self.by_customer[customer] if key is not None else self.overall
            longer = [(d - age, n) for d, n in pool.items() if d > age]
            total = sum(n for _, n in longer)
            self._later[(key, age)] = (round(sum(x * n for x, n in longer) / total) if total
                                       else forecast.DEFAULT_DELAY_DAYS)
        return today + dt.timedelta(days=max(self._later[(key, age)], 1))


def _history(s: Session, company: models.Company, on: dt.date) -> _History:
    inv, link, pay = models.Invoice, models.PaymentLink, models.Payment
    # one row per paid invoice: its customer and the days from due date to its last payment
    per_invoice = (
        select(inv.customer_qbo_id.label("customer"),
               _days_between(s, func.max(pay.txn_date), inv.due_date).label("delay"))
        .join(link, and_(link.company_id == inv.company_id, link.invoice_qbo_id == inv.qbo_id))
        .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
        .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.paid, inv.deleted.is_(False),
               inv.due_date.is_not(None), pay.deleted.is_(False), pay.txn_date.is_not(None))
        .group_by(inv.id, inv.customer_qbo_id, inv.due_date).subquery())
    rows = s.execute(select(per_invoice.c.customer, per_invoice.c.delay, func.count())
                     .group_by(per_invoice.c.customer, per_invoice.c.delay))
    paid = [(c, d, n) for c, d, n in rows if d is not None]
    # the invoices whose balance expected cash weighs, by due date: each is as late as it is today, unpaid
    due = _due(models.Invoice)
    unpaid = s.execute(select(due, func.count()).where(_open(company)).group_by(due))
    return _History(paid, [((on - _as_date(day)).days, n) for day, n in unpaid])


def _due(inv: Any) -> Any:
    return func.coalesce(inv.due_date, inv.txn_date)  # no due date in QuickBooks: due on the invoice date


def _open(company: models.Company) -> Any:
    """The invoices expected cash is made of: open, with a balance and a due date."""
    inv = models.Invoice
    return and_(inv.company_id == company.id, inv.status == models.InvoiceStatus.open, inv.deleted.is_(False),
                inv.balance > 0, _due(inv).is_not(None))


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _committed_customers(s: Session, company: models.Company, on: dt.date) -> dict[str, list[rules.Pause]]:
    """The customers whose promise, payment plan or dispute is active on ``on``, with those pauses."""
    p = models.Pause
    rows = s.scalars(select(p).where(
        p.company_id == company.id, p.kind.in_(("promise", "plan", "dispute")), p.start_on <= on,
        (p.resolved_on.is_(None)) | (p.resolved_on > on)).order_by(p.start_on, p.id))
    out: dict[str, list[rules.Pause]] = defaultdict(list)
    for row in rows:
        record = snapshot.pause_record(row, company.currency)
        if record is not None:
            out[row.customer_qbo_id].append(record)
    return dict(out)


def expected_cash(s: Session, company: models.Company, on: dt.date, weeks: int = 8, *,
                  history: _History | None = None
                  ) -> tuple[dict[str, list[CashWeek]], dict[str, Decimal], dict[str, Decimal]]:
    """Probability-weighted cash per week for the next ``weeks`` weeks (from this Monday), what comes
    later, and the open balances in dispute (not expected until resolved), per currency."""
    history = history if history is not None else _history(s, company, on)
    inv = models.Invoice
    due = _due(inv)
    committed = _committed_customers(s, company, on)
    credited = snapshot.shared_credits(s, company, on).credits  # a parent's credit pays its jobs' too
    apart = sorted(set(committed) | set(credited))  # read invoice by invoice
    open_ = _open(company)
    # (customer, when, due date, currency, amount): when is None for the predicted pay date
    parts: list[tuple[str, dt.date | None, dt.date, str, Decimal]] = []
    grouped = select(inv.customer_qbo_id, due, inv.currency, func.sum(inv.balance)).where(open_)
    if apart:
        grouped = grouped.where(inv.customer_qbo_id.not_in(apart))
    for customer, due_on, currency, balance in s.execute(grouped.group_by(inv.customer_qbo_id, due, inv.currency)):
        parts.append((customer, None, _as_date(due_on), currency, _dec(balance)))
    disputed: dict[str, Decimal] = defaultdict(Decimal)
    if apart:
        mine: dict[str, list[rules.Invoice]] = defaultdict(list)
        for qbo_id, customer, due_on, currency, balance in s.execute(
                select(inv.qbo_id, inv.customer_qbo_id, due, inv.currency, inv.balance)
                .where(open_, inv.customer_qbo_id.in_(apart))):
            amount = money.Money(_dec(balance), currency)
            mine[customer].append(rules.Invoice(realm=company.realm_id, id=qbo_id, customer_id=customer,
                                                currency=currency, total=amount, balance=amount, txn_date=None,
                                                due_date=_as_date(due_on)))
        for customer, invoices in mine.items():
            pauses = committed.get(customer, [])
            if customer in credited:
                invoices = forecast.with_credits(invoices, credited[customer], forecast.disputed(invoices, pauses, on))
            said = forecast.commitments(invoices, pauses, on)
            for invoice in invoices:
                assert invoice.due_date is not None
                if invoice.balance.amount <= 0:
                    continue  # settled by the customer's credit
                if invoice.id in said.disputed:
                    disputed[invoice.currency] += invoice.balance.amount
                    continue
                rest = invoice.balance.amount
                for when, amount, _basis in said.parts.get(invoice.id, ()):
                    parts.append((customer, when, invoice.due_date, invoice.currency, amount))
                    rest -= amount
                if rest > 0:
                    parts.append((customer, None, invoice.due_date, invoice.currency, rest))
    first = _monday(on)
    expected: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * weeks)
    unweighted: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * weeks)
    later: dict[str, Decimal] = defaultdict(Decimal)
    for customer, when, due_on, currency, amount in parts:
        predicted = when if when is not None else history.predict(customer, due_on, on)
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
    return (out, {c: _round(v, c) for c, v in later.items()},
            {c: _round(v, c) for c, v in sorted(disputed.items(), key=lambda x: (x[0] != company.currency, x[0]))})


# --- late customers and reminders ---------------------------------------------------------

def top_late_customers(s: Session, company: models.Company, on: dt.date, limit: int = 10) -> list[LateCustomer]:
    """Customers owing the most on invoices past due: in the company's currency, largest first, then
    each other currency apart, largest first (amounts in two currencies are not compared: there are
    no exchange rates). A customer's unused credit is applied first (oldest due first, as the rules
    engine does): what it settles is not owed, and a customer whose credit settles every late
    invoice is not late."""
    inv, cust = models.Invoice, models.Customer
    due = func.coalesce(inv.due_date, inv.txn_date)
    overdue = func.sum(inv.balance).label("overdue")
    credited = {c: v for c, v in snapshot.shared_credits(s, company, on).credits.items() if c and v}
    rows = s.execute(
        select(inv.customer_qbo_id, inv.currency, overdue, func.min(due), func.count())
        .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.open, inv.deleted.is_(False),
               inv.balance > 0, due < on)
        .group_by(inv.customer_qbo_id, inv.currency)
        .order_by(case((inv.currency == company.currency, 0), else_=1), inv.currency, overdue.desc())
        .limit(limit + len(credited))).all()  # room for those credit takes down
    holders = sorted({r[0] for r in rows if r[0] in credited})
    if holders:
        net: dict[tuple[str, str], tuple[Decimal, dt.date, int] | None] = {}
        for snap in snapshot.load(s, company, today=on, customer_ids=holders):
            mine = forecast.with_credits(snap.invoices, credited[snap.customer.id],
                                         forecast.disputed(snap.invoices, snap.pauses, on))
            for cur in {i.currency for i in mine}:
                late = [(i, d) for i, d in rules.planner.oldest_first(mine) if i.currency == cur and d < on]
                net[(snap.customer.id, cur)] = ((sum((i.balance.amount for i, _d in late), Decimal(0)), late[0][1],
                                                 len(late)) if late else None)
        rows = [(c, cur, *(net[(c, cur)] or (None, None, 0))) if (c, cur) in net else (c, cur, a, d, n)
                for c, cur, a, d, n in rows]
        rows = sorted((r for r in rows if r[2] is not None), key=lambda r: (r[1] != company.currency, r[1], -_dec(r[2])))
    rows = rows[:limit]
    names = dict(s.execute(select(cust.qbo_id, cust.display_name).where(
        cust.company_id == company.id, cust.qbo_id.in_([r[0] for r in rows] or [""]))).all())
    return [LateCustomer(customer_id=c, name=names.get(c, c), currency=cur, overdue=_round(_dec(a), cur),
                         oldest_due=_as_date(d), days_late=(on - _as_date(d)).days, invoices=int(n))
            for c, cur, a, d, n in rows]


def reminder_effect(s: Session, company: models.Company, on: dt.date, days: int = 90,
                    within_days: int = 30) -> ReminderEffect:
    """Reminders sent in the last ``days`` days, and how many were followed by a payment on one of
    their invoices within ``within_days`` days.

    Days are the company's: QuickBooks dates a payment (TxnDate) on the company's calendar, so a
    reminder counts on its local date, in its local week, and the window opens at local midnight —
    a text sent at 17:30 in Los Angeles (01:30 UTC the next day) is followed by a payment dated that day."""
    start = on - dt.timedelta(days=days)
    zone = _zone(company)
    ob = models.Outbox
    sent = s.execute(select(ob.invoice_ids, ob.sent_at).where(
        ob.company_id == company.id, ob.kind == "reminder", ob.status == models.OutboxStatus.sent,
        ob.dry_run.is_(False), ob.sent_at.is_not(None),
        ob.sent_at >= dt.datetime.combine(start, dt.time(), zone).astimezone(dt.timezone.utc))).all()
    link, pay = models.PaymentLink, models.Payment
    payments: dict[str, list[tuple[dt.date, Decimal, str]]] = defaultdict(list)
    paid_since = (select(link.invoice_qbo_id, pay.txn_date, link.amount, pay.currency)
                  .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
                  .where(link.company_id == company.id, pay.deleted.is_(False), pay.txn_date >= start))
    if s.get_bind().dialect.name == "sqlite":
        # SQLite would walk every payment link of the company: ask for the reminded invoices' ones (index on invoice)
        reminded = sorted({str(i) for ids, _at in sent for i in (ids or [])})
        queries = [paid_since.where(link.invoice_qbo_id.in_(reminded[k:k + 500])) for k in range(0, len(reminded), 500)]
    else:  # PostgreSQL hashes the window's payments in one pass
        queries = [paid_since] if sent else []
    for query in queries:
        for invoice, day, amount, currency in s.execute(query):
            if day is not None:
                payments[invoice].append((_as_date(day), _dec(amount), currency or company.currency))
    first_week = _monday(start)
    n_weeks = (_monday(on) - first_week).days // 7 + 1
    weeks = [[first_week + dt.timedelta(weeks=w), 0, 0] for w in range(n_weeks)]
    paid_after = 0
    collected: dict[str, Decimal] = defaultdict(Decimal)
    counted: set[tuple[str, dt.date]] = set()
    for invoice_ids, sent_at in sent:
        day = sent_at.astimezone(zone).date()
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

def _round(value: Decimal, currency: str) -> Decimal:
    try:
        return money.Money(value, currency).rounded().amount
    except (ValueError, ArithmeticError):
        return value


def _zone(company: models.Company) -> dt.tzinfo:
    """The company's time zone; UTC when the mirror holds one Python does not know."""
    try:
        return rules_calendar.zone(company.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


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
