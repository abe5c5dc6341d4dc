"""The planner: (mirror snapshot, policy, history, pauses, today) → actions. Pure.

Read ``qbo_collector.rules`` (the package docstring) for the decisions this encodes.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import ClassVar, NamedTuple

from qbo_collector import money
from qbo_collector.rules import actions, calendar, model, policy as policy_mod

DAY = dt.timedelta(days=1)
_MESSAGE_CHANNELS = ("email", "sms")
_KIND_ORDER = {"indemnity": 0, "flat": 1, "percent": 2, "interest": 3}
_MAX_PERIODS = 3660


# --- due dates ---------------------------------------------------------------------------

def effective_due_date(invoice: model.Invoice) -> tuple[dt.date | None, str]:
    """The due date the engine uses, and a note when it had to derive it."""
    if invoice.due_date is not None:
        return invoice.due_date, ""
    if invoice.txn_date is None:
        return None, "it has neither a due date nor an invoice date"
    if invoice.term_due_days is not None:
        return (invoice.txn_date + dt.timedelta(days=invoice.term_due_days),
                f" (no due date in QuickBooks: invoice date + {invoice.term_due_days} days of its term)")
    return invoice.txn_date, " (no due date in QuickBooks: taken as due on the invoice date)"


# --- pauses ------------------------------------------------------------------------------

def _promise_end(p: model.Promise, policy: policy_mod.Policy) -> dt.date:
    """First day after the promise (its date plus the grace days)."""
    return p.until + dt.timedelta(days=policy.promise_grace_days + 1)


def _plan_end(p: model.PaymentPlan, policy: policy_mod.Policy) -> dt.date:
    last = max((i.due_on for i in p.instalments), default=p.agreed_on)
    return last + dt.timedelta(days=policy.payment_plan.remind_days_after + 1)


def _pause_span(p: model.Pause, policy: policy_mod.Policy) -> tuple[dt.date, dt.date | None]:
    """[start, end) of a pause; end None = open-ended."""
    if isinstance(p, model.Promise):
        return p.made_on, _promise_end(p, policy)
    if isinstance(p, model.Dispute):
        return p.opened_on, p.resolved_on
    if isinstance(p, model.PaymentPlan):
        return p.agreed_on, _plan_end(p, policy)
    return p.start, p.resume_on


def _paused_on(pauses: Sequence[model.Pause], policy: policy_mod.Policy, day: dt.date) -> model.Pause | None:
    for p in pauses:
        start, end = _pause_span(p, policy)
        if start <= day and (end is None or day < end):
            return p
    return None


def _resume_days(pauses: Sequence[model.Pause], policy: policy_mod.Policy, today: dt.date) -> list[dt.date]:
    """The days pauses ended on, up to ``today``, oldest first."""
    return sorted({end for p in pauses for _, end in [_pause_span(p, policy)] if end is not None and end <= today})


# --- the per-invoice state ---------------------------------------------------------------

class _Slot(NamedTuple):
    step: int
    repeat: int
    day: dt.date


@dataclasses.dataclass(slots=True)
class _Inputs:
    """One customer's inputs, with the history indexed once: each invoice's entries, the steps done, the contact days."""

    company: model.CompanyContext
    customer: model.Customer
    policy: policy_mod.Policy
    history: tuple[model.HistoryEntry, ...]
    pauses: tuple[model.Pause, ...]
    keys: frozenset[str]
    contact_tz: str
    by_invoice: dict[str, list[model.HistoryEntry]]
    done: dict[str, dict[tuple[int, int], dt.date]] = dataclasses.field(default_factory=dict)
    contacts: list[tuple[dt.date, dt.date]] | None = None  # (contact day, day planned for), sorted; built on first use
    covered: frozenset[str] = frozenset()  # invoices the customer's unused credit settles (``credit_covered``)
    partial: dict[str, Decimal] = dataclasses.field(default_factory=dict)  # the one it pays only part of → that part

    @classmethod
    def build(cls, company: model.CompanyContext, customer: model.Customer, policy: policy_mod.Policy,
              history: Iterable[model.HistoryEntry], pauses: Iterable[model.Pause],
              invoices: Sequence[model.Invoice], today: dt.date) -> "_Inputs":
        history = tuple(history)
        pauses = tuple(pauses)
        by_invoice: dict[str, list[model.HistoryEntry]] = {}
        for h in history:
            for invoice_id in h.invoice_ids:
                by_invoice.setdefault(invoice_id, []).append(h)
        covered, partial = credit_parts(invoices, customer, pauses, today=today)
        return cls(company, customer, policy, history, pauses, frozenset(h.dedupe_key for h in history),
                   customer.time_zone or company.time_zone, by_invoice, covered=covered, partial=partial)

    def extended(self, entries: Sequence[model.HistoryEntry]) -> "_Inputs":
        """The same inputs with ``entries`` appended to the history; what they do not touch is kept."""
        if not entries:
            return self
        by_invoice = dict(self.by_invoice)
        done = dict(self.done)
        copied: set[str] = set()
        contacts = None if self.contacts is None else list(self.contacts)
        for h in entries:
            for invoice_id in h.invoice_ids:
                by_invoice[invoice_id] = [*by_invoice.get(invoice_id, ()), h]
            if h.kind != "reminder" and h.step is None:
                continue
            day = calendar.local_date(h.at, self.contact_tz)
            if contacts is not None and h.kind == "reminder":
                bisect.insort(contacts, (day, h.on or day))
            if h.step is None:
                continue
            for invoice_id in h.invoice_ids:
                steps = done.get(invoice_id)
                if steps is None:
                    continue  # worked out from all its entries when first asked
                if invoice_id not in copied:  # the dicts of the inputs extended stay as they were
                    steps = done[invoice_id] = dict(steps)
                    copied.add(invoice_id)
                key = (h.step, h.repeat)
                steps[key] = min(day, steps.get(key, day))
        return _Inputs(self.company, self.customer, self.policy, self.history + tuple(entries), self.pauses,
                       self.keys.union(h.dedupe_key for h in entries), self.contact_tz, by_invoice, done, contacts,
                       self.covered, self.partial)

    def pauses_of(self, invoice_id: str) -> list[model.Pause]:
        return [p for p in self.pauses if model.covers(p, invoice_id)]

    def entries_of(self, invoice_id: str) -> Sequence[model.HistoryEntry]:
        return self.by_invoice.get(invoice_id, ())

    def done_steps(self, invoice_id: str) -> dict[tuple[int, int], dt.date]:
        """The first day each (step, repeat) of the invoice went out, in the contact's time zone. Read-only."""
        done = self.done.get(invoice_id)
        if done is None:
            done = self.done[invoice_id] = _done_steps(self.entries_of(invoice_id), self.contact_tz)
        return done

    def _contacts(self) -> list[tuple[dt.date, dt.date]]:
        contacts = self.contacts
        if contacts is None:
            contacts = self.contacts = sorted(_contact(h, self.contact_tz) for h in self.history if h.kind == "reminder")
        return contacts

    def last_contact(self, today: dt.date) -> dt.date | None:
        contacts = self._contacts()
        n = bisect.bisect_right(contacts, (today, dt.date.max))
        return contacts[n - 1][0] if n else None

    def gap_allows(self, today: dt.date) -> bool:
        """The minimum gap since the customer's last contact has passed, that contact's own day aside.

        What was planned for today goes out together (several invoices' steps, one day); a
        contact planned for an earlier day that went out today (a text held overnight) counts.
        """
        contacts = self._contacts()
        for n in range(bisect.bisect_right(contacts, (today, dt.date.max)) - 1, -1, -1):
            day, planned = contacts[n]
            if planned != today:
                return (today - day).days >= self.policy.min_gap_days
        return True

    def contact_at(self, day: dt.date) -> dt.datetime:
        return calendar.local_instant(day, self.policy.send_window, self.contact_tz)

    def company_at(self, day: dt.date) -> dt.datetime:
        return calendar.local_instant(day, self.policy.send_window, self.company.time_zone)

    def send_day(self, day: dt.date) -> bool:
        return calendar.is_send_day(self.company, self.policy.send_window, day)

    def next_send_day(self, day: dt.date) -> dt.date:
        return calendar.next_send_day(self.company, self.policy.send_window, day)


# --- unused credit ------------------------------------------------------------------------

def oldest_first(invoices: Iterable[model.Invoice]) -> list[tuple[model.Invoice, dt.date]]:
    """The open invoices with their (effective) due dates, the oldest due first (then by id)."""
    dated = [(i, effective_due_date(i)[0]) for i in invoices if i.is_open]
    return sorted(((i, d) for i, d in dated if d is not None), key=lambda x: (x[1], x[0].id))


def disputed(invoices: Iterable[model.Invoice], pauses: Iterable[model.Pause], today: dt.date) -> frozenset[str]:
    """The ids of ``invoices`` an active dispute of ``pauses`` holds on ``today``."""
    disputes = [p for p in pauses if isinstance(p, model.Dispute) and p.opened_on <= today
                and (p.resolved_on is None or p.resolved_on > today)]
    return frozenset(i.id for p in disputes for i in invoices if model.covers(p, i.id))


def allocate_credits(invoices: Sequence[model.Invoice], credit: dict[str, Decimal],
                     skip: frozenset[str] = frozenset()) -> dict[str, Decimal]:
    """How much of a customer's unused ``credit`` (by currency) goes to each of its open ``invoices``:
    the oldest due first, as applying it in QuickBooks would settle them. Invoices in ``skip``
    (disputed) get none. Only invoices that get something are in the answer."""
    left = {c: a for c, a in credit.items() if a > 0}
    taken: dict[str, Decimal] = {}
    for invoice, _due in oldest_first(invoices):
        room = left.get(invoice.currency, Decimal(0))
        if room <= 0 or invoice.id in skip:
            continue
        take = min(room, invoice.balance.amount)
        left[invoice.currency] = room - take
        taken[invoice.id] = take
    return taken


