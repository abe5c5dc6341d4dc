"""What people record about a customer: promises, disputes, payment plans, pauses, exclusions, waived fees, calls.

Each function checks its input (``errors.InvalidInput`` with ``field=`` the form field), writes
the record the planner reads (a ``Pause`` row or a flag on the customer / invoice) AND an
``Activity`` row for the customer's timeline, in the caller's session (one transaction).
``on`` is the company's local date, passed in like everywhere else.

    promise(s, company, customer_id, until=, amount=, invoice_ids=(), note="", on=, user_id=None)
    dispute(s, company, customer_id, invoice_ids=(), note="", on=, user_id=None)
    resolve(s, company, customer_id, pause_id, on=, user_id=None)       # dispute settled, pause lifted…
    payment_plan(s, company, customer_id, instalments="2026-12-01 500\n…", invoice_ids=(), note="", on=, user_id=None)
    pause(s, company, customer_id, until=, note="", on=, user_id=None)
    resume(s, company, customer_id, on=, user_id=None)                   # lifts every manual pause
    exclude(s, company, customer_id, excluded=True, note="", on=, user_id=None)  # taken back: fees restart on ``on``
    assign_policy(s, company, customer_id, policy_name, on=, user_id=None)      # another policy: fees restart on ``on``
    waive_fee(s, company, customer_id, invoice_id=None, fee_outbox_id=None, note="", on=, user_id=None) -> outbox id to void
    log_call(s, company, customer_id, outcome=, note="", on=, user_id=None)
    states(s, company, customer_ids, on) -> {customer_id: ["paused", "promised", …]}
    active_pauses(s, company, customer_id, on) -> list[Pause]

Error messages are fixed sentences (marked with ``N_`` for the translation catalogue), and the
timeline's sentences are ``timeline`` keys with their arguments, so the page can show both in
the user's language. A person's note is stored as typed and never translated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from qbo_collector import errors, money, snapshot, timeline
from qbo_collector.db import models

MAX_NOTE = 2000
MAX_INSTALMENTS = 36
CALL_OUTCOMES = ("reached", "voicemail", "no_answer", "wrong_number")
# What a customer list shows, in this order.
STATES = ("excluded", "disputed", "promised", "plan", "paused", "opted_out", "bounced")


def N_(message: str) -> str:  # noqa: N802 - gettext_noop: marks a message for the catalogue
    return message


def _customer(s: Session, company: models.Company, customer_id: str) -> models.Customer:
    customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                      models.Customer.qbo_id == customer_id))
    if customer is None or customer.deleted:
        raise errors.InvalidInput(N_("This customer is not in the company's records."), field="customer")
    return customer


def _note(note: str | None) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise errors.InvalidInput(N_("The note is too long: keep it under 2,000 characters."), field="note")
    return note


def _date(value: object, field: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise errors.InvalidInput(N_("Enter a date such as 2026-12-31."), field=field) from None


def _amount(value: object, currency: str, field: str) -> Decimal:
    """An amount as typed, in English or French (``money.parse_typed``: "1,500" is fifteen hundred,
    "1 500,00" too; "149,50" has a decimal comma)."""
    try:
        amount = value if isinstance(value, Decimal) else money.parse_typed(str(value if value is not None else ""),
                                                                             currency)
    except ValueError:
        raise errors.InvalidInput(N_("Enter an amount such as 250.00."), field=field) from None
    if amount <= 0:
        raise errors.InvalidInput(N_("The amount must be more than zero."), field=field)
    return money.Money(amount, currency).rounded().amount


def _invoices(s: Session, company: models.Company, customer: models.Customer,
              invoice_ids: Iterable[str], field: str = "invoice_ids", *, open_only: bool = False) -> list[models.Invoice]:
    wanted = [i for i in dict.fromkeys(str(i).strip() for i in invoice_ids) if i]
    if not wanted:
        return []
    rows = list(s.scalars(select(models.Invoice).where(
        models.Invoice.company_id == company.id, models.Invoice.customer_qbo_id == customer.qbo_id,
        models.Invoice.qbo_id.in_(wanted))))
    if len(rows) != len(wanted):
        raise errors.InvalidInput(N_("Choose invoices of this customer."), field=field)
    # A promise, dispute or plan on an invoice paid, voided or deleted since the page was drawn would hold nothing.
    if open_only and any(r.deleted or r.status != models.InvoiceStatus.open for r in rows):
        raise errors.InvalidInput(N_("Choose open invoices: one of these is already paid, voided or deleted."),
                                  field=field)
    return rows


def _owed(s: Session, company: models.Company, customer: models.Customer,
          invoices: Sequence[models.Invoice]) -> tuple[Decimal, str]:
    """What a promise or a plan is about: the open balance of the invoices (all when none is chosen); never nothing."""
    balance, currency = _open_balance(s, company, customer, invoices)
    balance = money.Money(balance, currency).rounded().amount
    if balance <= 0:
        raise errors.InvalidInput(N_("Nothing is owed: there is nothing to promise or to plan."), field="customer")
    return balance, currency


def _covered(s: Session, company: models.Company, customer: models.Customer,
             invoices: Sequence[models.Invoice]) -> list[models.Invoice]:
    """The invoices a promise or a plan is about: those chosen, else every invoice the customer has
    open right now (in one currency). Stored by id: an invoice issued later is not part of it — it would
    otherwise make a kept promise look broken, or a paid instalment look missed."""
    rows = list(invoices) or list(s.scalars(select(models.Invoice).where(
        models.Invoice.company_id == company.id, models.Invoice.customer_qbo_id == customer.qbo_id,
        models.Invoice.status == models.InvoiceStatus.open, models.Invoice.deleted.is_(False))
        .order_by(models.Invoice.due_date, models.Invoice.qbo_id)))
    currency = next((r.currency for r in rows), customer.currency or company.currency)
    return [r for r in rows if r.currency == currency]


def _open_balance(s: Session, company: models.Company, customer: models.Customer,
                  invoices: Sequence[models.Invoice]) -> tuple[Decimal, str]:
    rows = _covered(s, company, customer, invoices)
    currency = rows[0].currency if rows else (customer.currency or company.currency)
    return sum((r.balance for r in rows), Decimal(0)), currency


def _log(s: Session, company: models.Company, customer: models.Customer, kind: str, message: timeline.Text | str, *,
         invoice_id: str | None = None, user_id: int | None = None, **data: object) -> models.Activity:
    """A timeline line: a ``timeline.Text``, or a person's own words (a plain ``str``, shown as typed)."""
    key, args = (message.key, message.stored_args()) if isinstance(message, timeline.Text) else (None, None)
    row = models.Activity(company_id=company.id, kind=kind, customer_qbo_id=customer.qbo_id,
                          invoice_qbo_id=invoice_id, message=str(message), message_key=key, message_args=args,
                          data={k: v for k, v in {**data, "user_id": user_id}.items() if v not in (None, "", [])})
    s.add(row)
    return row


