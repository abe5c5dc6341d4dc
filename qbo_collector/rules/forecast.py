"""Payment prediction and probability of collection. Pure.

Inputs: the company's paid-invoice history (``PaidRecord``: due date, paid date; a record
with ``paid_on=None`` is an invoice that was never paid, e.g. written off) and today.
Output per open invoice: a predicted pay date and the probability it is collected, which
the dashboard multiplies into expected cash.

The probability starts from the industry prior by days late (about −10 % a month from
30 days, ~70 % at 90, ~50 % at 180, under 10 % after a year) and is refined by the
company's own record: among its past invoices that reached the same age, the share that
was paid, blended with the prior as if the prior were worth ``PRIOR_WEIGHT`` invoices.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from qbo_collector.rules import model, planner

PRIOR_WEIGHT = 20
DEFAULT_DELAY_DAYS = 14  # when an invoice is already later than anything in its history

# (days late, probability of collection): linear between the points, flat after the last.
PRIOR_CURVE: tuple[tuple[int, Decimal], ...] = (
    (0, Decimal("0.98")),
    (30, Decimal("0.90")),
    (60, Decimal("0.80")),
    (90, Decimal("0.70")),
    (180, Decimal("0.50")),
    (365, Decimal("0.08")),
    (730, Decimal("0.02")),
)

_record = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)


@_record
class PaidRecord:
    customer_id: str
    due_date: dt.date
    paid_on: dt.date | None

    def days_late(self, today: dt.date) -> int:
        return ((self.paid_on or today) - self.due_date).days


@_record
class CustomerProfile:
    customer_id: str
    invoices: int
    average_days_late: Decimal | None  # over paid invoices; early payment counts negative


@_record
class InvoiceForecast:
    invoice_id: str
    customer_id: str
    days_late: int
    predicted_pay_date: dt.date
    probability: Decimal  # 0..1, four decimals


def prior_probability(days_late: int) -> Decimal:
    """The industry prior for an invoice ``days_late`` days past due (not yet due counts as 0)."""
    days = max(days_late, 0)
    for (d0, p0), (d1, p1) in zip(PRIOR_CURVE, PRIOR_CURVE[1:]):
        if days <= d1:
            return p0 + (p1 - p0) * Decimal(days - d0) / Decimal(d1 - d0)
    return PRIOR_CURVE[-1][1]


def profile(customer_id: str, records: Iterable[PaidRecord]) -> CustomerProfile:
    paid = [(r.paid_on - r.due_date).days for r in records if r.customer_id == customer_id and r.paid_on is not None]
    avg = (Decimal(sum(paid)) / len(paid)).quantize(Decimal("0.1")) if paid else None
    return CustomerProfile(customer_id=customer_id, invoices=len(paid), average_days_late=avg)


def probability(days_late: int, records: Sequence[PaidRecord], today: dt.date) -> Decimal:
    """Prior for ``days_late`` refined by the company's invoices that were at least that late.

    Not yet due (``days_late`` < 0) counts as well: an invoice due in ten days is weighed by
    the invoices still unpaid ten days before their due date, those paid early included.
    """
    reached = [r for r in records if r.days_late(today) >= days_late]
    paid = sum(1 for r in reached if r.paid_on is not None)
    prior = prior_probability(days_late)
    value = (prior * PRIOR_WEIGHT + paid) / (PRIOR_WEIGHT + len(reached))
    return value.quantize(Decimal("0.0001"))


def predict(invoice: model.Invoice, due: dt.date, records: Sequence[PaidRecord], today: dt.date) -> dt.date:
    """Due date plus the customer's usual delay (else the company's); never before today."""
    age = (today - due).days
    own = [r for r in records if r.customer_id == invoice.customer_id and r.paid_on is not None]
    pool = own or [r for r in records if r.paid_on is not None]
    delays = [(r.paid_on - r.due_date).days for r in pool]  # type: ignore[operator]
    if not delays:
        return max(due, today)
    average = round(sum(delays) / len(delays))
    if due + dt.timedelta(days=average) >= today:
        return due + dt.timedelta(days=average)
    # Already later than usual: expect the remaining delay of past invoices that were this late.
    longer = [d - age for d in delays if d > age]
    extra = round(sum(longer) / len(longer)) if longer else DEFAULT_DELAY_DAYS
    return today + dt.timedelta(days=max(extra, 1))


def forecast(invoices: Iterable[model.Invoice], records: Sequence[PaidRecord], today: dt.date) -> list[InvoiceForecast]:
    """Predicted pay date and probability of collection for each open invoice with a due date."""
    out = []
    for invoice in sorted(invoices, key=lambda i: i.id):
        due, _ = planner.effective_due_date(invoice)
        if not invoice.is_open or due is None:
            continue
        days_late = (today - due).days
        out.append(InvoiceForecast(
            invoice_id=invoice.id, customer_id=invoice.customer_id, days_late=days_late,
            predicted_pay_date=predict(invoice, due, records, today),
            probability=probability(days_late, records, today),
        ))
    return out