def with_credits(invoices: Sequence[model.Invoice], credit: Mapping[str, Decimal],
                 skip: frozenset[str] = frozenset()) -> list[model.Invoice]:
    """``invoices`` with ``credit`` (by currency) taken off their balances as ``allocate_credits``
    gives it: what is left is what the customer still owes once the credit is applied."""
    taken = allocate_credits(invoices, dict(credit), skip)
    return [dataclasses.replace(i, balance=money.Money(i.balance.amount - taken[i.id], i.balance.currency))
            if i.id in taken else i for i in invoices]


def parent_credit_shares(invoices: Sequence[model.Invoice], credits: Mapping[str, Mapping[str, Decimal]],
                         parents: Mapping[str, str], skip: frozenset[str] = frozenset()
                         ) -> tuple[dict[str, dict[str, Decimal]], dict[str, str]]:
    """What the unused credit of a customer does for the jobs and sub-customers billed with it.

    ``invoices``: the open invoices of the customers concerned; ``credits``: customer → currency →
    its own unused credit; ``parents``: customer billed with its parent (QuickBooks' ``BillWithParent``)
    → that parent; ``skip``: the disputed invoices (they get no credit).

    Each customer's own credit goes to its own invoices first (``allocate_credits``: the credit is
    recorded on it). What is left of a customer's credit then goes to the invoices of the customers
    billed with it, down the chain, the oldest due first across them all, as applying it from the
    parent in QuickBooks would. A nearer parent's credit is spent before a farther one's.

    Returns (customer → currency → the part of its parents' credit its invoices take: nothing for
    a customer that takes none; customer → the parent whose credit it takes, the nearest when several)."""
    left: dict[str, dict[str, Decimal]] = {}
    room: dict[str, Decimal] = {}
    mine: dict[str, list[model.Invoice]] = {}
    for invoice in invoices:
        if invoice.is_open:
            mine.setdefault(invoice.customer_id, []).append(invoice)
            room[invoice.id] = invoice.balance.amount
    for customer, credit in credits.items():
        own = {c: a for c, a in credit.items() if a > 0}
        taken = allocate_credits(mine.get(customer, []), own, skip)
        for invoice_id, amount in taken.items():
            room[invoice_id] -= amount
        spent: dict[str, Decimal] = {}
        for invoice in mine.get(customer, []):
            if invoice.id in taken:
                spent[invoice.currency] = spent.get(invoice.currency, Decimal(0)) + taken[invoice.id]
        left[customer] = {c: a - spent.get(c, Decimal(0)) for c, a in own.items() if a > spent.get(c, Decimal(0))}

    def chain(customer: str) -> list[str]:
        up, seen = [], {customer}
        while customer in parents and parents[customer] not in seen and len(up) < 5:
            customer = parents[customer]
            seen.add(customer)
            up.append(customer)
        return up

    below: dict[str, list[str]] = {}  # parent → the customers billed with it, at any depth
    depth: dict[str, int] = {}
    for customer in mine:
        for level, parent in enumerate(chain(customer)):
            below.setdefault(parent, []).append(customer)
            depth[parent] = max(depth.get(parent, 0), level + 1)
    shares: dict[str, dict[str, Decimal]] = {}
    giver: dict[str, str] = {}
    # the nearest credit first: a parent whose jobs are all below the others' comes before them
    for holder in sorted((h for h in left if left[h] and h in below), key=lambda h: (depth[h], h)):
        family = [i for c in below[holder] for i in mine[c]]
        rest = {i.id: dataclasses.replace(i, balance=money.Money(room[i.id], i.currency))
                for i in family if room[i.id] > 0}
        for invoice_id, amount in allocate_credits(list(rest.values()), left[holder], skip).items():
            if amount <= 0:
                continue
            room[invoice_id] -= amount
            invoice = rest[invoice_id]
            got = shares.setdefault(invoice.customer_id, {})
            got[invoice.currency] = got.get(invoice.currency, Decimal(0)) + amount
            giver.setdefault(invoice.customer_id, holder)
    return shares, giver


def _credit_by_currency(customer: model.Customer) -> dict[str, Decimal]:
    credit: dict[str, Decimal] = {}
    for m in customer.credits:
        credit[m.currency] = credit.get(m.currency, Decimal(0)) + m.amount
    return {c: a for c, a in credit.items() if a > 0}


def credit_parts(invoices: Sequence[model.Invoice], customer: model.Customer,
                 pauses: Iterable[model.Pause] = (), *, today: dt.date) -> tuple[frozenset[str], dict[str, Decimal]]:
    """What the customer's unused credit does to its open invoices (``allocate_credits``): the ids
    of those it settles in full (``credit_covered``), and the invoice it pays only part of, per
    currency (the next one in line), with that part: QuickBooks still asks for the whole balance."""
    credit = _credit_by_currency(customer)
    if not credit:
        return frozenset(), {}
    mine = [i for i in invoices if i.customer_id == customer.id and i.is_open]
    taken = allocate_credits(mine, credit, disputed(mine, pauses, today))
    full = frozenset(i.id for i in mine if taken.get(i.id, Decimal(-1)) >= i.balance.amount)
    return full, {i.id: taken[i.id] for i in mine if i.id in taken and i.id not in full and taken[i.id] > 0}


def credit_covered(invoices: Sequence[model.Invoice], customer: model.Customer,
                   pauses: Iterable[model.Pause] = (), *, today: dt.date) -> frozenset[str]:
    """The ids of the customer's open invoices its unused credit settles in full (``allocate_credits``;
    a disputed invoice keeps its balance and the credit goes to the next one). The engine leaves these
    alone — no reminder, fee or task: the customer has paid or been credited, and the money waits to be
    applied in QuickBooks — and tells the owner once (``credit_alert_key``)."""
    return credit_parts(invoices, customer, pauses, today=today)[0]


def _net_of_credit(inp: "_Inputs", invoices: Sequence[model.Invoice], today: dt.date) -> list[model.Invoice]:
    """The customer's ``invoices`` with its unused credit applied (``with_credits``): what a promise or
    a payment plan is judged on, since money paid but not applied in QuickBooks was paid all the same."""
    mine = [i for i in invoices if i.customer_id == inp.customer.id]
    credit = _credit_by_currency(inp.customer)
    return with_credits(mine, credit, disputed(mine, inp.pauses, today)) if credit else mine


def credit_alert_key(realm: str, customer_id: str, credit: money.Money) -> str:
    """One alert per customer, currency and credit amount: a new credit (or a changed one) is told again."""
    return f"{realm}:alert:{customer_id}:credit:{credit.currency}:{credit.rounded().amount}"


def _credit_of(customer: model.Customer, currency: str) -> money.Money | None:
    """The customer's unused credit in ``currency``, rounded; None when it has none."""
    total = _credit_by_currency(customer).get(currency)
    return money.Money(total, currency).rounded() if total else None


def _credit_alerts(inp: _Inputs, invoices: Sequence[model.Invoice], today: dt.date) -> list[actions.Action]:
    """Tell the owner, once per currency and credit amount, that unused credit settles invoices that
    are due: they get nothing until someone applies it (or refunds it) in QuickBooks. When it settles
    none that is due but pays part of one that is, the owner is told that too: that invoice's
    reminders ask for its whole QuickBooks balance until the credit is applied."""
    company, customer = inp.company, inp.customer
    out: list[actions.Action] = []
    by_currency: dict[str, list[tuple[model.Invoice, dt.date]]] = {}
    partly: dict[str, tuple[model.Invoice, dt.date]] = {}
    for invoice, due in oldest_first(i for i in invoices if i.id in inp.covered or i.id in inp.partial):
        # what the engine would act on but for the credit, and not paused today
        if _eligible(invoice, inp) is not None and _paused_on(inp.pauses_of(invoice.id), inp.policy, today) is None:
            if invoice.id in inp.covered:
                by_currency.setdefault(invoice.currency, []).append((invoice, due))
            else:
                partly[invoice.currency] = (invoice, due)
    for currency in sorted(set(by_currency) | set(partly)):
        covered = by_currency.get(currency, [])
        credit = _credit_of(customer, currency)
        if credit is None:
            continue
        key = credit_alert_key(company.realm, customer.id, credit)
        if key in inp.keys:
            continue
        if not any(due < today for _i, due in covered):
            if currency in partly and partly[currency][1] < today:
                out.append(_partial_credit_alert(inp, partly[currency][0], credit, key, today))
            continue
        labels = ", ".join(i.doc_number or i.id for i, _d in covered)
        settles = (f"invoice {labels}, so no reminder goes out for it: apply the credit to it" if len(covered) == 1
                   else f"invoices {labels}, so no reminder goes out for them: apply the credit to them")
        out.append(actions.AlertOwner(
            realm=company.realm, customer_id=customer.id, dedupe_key=key, due_at=inp.company_at(today), on=today,
            topic="credit", invoices=tuple(i.id for i, _d in covered), amount=credit, holder=customer.credit_holder,
            reason=f"{customer.display_name} has {credit.amount} {currency} of credit in QuickBooks that is not "
                   f"applied to any invoice ({_credit_sources(customer)}). It settles {settles} in QuickBooks."))
    return out


def _partial_credit_alert(inp: _Inputs, invoice: model.Invoice, credit: money.Money, key: str,
                          today: dt.date) -> actions.AlertOwner:
    customer = inp.customer
    part = money.Money(inp.partial[invoice.id], invoice.currency).rounded()
    return actions.AlertOwner(
        realm=inp.company.realm, customer_id=customer.id, dedupe_key=key, due_at=inp.company_at(today), on=today,
        topic="credit", invoices=(invoice.id,), amount=credit, part=part, holder=customer.credit_holder,
        reason=f"{customer.display_name} has {credit.amount} {credit.currency} of credit in QuickBooks that is not "
               f"applied to any invoice ({_credit_sources(customer)}). Applied, it pays {part.amount} "
               f"{part.currency} of invoice {invoice.doc_number or invoice.id}, whose reminders ask for the whole "
               f"balance until then: apply the credit to it in QuickBooks.")


