"""The rules engine: who is reminded of what, which fee is charged, when. Pure and provable.

Everything here is a function of (mirror snapshot, policy, history of what was already
done, pauses, today in the company's time zone, the public-holiday calendar). Same
inputs → same actions. Nothing reads the clock, the database or the network.

Public API::

    plan(*, company, invoices, customer, policy, history=(), pauses=(), today, now=None, focus=None) -> list[Action]
    plan_and_next(*, company, invoices, customer, policy, history=(), pauses=(), today, focus=None)
        -> (list[Action], {invoice_id: next_action_date from tomorrow, after those actions})
    plan_calendar(*, company, invoices, customer, policy, history=(), pauses=(), today, days) -> list[Action]
    next_action_date(*, company, invoice, customer, policy, history=(), pauses=(), today, invoices=()) -> date | None
    credit_covered(invoices, customer, pauses=(), *, today) -> frozenset of invoice ids the unused credit settles
    record(action, *, at=None) -> tuple[HistoryEntry, ...]
    effective_due_date(invoice) -> (date | None, note)
    discount_offer(invoice, policy, due, on) -> DiscountOffer | None
    forecast.forecast(invoices, records, today) -> list[InvoiceForecast]
    policy_for(customer.policy_name, excluded=customer.excluded, policies={...}, default="friendly") -> Policy | None
    policy.with_fee_start(old, new, on) -> new with the day its fee rules apply from (``LateFees.fees_from``)

``plan`` works one customer at a time (statements need all of a customer's invoices; the
minimum gap is per customer). The daily run selects the customers having an invoice
whose stored ``next_action_date <= today`` and plans those only, with ``focus`` = those
invoices (the others are only listed and weighed), using ``plan_and_next`` to get the
dates to store in the same pass.

Dedupe keys (deterministic; the outbox holds them under a unique constraint)::

    {realm}:reminder:{invoice_id}:step{n}[r{k}]:{channel}    step n (0-based), k-th repeat of the last step
    {realm}:reminder:{invoice_id}:step{n}[r{k}]:unreachable  owner alert when no channel reaches the customer
    {realm}:statement:{customer_id}:{digest16}:{channel}      statement; digest of the (invoice, step) pairs it completes
    {realm}:fee:{invoice_id}:{kind}:{period}                  kind flat|percent|interest|indemnity; period = first day (ISO) or "once"
    {realm}:task:{invoice_id}:call | :handoff                 escalation tasks
    {realm}:alert:{invoice_id}:late                           invoice became late (if the policy asks)
    {realm}:alert:{customer_id}:promise-broken:{made_on}:{until}
    {realm}:plan:{plan_id}:inst{i}:before|after:{channel}     payment-plan reminders
    {realm}:plan:{plan_id}:inst{i}:missed:owner               missed instalment alert

Decisions where the issue is silent:

- Catch-up: for each invoice only the newest step that came due and was not done is sent;
  older missed steps are skipped for good. A step whose day is not a send day (weekend,
  public holiday of the company's country, or blocked by the minimum gap) goes out on the
  next allowed day. Steps are kept in policy order: a step never comes before the one
  above it. A before-due or due-today step that goes out after the due date (moved, held
  by the gap, caught up) is written with the ``reminder_overdue_gentle`` template ("due on
  …, still unpaid"), never "due today" on another day; its step, key and tone stay its own.
- Minimum gap: counted in days between contact *days* of the customer. Several invoices
  whose steps fall due the same day all go out that day (one message each, or one
  statement when grouping is on), so one invoice's reminder never starves the others:
  a step blocked by the gap stays pending and goes out on the first day the gap allows.
  The caller may add bare contacts (reminder entries with no invoice and no step): messages sent to
  the same address for another customer, which count for the gap and nothing else.
  A contact counts from the day it went out, and only what was planned *for today* is
  exempt from the gap: a text planned yesterday and held until this morning blocks today's
  steps like any contact of today. So a message that goes out late only ever delays what
  follows, and the stored next-action dates (worked out as if it went out on time) stay
  lower bounds.
- A step whose message channels cannot reach the customer (no address, opted out) turns
  into an owner alert ("cannot be reached"), which counts as that step.
- Unused credit (``Customer.credits``: credit memos' remaining credit, payments' unapplied
  amounts, per currency) settles the customer's open invoices oldest due date first, as applying
  it in QuickBooks would (a disputed invoice keeps its balance; the credit goes to the next). An
  invoice it settles in full gets nothing at all — no reminder, fee, task or alert, and no
  statement lists it: the customer has paid or been credited, and reminding them would be wrong.
  Once one of those is past due, the owner is told once per currency and credit amount
  (``credit_alert_key``) to apply the credit in QuickBooks. An invoice it settles in part is
  reminded for its QuickBooks balance, as its payment link charges. Promises and payment plans
  are judged on the balances with the credit applied (money paid but not applied was paid). Fee periods that fell while
  an invoice was settled are charged if the credit goes away (refunded) like any missed period.
- ``skip_unsent_invoices`` (off in every preset): an invoice QuickBooks never emailed nor
  printed gets nothing at all — it may never have reached the customer. A promise, dispute
  or payment plan on it says the customer knows it (a manual pause does not); a late-fee
  invoice the program posted counts as sent. Once sent, it is caught up like any invoice
  (newest due step only), and its fees count from the day it was emailed (``sent_on``).
- Fees are accounting entries, not contacts: they are charged on any day (not only send
  days), never while the invoice is paused, and a period whose charge day fell inside a
  pause is waived for good. Missed periods (system off) are each charged afterwards
  under their own key, within the caps. The fee start is the day after due + grace.
  flat / percent fees are charged at the start of each period; interest is billed at
  each period's end for that period's days, each day on what was left of the principal
  that day (simple, actual/365): a payment counts from the day after it (``Invoice.payments``;
  without them, the balance at billing time stands for every day). The indemnity is charged
  once, on the first fee day. A percent or interest is taken on the balance without fee lines,
  less the part of the customer's unused credit that pays the invoice (``ChargeFee.credit``):
  the customer owes no more than that.
- No back-charging: fees are charged only for periods from the day the rules the invoice bears
  now began to apply to it — the company's first fee day (``CompanyContext.fees_from``), the
  customer's (``Customer.fees_from``: given another policy, taken back from exclusion, its
  waiver lifted) and the policy's (``LateFees.fees_from``: a change that moved the periods or
  began to charge them, ``policy.with_fee_start``), the latest of them. A period whose charge
  day came before it is never billed, nor is a one-time fee whose day did; interest straddling
  it is billed from it (days of an interest period of the old grid not yet billed are lost,
  never billed twice). Otherwise a customer switched to a policy with fees would be charged
  every period since the due date in one run, and grace days moved would bill a month twice
  under another key; a cap raised would charge every period it had held at once. A change of
  rate or amount, or a lower cap, moves no period and trims nothing:
  periods missed while the program was off are still charged.
- Interest after the principal is paid: interest already billed is a separate QBO invoice
  (``is_late_fee``), stays owed, is reminded like any invoice and never bears fees
  itself. The days of the last, unfinished period are billed once the principal is paid
  (``Invoice.payments`` say the day, ``paid_on``): from the period's first day to the
  payment day, which counts (money that comes on a day was owed that day: paid the day
  after the due date is one day late), on the balance before it, under that period's own
  key — so never twice, even if the payment is undone and the period ends as usual (its
  later days are then not billed). Periods that ended unbilled before the payment are
  billed with it. Within the caps; not for a fee invoice, a waived invoice or customer,
  nor while paused (a payment day inside a pause waives those days, as for any period);
  a payment dated ahead is billed on its day. Without payments, nothing is billed after
  the invoice is paid.
- Caps (count, amount per currency, % of principal) count every fee of the invoice,
  indemnity included; the fee that would cross a cap is cut to the room left (rounded
  down), then fees stop.
- Rounding: each fee is rounded by its currency's rule (JPY 0 decimals) once, when it is
  decided; sums of already-rounded fees never re-round.
- Discounts: the QBO term's discount wins over the policy tiers; a reminder mentions the
  discount only while the deadline has not passed and the invoice is not yet due. The
  amount is the percent of the current balance.
- Pauses: promise (until its date plus ``promise_grace_days``), dispute (until
  resolved), manual (until the resume date), payment plan (from agreement until the day
  after the last instalment's late reminder). Nothing happens to a paused invoice. When
  a pause ends, the next step (not the newest) goes out on the resume day and later
  steps keep their spacing (a later pause moves them from there; a step counted from the
  previous one, or a repeat, counts from the day that one went out). The steps whose own
  day is on or before the due date (before due, due today) are not carried along: when
  the pause ends after the due date, those it held are passed over as catch-up passes
  over missed steps (nothing is recorded for them), and the first held step whose own
  day is after the due date goes out on the resume day — or on its own day, moving
  nothing, when that is later; the last step is never passed over. When the pause ends
  by the due date, a held before-due step goes out on the resume day and moves nothing.
  A promise is broken
  when its invoices still owe more than ``open_balance_when_made − amount`` (or anything,
  without that figure): the owner is alerted once. A payment plan reminds
  ``remind_days_before`` each instalment and, when missed, ``remind_days_after`` it (plus
  an owner alert), one instalment at a time; these wait, too, while a promise, a dispute
  or a manual pause holds one of its invoices.
- Escalation: after the last step (and its repeats) a call task, then — counted from the
  day the call task was created — a hand-off task for the owner. Never a message to the
  customer; the tones are friendly, neutral and firm, never threatening.
- Time: ``today`` is the company's local date. ``due_at`` is ``today`` at the send
  window's hour in the customer's time zone when it has one (messages), else the
  company's (fees, tasks, alerts), converted to UTC. History dates are read back in the
  same zone. A send hour that does not exist (DST spring-forward) moves forward by the gap.
- No due date: derived from the term's DueDays and the invoice date, else the invoice date
  (due on receipt), and said in the reason. No invoice date either: skipped.
- Paid, voided, deleted, zero or negative balance, below the policy's minimum for its
  currency, excluded customer: nothing at all (no reminder, fee, task or alert).
- ``now``: when given, only actions whose ``due_at`` has come are returned (an hourly
  run); without it, the whole day's. An empty list means "nothing to do". Planning as
  often as you like is safe: what was recorded is never decided again, and the same
  undecided thing always gets the same key.
- ``plan_calendar`` (the issue's ``plan(..., days=N)``) replays ``plan`` day by day,
  recording each action as carried out; balances do not change, fees are not added.
- ``next_action_date`` is a lower bound per invoice (ignores the statement grouping and
  other invoices' contacts except the last one): store it, select ``<= today``, plan
  those customers focused on those invoices, and recompute it for the invoices selected
  or acted on (``plan_and_next`` does both). An invoice left out keeps a valid lower
  bound: what others did can only delay its own next action (the gap), never advance it.
"""