def _touch(s: Session, company: models.Company, customer: models.Customer) -> None:
    """The stored next action dates of this customer's open invoices are stale: bring them to today.

    ``next_action_on`` is a lower bound the daily run reads; moving it earlier is always safe,
    and the next run recomputes it from the new pauses and flags.
    """
    for invoice in s.scalars(select(models.Invoice).where(
            models.Invoice.company_id == company.id, models.Invoice.customer_qbo_id == customer.qbo_id,
            models.Invoice.status == models.InvoiceStatus.open)):
        invoice.next_action_on = None


def _fees_restart(customer: models.Customer, on: dt.date) -> None:
    """From ``on``, the customer's invoices bear fees under other rules (another policy, back from an
    exclusion, a waiver lifted): the periods before it were never under them and are not charged
    (``rules.Customer.fees_from``), or a customer given a policy with fees would be charged every
    month since the due date in one run."""
    customer.fees_from = on if customer.fees_from is None else max(customer.fees_from, on)


def _ids(invoices: Sequence[models.Invoice]) -> list[str]:
    return [i.qbo_id for i in invoices]


def _labels(invoices: Sequence[models.Invoice]) -> dict[str, list[str]]:
    return timeline.invoices(i.doc_number or i.qbo_id for i in invoices)  # none: "all invoices"


