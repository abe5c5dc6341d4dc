"""What the planner decides: typed actions, each with its dedupe key, due time and reason.

An empty list means "nothing to do". Every action carries:

- ``dedupe_key``: deterministic; the outbox holds it under a unique constraint, so planning
  the same thing twice (every hour, after a crash, from two workers) inserts it once;
- ``due_at``: aware UTC datetime, from the local send window;
- ``on``: the company-local date the action belongs to;
- ``reason``: one sentence a person reads in the activity log.

After carrying an action out (or claiming it in the outbox), store ``record(action)``
as history: that is what keeps the next plan from deciding it again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import ClassVar, Literal

from qbo_collector import money
from qbo_collector.rules import model

_action = dataclasses.dataclass(frozen=True, kw_only=True, slots=True)


@_action
class DiscountOffer:
    """Early-payment discount a before-due reminder mentions: ``amount`` off if paid by ``deadline``."""

    percent: Decimal
    amount: money.Money
    deadline: dt.date
    source: Literal["term", "policy"]


@_action
class StepRef:
    """Which reminder step of which invoice a message carries out."""

    invoice_id: str
    step: int
    repeat: int = 0


@_action
class Action:
    kind: ClassVar[str] = "action"
    history_kind: ClassVar[model.HistoryKind] = "alert"

    realm: str
    customer_id: str
    dedupe_key: str
    due_at: dt.datetime
    on: dt.date
    reason: str

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return ()


@_action
class SendReminder(Action):
    """A message to the customer (email or sms).

    ``invoice_ids`` lists every invoice the message shows (several for a statement);
    ``steps`` says which step of which invoice it completes. ``step`` is the step index
    (the most advanced one for a statement; None for payment-plan reminders).
    """

    kind: ClassVar[str] = "send_reminder"
    history_kind: ClassVar[model.HistoryKind] = "reminder"

    invoices: tuple[str, ...]
    steps: tuple[StepRef, ...]
    step: int | None
    repeat: int
    template_key: str
    channel: Literal["email", "sms"]
    tone: str
    language: str
    discount: DiscountOffer | None = None
    instalment: model.Instalment | None = None

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return self.invoices


@_action
class ChargeFee(Action):
    """Post a late fee for one invoice and one period.

    ``fee_kind``: flat, percent, interest or indemnity. ``period`` is the period's first
    day (ISO) or "once". ``basis`` is what was left of the principal when it was planned, without
    its fee lines, less ``credit``, the part of the customer's unused credit that pays it (None:
    none does): what it was computed on, but for interest, which is on the balance of each of its
    days; for interest, ``days`` and ``annual_percent`` say how. ``paid_on``: the day the principal
    was paid, for the interest billed because it was (the days up to that one): the invoice is
    paid by then, and its ``basis`` is nothing.
    """

    kind: ClassVar[str] = "charge_fee"
    history_kind: ClassVar[model.HistoryKind] = "fee"

    invoice_id: str
    amount: money.Money
    fee_kind: Literal["flat", "percent", "interest", "indemnity"]
    period: str
    basis: money.Money
    days: int | None = None
    annual_percent: Decimal | None = None
    paid_on: dt.date | None = None
    credit: money.Money | None = None

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return (self.invoice_id,)


@_action
class CreateTask(Action):
    """A task for the business: call the customer, send a letter, or hand the debt to an agency / lawyer."""

    kind: ClassVar[str] = "create_task"
    history_kind: ClassVar[model.HistoryKind] = "task"

    task: Literal["call", "letter", "handoff"]
    invoices: tuple[str, ...]
    steps: tuple[StepRef, ...] = ()

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return self.invoices


@_action
class AlertOwner(Action):
    """Tell the business owner something: an invoice became late, a promise was broken, a customer is unreachable."""

    kind: ClassVar[str] = "alert_owner"
    history_kind: ClassVar[model.HistoryKind] = "alert"

    topic: Literal["late", "promise_broken", "instalment_missed", "unreachable", "step", "credit"]
    invoices: tuple[str, ...]
    steps: tuple[StepRef, ...] = ()
    # What ``reason`` states, as data, so the alert can be told in the owner's language (``reason`` is English).
    due_on: dt.date | None = None       # late: the invoice's due date; instalment_missed: the instalment's
    amount: money.Money | None = None   # promise_broken: the amount promised; instalment_missed: the instalment;
    #                                     credit: the customer's unused credit in that currency
    part: money.Money | None = None     # credit, when it settles no invoice that is due: what it pays of the one named
    holder: str | None = None           # credit: the parent it is billed with, when the credit counts the parent's
    until: dt.date | None = None        # promise_broken: the date promised
    instalment: int | None = None       # instalment_missed: its number, from 1
    channels: tuple[str, ...] = ()      # unreachable: the step's channels the customer cannot receive

    @property
    def invoice_ids(self) -> tuple[str, ...]:
        return self.invoices


AnyAction = SendReminder | ChargeFee | CreateTask | AlertOwner


def record(action: Action, *, at: dt.datetime | None = None) -> tuple[model.HistoryEntry, ...]:
    """The history entries to store once ``action`` is carried out (``at`` defaults to its due time).

    One entry per step carried (a statement completes a step of several invoices), or one
    entry for a fee, a task or an alert.
    """
    when = at or action.due_at
    steps: tuple[StepRef, ...] = getattr(action, "steps", ())
    if steps:
        return tuple(
            model.HistoryEntry(
                dedupe_key=action.dedupe_key, kind=action.history_kind, at=when, on=action.on,
                invoice_ids=frozenset({ref.invoice_id}), step=ref.step, repeat=ref.repeat,
            )
            for ref in steps
        )
    amount = action.amount if isinstance(action, ChargeFee) else None
    return (
        model.HistoryEntry(
            dedupe_key=action.dedupe_key, kind=action.history_kind, at=when, on=action.on,
            invoice_ids=frozenset(action.invoice_ids), amount=amount,
        ),
    )