def _credit_sources(customer: model.Customer) -> str:
    """Where the customer's unused credit is recorded, for the owner's alert."""
    if customer.credit_holder:
        return f"credit memos, unapplied payments, counting those of {customer.credit_holder}, which it is billed with"
    return "credit memos, unapplied payments"


def _free_from(pauses: Sequence[model.Pause], policy: policy_mod.Policy, today: dt.date) -> dt.date | None:
    """The first day from ``today`` that no pause holds (None: an open dispute holds it for good)."""
    day = today
    for _ in range(50):
        paused = _paused_on(pauses, policy, day)
        if paused is None:
            break
        end = _pause_span(paused, policy)[1]
        if end is None:
            return None
        day = end
    return day


def _cover_moves(inp: _Inputs, invoice: model.Invoice, today: dt.date) -> dt.date | None:
    """The next day, after ``today``, on which what the customer's credit in the invoice's currency
    settles may change by itself: a dispute of the customer opens or ends (``credit_covered``)."""
    if not invoice.is_open or _credit_of(inp.customer, invoice.currency) is None:
        return None
    days = [d for p in inp.pauses if isinstance(p, model.Dispute)
            for d in (p.opened_on, p.resolved_on) if d is not None and d > today]
    return min(days, default=None)


def _below_minimum(invoice: model.Invoice, policy: policy_mod.Policy) -> bool:
    minimum = policy.min_balance.get(invoice.balance.currency)
    return minimum is not None and invoice.balance.amount < minimum


def _contact(h: model.HistoryEntry, tz: str) -> tuple[dt.date, dt.date]:
    day = calendar.local_date(h.at, tz)
    return day, h.on or day


def _done_steps(entries: Sequence[model.HistoryEntry], tz: str) -> dict[tuple[int, int], dt.date]:
    done: dict[tuple[int, int], dt.date] = {}
    for h in entries:
        if h.step is not None:
            day = calendar.local_date(h.at, tz)
            key = (h.step, h.repeat)
            done[key] = min(day, done.get(key, day))
    return done


@dataclasses.dataclass(slots=True)
class _Compiled:
    """A policy's steps as plain values, and the slot days already worked out for it."""

    steps: tuple[tuple[str, dt.timedelta], ...]  # (anchor, offset)
    repeats: tuple[dt.timedelta, ...]  # offsets of the repeats of the last step
    order: tuple[tuple[int, int], ...]  # (step, repeat) of each slot
    by_invoice_date: bool  # a step counts from the invoice date
    depends_on: tuple[tuple[int, int], ...]  # the done steps the days are counted from
    slots: dict[tuple[object, ...], tuple[_Slot, ...]]  # (due, invoice date, days of depends_on, floors) → slots


_COMPILED: dict[int, tuple[policy_mod.Policy, _Compiled]] = {}
_MAX_SLOT_MEMO = 4096


def _compiled(policy: policy_mod.Policy) -> _Compiled:
    """The policy's plain values, computed once per policy object.

    Keyed by identity (hashing a pydantic model field by field costs more than the work saved);
    the policy is kept alongside so a recycled id can never match another policy.
    """
    hit = _COMPILED.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    repeat = policy.repeat_last
    steps = tuple((s.anchor, dt.timedelta(days=s.offset_days)) for s in policy.steps)
    repeats = tuple(dt.timedelta(days=k * repeat.every_days) for k in range(1, repeat.max_times + 1)) if repeat else ()
    depends_on = [(i - 1, 0) for i, (anchor, _) in enumerate(steps) if anchor == "previous_step"]
    if steps and repeats:
        depends_on.append((len(steps) - 1, 0))
    order = tuple((i, 0) for i in range(len(steps)))
    if steps:  # the last step's repeats
        order += tuple((len(steps) - 1, k) for k in range(1, len(repeats) + 1))
    value = _Compiled(steps, repeats, order, any(anchor == "invoice_date" for anchor, _ in steps), tuple(depends_on), {})
    if len(_COMPILED) > 256:
        _COMPILED.clear()
    _COMPILED[id(policy)] = (policy, value)
    return value


def _slots(invoice: model.Invoice, due: dt.date, policy: policy_mod.Policy,
           done: dict[tuple[int, int], dt.date], resumes: Sequence[dt.date] = ()) -> tuple[_Slot, ...]:
    """The invoice's steps in order, each on or after the one before, moved by the pauses that ended on ``resumes``.

    A function of the due date, the invoice date, the days a few steps were done and the
    resume days only: invoices sharing those share the answer, worked out once per policy.
    """
    compiled = _compiled(policy)
    floors = tuple((_first_not_done_before(compiled, done, resume), resume) for resume in resumes)
    key = (due, invoice.txn_date if compiled.by_invoice_date else None, *[done.get(k) for k in compiled.depends_on],
           floors)
    slots = compiled.slots.get(key)
    if slots is None:
        if len(compiled.slots) >= _MAX_SLOT_MEMO:
            compiled.slots.clear()
        slots = compiled.slots[key] = _slot_days(compiled, invoice.txn_date, due, done, floors)
    return slots


def _first_not_done_before(compiled: _Compiled, done: dict[tuple[int, int], dt.date], resume: dt.date) -> int:
    """The position of the slot after the last one done before ``resume``."""
    return 1 + max((pos for pos, ref in enumerate(compiled.order) if done.get(ref, resume) < resume), default=-1)


def _slot_days(compiled: _Compiled, txn_date: dt.date | None, due: dt.date,
               done: dict[tuple[int, int], dt.date], floors: Sequence[tuple[int, dt.date]]) -> tuple[_Slot, ...]:
    """Each slot's day; ``floors`` (position, resume day): from that slot on, the steps a pause held back.

    A step whose own day is on or before the due date (before due, due today) says something
    about that date, so a pause does not carry it along: when the pause ends after the due
    date it is passed over (superseded, as catch-up passes over older steps: it takes the day
    of the step that goes out instead, which is sent, not it); when it ends by the due date it
    goes out no earlier than the resume day and moves nothing. The first step held back whose
    own day is after the due date (else the last step) goes out no earlier than the resume day;
    when that moves it, the later ones keep their spacing: a day counted from the due date, the
    invoice date or an earlier step's day moves as much; a day counted from a step done after
    the resume (it went out on the moved day) is not moved again.
    """
    slots: list[_Slot] = []
    days: list[dt.date] = []  # each slot's own day, before it is passed over: what later steps count from
    shifted: list[dt.timedelta] = []  # how far the moves had shifted the schedule at each slot
    moves: list[tuple[dt.date, dt.timedelta]] = []  # (resume day, how far it moved the slots)
    waiting: list[dt.date] = []  # resume days whose first step after the due date is not reached yet
    passed: list[int] = []  # positions passed over, until that step is reached

    def moved(since: dt.date | None = None) -> dt.timedelta:
        return sum((by for resume, by in moves if since is None or resume > since), dt.timedelta())

    last = len(compiled.steps) - 1
    end = len(compiled.order) - 1
    for pos, (step, repeat) in enumerate(compiled.order):
        anchor, offset = compiled.steps[step] if repeat == 0 else ("repeat", compiled.repeats[repeat - 1])
        if anchor == "due_date":
            day = due + offset + moved()
        elif anchor == "invoice_date":
            day = (txn_date or due) + offset + moved()
        else:  # counted from the step before, or for a repeat from the last step
            base = step - 1 if anchor == "previous_step" else last  # the policy refuses a first step counted from a previous one
            done_on = done.get((base, 0))
            day = (days[base] + offset + moved() - shifted[base] if done_on is None
                   else done_on + offset + moved(done_on))
        if days and day < days[-1]:
            day = days[-1]
        waiting.extend(resume for at, resume in floors if at == pos)
        if waiting and day <= due and pos < end:  # tied to the due date: not carried along
            if max(waiting) > due:
                passed.append(pos)
            else:
                day = max(day, *waiting)
        elif waiting:
            for resume in waiting:
                if day < resume:
                    moves.append((resume, resume - day))
                    day = resume
            waiting.clear()
            for at in passed:
                slots[at] = slots[at]._replace(day=day)
            passed.clear()
        days.append(day)
        shifted.append(moved())
        slots.append(_Slot(step, repeat, day))
    return tuple(slots)


@dataclasses.dataclass(slots=True)
class _Schedule:
    """Where an invoice stands in its steps."""

    slots: tuple[_Slot, ...]
    progress: int  # index of the last slot done (-1: none)
    done: dict[tuple[int, int], dt.date]

    def pending(self, today: dt.date) -> _Slot | None:
        """The newest slot due by ``today`` and not done: missed older ones are never sent in a burst."""
        found = None
        slots = self.slots
        for pos in range(self.progress + 1, len(slots)):
            if slots[pos].day > today:
                break
            found = slots[pos]
        return found

    def upcoming(self) -> _Slot | None:
        return self.slots[self.progress + 1] if self.progress + 1 < len(self.slots) else None

    def final_day(self, due: dt.date) -> dt.date:
        if not self.slots:
            return due
        last = self.slots[-1]
        return self.done.get((last.step, last.repeat), last.day)


def _schedule(inp: _Inputs, invoice: model.Invoice, due: dt.date, pauses: Sequence[model.Pause],
              today: dt.date) -> _Schedule:
    done = inp.done_steps(invoice.id)
    # After a pause (broken promise, resolved dispute, manual resume, finished plan) the next
    # step goes out on the resume day and the later ones keep their spacing; each pause that
    # ended moves the steps from where the ones before left them. A move is fixed by what was
    # done before its resume day, so it does not move again.
    resumes = _resume_days(pauses, inp.policy, today) if pauses else ()
    slots = _slots(invoice, due, inp.policy, done, resumes)
    progress = -1
    if done:  # the last slot at or before the most advanced step done (slots are in (step, repeat) order)
        step, repeat = max(done)
        progress = bisect.bisect_right(slots, (step, repeat, dt.date.max)) - 1
    return _Schedule(slots, progress, done)