# --- what people record ------------------------------------------------------------------

def promise(s: Session, company: models.Company, customer_id: str, *, until: object, amount: object,
            invoice_ids: Iterable[str] = (), note: str = "", on: dt.date, user_id: int | None = None) -> models.Pause:
    """The customer promised to pay ``amount`` by ``until``: reminders and fees wait until then."""
    customer = _customer(s, company, customer_id)
    until_on = _date(until, "until")
    if until_on < on:
        raise errors.InvalidInput(N_("A promise to pay is for today or a later date."), field="until")
    if until_on > on + dt.timedelta(days=366):
        raise errors.InvalidInput(N_("A promise to pay must be within a year."), field="until")
    invoices = _invoices(s, company, customer, invoice_ids, open_only=True)
    balance, currency = _owed(s, company, customer, invoices)
    value = _amount(amount, currency, "amount")
    if value > balance:
        raise errors.InvalidInput(N_("The promise is for more than the customer owes."), field="amount")
    text = _note(note)
    row = models.Pause(company_id=company.id, kind="promise", customer_qbo_id=customer.qbo_id,
                       invoice_ids=_ids(_covered(s, company, customer, invoices)), start_on=on, until_on=until_on, amount=value, currency=currency,
                       note=text, data={"open_balance_when_made": str(money.Money(balance, currency).rounded().amount)},
                       created_by=user_id)
    s.add(row)
    s.flush()
    _log(s, company, customer, "promise",
         timeline.text("promise", amount=timeline.money(money.Money(value, currency).rounded().amount, currency),
                       until=timeline.date(until_on), invoices=_labels(invoices)),
         user_id=user_id, pause_id=row.id, note=text, until=until_on.isoformat(), amount=str(value),
         currency=currency, invoice_ids=_ids(invoices))
    _touch(s, company, customer)
    return row


def dispute(s: Session, company: models.Company, customer_id: str, *, invoice_ids: Iterable[str] = (),
            note: str = "", on: dt.date, user_id: int | None = None) -> models.Pause:
    """The customer disputes these invoices (all when none is chosen): nothing happens to them until resolved."""
    customer = _customer(s, company, customer_id)
    invoices = _invoices(s, company, customer, invoice_ids, open_only=True)
    text = _note(note)
    if not text:
        raise errors.InvalidInput(N_("Say what the customer disputes."), field="note")
    row = models.Pause(company_id=company.id, kind="dispute", customer_qbo_id=customer.qbo_id,
                       invoice_ids=_ids(invoices), start_on=on, note=text, created_by=user_id)
    s.add(row)
    s.flush()
    _log(s, company, customer, "dispute", timeline.text("dispute", invoices=_labels(invoices), note=text),
         user_id=user_id, pause_id=row.id, invoice_ids=_ids(invoices))
    _touch(s, company, customer)
    return row