from __future__ import annotations

from qbo_collector.rules import forecast
from qbo_collector.rules.actions import (
    Action,
    AlertOwner,
    AnyAction,
    ChargeFee,
    CreateTask,
    DiscountOffer,
    SendReminder,
    StepRef,
    record,
)
from qbo_collector.rules.model import (
    CompanyContext,
    Customer,
    Dispute,
    HistoryEntry,
    Instalment,
    Invoice,
    ManualPause,
    Pause,
    Payment,
    PaymentPlan,
    Promise,
    TermDiscount,
)
from qbo_collector.rules.planner import (
    credit_covered,
    discount_offer,
    effective_due_date,
    fee_key,
    next_action_date,
    paid_on,
    plan,
    plan_and_next,
    plan_calendar,
    reminder_key,
    statement_key,
    task_key,
)
from qbo_collector.rules.policy import CHANNELS, PRESETS, TEMPLATE_KEYS, Policy, field_errors, policy_for

__all__ = [
    "CHANNELS", "PRESETS", "TEMPLATE_KEYS", "Action", "AlertOwner", "AnyAction", "ChargeFee", "CompanyContext",
    "CreateTask", "Customer", "DiscountOffer", "credit_covered", "Dispute", "HistoryEntry", "Instalment", "Invoice", "ManualPause",
    "Pause", "Payment", "PaymentPlan", "Policy", "Promise", "SendReminder", "StepRef", "TermDiscount", "discount_offer",
    "effective_due_date", "fee_key", "field_errors", "forecast", "next_action_date", "paid_on", "plan", "plan_and_next",
    "plan_calendar",
    "policy_for", "record", "reminder_key", "statement_key", "task_key",
]