# --- keys --------------------------------------------------------------------------------

def _slot_name(step: int, repeat: int) -> str:
    return f"step{step}" if repeat == 0 else f"step{step}r{repeat}"


def reminder_key(realm: str, invoice_id: str, step: int, repeat: int, channel: str) -> str:
    return f"{realm}:reminder:{invoice_id}:{_slot_name(step, repeat)}:{channel}"


def statement_key(realm: str, customer_id: str, refs: Sequence[actions.StepRef], channel: str) -> str:
    text = ",".join(f"{r.invoice_id}/{_slot_name(r.step, r.repeat)}" for r in sorted(refs, key=lambda r: (r.invoice_id, r.step, r.repeat)))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{realm}:statement:{customer_id}:{digest}:{channel}"


def fee_key(realm: str, invoice_id: str, kind: str, period: str) -> str:
    return f"{realm}:fee:{invoice_id}:{kind}:{period}"


def _fee_prefix(invoice: model.Invoice) -> str:
    """``fee_key(invoice.realm, invoice.id, p.kind, p.period) == _fee_prefix(invoice) + p.tail``."""
    return f"{invoice.realm}:fee:{invoice.id}:"


def task_key(realm: str, invoice_id: str, task: str) -> str:
    return f"{realm}:task:{invoice_id}:{task}"


# --- discounts ---------------------------------------------------------------------------

def discount_offer(invoice: model.Invoice, policy: policy_mod.Policy, due: dt.date,
                   on: dt.date) -> actions.DiscountOffer | None:
    """The early-payment discount still open on ``on`` (QBO term first, else the best policy tier)."""
    if invoice.txn_date is None or on >= due:
        return None
    percent: Decimal | None = None
    deadline: dt.date | None = None
    source = "term"
    if invoice.term_discount is not None and invoice.term_discount.percent > 0:
        percent = invoice.term_discount.percent
        deadline = invoice.txn_date + dt.timedelta(days=invoice.term_discount.days)
    else:
        source = "policy"
        for tier in policy.discount_tiers:  # sorted: earliest (largest) first
            tier_deadline = invoice.txn_date + dt.timedelta(days=tier.days_after_invoice)
            if on <= tier_deadline:
                percent, deadline = tier.percent, tier_deadline
                break
    if percent is None or deadline is None or on > deadline:
        return None
    amount = invoice.balance.mul(percent / 100).rounded()
    return actions.DiscountOffer(percent=percent, amount=amount, deadline=deadline, source=source)  # type: ignore[arg-type]


# --- fees --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class _FeePeriod:
    kind: str
    charge_on: dt.date
    period: str
    days: int | None = None
    tail: str = dataclasses.field(init=False, repr=False, compare=False)  # the end of its fee key

    def __post_init__(self) -> None:
        object.__setattr__(self, "tail", f"{self.kind}:{self.period}")


def _period_order(period: _FeePeriod) -> tuple[dt.date, int]:
    return period.charge_on, _KIND_ORDER[period.kind]


def _fee_periods(rule: policy_mod.FeeRule, start: dt.date, until: dt.date) -> Iterator[_FeePeriod]:
    """Fee periods charged on or before ``until`` (lazily, in date order)."""
    key = (rule.kind, rule.frequency, rule.every_days, start)
    periods = _PERIODS.get(key)
    if periods is None:
        if len(_PERIODS) >= _MAX_PERIOD_MEMO or _Periods.held > _MAX_PERIODS_HELD:
            _PERIODS.clear()
            _Periods.held = 0
        periods = _PERIODS[key] = _Periods(*key)
    return periods.until(until)


class _Periods:
    """The periods of one kind of fee rule from one start day: a calendar fact, worked out once, as far as asked.

    ``known`` is only replaced by a longer list (under a lock), and ``complete`` set once it holds
    them all, so threads may read while another extends it.
    """

    __slots__ = ("kind", "frequency", "every_days", "start", "known", "complete")
    held: ClassVar[int] = 0  # periods held by all of them (about 250 bytes each)

    def __init__(self, kind: str, frequency: str, every_days: int | None, start: dt.date) -> None:
        self.kind, self.frequency, self.every_days, self.start = kind, frequency, every_days, start
        self.known: list[_FeePeriod] = []
        self.complete = False

    def until(self, day: dt.date) -> Iterator[_FeePeriod]:
        known = self.known
        n = 0
        while True:
            if n == len(known):
                known = self._grow(n)  # or the longer list another thread made meanwhile
                if n == len(known):
                    return
            period = known[n]
            if period.charge_on > day:
                return
            yield period
            n += 1

    def _grow(self, have: int) -> list[_FeePeriod]:
        with _GROWING:
            known = self.known
            if len(known) > have or self.complete:
                return known
            more: list[_FeePeriod] = []
            period: _FeePeriod | None = None
            for n in range(have, have + max(8, have)):
                period = self._nth(n)
                if period is None:
                    break
                more.append(period)
            self.known = known = known + more
            _Periods.held += len(more)
            if period is None:
                self.complete = True  # after ``known`` holds them all
            return known

    def _nth(self, n: int) -> _FeePeriod | None:
        """The ``n``-th period (from 0), None past the last one."""
        start = self.start

        def boundary(k: int) -> dt.date:
            if self.frequency == "monthly":
                return calendar.add_months(start, k)
            return start + dt.timedelta(days=k * (self.every_days or 1))

        if self.kind == "indemnity":
            return _FeePeriod("indemnity", start, "once") if n == 0 else None
        if self.kind == "interest":  # billed in arrears at each period's end
            if n + 1 >= _MAX_PERIODS:
                return None
            begin, end = boundary(n), boundary(n + 1)
            return _FeePeriod("interest", end, begin.isoformat(), (end - begin).days)
        if self.frequency == "once":
            return _FeePeriod(self.kind, boundary(0), "once") if n == 0 else None
        if n >= _MAX_PERIODS:
            return None
        day = boundary(n)
        return _FeePeriod(self.kind, day, day.isoformat())


# Keyed by (kind, frequency, every_days, start): invoices due the same day share their periods.
_PERIODS: dict[tuple[str, str, int | None, dt.date], _Periods] = {}
_MAX_PERIOD_MEMO = 8192
_MAX_PERIODS_HELD = 200_000  # about 50 MB, when daily fees run for years
_GROWING = threading.Lock()


def _chargeable(period: _FeePeriod, fees_from: dt.date | None) -> bool:
    """No back-charging: a period whose charge day came before ``fees_from`` is never billed."""
    return fees_from is None or period.charge_on >= fees_from


def _from(period: _FeePeriod, fees_from: dt.date | None) -> _FeePeriod:
    """Interest straddling ``fees_from`` is billed only for the days from it."""
    if fees_from is None or period.kind != "interest" or period.days is None:
        return period
    begin = period.charge_on - dt.timedelta(days=period.days)
    if begin >= fees_from:
        return period
    return dataclasses.replace(period, days=(period.charge_on - fees_from).days)


def _fee_amount(period: _FeePeriod, rule: policy_mod.FeeRule, invoice: model.Invoice,
                policy: policy_mod.Policy, credit: Decimal = Decimal(0)) -> tuple[money.Money, Decimal | None]:
    """``credit``: the part of the customer's unused credit that pays this invoice (``_Inputs.partial``)."""
    currency = invoice.balance.currency
    if period.kind in ("flat", "indemnity"):
        amount = rule.amount.get(currency)
        return (money.Money(amount, currency) if amount is not None else money.Money.zero(currency)), None
    assert rule.percent is not None
    base = _net_of(invoice.principal_left, credit)
    if period.kind == "percent":
        return base.mul(rule.percent / 100), None
    annual = rule.percent + (policy.ecb_rate_percent if rule.add_ecb_rate else 0)
    # Simple interest, actual/365, on what was left of the principal each day of the period (never on fees),
    # less the unused credit that pays it: a part paid during it bears interest up to its payment day only.
    owed = sum((_net_of(left, credit).amount * days for left, days in _interest_days(invoice, period)), Decimal(0))
    return money.Money(owed, currency).mul(annual / Decimal(36500)), annual


def _interest_days(invoice: model.Invoice, period: _FeePeriod) -> list[tuple[money.Money, int]]:
    """The principal left on the days of an interest period, as (balance, how many days), in order:
    it changes the day after each payment made during the period."""
    end = period.charge_on
    day = end - dt.timedelta(days=period.days or 0)
    cuts = sorted({p.on + DAY for p in invoice.payments if day < p.on + DAY < end})
    out: list[tuple[money.Money, int]] = []
    for cut in [*cuts, end]:
        left = _principal_during(invoice, day)
        if out and out[-1][0] == left:
            out[-1] = (left, out[-1][1] + (cut - day).days)
        elif cut > day:
            out.append((left, (cut - day).days))
        day = cut
    return out


def _principal_during(invoice: model.Invoice, day: dt.date) -> money.Money:
    """What was left of the principal during ``day``: what is left now plus the payments made from that
    day on (a payment counts at the end of its day: the day the money comes still bears interest)."""
    later = sum((p.amount.amount for p in invoice.payments if p.on >= day), Decimal(0))
    left = invoice.principal_left
    if not later:
        return left
    # the balance of that day less the fee lines, as ``principal_left`` reads today's: a payment pays the
    # principal first, so one that came after it was all paid went to the fee lines, not to the principal
    fees = invoice.fee_lines.amount if invoice.fee_lines is not None else Decimal(0)
    owed = max(invoice.balance.amount + later - fees, Decimal(0))
    return money.Money(min(owed, invoice.principal.amount), invoice.currency)


def _interest_basis(invoice: model.Invoice, period: _FeePeriod) -> money.Money:
    """The balance an interest period is billed on: what was left of the principal on its last day."""
    return _principal_during(invoice, period.charge_on - DAY)