def parse_instalments(text: str, currency: str, on: dt.date) -> list[dict[str, str]]:
    """Lines of "YYYY-MM-DD amount" → instalments, in date order; refused with the line number."""
    out: list[dict[str, str]] = []
    lines = [(n, line.strip()) for n, line in enumerate((text or "").splitlines(), start=1) if line.strip()]
    if not lines:
        raise errors.InvalidInput(N_("List the instalments, one per line: date and amount."), field="instalments")
    if len(lines) > MAX_INSTALMENTS:
        raise errors.InvalidInput(N_("A payment plan has at most 36 instalments."), field="instalments")
    seen: set[dt.date] = set()
    for number, line in lines:
        parts = line.replace(";", " ").replace("\t", " ").split(None, 1)
        if len(parts) != 2:
            raise errors.InvalidInput(N_("Each line needs a date and an amount, such as 2026-12-15 250.00."),
                                      field="instalments", line=number)
        try:
            due = _date(parts[0], "instalments")
            amount = _amount(parts[1], currency, "instalments")
        except errors.InvalidInput as exc:
            raise errors.InvalidInput(exc.message, field="instalments", line=number) from None
        if due < on:
            raise errors.InvalidInput(N_("An instalment cannot be in the past."), field="instalments", line=number)
        if due in seen:
            raise errors.InvalidInput(N_("Two instalments fall on the same day."), field="instalments", line=number)
        seen.add(due)
        out.append({"due_on": due.isoformat(), "amount": str(amount)})
    return sorted(out, key=lambda i: i["due_on"])


def payment_plan(s: Session, company: models.Company, customer_id: str, *, instalments: str,
                 invoice_ids: Iterable[str] = (), note: str = "", on: dt.date,
                 user_id: int | None = None) -> models.Pause:
    """An agreed schedule: reminders follow the instalments instead of the due dates."""
    customer = _customer(s, company, customer_id)
    invoices = _invoices(s, company, customer, invoice_ids, open_only=True)
    balance, currency = _owed(s, company, customer, invoices)
    items = parse_instalments(instalments, currency, on)
    planned = sum((Decimal(i["amount"]) for i in items), Decimal(0))
    if planned > balance:
        raise errors.InvalidInput(N_("The instalments add up to more than the customer owes."), field="instalments")
    # The planner counts an instalment paid once what is owed is no more than the instalments after it:
    # a plan for less than the balance would never see its first instalment paid.
    if planned < balance:
        raise errors.InvalidInput(N_("The instalments add up to less than the customer owes."), field="instalments")
    text = _note(note)
    row = models.Pause(company_id=company.id, kind="plan", customer_qbo_id=customer.qbo_id,
                       invoice_ids=_ids(_covered(s, company, customer, invoices)), start_on=on, until_on=dt.date.fromisoformat(items[-1]["due_on"]),
                       amount=planned, currency=currency, note=text, data={"instalments": items},
                       created_by=user_id)
    s.add(row)
    s.flush()
    _log(s, company, customer, "plan",
         timeline.text("plan", num=len(items), total=timeline.money(money.Money(planned, currency).rounded().amount,
                                                                      currency),
                       until=timeline.date(items[-1]["due_on"])),
         user_id=user_id, pause_id=row.id, note=text, instalments=items, invoice_ids=_ids(invoices))
    _touch(s, company, customer)
    return row


def pause(s: Session, company: models.Company, customer_id: str, *, until: object, note: str = "",
          on: dt.date, user_id: int | None = None) -> models.Pause:
    """No reminder and no fee for this customer until ``until`` (reminders resume that day)."""
    customer = _customer(s, company, customer_id)
    resume_on = _date(until, "until")
    if resume_on <= on:
        raise errors.InvalidInput(N_("Choose a resume date after today."), field="until")
    if resume_on > on + dt.timedelta(days=366):
        raise errors.InvalidInput(N_("Pause for a year at most."), field="until")
    text = _note(note)
    row = models.Pause(company_id=company.id, kind="manual", customer_qbo_id=customer.qbo_id, invoice_ids=[],
                       start_on=on, until_on=resume_on, note=text, created_by=user_id)
    s.add(row)
    s.flush()
    _log(s, company, customer, "pause", timeline.text("pause", until=timeline.date(resume_on)),
         user_id=user_id, pause_id=row.id, note=text, until=resume_on.isoformat())
    _touch(s, company, customer)
    return row


