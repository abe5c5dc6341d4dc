"""The records the rules engine reads: a snapshot of the mirror, the history, the pauses.

Every record is a frozen, keyword-only dataclass. The database layer adapts its rows into
them (``Invoice(realm=..., id=row.qbo_id, ...)``); the engine never sees a row or a session.
Empty collections are ``frozenset()`` or ``()``, never ``None``. Dates are the company's
local calendar dates; datetimes are aware and in UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Literal

import holidays as holidays_lib

from qbo_collector import errors, money

InvoiceStatus = Literal["open", "paid", "voided", "deleted"]
HistoryKind = Literal["reminder", "fee", "task", "alert"]

_record = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)


@_record
class CompanyContext:
    """The company being planned for.

    ``time_zone`` is an IANA name ("Europe/Paris"); ``country`` an ISO 3166 code the
    ``holidays`` package knows ("FR", "US"), ``subdivision`` optional ("CA", "75");
    ``currency`` the home currency. ``fees_from``: the first day a fee may be charged for
    (the day the company started using the program): periods that fell before it are never
    billed afterwards, so connecting a company with year-old invoices does not post a pile
    of back-dated fees. None charges every missed period.
    """

    realm: str
    time_zone: str
    country: str
    currency: str
    subdivision: str | None = None
    fees_from: dt.date | None = None

    def __post_init__(self) -> None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise errors.InvalidInput(f"{self.time_zone!r} is not a known time zone.", field="time_zone") from exc
        if self.country.upper() not in holidays_lib.list_supported_countries():
            raise errors.InvalidInput(
                f"Public holidays are not known for country {self.country!r}; use an ISO code such as FR or US.",
                field="country",
            )


@_record
class TermDiscount:
    """Early-payment discount from the QBO term: ``percent`` off if paid within ``days`` of the invoice date."""

    percent: Decimal
    days: int


@_record
class Payment:
    """Money applied to an invoice on a day: a payment, or a credit memo QuickBooks applies through one.
    ``amount`` is the part of it that went to this invoice."""

    on: dt.date
    amount: money.Money


@_record
class Invoice:
    """One invoice of the mirror.

    ``balance`` is what is still owed after payments and credit memos (the mirror computes
    it; QBO's ``Balance``). ``due_date`` may be None: the engine then derives it from
    ``term_due_days`` and ``txn_date``, else uses ``txn_date`` (due on receipt), and says
    so in the reasons. An invoice with neither is skipped. ``is_late_fee`` marks invoices
    the engine created for fees (they never bear fees). ``fee_lines``: the late fees added to this
    invoice as its own lines (``late_fee_mode`` "line"), part of its ``total`` and ``balance``: fees are
    charged on what is left without them (paid last, so the customer is never charged on a fee), and
    none once only they are left. ``waived_fee``: no fees on this one.
    ``sent``: QuickBooks says the customer was sent it (emailed or printed), or does not say;
    False for one QuickBooks never emailed nor printed (the policy's ``skip_unsent_invoices``; a
    late-fee invoice counts as sent whatever it says). ``sent_on``: the day QuickBooks emailed it
    (``DeliveryInfo.DeliveryTime``), when it says; with ``skip_unsent_invoices`` no fee period that
    began before it is charged.
    ``payments``: the money applied to it, with the day each came (``Payment``); interest is counted on
    the balance of each day, and the days up to the one its principal was paid are billed once it is
    (``planner.paid_on``). Without them, the balance of today stands for every day.
    """

    realm: str
    id: str
    customer_id: str
    currency: str
    total: money.Money
    balance: money.Money
    txn_date: dt.date | None
    due_date: dt.date | None = None
    doc_number: str | None = None
    status: InvoiceStatus = "open"
    term_due_days: int | None = None
    term_discount: TermDiscount | None = None
    is_late_fee: bool = False
    fee_lines: money.Money | None = None
    waived_fee: bool = False
    po_number: str | None = None
    invoice_link: str | None = None
    sent: bool = True
    sent_on: dt.date | None = None
    payments: tuple[Payment, ...] = ()

    def __post_init__(self) -> None:
        if any(p.amount.currency != self.currency for p in self.payments):
            raise errors.InvalidInput(f"Invoice {self.id}: payments must be in the invoice currency {self.currency}.",
                                      field="currency")
        if (self.total.currency != self.currency or self.balance.currency != self.currency
                or (self.fee_lines is not None and self.fee_lines.currency != self.currency)):
            raise errors.InvalidInput(
                f"Invoice {self.id}: total and balance must be in the invoice currency {self.currency}.", field="currency")
        if self.status not in ("open", "paid", "voided", "deleted"):
            raise errors.InvalidInput(f"Invoice {self.id}: unknown status {self.status!r}.", field="status")

    @property
    def principal(self) -> money.Money:
        """The total without its fee lines: what the caps in percent of the principal are taken of."""
        return self.total if self.fee_lines is None else self.total.sub(self.fee_lines)

    @property
    def principal_left(self) -> money.Money:
        """What is left to pay of the principal: the balance without the fee lines, never below zero.
        A payment is taken as paying the principal first, which charges the customer the least."""
        if self.fee_lines is None:
            return self.balance
        left = self.balance.sub(self.fee_lines)
        return left if left.amount > 0 else money.Money.zero(self.currency)

    @property
    def is_open(self) -> bool:
        """Open with something left to pay: the only invoices the engine acts on."""
        return self.status == "open" and self.balance.amount > 0


@_record
class Customer:
    """A customer of the company.

    ``policy_name`` None → the company's default policy (the caller picks the policy).
    ``excluded``: never reminded, never charged. ``fees_waived``: never charged.
    ``opted_out``: channels the customer stopped ("email", "sms"). ``time_zone``: when
    set, the send hour is read in the customer's zone instead of the company's.
    ``credits``: the customer's unused credit in QuickBooks, one amount per currency (credit
    memos' remaining credit, payments' unapplied amounts): it settles the oldest open invoices
    first, and an invoice it settles in full is left alone until someone applies it. For a job or
    sub-customer billed with its parent it includes the part of the parent's credit its invoices take
    (``planner.parent_credit_shares``); ``credit_holder`` then names that parent.
    ``fees_from``: the day the customer's invoices began to bear fees under the rules they bear now — it
    was given another policy, taken back from exclusion, or had its fee waiver lifted: no fee period
    that came before it is charged (the periods it was not under these rules are not "missed"). None:
    no such day.
    """

    id: str
    display_name: str
    language: Literal["en", "fr"] = "en"
    country: str | None = None
    time_zone: str | None = None
    has_email: bool = True
    has_phone: bool = False
    policy_name: str | None = None
    excluded: bool = False
    fees_waived: bool = False
    opted_out: frozenset[str] = frozenset()
    credits: tuple[money.Money, ...] = ()
    credit_holder: str | None = None
    fees_from: dt.date | None = None


@_record
class HistoryEntry:
    """Something already done (or claimed) for this customer, as the outbox recorded it.

    Build them with ``rules.record(action)``. ``kind``: reminder (any message to the
    customer), fee, task, alert. ``step``/``repeat`` identify the reminder step of each
    invoice in ``invoice_ids``; ``amount`` is the fee charged. ``at`` is when it went
    out (UTC); a claimed-but-unsent row counts as done: the dedupe key is what matters.
    ``on`` is the day the planner decided it for (its ``today``); the day of ``at`` is later
    when the message went out late (a text held until daytime, a backlog). None: the day of ``at``.
    A reminder entry with no invoice and no step is a bare contact: a message sent to the same address
    for another customer (a job billed with the same parent); it counts for the minimum gap only.
    """

    dedupe_key: str
    kind: HistoryKind
    at: dt.datetime
    invoice_ids: frozenset[str] = frozenset()
    step: int | None = None
    repeat: int = 0
    amount: money.Money | None = None
    on: dt.date | None = None


@_record
class Promise:
    """The customer promised to pay ``amount`` by ``until``; reminders and fees pause meanwhile.

    ``open_balance_when_made`` (the invoices' balance when the promise was made) lets a
    partial promise be judged kept; without it, kept means every invoice is paid.
    Empty ``invoice_ids`` covers all the customer's invoices.
    """

    made_on: dt.date
    until: dt.date
    amount: money.Money
    invoice_ids: frozenset[str] = frozenset()
    open_balance_when_made: money.Money | None = None


@_record
class Dispute:
    """The customer disputes these invoices: nothing happens to them until ``resolved_on``."""

    opened_on: dt.date
    invoice_ids: frozenset[str] = frozenset()
    resolved_on: dt.date | None = None


@_record
class Instalment:
    due_on: dt.date
    amount: money.Money


@_record
class PaymentPlan:
    """An agreed schedule: reminders follow the instalment dates instead of the due date."""

    id: str
    agreed_on: dt.date
    instalments: tuple[Instalment, ...]
    invoice_ids: frozenset[str] = frozenset()


@_record
class ManualPause:
    """Paused by a person from ``start`` until ``resume_on`` (exclusive)."""

    start: dt.date
    resume_on: dt.date
    invoice_ids: frozenset[str] = frozenset()
    note: str = ""


Pause = Promise | Dispute | PaymentPlan | ManualPause


def covers(pause: Pause, invoice_id: str) -> bool:
    return not pause.invoice_ids or invoice_id in pause.invoice_ids