def paid_on(invoice: model.Invoice) -> dt.date | None:
    """The day the invoice's principal was paid in full, as its ``payments`` tell: the first payment day after
    which nothing of it was left. None while something is left, or when no payment says when (a voided invoice,
    one settled by other means)."""
    if not invoice.payments or invoice.status not in ("open", "paid") or invoice.principal_left.amount > 0:
        return None
    for day in sorted({p.on for p in invoice.payments}):
        if _principal_during(invoice, day + DAY).amount <= 0:
            return day
    return None


def _credit_on_principal(inp: _Inputs, invoice: model.Invoice) -> Decimal:
    """The part of the customer's unused credit that pays ``invoice``'s principal (``_Inputs.partial``):
    no more than what is left of it — the rest pays its fee lines, which bear no fee."""
    return min(inp.partial.get(invoice.id, Decimal(0)), max(invoice.principal_left.amount, Decimal(0)))


def _net_of(balance: money.Money, credit: Decimal) -> money.Money:
    """``balance`` less ``credit``, never below zero."""
    if not credit:
        return balance
    left = balance.amount - credit
    return money.Money(left, balance.currency) if left > 0 else money.Money.zero(balance.currency)


def _fees_allowed(invoice: model.Invoice, inp: _Inputs) -> bool:
    """Whether ``invoice`` may bear fees at all: not a fee invoice, not waived, a policy with fees, and
    something left of its principal (an invoice whose fee lines are all that is left bears no more)."""
    return not (invoice.is_late_fee or invoice.waived_fee or inp.customer.fees_waived or not inp.policy.late_fees.rules
                or (invoice.fee_lines is not None and invoice.principal_left.amount <= 0))


@dataclasses.dataclass(frozen=True, slots=True)
class _Fee:
    period: _FeePeriod
    amount: money.Money
    annual: Decimal | None


def _fees_from(inp: _Inputs, invoice: model.Invoice, kind: str) -> tuple[dt.date | None, dt.date | None]:
    """The first day a fee of ``kind`` may be charged for ``invoice``: (the day its interest is billed
    from, the day its periods are charged from). Fees are charged only for periods from the day the rules
    the invoice bears now began to apply to it, the latest of: the company's (no back-charging), the
    customer's (given another policy, taken back from exclusion, made active again), the policy's for
    that kind (its periods moved, or it began to charge: ``LateFees.started``) and, when the policy leaves
    unsent invoices alone, the day QuickBooks emailed it — a customer is not late on an invoice it never
    had. The policy's ``fees_from`` (it let invoices bear fees they did not) only bars earlier periods:
    the invoices that bore fees all along keep every day of their interest."""
    days = [d for d in (inp.company.fees_from, inp.customer.fees_from, inp.policy.late_fees.started.get(kind))
            if d is not None]
    if inp.policy.skip_unsent_invoices and invoice.sent_on is not None:
        days.append(invoice.sent_on)
    trim = max(days, default=None)
    bar = inp.policy.late_fees.fees_from
    return trim, (trim if bar is None or (trim is not None and trim >= bar) else bar)


def _due_fees(inp: _Inputs, invoice: model.Invoice, due: dt.date, pauses: Sequence[model.Pause],
              until: dt.date, paid: dt.date | None = None) -> list[_Fee]:
    """Fees charged up to ``until`` and not yet in history, within the caps. ``paid``: the day the
    principal was paid: only the interest up to that day (``_final_periods``)."""
    fees = inp.policy.late_fees
    start = due + dt.timedelta(days=fees.grace_days + 1)
    if start > until:
        return []
    floors = {rule.kind: _fees_from(inp, invoice, rule.kind) for rule in fees.rules}
    prefix = _fee_prefix(invoice)
    periods = sorted(
        (p for rule in fees.rules for p in _fee_periods(rule, start, until)
         if _chargeable(p, floors[rule.kind][1]) and prefix + p.tail not in inp.keys
         and not (pauses and _paused_on(pauses, inp.policy, p.charge_on))),  # fees do not run while paused
        key=_period_order,
    ) if paid is None else _final_periods(inp, invoice, start, paid, pauses)
    if not periods:
        return []
    currency = invoice.balance.currency
    charged = [h.amount for h in inp.entries_of(invoice.id) if h.kind == "fee" and h.amount is not None]
    count = len(charged)
    total = sum((m.amount for m in charged), Decimal(0))
    limits = []
    if currency in fees.max_amount:
        limits.append(fees.max_amount[currency])
    if fees.max_percent_of_principal is not None:
        limits.append(invoice.principal.amount * fees.max_percent_of_principal / 100)
    out: list[_Fee] = []
    credit = _credit_on_principal(inp, invoice)
    for period in periods:
        if fees.max_count is not None and count >= fees.max_count:
            break
        period = _from(period, floors[period.kind][0] if period.kind in floors else None)
        amount, annual = _fee_amount(period, inp.policy.fee_rule(period.kind), invoice, inp.policy, credit)  # type: ignore[arg-type]
        amount = amount.rounded()
        if limits:
            room = min(limits) - total
            if amount.amount > room:  # cut to the cap, rounding down so it is never crossed
                amount = money.Money(room.quantize(money.quantum(currency), rounding=ROUND_DOWN), currency)
        if amount.amount <= 0:
            continue
        out.append(_Fee(period, amount, annual))
        count += 1
        total += amount.amount
    return out


def _final_periods(inp: _Inputs, invoice: model.Invoice, start: dt.date, paid: dt.date,
                   pauses: Sequence[model.Pause]) -> list[_FeePeriod]:
    """The interest periods not yet billed of an invoice whose principal was paid on ``paid``: those that
    ended by then, and the one it was paid in, cut to the days up to ``paid`` (included) under that period's
    own key — billed once, whether now or at its end should the payment be undone. A period whose charge
    day (for the last one: the payment day) fell in a pause stays waived."""
    rule = inp.policy.fee_rule("interest")
    if rule is None or paid < start:
        return []
    (_trim, fees_from), prefix = _fees_from(inp, invoice, "interest"), _fee_prefix(invoice)
    found: list[_FeePeriod] = []
    for period in _fee_periods(rule, start, paid + dt.timedelta(days=400)):
        last = period.charge_on > paid
        if last:  # [its first day, the payment day]
            begin = period.charge_on - dt.timedelta(days=period.days or 0)
            period = dataclasses.replace(period, charge_on=paid + DAY, days=(paid + DAY - begin).days)
        if (_chargeable(period, fees_from) and prefix + period.tail not in inp.keys
                and not (pauses and _paused_on(pauses, inp.policy, paid if last else period.charge_on))):
            found.append(period)
        if last:
            break
    return found


def _paid_late(invoice: model.Invoice, inp: _Inputs) -> tuple[dt.date, dt.date] | None:
    """(due date, day the principal was paid) of an invoice paid late whose last interest may be owed: one the
    engine would have charged interest on (not a fee invoice, not waived, sent when the policy asks, not
    below the minimum) and whose payments say when it was paid (``paid_on``)."""
    if (invoice.is_late_fee or invoice.waived_fee or inp.customer.fees_waived
            or inp.policy.fee_rule("interest") is None):
        return None
    paid = paid_on(invoice)
    if paid is None or (not invoice.sent and inp.policy.skip_unsent_invoices and not any(
            not isinstance(p, model.ManualPause) for p in inp.pauses_of(invoice.id))):
        return None  # as ``_eligible``: a promise, dispute or plan says the customer knew of it
    minimum = inp.policy.min_balance.get(invoice.currency)
    if minimum is not None and _principal_during(invoice, paid).amount < minimum:
        return None
    due, _note = effective_due_date(invoice)
    if due is None or paid <= due + dt.timedelta(days=inp.policy.late_fees.grace_days):
        return None
    return due, paid


def _final_interest(inp: _Inputs, invoice: model.Invoice, today: dt.date) -> list[actions.Action]:
    """The interest up to the day the principal was paid, once it is (REFERENCE: ERPNext #58220, interest
    lost after the principal is paid). Never while the invoice is paused."""
    late = _paid_late(invoice, inp)
    if late is None or late[1] > today:  # a payment dated ahead: billed on its day
        return []
    pauses = inp.pauses_of(invoice.id)
    if pauses and _paused_on(pauses, inp.policy, today) is not None:
        return []
    return _charge(inp, invoice, late[0], pauses, today, paid=late[1])


def _first_fee_day(inp: _Inputs, invoice: model.Invoice, due: dt.date, pauses: Sequence[model.Pause]) -> dt.date | None:
    """The first fee period not yet charged (None when the caps are reached): a lower bound for next_action_date."""
    fees = inp.policy.late_fees
    if _caps_reached(inp, invoice):
        return None
    start = due + dt.timedelta(days=fees.grace_days + 1)
    horizon = max(start, due) + dt.timedelta(days=_MAX_PERIODS)
    best: dt.date | None = None
    prefix = _fee_prefix(invoice)
    for rule in fees.rules:
        if rule.kind in ("flat", "indemnity") and invoice.balance.currency not in rule.amount:
            continue
        _trim, fees_from = _fees_from(inp, invoice, rule.kind)
        for period in _fee_periods(rule, start, horizon if best is None else best):
            if not _chargeable(period, fees_from):
                continue
            if prefix + period.tail in inp.keys:
                continue
            if pauses and _paused_on(pauses, inp.policy, period.charge_on) is not None:
                continue
            best = period.charge_on if best is None else min(best, period.charge_on)
            break
    return best