def resolve(s: Session, company: models.Company, customer_id: str, pause_id: object, *, on: dt.date,
            user_id: int | None = None, note: str = "") -> models.Pause:
    """End a pause today: a dispute is settled, a promise or plan is cancelled, a manual pause lifted."""
    customer = _customer(s, company, customer_id)
    try:
        key = int(str(pause_id))
    except ValueError:
        raise errors.InvalidInput(N_("Choose one of this customer's pauses."), field="pause_id") from None
    row = s.get(models.Pause, key)
    if row is None or row.company_id != company.id or row.customer_qbo_id != customer.qbo_id:
        raise errors.InvalidInput(N_("Choose one of this customer's pauses."), field="pause_id")
    if row.resolved_on is not None:
        raise errors.InvalidInput(N_("This one is already closed."), field="pause_id")
    row.resolved_on = on
    if row.kind == "manual" and (row.until_on is None or row.until_on > on):
        row.until_on = on  # the planner reads [start, resume): lifted from today
    text = _note(note)
    _log(s, company, customer, f"{row.kind}.resolved", timeline.text(f"{row.kind}.resolved", note=text),
         user_id=user_id, pause_id=row.id, note=text)
    _touch(s, company, customer)
    return row


def resume(s: Session, company: models.Company, customer_id: str, *, on: dt.date,
           user_id: int | None = None) -> int:
    """Lift every manual pause of the customer from today; returns how many were lifted."""
    customer = _customer(s, company, customer_id)
    rows = [p for p in active_pauses(s, company, customer.qbo_id, on) if p.kind == "manual"]
    if not rows:
        raise errors.InvalidInput(N_("This customer is not paused."), field="customer")
    for row in rows:
        row.resolved_on = on
        row.until_on = on
    _log(s, company, customer, "resume", timeline.text("resume"), user_id=user_id, pause_ids=[p.id for p in rows])
    _touch(s, company, customer)
    return len(rows)


def exclude(s: Session, company: models.Company, customer_id: str, *, excluded: bool = True, note: str = "",
            on: dt.date, user_id: int | None = None) -> None:
    """Never remind or charge this customer (``excluded=False`` takes them back)."""
    customer = _customer(s, company, customer_id)
    if customer.excluded == excluded:
        raise errors.InvalidInput(N_("This customer is already excluded.") if excluded
                                  else N_("This customer is not excluded."), field="customer")
    customer.excluded = excluded
    if not excluded:
        _fees_restart(customer, on)
    text = _note(note)
    _log(s, company, customer, "excluded" if excluded else "included",
         timeline.text("excluded" if excluded else "included"),
         user_id=user_id, note=text)
    _touch(s, company, customer)


def assign_policy(s: Session, company: models.Company, customer_id: str, policy_name: str | None, *,
                  on: dt.date, user_id: int | None = None) -> None:
    """Follow a named preset for this customer, or the company's policy (``None`` / "")."""
    customer = _customer(s, company, customer_id)
    name = (policy_name or "").strip() or None
    if name is not None and name not in policy_names(company):
        raise errors.InvalidInput(N_("Choose one of the listed policies."), field="policy_name")
    if name != customer.policy_name:
        _fees_restart(customer, on)
    customer.policy_name = name
    _log(s, company, customer, "policy.assigned",
         timeline.text("policy.named", name=name) if name else timeline.text("policy.company"), user_id=user_id,
         policy_name=name)
    _touch(s, company, customer)


LANGUAGE_CHOICES = ("en", "fr")


def set_language(s: Session, company: models.Company, customer_id: str, language: str | None, *,
                 on: dt.date, user_id: int | None = None) -> None:
    """Write this customer's reminders in ``language`` ("en", "fr"), or choose automatically again
    (``None`` / "": from the customer's country, ``snapshot.language_choice``)."""
    customer = _customer(s, company, customer_id)
    chosen = (language or "").strip().lower() or None
    if chosen is not None and chosen not in LANGUAGE_CHOICES:
        raise errors.InvalidInput(N_("Choose one of the listed languages."), field="language")
    if chosen == customer.language:
        return  # nothing changes: no timeline line
    customer.language = chosen
    _log(s, company, customer, "language.set",
         timeline.text("language.set", language=timeline.term("language", chosen)) if chosen
         else timeline.text("language.auto"), user_id=user_id)
    _touch(s, company, customer)


