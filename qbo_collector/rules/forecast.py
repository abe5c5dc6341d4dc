"""Payment prediction and probability of collection. Pure.

Inputs: the company's invoice history (``PaidRecord``: due date, paid date; a record with
``paid_on=None`` is an invoice not paid: one still open, as late as it is today — the
dashboard passes every open invoice so — or one given up on) and today.
Output per open invoice: a predicted pay date and the probability it is collected, which
the dashboard multiplies into expected cash.

What a person recorded comes first (``commitments``, ``expected``): a promise to pay puts the
promised amount on the promise date, a payment plan puts the instalments still owed on their
dates, and a disputed invoice is not expected at all until the dispute is resolved; only what
is left of a balance follows the prediction. A commitment moves *when* money is expected, not
*whether*: it keeps the invoice's probability by age. A promise whose date has passed, or a
plan past its last instalment, no longer predicts anything. A manual pause changes nothing.
Before all that, a customer's unused credit (credit memos, unapplied payments) is taken off its
oldest invoices (``with_credits``): what it settles is not cash to come.

The probability starts from the industry prior by days late (about −10 % a month from
30 days, ~70 % at 90, ~50 % at 180, under 10 % after a year) and is refined by the
company's own record: among its invoices that reached the same age, paid or not, the share
that was paid, blended with the prior as if the prior were worth ``PRIOR_WEIGHT`` invoices.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from qbo_collector import money
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
class CashPart:
    """Part (or all) of an open invoice's balance, expected on ``on`` with ``probability``.

    ``basis``: "forecast" (the prediction), "promise", "plan" (what a person recorded), or
    "dispute" (``on`` is None: not expected until the dispute is resolved)."""

    invoice_id: str
    customer_id: str
    on: dt.date | None
    amount: Decimal
    probability: Decimal
    basis: str


@_record
class Commitments:
    """What the customer's pauses say about its invoices: dated amounts per invoice, and the disputed ones."""

    parts: dict[str, list[tuple[dt.date, Decimal, str]]]
    disputed: frozenset[str]


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


# An invoice still unpaid counts against an age only once it has stayed unpaid this long past it: until
# then whether it will be paid is not known (an invoice due in a fortnight, or a week late, is no failure).
UNPAID_AFTER_DAYS = 90


def probability(days_late: int, records: Sequence[PaidRecord], today: dt.date) -> Decimal:
    """Prior for ``days_late`` refined by the company's invoices that were at least that late: those
    paid, and those still unpaid ``UNPAID_AFTER_DAYS`` after that age (counted as not paid).

    Not yet due (``days_late`` < 0) counts as well: an invoice due in ten days is weighed by
    the invoices still unpaid ten days before their due date, those paid early included.
    """
    reached = [r for r in records if r.days_late(today) >= days_late + (0 if r.paid_on is not None else UNPAID_AFTER_DAYS)]
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


_oldest_first = planner.oldest_first
disputed = planner.disputed
with_credits = planner.with_credits  # the engine applies unused credit the same way (``planner.credit_covered``)


def commitments(invoices: Sequence[model.Invoice], pauses: Sequence[model.Pause], today: dt.date) -> Commitments:
    """Which amounts of one customer's open ``invoices`` its ``pauses`` put on which dates, as of ``today``.

    An active dispute takes its invoices out. An active promise (``today`` ≤ its date) puts
    min(promised, balance) on its date; an active plan (``today`` ≤ its last instalment) the
    instalments still owed — the last ones adding up to the balance, as payments settle the
    earliest first — each on its date, or today when it is past. Amounts go to the covered
    invoices oldest due date first; pauses apply in the order given, each on what is left.
    """
    held = disputed(invoices, pauses, today)
    left = {i.id: i.balance.amount for i, _ in _oldest_first(invoices) if i.id not in held}
    parts: dict[str, list[tuple[dt.date, Decimal, str]]] = {}
    for p in pauses:
        if isinstance(p, model.Promise) and p.made_on <= today <= p.until:
            dated = [(p.until, p.amount.amount)]
            basis = "promise"
        elif isinstance(p, model.PaymentPlan) and p.instalments and p.agreed_on <= today <= max(
                x.due_on for x in p.instalments):
            covered = sum((v for k, v in left.items() if model.covers(p, k)), Decimal(0))
            dated, basis = [], "plan"
            for x in sorted(p.instalments, key=lambda x: x.due_on, reverse=True):  # the last ones are still owed
                take = min(x.amount.amount, covered)
                if take > 0:
                    dated.append((max(x.due_on, today), take))
                    covered -= take
            dated.reverse()
        else:
            continue
        for on, amount in dated:
            for invoice_id in [k for k in left if model.covers(p, k)]:
                take = min(amount, left[invoice_id])
                if take <= 0:
                    continue
                parts.setdefault(invoice_id, []).append((on, take, basis))
                left[invoice_id] -= take
                amount -= take
    return Commitments(parts=parts, disputed=held)


def expected(invoices: Iterable[model.Invoice], records: Sequence[PaidRecord], today: dt.date,
             pauses: dict[str, Sequence[model.Pause]] | None = None,
             credits: Mapping[str, Mapping[str, Decimal]] | None = None) -> list[CashPart]:
    """The open invoices' balances as dated, weighted parts: what the customers' unused credit
    settles is not cash to come (``with_credits``); of the rest, what their pauses commit first
    (``commitments``), the rest on the predicted pay date (``forecast``). ``pauses``: by customer
    id; ``credits``: by customer id, then currency."""
    by_customer: dict[str, list[model.Invoice]] = {}
    for invoice in invoices:
        by_customer.setdefault(invoice.customer_id, []).append(invoice)
    for c, mine in by_customer.items():
        if (credits or {}).get(c):
            by_customer[c] = with_credits(mine, credits[c], disputed(mine, (pauses or {}).get(c, ()), today))  # type: ignore[index]
    invoices = [i for mine in by_customer.values() for i in mine]
    committed = {c: commitments(mine, (pauses or {}).get(c, ()), today) for c, mine in by_customer.items()}
    balances = {i.id: i.balance.amount for i in invoices}
    out = []
    for f in forecast(invoices, records, today):
        mine = committed[f.customer_id]
        if f.invoice_id in mine.disputed:
            out.append(CashPart(invoice_id=f.invoice_id, customer_id=f.customer_id, on=None,
                                amount=balances[f.invoice_id], probability=f.probability, basis="dispute"))
            continue
        rest = balances[f.invoice_id]
        for on, amount, basis in mine.parts.get(f.invoice_id, ()):
            out.append(CashPart(invoice_id=f.invoice_id, customer_id=f.customer_id, on=on, amount=amount,
                                probability=f.probability, basis=basis))
            rest -= amount
        if rest > 0:
            out.append(CashPart(invoice_id=f.invoice_id, customer_id=f.customer_id, on=f.predicted_pay_date,
                                amount=rest, probability=f.probability, basis="forecast"))
    return out