def _caps_reached(inp: _Inputs, invoice: model.Invoice) -> bool:
    fees = inp.policy.late_fees
    currency = invoice.balance.currency
    if fees.max_count is None and currency not in fees.max_amount and fees.max_percent_of_principal is None:
        return False  # no cap: no need to add up what was charged
    charged = [h.amount.amount for h in inp.entries_of(invoice.id) if h.kind == "fee" and h.amount is not None]
    if fees.max_count is not None and len(charged) >= fees.max_count:
        return True
    limits = [fees.max_amount[c] for c in [currency] if c in fees.max_amount]
    if fees.max_percent_of_principal is not None:
        limits.append(invoice.principal.amount * fees.max_percent_of_principal / 100)
    # reached when what is left of it rounds down to nothing in the currency (a fee is cut to the room left)
    return bool(limits) and min(limits) - sum(charged, Decimal(0)) < money.quantum(currency)


# --- planning ----------------------------------------------------------------------------

@dataclasses.dataclass(slots=True)
class _Pending:
    invoice: model.Invoice
    due: dt.date
    due_note: str
    slot: _Slot


def _reachable(customer: model.Customer, channel: str) -> bool:
    if channel in customer.opted_out:
        return False
    if channel == "email":
        return customer.has_email
    if channel == "sms":
        return customer.has_phone
    return True


def _invoice_label(invoice: model.Invoice, *, first: bool = False) -> str:
    """"invoice F-1001" ("Invoice F-1001" at the start of a sentence: the number keeps its case)."""
    return f"{'Invoice' if first else 'invoice'} {invoice.doc_number or invoice.id}"


def _active(invoice: model.Invoice, inp: _Inputs) -> tuple[dt.date, str] | None:
    """The invoice's due date (and how it was found) when the engine acts on it, else None."""
    return None if invoice.id in inp.covered else _eligible(invoice, inp)


def _eligible(invoice: model.Invoice, inp: _Inputs) -> tuple[dt.date, str] | None:
    """``_active`` before the customer's credit is weighed: open, not below the minimum, sent (when asked)."""
    if not invoice.is_open or _below_minimum(invoice, inp.policy):
        return None
    if not invoice.sent and inp.policy.skip_unsent_invoices and not invoice.is_late_fee and not any(
            not isinstance(p, model.ManualPause) for p in inp.pauses_of(invoice.id)):
        # The customer may never have seen it; a recorded promise, dispute or plan says otherwise, and a
        # late fee the program posted was told by its notice (QuickBooks never emails those itself).
        return None
    due, note = effective_due_date(invoice)
    if due is None:
        return None
    return due, note


def plan(*, company: model.CompanyContext, invoices: Sequence[model.Invoice], customer: model.Customer,
         policy: policy_mod.Policy, history: Iterable[model.HistoryEntry] = (),
         pauses: Iterable[model.Pause] = (), today: dt.date,
         now: dt.datetime | None = None, focus: Collection[str] | None = None) -> list[actions.Action]:
    """What is due for this customer's invoices on the company-local date ``today``.

    ``invoices`` are this customer's invoices (all of them: statements list every open
    one). ``history`` is what was already done for this customer; ``pauses`` its
    promises, disputes, payment plans and manual pauses. With ``now`` (aware), only
    actions whose ``due_at`` has come are returned; without it, the whole day's (the
    outbox way: insert them all, send each at its ``due_at``). Prefer the outbox way when
    customers have their own time zones: a send hour that falls after the company's
    local midnight is only reached by ``now`` on the next company day, one day late.
    Same inputs, same list, in a stable order.

    ``focus``: the ids of the invoices to evaluate one by one (fees, steps, escalation,
    alerts); None evaluates all. The others still count for the customer as a whole: a
    statement lists them, promises and payment plans weigh their balances. Since
    ``next_action_date`` is a lower bound, an invoice whose date is after ``today`` has
    nothing of its own due: with ``focus`` holding at least every invoice whose date is
    ``<= today``, the result is the same as without it.
    """
    if customer.excluded:
        return []
    inp = _Inputs.build(company, customer, policy, history, pauses, invoices, today)
    out = _plan(inp, invoices, today, focus)
    if now is not None:
        out = [a for a in out if a.due_at <= now]
    return out


def plan_and_next(*, company: model.CompanyContext, invoices: Sequence[model.Invoice], customer: model.Customer,
                  policy: policy_mod.Policy, history: Iterable[model.HistoryEntry] = (),
                  pauses: Iterable[model.Pause] = (), today: dt.date,
                  focus: Collection[str] | None = None) -> tuple[list[actions.Action], dict[str, dt.date | None]]:
    """``plan`` for ``today``, and each focused invoice's next-action date from tomorrow on.

    The dates are what ``next_action_date(history=history + record(each action),
    today=today + 1)`` returns, computed in the same pass over the same indexed inputs:
    the daily run stores them right after inserting the day's actions. One date per
    invoice in ``invoices`` (in their order) that ``focus`` holds, all when it is None.
    There is no ``now``: the dates assume the whole day's actions are carried out.
    """
    wanted = [i for i in invoices if focus is None or i.id in focus]
    if customer.excluded:
        return [], {i.id: None for i in wanted}
    inp = _Inputs.build(company, customer, policy, history, pauses, invoices, today)
    out = _plan(inp, invoices, today, focus)
    after = inp.extended([h for a in out for h in actions.record(a)])
    tomorrow = today + DAY
    if customer.credits:  # what the credit settles tomorrow (a dispute may open or end)
        after.covered, after.partial = credit_parts(invoices, customer, after.pauses, today=tomorrow)
    return out, {i.id: _next_action(after, i, tomorrow) for i in wanted}


def _by_id(invoice: model.Invoice) -> str:
    return invoice.id


def _plan(inp: _Inputs, invoices: Sequence[model.Invoice], today: dt.date,
          focus: Collection[str] | None) -> list[actions.Action]:
    company, customer, policy = inp.company, inp.customer, inp.policy
    out: list[actions.Action] = []
    pending: list[_Pending] = []
    listed: list[model.Invoice] = []
    for invoice in sorted(invoices, key=_by_id):
        if invoice.customer_id != customer.id:
            continue
        # Outside the focus, its next-action date is after today: nothing of its own is due.
        only_listed = focus is not None and invoice.id not in focus
        if only_listed and not policy.group_by_customer:
            continue  # and no statement lists it
        active = _active(invoice, inp)
        if active is None:
            if not only_listed:  # paid late: the interest up to the day it was paid, once
                out.extend(_final_interest(inp, invoice, today))
            continue
        due, note = active
        pauses_here = inp.pauses_of(invoice.id)
        if pauses_here and _paused_on(pauses_here, policy, today) is not None:
            continue  # nothing at all while paused; earlier fee periods wait for the resume day
        listed.append(invoice)
        if only_listed:
            continue
        if _fees_allowed(invoice, inp):
            out.extend(_charge(inp, invoice, due, pauses_here, today))
        elif invoice.fee_lines is not None:  # only its fee lines are left: the interest up to the day it was paid
            out.extend(_final_interest(inp, invoice, today))
        if policy.alert_owner_when_late and due < today:
            key = f"{company.realm}:alert:{invoice.id}:late"
            if key not in inp.keys:
                out.append(actions.AlertOwner(
                    realm=company.realm, customer_id=customer.id, dedupe_key=key, due_at=inp.company_at(today),
                    on=today, topic="late", invoices=(invoice.id,), due_on=due,
                    reason=f"{_invoice_label(invoice, first=True)} of {customer.display_name} became late: it was due on {due}{note}."))
        schedule = _schedule(inp, invoice, due, pauses_here, today)
        slot = schedule.pending(today)
        if slot is not None:
            pending.append(_Pending(invoice, due, note, slot))
        out.extend(_escalate(inp, invoice, due, schedule, today))
    if inp.covered or inp.partial:
        out.extend(_credit_alerts(inp, invoices, today))
    if inp.pauses:
        out.extend(_promises(inp, invoices, today))
        out.extend(_payment_plans(inp, invoices, today))
    if pending and inp.send_day(today) and inp.gap_allows(today):
        if policy.group_by_customer:
            out.extend(_statement(inp, pending, listed, today))
        else:
            for p in pending:
                out.extend(_remind(inp, p, today))
    return out


def _step_actions(inp: _Inputs, step: policy_mod.Step, refs: tuple[actions.StepRef, ...], invoices: tuple[str, ...],
                  today: dt.date, what: str, message: dict[str, object],
                  key_for: Callable[[str], str]) -> list[actions.Action]:
    realm, customer = inp.company.realm, inp.customer
    out: list[actions.Action] = []
    for channel in step.channels:
        key = key_for(channel)
        if key in inp.keys:
            continue
        common = dict(realm=realm, customer_id=customer.id, dedupe_key=key, on=today, steps=refs)
        if channel in _MESSAGE_CHANNELS:
            if not _reachable(customer, channel):
                continue
            out.append(actions.SendReminder(
                **common, due_at=inp.contact_at(today), channel=channel, invoices=invoices,  # type: ignore[arg-type]
                reason=f"{what} by {channel}.", **message))  # type: ignore[arg-type]
        elif channel in ("call_task", "letter_task"):
            out.append(actions.CreateTask(
                **common, due_at=inp.company_at(today), task="call" if channel == "call_task" else "letter",  # type: ignore[arg-type]
                invoices=invoices, reason=f"{what}: {'call' if channel == 'call_task' else 'send a letter to'} {customer.display_name}."))
        else:
            out.append(actions.AlertOwner(
                **common, due_at=inp.company_at(today), topic="step", invoices=invoices,  # type: ignore[arg-type]
                reason=f"{what}: the policy asks you to follow up with {customer.display_name} yourself."))
    if not out and not any(key_for(c) in inp.keys for c in step.channels):
        key = key_for("unreachable")
        if key not in inp.keys:
            out.append(actions.AlertOwner(
                realm=realm, customer_id=customer.id, dedupe_key=key, due_at=inp.company_at(today), on=today,
                topic="unreachable", invoices=invoices, steps=refs, channels=tuple(step.channels),
                reason=f"{what}, but {customer.display_name} cannot be reached by {', '.join(step.channels)} "
                       "(no address or opted out): contact them another way."))
    return out