def policy_names(company: models.Company) -> list[str]:
    """The policies a customer may follow: the company's named ones, then the presets."""
    from qbo_collector import rules

    stored = company.policy if isinstance(company.policy, dict) else {}
    named = list((stored.get("policies") or {}).keys()) if "policies" in stored else []
    return [*sorted(named), *(p for p in sorted(rules.PRESETS) if p not in named)]


def waive_fee(s: Session, company: models.Company, customer_id: str, *, invoice_id: str | None = None,
              fee_outbox_id: object = None, note: str = "", on: dt.date, user_id: int | None = None) -> int | None:
    """Waive late fees: every future fee of the customer (nothing chosen), future fees of one
    invoice (``invoice_id``), or one fee already posted (``fee_outbox_id``, its outbox row).

    Sets the flags the planner reads and logs it. For a posted fee, returns the outbox id the
    caller hands to ``dispatch.waive_fee`` (after this transaction commits) to void the fee
    invoice in QuickBooks; otherwise None. Nothing lifts a waiver today; whatever comes to lift the
    customer's must call ``_fees_restart`` (and one lifting an invoice's, store such a day for the
    invoice), or the periods it held off would all be charged in the next run.
    """
    customer = _customer(s, company, customer_id)
    text = _note(note)
    if fee_outbox_id not in (None, ""):
        try:
            row = s.get(models.Outbox, int(str(fee_outbox_id)))
        except ValueError:
            row = None
        if (row is None or row.company_id != company.id or row.customer_qbo_id != customer.qbo_id
                or row.kind != "fee"):
            raise errors.InvalidInput(N_("Choose one of this customer's late fees."), field="invoice_id")
        if row.status != models.OutboxStatus.sent or not row.provider_id or row.dry_run:
            raise errors.InvalidInput(N_("This fee was never posted to QuickBooks: there is nothing to void."),
                                      field="invoice_id")
        if (row.payload or {}).get("waived"):
            raise errors.InvalidInput(N_("This fee is already waived."), field="invoice_id")
        # The fee invoice only: voiding one fee is a gesture about that fee; later periods are still
        # charged unless a person also chooses "no more fees on this invoice" (a choice of its own).
        for invoice in s.scalars(select(models.Invoice).where(
                models.Invoice.company_id == company.id, models.Invoice.qbo_id == row.provider_id)):
            invoice.fees_waived = True
        amount = money.Money(row.amount, row.currency) if row.amount is not None and row.currency else None
        _log(s, company, customer, "fee.waive_requested",
             timeline.text("fee.waive_requested", amount=timeline.money(amount.rounded().amount, amount.currency))
             if amount is not None else timeline.text("fee.waive_requested.no_amount"),
             invoice_id=(row.invoice_ids or [None])[0], user_id=user_id, note=text, outbox_id=row.id)
        _touch(s, company, customer)
        return row.id
    if not invoice_id:
        if customer.fees_waived:
            raise errors.InvalidInput(N_("Fees are already waived for this customer."), field="invoice_id")
        customer.fees_waived = True
        _log(s, company, customer, "fee.waived", timeline.text("fee.waived.customer"),
             user_id=user_id, note=text)
        _touch(s, company, customer)
        return None
    (invoice,) = _invoices(s, company, customer, [invoice_id], field="invoice_id")
    if invoice.fees_waived:
        raise errors.InvalidInput(N_("Fees are already waived on this invoice."), field="invoice_id")
    invoice.fees_waived = True
    _log(s, company, customer, "fee.waived",
         timeline.text("fee.waived.invoice", invoice=invoice.doc_number or invoice.qbo_id),
         invoice_id=invoice.qbo_id, user_id=user_id, note=text)
    _touch(s, company, customer)
    return None


