"""What a reminder template can see: the records the dispatcher fills in, and their samples.

Pure: no I/O. The dispatcher builds one ``ReminderContext`` per message; the settings page
shows ``PLACEHOLDERS`` next to the editor and renders ``sample_context()`` as the preview.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Literal

from babel import Locale, UnknownLocaleError

from qbo_collector import errors
from qbo_collector.money import Money

LANGUAGES = ("en", "fr")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvoiceLine:
    """One open invoice as the customer sees it."""

    number: str
    issue_date: datetime.date
    due_date: datetime.date
    total: Money
    balance: Money
    days_overdue: int  # (today - due_date) in days; 0 or less means not late yet
    po_number: str | None = None
    payment_link: str | None = None  # QBO InvoiceLink, present only when online payment is on
    job: str | None = None  # the job or sub-customer it bills, when the message goes to the parent it is billed with
    fee: Money | None = None  # late-fee notice: the late fee just added for it (several fees of one run: their sum)

    @property
    def terms_days(self) -> int:
        """Days between issue and due date: 30 reads "due within 30 days", 0 "due on receipt"."""
        return max(0, (self.due_date - self.issue_date).days)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiscountOffer:
    """An early-payment discount: pay by ``deadline`` and save ``amount`` (``percent`` of the total)."""

    amount: Money
    deadline: datetime.date
    percent: Decimal


@dataclasses.dataclass(frozen=True, kw_only=True)
class LateFeeRule:
    """One of the company's late-fee rules, told to the customer in a plain sentence.

    ``kind`` "percent" charges ``rate`` percent of the unpaid balance, "flat" charges ``amount``,
    "interest" accrues at the annual ``rate`` (the ECB rate plus ``ecb_points`` when those are
    set), "indemnity" is the fixed recovery ``amount`` per invoice (France: €40).
    ``period`` "month" repeats each month the invoice stays unpaid, "days" every ``every_days``,
    "once" charges it one time (interest is billed per period; the indemnity is once);
    nothing is charged until ``grace_days`` after the due date.
    """

    kind: Literal["percent", "flat", "interest", "indemnity"]
    rate: Decimal | None = None
    amount: Money | None = None
    grace_days: int = 0
    period: Literal["month", "days", "once"] = "month"
    every_days: int | None = None
    ecb_points: Decimal | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("percent", "flat", "interest", "indemnity"):
            raise errors.InvalidInput(f"Unknown late fee kind {self.kind!r}.", field="late_fee_rule")
        if self.kind in ("percent", "interest") and self.rate is None:
            raise errors.InvalidInput(f"A {self.kind} late fee needs a rate.", field="late_fee_rule")
        if self.kind in ("flat", "indemnity") and self.amount is None:
            raise errors.InvalidInput(f"A {self.kind} late fee needs an amount.", field="late_fee_rule")
        if self.period not in ("month", "days", "once"):
            raise errors.InvalidInput(f"Unknown late fee period {self.period!r}.", field="late_fee_rule")
        if self.period == "days" and not self.every_days:
            raise errors.InvalidInput("A late fee repeated every N days needs the number of days.", field="late_fee_rule")
        if self.kind == "interest" and self.period == "once":
            raise errors.InvalidInput("Interest is billed per period, not once.", field="late_fee_rule")
        if self.kind == "indemnity" and self.period != "once":
            raise errors.InvalidInput("The recovery indemnity is charged once per invoice.", field="late_fee_rule")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Promise:
    """What the customer promised: ``amount`` by ``date``."""

    amount: Money
    date: datetime.date


@dataclasses.dataclass(frozen=True, kw_only=True)
class OwnerAlert:
    """One thing the owner is told (owner_alert): the sentence, where to act, and the invoice it is about."""

    alert: str
    action_link: str | None = None
    customer_name: str | None = None
    invoice: InvoiceLine | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReminderContext:
    """Everything one message may say. Built by the dispatcher; the templates only read it.

    ``total_due`` is one Money, a tuple of Money (one per currency), or None to add up the
    invoices' balances per currency. Empty collections are ``()``, never None. For an
    ``owner_alert`` the reader is the owner: ``customer_language`` and ``locale`` are the
    owner's, ``alert`` says what happened, and ``invoices`` may be empty.
    """

    company_name: str
    sender_name: str
    customer_name: str
    customer_language: str  # "en" or "fr": the words
    locale: str  # "fr_FR", "en_US", "en_CA", "fr_CA": how amounts and dates are written
    today: datetime.date
    reply_to: str | None = None
    company_phone: str | None = None
    invoices: tuple[InvoiceLine, ...] = ()
    total_due: Money | tuple[Money, ...] | None = None
    discount: DiscountOffer | None = None
    late_fee_rule: LateFeeRule | None = None  # the first of late_fee_rules (templates written before there were several)
    late_fee_rules: tuple[LateFeeRule, ...] = ()  # every rule; empty: late_fee_rule alone, if set
    fee: Money | None = None
    promise: Promise | None = None
    tone: str = "friendly"
    alert: str | None = None  # owner_alert only: why the owner is told ("Invoice 1042 is now late")
    action_link: str | None = None  # owner_alert only: where to act (reconnect page, customer page)
    alerts: tuple[OwnerAlert, ...] = ()  # owner_alert only: everything a run tells the owner, in one message

    def __post_init__(self) -> None:
        if self.customer_language not in LANGUAGES:
            raise errors.InvalidInput(
                f"Reminders are written in {' or '.join(LANGUAGES)}, not {self.customer_language!r}.",
                field="customer_language",
            )
        try:
            Locale.parse(self.locale)
        except (ValueError, TypeError, UnknownLocaleError) as exc:
            raise errors.InvalidInput(f"Unknown locale {self.locale!r}.", field="locale") from exc
        if not isinstance(self.invoices, tuple):
            object.__setattr__(self, "invoices", tuple(self.invoices))
        if not isinstance(self.alerts, tuple):
            object.__setattr__(self, "alerts", tuple(self.alerts))
        if not isinstance(self.late_fee_rules, tuple):
            object.__setattr__(self, "late_fee_rules", tuple(self.late_fee_rules))
        if isinstance(self.total_due, list):
            object.__setattr__(self, "total_due", tuple(self.total_due))

    @property
    def totals(self) -> tuple[Money, ...]:
        """The amount due, one Money per currency, in the order the currencies first appear."""
        if isinstance(self.total_due, Money):
            return (self.total_due,)
        if self.total_due is not None:
            return tuple(self.total_due)
        return sum_by_currency(line.balance for line in self.invoices)

    def replace(self, **changes: object) -> "ReminderContext":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def sum_by_currency(amounts: Iterable[Money]) -> tuple[Money, ...]:
    totals: dict[str, Money] = {}
    for amount in amounts:
        totals[amount.currency] = totals[amount.currency].add(amount) if amount.currency in totals else amount
    return tuple(totals.values())


# The settings page lists these next to the editor, in this order.
PLACEHOLDERS: Mapping[str, str] = MappingProxyType({
    "company_name": "Your company's name.",
    "sender_name": "The person or team signing the message.",
    "reply_to": "The address replies go to (may be empty).",
    "company_phone": "Your phone number (may be empty).",
    "customer_name": "The customer's name as in QuickBooks.",
    "customer_language": "The customer's language: en or fr.",
    "locale": "How amounts and dates are written, e.g. fr_CA.",
    "today": "Today's date; write {{ today|date }}.",
    "invoice": "The invoice this reminder is about (the first of invoices).",
    "invoice.number": "The invoice number.",
    "invoice.issue_date": "The invoice date; write {{ invoice.issue_date|date }}.",
    "invoice.due_date": "The due date; write {{ invoice.due_date|date }}.",
    "invoice.terms_days": "Days given to pay (30 = due within 30 days, 0 = due on receipt).",
    "invoice.total": "The invoice total; write {{ invoice.total|money }}.",
    "invoice.balance": "What is still unpaid; write {{ invoice.balance|money }}.",
    "invoice.days_overdue": "Days past the due date; write {{ invoice.days_overdue|days }}.",
    "invoice.po_number": "The customer's purchase order number (may be empty).",
    "invoice.payment_link": "The QuickBooks pay-online link (may be empty).",
    "invoice.job": "The job or sub-customer the invoice is for, when the message goes to the parent it is billed with (may be empty).",
    "invoices": "All invoices in this message: {% for line in invoices %}…{% endfor %}.",
    "totals": "The amount due, one per currency: {% for total in totals %}{{ total|money }}{% endfor %}.",
    "total_due": "The amount due as the dispatcher gave it; {{ total_due|money }} joins currencies.",
    "discount": "Early-payment discount offer (may be empty).",
    "discount.amount": "What the customer saves; write {{ discount.amount|money }}.",
    "discount.deadline": "Pay by this date to get the discount.",
    "discount.percent": "The discount rate; write {{ discount.percent|percent }}.",
    "late_fee_terms": "Your late-fee policy as one sentence in the customer's language (may be empty).",
    "late_fee_rule": "Your late-fee policy as data: kind, rate, amount, grace_days, period (may be empty).",
    "late_fee_rules": "Every late-fee rule as data, the first being late_fee_rule; each with kind (flat, percent, interest, indemnity), rate, amount, grace_days, period (once, month, days), every_days and ecb_points.",
    "fee": "The late fee just charged (late fee notice only).",
    "fees": "Late fee notice: the invoices a late fee was just added to, each with line.fee; more than one when one email tells the fees of a run.",
    "promise": "The customer's promise to pay (promise broken only).",
    "promise.amount": "The amount promised.",
    "promise.date": "The date promised.",
    "tone": "The reminder step's tone, as set in the schedule.",
    "alert": "Owner alerts only: what happened, in one sentence.",
    "action_link": "Owner alerts only: where to act (may be empty).",
    "alerts": "Owner alerts only: everything a run tells you, each with alert, action_link, customer_name and invoice; more than one when one message tells them all.",
})

# Filters the templates may use, shown under the placeholders.
FILTERS: Mapping[str, str] = MappingProxyType({
    "money": "An amount as the customer reads it: 1 234,50 € or $1,234.50.",
    "date": "A date as the customer reads it: 23 novembre 2026 or Nov 23, 2026; date('long') for the long form.",
    "days": "A number of days with the right plural: 1 day, 3 days / 1 jour, 3 jours.",
    "percent": "A percentage: 1.5% / 1,5 %.",
    "default": "A fallback for an empty placeholder: {{ invoice.po_number|default('none') }}.",
    "upper, lower, title, capitalize, trim, truncate, length, first, last, sort, round": "Jinja's usual filters.",
})


def sample_context(language: str, *, minimal: bool = False, key: str | None = None) -> ReminderContext:
    """A made-up customer for the settings preview and for ``validate()``.

    ``minimal`` leaves out everything optional (PO, payment link, discount, late-fee policy,
    reply-to, phone), keeping only what the template ``key`` always receives.
    """
    if language not in LANGUAGES:
        raise errors.InvalidInput(f"No sample in {language!r}.", field="language")
    french = language == "fr"
    currency = "EUR" if french else "USD"
    today = datetime.date(2026, 11, 23)
    invoices = (
        InvoiceLine(
            number="1042",
            issue_date=datetime.date(2026, 10, 9),
            due_date=datetime.date(2026, 11, 8),
            total=Money.of("1234.50", currency),
            balance=Money.of("1234.50", currency),
            days_overdue=15,
            po_number="PO-7781",
            payment_link="https://connect.intuit.com/portal/app/CommerceNetwork/view/scs-v1-4f2a9c",
        ),
        InvoiceLine(
            number="1057",
            issue_date=datetime.date(2026, 11, 2),
            due_date=datetime.date(2026, 12, 2),
            total=Money.of("480", currency),
            balance=Money.of("200", currency),
            days_overdue=-9,
            payment_link="https://connect.intuit.com/portal/app/CommerceNetwork/view/scs-v1-8b1d07",
        ),
    )
    context = ReminderContext(
        company_name="Atelier Dubois" if french else "Maple Street Bakery",
        sender_name="Claire Dubois" if french else "Sam Patel",
        reply_to="compta@atelier-dubois.fr" if french else "billing@maplestreetbakery.com",
        company_phone="01 42 68 53 00" if french else "(555) 010-4477",
        customer_name="Marie Lefèvre" if french else "O'Brien & Sons",
        customer_language=language,
        locale="fr_FR" if french else "en_US",
        today=today,
        invoices=invoices,
        discount=DiscountOffer(
            amount=Money.of("24.69", currency), deadline=datetime.date(2026, 11, 30), percent=Decimal("2")
        ),
        late_fee_rule=LateFeeRule(kind="percent", rate=Decimal("1.5"), grace_days=10, period="month"),
        fee=Money.of("18.52", currency),
        promise=Promise(amount=Money.of("1234.50", currency), date=datetime.date(2026, 11, 20)),
        alert=(
            "La facture 1042 de Marie Lefèvre est en retard de 15 jours."
            if french
            else "Invoice 1042 for O'Brien & Sons is now 15 days late."
        ),
        action_link="https://collector.example.com/customers/58",
    )
    if not minimal:
        return context
    keep = _ALWAYS_PRESENT.get(key, {"invoices"}) if key else {"invoices", "fee", "promise", "alert"}
    first = dataclasses.replace(invoices[0], po_number=None, payment_link=None)
    return context.replace(
        invoices=(first,) if "invoices" in keep else (),
        reply_to=None,
        company_phone=None,
        discount=None,
        late_fee_rule=None,
        late_fee_rules=(),
        action_link=None,
        fee=context.fee if "fee" in keep else None,
        promise=context.promise if "promise" in keep else None,
        alert=context.alert if "alert" in keep else None,
    )


# What each template is always given (so its minimal sample keeps them); the others get invoices.
_ALWAYS_PRESENT: Mapping[str, set[str]] = {
    "late_fee_notice": {"invoices", "fee"},
    "promise_broken": {"invoices", "promise"},
    "owner_alert": {"alert"},
}