_BY_THE_DUE_DATE = ("reminder_before_due", "reminder_due_today")  # templates that speak of the due date as to come


def _wording(template: str, due: dt.date, today: dt.date) -> str:
    """The template a step's message is written with on ``today``: a "before due" or "due today"
    step that goes out after the due date (moved off a weekend or a holiday, held by the minimum gap,
    the only step left after a pause) would tell the customer the invoice is due today, or on a day
    gone by; it is sent in the words of the first overdue reminder, which says when it was due."""
    return "reminder_overdue_gentle" if template in _BY_THE_DUE_DATE and today > due else template


def _remind(inp: _Inputs, p: _Pending, today: dt.date) -> list[actions.Action]:
    step = inp.policy.steps[p.slot.step]
    ref = actions.StepRef(invoice_id=p.invoice.id, step=p.slot.step, repeat=p.slot.repeat)
    late = (today - p.due).days
    when = f"{-late} days before" if late < 0 else ("on" if late == 0 else f"{late} days after")
    repeat = f" (repeat {p.slot.repeat})" if p.slot.repeat else ""
    template = _wording(step.template, p.due, today)
    worded = f" (in the words of '{template}': it goes out after the due date)" if template != step.template else ""
    what = (f"Step {p.slot.step + 1}{repeat} '{step.template}' for {_invoice_label(p.invoice)} of "
            f"{inp.customer.display_name}, {when} its due date {p.due}{p.due_note}{worded}")
    message = dict(step=p.slot.step, repeat=p.slot.repeat, template_key=template, tone=step.tone,
                   language=inp.customer.language,
                   discount=discount_offer(p.invoice, inp.policy, p.due, today))
    return _step_actions(inp, step, (ref,), (p.invoice.id,), today, what, message,
                         lambda ch: reminder_key(inp.company.realm, p.invoice.id, p.slot.step, p.slot.repeat, ch))


_TONES = ("friendly", "neutral", "firm")


def _statement(inp: _Inputs, pending: list[_Pending], listed: list[model.Invoice], today: dt.date) -> list[actions.Action]:
    lead = max(pending, key=lambda p: (p.slot.step, p.slot.repeat))
    step = inp.policy.steps[lead.slot.step]
    refs = tuple(actions.StepRef(invoice_id=p.invoice.id, step=p.slot.step, repeat=p.slot.repeat) for p in pending)
    shown = tuple(i.id for i in sorted(listed, key=lambda i: (effective_due_date(i)[0] or today, i.id)))
    tone = max((inp.policy.steps[p.slot.step].tone for p in pending), key=_TONES.index)
    what = (f"Statement of {len(shown)} open invoice(s) for {inp.customer.display_name}: "
            f"{', '.join(_invoice_label(p.invoice) for p in pending)} reached a reminder step")
    message = dict(step=lead.slot.step, repeat=lead.slot.repeat, template_key="statement", tone=tone,
                   language=inp.customer.language, discount=None)
    return _step_actions(inp, step, refs, shown, today, what, message,
                         lambda ch: statement_key(inp.company.realm, inp.customer.id, refs, ch))


def _charge(inp: _Inputs, invoice: model.Invoice, due: dt.date, pauses: Sequence[model.Pause],
            today: dt.date, paid: dt.date | None = None) -> list[actions.Action]:
    out: list[actions.Action] = []
    part = _credit_on_principal(inp, invoice)
    # what a percent or interest is taken on: the balance without fee lines, less the unused credit that pays part of it
    basis = _net_of(invoice.principal_left, part).rounded()
    credit = money.Money(part, invoice.currency).rounded() if part else None

    def overdue(balance: money.Money) -> str:
        return f"the overdue balance {_net_of(balance, part).rounded()}" + (
            "" if credit is None else
            f" ({balance.rounded()} less {credit} of the customer's unused credit that pays part of it)")

    for fee in _due_fees(inp, invoice, due, pauses, today, paid):
        p = fee.period
        if p.kind == "interest":
            spans = _interest_days(invoice, p)
            why = (f"{fee.annual}% a year for {p.days} days from {p.period} on "
                   + (overdue(_interest_basis(invoice, p)) if len(spans) < 2 else
                      "the overdue balance of each day: "
                      + ", then ".join(f"{_net_of(left, part).rounded()} for {n} days" for left, n in spans)
                      + ("" if credit is None else f" (less {credit} of the customer's unused credit)")))
            if paid is not None:
                why += f", up to {paid}, the day it was paid"
        elif p.kind == "percent":
            why = f"{inp.policy.fee_rule('percent').percent}% of {overdue(invoice.principal_left)}"  # type: ignore[union-attr]
        elif p.kind == "indemnity":
            why = "the fixed recovery indemnity, once per invoice"
        else:
            why = "the flat late fee"
        out.append(actions.ChargeFee(
            realm=inp.company.realm, customer_id=inp.customer.id,
            dedupe_key=fee_key(invoice.realm, invoice.id, p.kind, p.period),
            due_at=inp.company_at(today), on=today, invoice_id=invoice.id, amount=fee.amount, fee_kind=p.kind,  # type: ignore[arg-type]
            period=p.period, basis=basis, credit=credit, days=p.days, annual_percent=fee.annual, paid_on=paid,
            reason=f"Late fee {fee.amount} on {_invoice_label(invoice)} (due {due}), period {p.period}: {why}."))
    return out


def _escalation_days(inp: _Inputs, invoice: model.Invoice, due: dt.date,
                     schedule: _Schedule) -> tuple[dt.date | None, dt.date | None]:
    """The day the call task and the hand-off task come due (None: not in the policy / not yet known)."""
    esc = inp.policy.escalation
    if schedule.slots and (schedule.slots[-1].step, schedule.slots[-1].repeat) not in schedule.done:
        return None, None  # escalation starts once the last step has actually gone out
    base = schedule.final_day(due)
    call_day = base + dt.timedelta(days=esc.call_task_after_days) if esc.call_task_after_days is not None else None
    if esc.handoff_after_days is None:
        return call_day, None
    after = base
    if call_day is not None:
        ck = task_key(inp.company.realm, invoice.id, "call")
        done = [h.at for h in inp.history if h.dedupe_key == ck] if ck in inp.keys else []
        if not done:
            return call_day, None  # hand-off only after the call task
        after = calendar.local_date(min(done), inp.company.time_zone)
    return call_day, after + dt.timedelta(days=esc.handoff_after_days)


def _escalate(inp: _Inputs, invoice: model.Invoice, due: dt.date, schedule: _Schedule,
              today: dt.date) -> list[actions.Action]:
    if not inp.send_day(today):
        return []
    call_day, handoff_day = _escalation_days(inp, invoice, due, schedule)
    out: list[actions.Action] = []
    realm = inp.company.realm
    for task, day in (("call", call_day), ("handoff", handoff_day)):
        if day is None or day > today:
            continue
        key = task_key(realm, invoice.id, task)
        if key in inp.keys:
            continue
        text = (f"Call {inp.customer.display_name} about {_invoice_label(invoice)} (due {due}): the reminders are done."
                if task == "call" else
                f"{_invoice_label(invoice, first=True)} of {inp.customer.display_name} (due {due}) is still unpaid after "
                "the reminders and the call: decide whether to hand it to a collections agency or a lawyer.")
        out.append(actions.CreateTask(realm=realm, customer_id=inp.customer.id, dedupe_key=key,
                                      due_at=inp.company_at(today), on=today, task=task,  # type: ignore[arg-type]
                                      invoices=(invoice.id,), reason=text))
    return out


def _about(pause: model.Promise | model.PaymentPlan, invoice: model.Invoice, made_on: dt.date) -> bool:
    """Whether ``invoice`` is one a promise or plan is about. One made on "all invoices" (no invoice
    named) is about those the customer had when it was made: an invoice issued later does not make a
    kept promise broken, or a paid instalment missed (the pause still holds that invoice's reminders)."""
    if pause.invoice_ids:
        return invoice.id in pause.invoice_ids
    return invoice.txn_date is None or invoice.txn_date <= made_on


def _promise_broken(p: model.Promise, invoices: Sequence[model.Invoice]) -> bool:
    open_ = [i for i in invoices if _about(p, i, p.made_on) and i.is_open]
    if not open_:
        return False
    if p.open_balance_when_made is None:
        return True
    owed = sum((i.balance.amount for i in open_), Decimal(0))
    return owed > p.open_balance_when_made.amount - p.amount.amount


def promise_key(realm: str, customer_id: str, p: model.Promise, pauses: Iterable[model.Pause] = ()) -> str:
    """One broken-promise alert per promise: by its dates, and by its invoices too when another of the
    customer's promises (``pauses``) has the same dates — two promises made the same day to pay two
    invoices by the same day are two alerts, not one."""
    key = f"{realm}:alert:{customer_id}:promise-broken:{p.made_on}:{p.until}"
    if any(isinstance(o, model.Promise) and (o.made_on, o.until) == (p.made_on, p.until)
           and o.invoice_ids != p.invoice_ids for o in pauses):
        key += ":" + ",".join(sorted(p.invoice_ids))[:80]
    return key


def _promises(inp: _Inputs, invoices: Sequence[model.Invoice], today: dt.date) -> list[actions.Action]:
    out: list[actions.Action] = []
    mine = _net_of_credit(inp, invoices, today)
    for p in inp.pauses:
        if not isinstance(p, model.Promise) or _promise_end(p, inp.policy) > today:
            continue
        key = promise_key(inp.company.realm, inp.customer.id, p, inp.pauses)
        if key in inp.keys or not _promise_broken(p, mine):
            continue
        ids = tuple(sorted(i.id for i in mine if _about(p, i, p.made_on) and i.is_open))
        out.append(actions.AlertOwner(
            realm=inp.company.realm, customer_id=inp.customer.id, dedupe_key=key, due_at=inp.company_at(today),
            on=today, topic="promise_broken", invoices=ids, amount=p.amount, until=p.until,
            reason=f"{inp.customer.display_name} promised to pay {p.amount} by {p.until} and has not: "
                   "reminders resume at the next step."))
    return out