def log_call(s: Session, company: models.Company, customer_id: str, *, outcome: str, note: str = "",
             on: dt.date, user_id: int | None = None) -> models.Activity:
    """A call made to the customer, with what came of it."""
    customer = _customer(s, company, customer_id)
    if outcome not in CALL_OUTCOMES:
        raise errors.InvalidInput(N_("Choose how the call went."), field="outcome")
    text = _note(note)
    if outcome == "reached" and not text:
        raise errors.InvalidInput(N_("Write down what was said."), field="note")
    return _log(s, company, customer, "call",
                timeline.text("call", outcome=timeline.term("call_outcome", outcome), note=text),
                user_id=user_id, outcome=outcome, note=text)


def add_note(s: Session, company: models.Company, customer_id: str, *, note: str, on: dt.date,
             user_id: int | None = None) -> models.Activity:
    customer = _customer(s, company, customer_id)
    text = _note(note)
    if not text:
        raise errors.InvalidInput(N_("Write the note first."), field="note")
    return _log(s, company, customer, "note", text, user_id=user_id)  # the person's words, never translated


# --- what the pages read -----------------------------------------------------------------

def _is_active(p: models.Pause, on: dt.date) -> bool:
    if p.resolved_on is not None and p.resolved_on <= on:
        return False
    if p.start_on > on:
        return False
    if p.kind == "dispute":
        return True
    if p.kind == "manual":
        return p.until_on is None or on < p.until_on
    return p.until_on is None or on <= p.until_on  # promise: through its date; plan: through the last instalment


def active_pauses(s: Session, company: models.Company, customer_id: str, on: dt.date) -> list[models.Pause]:
    rows = s.scalars(select(models.Pause).where(models.Pause.company_id == company.id,
                                                models.Pause.customer_qbo_id == customer_id,
                                                models.Pause.resolved_on.is_(None))
                     .order_by(models.Pause.start_on, models.Pause.id))
    return [p for p in rows if _is_active(p, on)]


def cannot_reach() -> ColumnElement[bool]:
    """The customers some reminders cannot reach, as a condition on ``Customer``: email or texts
    stopped, or no email, phone or mobile at all (the customers list's filter, the digest's list).
    A job billed with its parent is reached at the parent's (``snapshot.contact_rows``): having
    none of its own does not count, and the parent is listed if it cannot be reached."""
    c = models.Customer
    blank = [func.coalesce(func.trim(column), "") == "" for column in (c.email, c.phone, c.mobile)]
    return or_(c.email_stopped.is_not(None), c.sms_stopped.is_not(None), and_(*blank, c.bill_with_parent.is_(False)))


def states(s: Session, company: models.Company, customers: Sequence[models.Customer],
           on: dt.date) -> dict[str, list[str]]:
    """Each customer's states, in ``STATES`` order: excluded, disputed, promised, plan, paused, opted out, bounced."""
    ids = [c.qbo_id for c in customers]
    found: dict[str, set[str]] = {i: set() for i in ids}
    names = {"dispute": "disputed", "promise": "promised", "plan": "plan", "manual": "paused"}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for p in s.scalars(select(models.Pause).where(models.Pause.company_id == company.id,
                                                      models.Pause.customer_qbo_id.in_(part),
                                                      models.Pause.resolved_on.is_(None))):
            if _is_active(p, on):
                found[p.customer_qbo_id].add(names[p.kind])
    addresses: dict[tuple[str, str], str] = {}
    for c in customers:
        if c.excluded:
            found[c.qbo_id].add("excluded")
        if c.sms_stopped:
            found[c.qbo_id].add("opted_out")
        if c.email_stopped:
            found[c.qbo_id].add("opted_out" if c.email_stopped in ("unsubscribe", "spamreport") else "bounced")
        if c.email:
            addresses[("email", c.email.strip().lower())] = c.qbo_id
        for number in (c.mobile, c.phone):
            if number:
                addresses[("sms", number.strip())] = c.qbo_id
    if addresses:
        emails = [a for (ch, a) in addresses if ch == "email"]
        phones = [a for (ch, a) in addresses if ch == "sms"]
        blocks = s.execute(select(models.ContactBlock.channel, models.ContactBlock.address, models.ContactBlock.reason)
                           .where(or_(models.ContactBlock.address.in_(emails or [""]),
                                      models.ContactBlock.address.in_(phones or [""])),
                                  models.ContactBlock.sender.in_(snapshot.sms_blocks_for(company))))
        for channel, address, reason in blocks:
            owner = addresses.get((channel, address))
            if owner is not None:
                found[owner].add("bounced" if reason in ("bounce", "dropped", "invalid", "21211") else "opted_out")
    return {i: [state for state in STATES if state in found[i]] for i in ids}