def _held(inp: _Inputs, invoice_id: str, today: dt.date) -> bool:
    """Paused on ``today`` by something other than a payment plan."""
    others = [p for p in inp.pauses_of(invoice_id) if not isinstance(p, model.PaymentPlan)]
    return bool(others) and _paused_on(others, inp.policy, today) is not None


def plan_key(realm: str, plan_id: str, index: int, when: str, channel: str) -> str:
    return f"{realm}:plan:{plan_id}:inst{index}:{when}:{channel}"


def _payment_plans(inp: _Inputs, invoices: Sequence[model.Invoice], today: dt.date) -> list[actions.Action]:
    out: list[actions.Action] = []
    pp = inp.policy.payment_plan
    mine = _net_of_credit(inp, invoices, today)
    for plan_ in inp.pauses:
        if not isinstance(plan_, model.PaymentPlan) or not plan_.agreed_on <= today < _plan_end(plan_, inp.policy):
            continue
        open_ = [i for i in mine if _about(plan_, i, plan_.agreed_on) and i.is_open and not _below_minimum(i, inp.policy)]
        if not open_ or any(_held(inp, i.id, today) for i in open_):
            continue  # a promise, dispute or manual pause on one of its invoices holds the plan's reminders too
        owed = sum((i.balance.amount for i in open_), Decimal(0))
        insts = sorted(plan_.instalments, key=lambda i: i.due_on)
        ids = tuple(i.id for i in open_)
        for n, inst in enumerate(insts):
            later = sum((i.amount.amount for i in insts[n + 1:]), Decimal(0))
            if owed <= later:
                continue  # this instalment is paid
            before = inst.due_on - dt.timedelta(days=pp.remind_days_before)
            after = inst.due_on + dt.timedelta(days=pp.remind_days_after)
            if today >= after:
                when, template, tone = "after", "reminder_overdue_gentle", "neutral"
                alert = plan_key(inp.company.realm, plan_.id, n, "missed", "owner")
                if alert not in inp.keys:
                    out.append(actions.AlertOwner(
                        realm=inp.company.realm, customer_id=inp.customer.id, dedupe_key=alert,
                        due_at=inp.company_at(today), on=today, topic="instalment_missed", invoices=ids,
                        due_on=inst.due_on, amount=inst.amount, instalment=n + 1,
                        reason=f"{inp.customer.display_name} missed instalment {n + 1} of {inst.amount} due {inst.due_on}."))
            elif today >= before:
                when, template, tone = "before", "reminder_before_due", "friendly"
            else:
                break
            if inp.send_day(today) and inp.gap_allows(today):
                channels = next((s.channels for s in inp.policy.steps), ("email",))
                for channel in channels:
                    key = plan_key(inp.company.realm, plan_.id, n, when, channel)
                    if channel not in _MESSAGE_CHANNELS or key in inp.keys or not _reachable(inp.customer, channel):
                        continue
                    out.append(actions.SendReminder(
                        realm=inp.company.realm, customer_id=inp.customer.id, dedupe_key=key,
                        due_at=inp.contact_at(today), on=today, invoices=ids, steps=(), step=None, repeat=0,
                        template_key=template, channel=channel, tone=tone, language=inp.customer.language,  # type: ignore[arg-type]
                        instalment=inst,
                        reason=f"Payment plan {plan_.id}: instalment {n + 1} of {inst.amount} is due {inst.due_on} "
                               f"({'reminder before it' if when == 'before' else 'it was missed'}), by {channel}."))
            break
    return out


# --- next action date --------------------------------------------------------------------

def next_action_date(*, company: model.CompanyContext, invoice: model.Invoice, customer: model.Customer,
                     policy: policy_mod.Policy, history: Iterable[model.HistoryEntry] = (),
                     pauses: Iterable[model.Pause] = (), today: dt.date,
                     invoices: Sequence[model.Invoice] = ()) -> dt.date | None:
    """The earliest local date, from ``today`` on, on which ``plan`` could act on this invoice.

    A lower bound (never later than the truth, assuming nothing changes), so the daily
    run only needs the invoices whose stored date is ``<= today``. None: nothing will
    ever happen unless the invoice, the pauses or the policy change (paid, excluded,
    open dispute…). Recompute it after each run and whenever those inputs change.
    ``invoices``: all of the customer's invoices, to know what its unused credit settles (the
    oldest first); without them, the credit is weighed against this invoice alone.
    """
    if customer.excluded:
        return None
    inp = _Inputs.build(company, customer, policy, history, pauses, invoices or (invoice,), today)
    return _next_action(inp, invoice, today)


def _next_action(inp: _Inputs, invoice: model.Invoice, today: dt.date) -> dt.date | None:
    company, customer, policy = inp.company, inp.customer, inp.policy
    # a dispute opening or ending moves the customer's credit to other invoices
    cover_moves = _cover_moves(inp, invoice, today)
    active = _eligible(invoice, inp)
    if active is None:
        return _final_interest_day(inp, invoice, today) or cover_moves
    due, _ = active
    pauses_here = inp.pauses_of(invoice.id)
    if invoice.id in inp.covered:  # left alone; only the owner's alert, once it is past due and not paused
        # — and the interest up to the payment of its principal, when only fee lines are left for the credit
        final = _final_interest_day(inp, invoice, today) if invoice.fee_lines is not None else None
        credit = _credit_of(customer, invoice.currency)
        free = _free_from(pauses_here, policy, today)
        if credit is None or free is None or credit_alert_key(company.realm, customer.id, credit) in inp.keys:
            return min((d for d in (final, cover_moves) if d is not None), default=None)
        return min(d for d in (max(due + DAY, free), cover_moves, final) if d is not None)
    candidates: list[dt.date] = [cover_moves] if cover_moves is not None else []
    # fees: the first uncharged period (they run on any day)
    if _fees_allowed(invoice, inp):
        first = _first_fee_day(inp, invoice, due, pauses_here)
        if first is not None:
            candidates.append(max(first, today))
    elif invoice.fee_lines is not None:
        final = _final_interest_day(inp, invoice, today)
        if final is not None:
            candidates.append(final)
    for p in pauses_here:
        if isinstance(p, model.Promise):
            end = _promise_end(p, policy)
            if (promise_key(company.realm, customer.id, p, inp.pauses) not in inp.keys
                    and (end >= today or _promise_broken(p, [invoice]))):
                candidates.append(max(end, today))
        elif isinstance(p, model.PaymentPlan) and today < _plan_end(p, policy):
            for n, inst in enumerate(sorted(p.instalments, key=lambda i: i.due_on)):
                if plan_key(company.realm, p.id, n, "missed", "owner") in inp.keys:
                    continue
                if inst.due_on + dt.timedelta(days=policy.payment_plan.remind_days_after) < today:
                    continue
                candidates.append(max(p.agreed_on, inst.due_on - dt.timedelta(days=policy.payment_plan.remind_days_before), today))
                break
    free_from = _free_from(pauses_here, policy, today)
    if free_from is None:  # an open dispute holds it for good
        return min(candidates, default=None)
    if policy.alert_owner_when_late and f"{company.realm}:alert:{invoice.id}:late" not in inp.keys:
        candidates.append(max(due + DAY, free_from))
    if invoice.id in inp.partial:  # the owner's alert that the credit pays part of it, once it is past due
        credit = _credit_of(customer, invoice.currency)
        if credit is not None and credit_alert_key(company.realm, customer.id, credit) not in inp.keys:
            candidates.append(max(due + DAY, free_from))
    schedule = _schedule(inp, invoice, due, pauses_here, free_from)
    contact_from = free_from
    last = inp.last_contact(today)
    if last is not None and policy.min_gap_days:
        contact_from = max(contact_from, last + dt.timedelta(days=policy.min_gap_days))
    nxt = schedule.upcoming()
    if nxt is not None:
        candidates.append(inp.next_send_day(max(nxt.day, contact_from)))
    call_day, handoff_day = _escalation_days(inp, invoice, due, schedule)
    for task, day_ in (("call", call_day), ("handoff", handoff_day)):
        if day_ is not None and task_key(company.realm, invoice.id, task) not in inp.keys:
            start = max(day_, free_from, schedule.slots[-1].day if schedule.slots else day_)
            candidates.append(inp.next_send_day(start))
            break
    return min(candidates, default=None)


def _final_interest_day(inp: _Inputs, invoice: model.Invoice, today: dt.date) -> dt.date | None:
    """When the interest up to the day an invoice was paid is billed (``_final_interest``): the first day
    from ``today`` no pause holds, while some of it is left to bill within the caps."""
    late = _paid_late(invoice, inp)
    if late is None or _caps_reached(inp, invoice):
        return None
    due, paid = late
    pauses = inp.pauses_of(invoice.id)
    if not _due_fees(inp, invoice, due, pauses, max(today, paid), paid):
        return None  # nothing left to bill, or only amounts that round to nothing (¥50 for a few days)
    return _free_from(pauses, inp.policy, max(today, paid))


# --- calendar ----------------------------------------------------------------------------

def plan_calendar(*, company: model.CompanyContext, invoices: Sequence[model.Invoice], customer: model.Customer,
                  policy: policy_mod.Policy, history: Iterable[model.HistoryEntry] = (),
                  pauses: Iterable[model.Pause] = (), today: dt.date, days: int) -> list[actions.Action]:
    """What would happen over ``days`` days from ``today`` if nothing changes and each due action is carried out.

    Fees charged are not added to the balances (they are separate invoices).
    """
    done = list(history)
    out: list[actions.Action] = []
    for n in range(days):
        day = today + dt.timedelta(days=n)
        todays = plan(company=company, invoices=invoices, customer=customer, policy=policy,
                      history=done, pauses=pauses, today=day)
        out.extend(todays)
        for action in todays:
            done.extend(actions.record(action))
    return out