# --- the upcoming calendar ---------------------------------------------------------------

def skip(s: Session, company: models.Company, row: object, *, reason: str = "", on: dt.date,
         user_id: int | None = None) -> None:
    """Skip one planned action for good: its dedupe key is taken by a cancelled outbox row.

    ``row`` is a ``dispatch.PlannedRow`` from the calendar (or an outbox row still ``planned``).
    The planner counts a cancelled row as done, so the step is not planned again; the next
    step of the invoice follows its own schedule.
    """
    text = _note(reason)
    if isinstance(row, models.Outbox):
        if row.company_id != company.id or row.status != models.OutboxStatus.planned:
            raise errors.InvalidInput(N_("This action is no longer waiting to go out."), field="dedupe_key")
        row.status = models.OutboxStatus.cancelled
        row.status_reason = "Skipped by a person on the Upcoming page." + (f" {text}" if text else "")
        row.updated_at = models.utcnow()
        key, customer_id, what = row.dedupe_key, row.customer_qbo_id, timeline.action(row)
    else:
        key = getattr(row, "dedupe_key")
        if s.scalar(select(models.Outbox.id).where(models.Outbox.dedupe_key == key)) is not None:
            raise errors.InvalidInput(N_("This action is no longer waiting to go out."), field="dedupe_key")
        now = models.utcnow()
        s.add(models.Outbox(
            company_id=company.id, dedupe_key=key, kind=getattr(row, "kind"), channel=getattr(row, "channel"),
            status=models.OutboxStatus.cancelled, customer_qbo_id=getattr(row, "customer_id"),
            invoice_ids=list(getattr(row, "invoice_ids")), step=getattr(row, "step", None),
            template_key=getattr(row, "template_key"), amount=getattr(row, "amount"),
            currency=getattr(row, "currency"), due_at=getattr(row, "due_at"), payload=dict(getattr(row, "payload", {}) or {}),
            reason=getattr(row, "reason"), status_reason="Skipped by a person on the Upcoming page." + (f" {text}" if text else ""),
            dry_run=key.startswith("dryrun:"), created_at=now, updated_at=now))
        customer_id, what = getattr(row, "customer_id"), timeline.action(row)
    s.flush()
    customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                      models.Customer.qbo_id == customer_id)) if customer_id else None
    skipped = timeline.text("skipped", action=what)
    s.add(models.Activity(company_id=company.id, kind="skipped", customer_qbo_id=customer_id,
                          message=skipped.english(), message_key=skipped.key, message_args=skipped.stored_args(),
                          data={"dedupe_key": key, "user_id": user_id, "note": text}))
    if customer is not None:
        _touch(s, company, customer)


def set_dry_run(s: Session, company: models.Company, enabled: bool, *, user_id: int | None = None) -> None:
    """Dry run: the company's runs plan and log everything and send nothing."""
    company.settings = {**(company.settings or {}), "dry_run": bool(enabled)}
    s.add(models.Activity(company_id=company.id, kind="dry_run.on" if enabled else "dry_run.off",
                          message="Dry run switched on: nothing is sent." if enabled
                          else "Dry run switched off: reminders are sent.", data={"user_id": user_id}))
