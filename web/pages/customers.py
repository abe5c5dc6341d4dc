"""Customers: the searchable list, one customer's page (invoices, timeline) and what people record there."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import case, func, or_, select, union

from qbo_collector import casework, errors, reports, rules, snapshot
from qbo_collector.db import models
from qbo_collector.db.types import amount_value
from qbo_collector.dispatch import events
from web.pages import bp, company_session, message_of, services, timeline, today_for, user_id

log = logging.getLogger(__name__)

PAGE_SIZE = 50


@bp.get("/companies/<realm_id>/customers")
def customers(realm_id: str):  # type: ignore[no-untyped-def]
    q = request.args.get("q", "").strip()[:100]
    owing = request.args.get("all") != "1"
    unreachable = request.args.get("unreachable") == "1"
    credit = request.args.get("credit") == "1"
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    with company_session(realm_id) as (s, company, role):
        on = today_for(company)
        rows, total = _customer_rows(s, company, q=q, owing=owing, unreachable=unreachable, credit=credit, page=page,
                                     on=on)
        return render_template("pages/customers.html", company=company, role=role, tab="customers", rows=rows,
                               q=q, owing=owing, unreachable=unreachable, credit=credit, page=page,
                               pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), total=total, on=on)


def _customer_rows(s, company: models.Company, *, q: str, owing: bool, page: int, on,  # type: ignore[no-untyped-def]
                   unreachable: bool = False, credit: bool = False) -> tuple[list[dict[str, Any]], int]:
    c, inv = models.Customer, models.Invoice
    open_ = (inv.company_id == company.id) & (inv.status == models.InvoiceStatus.open) & inv.deleted.is_(False) & (inv.balance > 0)
    balances = (select(inv.customer_qbo_id.label("cid"), func.sum(inv.balance).label("balance"),
                       func.min(func.coalesce(inv.due_date, inv.txn_date)).label("oldest"),
                       func.min(inv.next_action_on).label("next_on"), func.count().label("n"))
                .where(open_).group_by(inv.customer_qbo_id).subquery())
    query = (select(c, balances.c.balance, balances.c.oldest, balances.c.next_on, balances.c.n)
             .outerjoin(balances, balances.c.cid == c.qbo_id)
             .where(c.company_id == company.id, c.deleted.is_(False)))
    if q:  # "%" and "_" are what they are, not wildcards ("100% Bio" finds that name only)
        text = q.lower()
        query = query.where(or_(*(func.lower(column).contains(text, autoescape=True)
                                  for column in (c.display_name, c.company_name, c.email)), c.qbo_id == q))
    if owing:
        query = query.where(balances.c.balance > 0)
    if unreachable:  # what a person should fix: a stopped email or number, or nothing to write to
        query = query.where(casework.cannot_reach())
    if credit:  # unused credit in QuickBooks: to apply to their invoices, or to refund (the credit indexes)
        pay, memo = models.Payment, models.CreditMemo
        holders = [select(t.customer_qbo_id).where(t.company_id == company.id, t.deleted.is_(False), column > 0)
                   for t, column in ((pay, pay.unapplied), (memo, memo.balance))]
        query = query.where(c.qbo_id.in_(union(*holders)))
    total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    # those who owe first: in the company's currency, the largest balance first; then each other currency
    # apart, largest first (no exchange rates: ¥5,199 is not more than $4,090); then those who owe nothing
    currency = func.coalesce(c.currency, company.currency)
    owes = balances.c.balance.is_not(None)
    found = s.execute(query.order_by(case((owes & (currency == company.currency), 0), (owes, 1), else_=2),
                                     case((owes, currency), else_=""), balances.c.balance.desc(), c.display_name)
                      .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    states = casework.states(s, company, [r[0] for r in found], on)
    missing = [c.qbo_id for c, balance, _o, next_on, _n in found if next_on is None and balance]
    planned = _next_action_dates(s, company, missing, on)
    rows = []
    for customer, balance, oldest, next_on, n in found:
        next_on = None if next_on == snapshot.NEVER else (next_on or planned.get(customer.qbo_id))
        rows.append({"customer": customer, "balance": balance, "currency": customer.currency or company.currency,
                     "oldest": oldest if oldest is not None and oldest < on else None,
                     "next_on": next_on, "invoices": n or 0, "states": states.get(customer.qbo_id, [])})
    return rows, total


SMALL_COMPANY = 5000  # open invoices: above this, the list waits for the daily run's stored dates


BILLED_SHOWN = 20  # jobs billed with a customer named on its page; the rest counted
CLOSED_SHOWN = 200  # paid and voided invoices listed on a customer's page, the latest due; the rest counted


def _next_action_dates(s, company: models.Company, customer_ids: list[str], on) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The rules engine's next action date for customers the daily run has not dated yet (new, or just changed).

    ``snapshot.load`` reads every open invoice of the company, so this is only done for small companies.
    """
    if not customer_ids:
        return {}
    open_count = s.scalar(select(func.count()).select_from(models.Invoice).where(
        models.Invoice.company_id == company.id, models.Invoice.status == models.InvoiceStatus.open)) or 0
    if open_count > SMALL_COMPANY:
        return {}
    out: dict[str, Any] = {}
    try:
        context = snapshot.company_context(company)
        snaps = snapshot.load(s, company, today=on, customer_ids=customer_ids,
                              dry_run=bool((company.settings or {}).get("dry_run")))
    except errors.QboCollectorError:
        return out
    for snap in snaps:
        if snap.policy is None:
            continue
        dates = [rules.next_action_date(company=context, invoice=i, customer=snap.customer, policy=snap.policy,
                                        history=snap.history, pauses=snap.pauses, today=on, invoices=snap.invoices)
                 for i in snap.invoices]
        dates = [d for d in dates if d is not None]
        if dates:
            out[snap.customer.id] = min(dates)
    return out


# --- one customer ------------------------------------------------------------------------

@bp.get("/companies/<realm_id>/customers/<customer_id>")
def customer(realm_id: str, customer_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (s, company, role):
        return _render_customer(s, company, role, customer_id)


def _render_customer(s, company: models.Company, role: str, customer_id: str, *, action: str | None = None,  # type: ignore[no-untyped-def]
                     error: errors.InvalidInput | None = None, status: int = 200):
    row = s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                 models.Customer.qbo_id == customer_id))
    if row is None:
        abort(404)
    on = today_for(company)
    inv = models.Invoice
    mine = (inv.company_id == company.id) & (inv.customer_qbo_id == customer_id) & inv.deleted.is_(False)
    is_open = inv.status == models.InvoiceStatus.open
    # every open invoice, the oldest due first (what is owed, what a promise or dispute may name); then the
    # latest paid or voided ones, newest first
    invoices = sorted(s.scalars(select(inv).where(mine, is_open)), key=lambda i: (i.due_date or on, i.qbo_id))
    invoices += s.scalars(select(inv).where(mine, ~is_open).order_by(
        inv.due_date.desc().nulls_first(), inv.txn_date.desc(), inv.qbo_id.desc()).limit(CLOSED_SHOWN))
    closed_more = max((s.scalar(select(func.count()).select_from(inv).where(mine, ~is_open)) or 0) - CLOSED_SHOWN, 0)
    payments = list(s.scalars(select(models.Payment).where(
        models.Payment.company_id == company.id, models.Payment.customer_qbo_id == customer_id,
        models.Payment.deleted.is_(False)).order_by(models.Payment.txn_date.desc()).limit(100)))
    activity = list(s.scalars(select(models.Activity).where(
        models.Activity.company_id == company.id, models.Activity.customer_qbo_id == customer_id)
        .order_by(models.Activity.at.desc(), models.Activity.id.desc()).limit(200)))
    planned = list(s.scalars(select(models.Outbox).where(
        models.Outbox.company_id == company.id, models.Outbox.customer_qbo_id == customer_id)
        .order_by(models.Outbox.due_at.desc()).limit(100)))
    open_invoices = [i for i in invoices if i.status == models.InvoiceStatus.open and i.balance > 0]
    errors_ = {}
    if error is not None:
        field = error.field if error.field in FIELDS.get(action or "", ()) else "form"
        if field == "invoice_ids" and not open_invoices:
            field = "form"  # no invoice to tick: the form has no list to show it under
        errors_[field] = message_of(error)
        if error.context.get("line"):
            errors_[field] = gettext("Line %(line)s: %(message)s", line=error.context["line"], message=message_of(error))
    email_stop = events.email_stop(s, row)
    owed = _owed(s, company, customer_id, on)
    settled, partly = snapshot.credit_on_invoices(s, company, customer_id, on)
    shared = snapshot.shared_credits(s, company, on)  # a parent's credit pays the invoices of its jobs billed with it
    given = sorted(c for c, g in shared.givers.items() if g == customer_id)
    names = dict(s.execute(select(models.Customer.qbo_id, models.Customer.display_name).where(
        models.Customer.company_id == company.id, models.Customer.qbo_id.in_(given or [""]))).all())
    gives = [(names.get(c, c), cur, amount) for c in sorted(given, key=lambda c: names.get(c, c).casefold())
             for cur, amount in sorted(shared.shares[c].items())]
    contact = snapshot.contact_rows(s, company.id, {row.qbo_id: row})[row.qbo_id]  # a job billed with its parent
    members = sorted(snapshot.contact_families(s, company.id).get(customer_id, set()) - {customer_id})
    billed_jobs = sorted(s.scalars(select(models.Customer).where(
        models.Customer.company_id == company.id, models.Customer.qbo_id.in_(members or [""]))),
        key=lambda c: c.display_name.casefold())  # the jobs billed with it: reached at its address
    return render_template(
        "pages/customer.html", owed=owed, closed_more=closed_more, billed_jobs=billed_jobs[:BILLED_SHOWN], billed_more=len(billed_jobs) - BILLED_SHOWN, company=company, role=role, tab="customers", c=row, on=on, invoices=invoices,
        open_invoices=open_invoices, unsent_ids={i.qbo_id for i, _ in snapshot.left_unsent(s, company, [customer_id])},
        settled=settled, partly=partly, from_parent=shared.shares.get(customer_id, {}),
        credit_holder=shared.holder(customer_id), gives=gives,
        credit=reports.unused_credits(s, company.id, company.currency or "USD").get(customer_id, {}),
        timeline=_timeline(activity, payments, planned, company), pauses=casework.active_pauses(s, company, customer_id, on),
        states=casework.states(s, company, [row], on)[customer_id], email_stop=email_stop,
        email_stop_reason=timeline.term("stop", email_stop.reason) if email_stop else None,
        sms_stop_reason=timeline.term("stop", row.sms_stopped) if row.sms_stopped else None,
        sms_number=snapshot.phone_e164(company, row) if row.sms_stopped else None,
        language=snapshot.language_choice(company, contact), parent=contact if contact is not row else None,
        presets=casework.policy_names(company), fees=_posted_fees(s, company, customer_id),
        outcomes=casework.CALL_OUTCOMES, action=action, example_date=(on + timedelta(days=30)).isoformat(), errors=errors_, form=request.form if error else {},
    ), status


def _owed(s, company: models.Company, customer_id: str, on) -> dict[str, tuple[Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    """What the customer owes and how much of it is overdue, per currency, the company's first."""
    inv = models.Invoice
    overdue = case((inv.due_date < on, inv.balance), else_=None)
    rows = s.execute(select(inv.currency, func.sum(inv.balance), func.sum(overdue)).where(
        inv.company_id == company.id, inv.customer_qbo_id == customer_id, inv.deleted.is_(False),
        inv.status == models.InvoiceStatus.open, inv.balance > 0).group_by(inv.currency)).all()
    return {cur: (amount_value(total), amount_value(late))
            for cur, total, late in sorted(rows, key=lambda r: (r[0] != company.currency, r[0] or ""))}


def _posted_fees(s, company: models.Company, customer_id: str) -> list[models.Outbox]:  # type: ignore[no-untyped-def]
    """The fees posted for the customer that may still be voided: not waived here, and whose fee invoice
    the mirror does not know as voided or deleted in QuickBooks (voided there by hand, it reads as a
    fee all the same: its lines keep the "Late fee" item when QuickBooks zeroes their amounts)."""
    rows = [r for r in s.scalars(select(models.Outbox).where(
        models.Outbox.company_id == company.id, models.Outbox.customer_qbo_id == customer_id,
        models.Outbox.kind == "fee", models.Outbox.status == models.OutboxStatus.sent,
        models.Outbox.dry_run.is_(False)).order_by(models.Outbox.sent_at.desc()).limit(50))
        if not (r.payload or {}).get("waived")]
    inv = models.Invoice
    ids = [r.provider_id for r in rows if r.provider_id and not r.provider_id.startswith("line:")]
    gone = set(s.scalars(select(inv.qbo_id).where(
        inv.company_id == company.id, inv.qbo_id.in_(ids),
        (inv.status == models.InvoiceStatus.voided) | inv.deleted.is_(True)))) if ids else set()
    return [r for r in rows if r.provider_id not in gone]


def _timeline(activity, payments, outbox, company):  # type: ignore[no-untyped-def]
    """The customer's entries, newest first, each sentence in the reader's language (``timeline``)."""
    from datetime import datetime, time, timezone

    items = []
    logged_outbox = {a.outbox_id for a in activity if a.outbox_id}
    for a in activity:
        items.append({"at": a.at, "kind": a.kind, "group": a.kind.split(".")[0], "data": a.data,
                      "text": timeline.sentence(a.message_key, a.message_args, a.message)})
    for p in payments:
        if p.txn_date is None:
            continue
        items.append({"at": datetime.combine(p.txn_date, time(12), timezone.utc), "kind": "payment", "group": "payment",
                      "date_only": True, "amount": p.total, "currency": p.currency or company.currency, "text": ""})
    for o in outbox:
        if o.id in logged_outbox or o.status == models.OutboxStatus.planned:
            continue
        items.append({"at": o.sent_at or o.updated_at or o.due_at, "kind": f"{o.kind}.{o.status.value}",
                      "group": o.kind, "text": timeline.outbox_text(o), "channel": timeline.term("channel", o.channel),
                      "provider_status": timeline.term("event", o.provider_status), "dry_run": o.dry_run})
    return sorted(items, key=lambda i: i["at"], reverse=True)


# --- what people record ------------------------------------------------------------------

ACTIONS = {
    "promise": lambda s, c, cid, f, on, uid: casework.promise(
        s, c, cid, until=f.get("until"), amount=f.get("amount"), invoice_ids=f.getlist("invoice_ids"),
        note=f.get("note", ""), on=on, user_id=uid),
    "dispute": lambda s, c, cid, f, on, uid: casework.dispute(
        s, c, cid, invoice_ids=f.getlist("invoice_ids"), note=f.get("note", ""), on=on, user_id=uid),
    "plan": lambda s, c, cid, f, on, uid: casework.payment_plan(
        s, c, cid, instalments=f.get("instalments", ""), invoice_ids=f.getlist("invoice_ids"),
        note=f.get("note", ""), on=on, user_id=uid),
    "pause": lambda s, c, cid, f, on, uid: casework.pause(
        s, c, cid, until=f.get("until"), note=f.get("note", ""), on=on, user_id=uid),
    "resume": lambda s, c, cid, f, on, uid: casework.resume(s, c, cid, on=on, user_id=uid),
    "resolve": lambda s, c, cid, f, on, uid: casework.resolve(
        s, c, cid, f.get("pause_id"), note=f.get("note", ""), on=on, user_id=uid),
    "exclude": lambda s, c, cid, f, on, uid: casework.exclude(
        s, c, cid, excluded=f.get("excluded", "1") == "1", note=f.get("note", ""), on=on, user_id=uid),
    "policy": lambda s, c, cid, f, on, uid: casework.assign_policy(
        s, c, cid, f.get("policy_name"), on=on, user_id=uid),
    "language": lambda s, c, cid, f, on, uid: casework.set_language(s, c, cid, f.get("language"), on=on, user_id=uid),
    "waive": lambda s, c, cid, f, on, uid: casework.waive_fee(
        s, c, cid, invoice_id=_after(f.get("invoice_id", ""), "invoice:"),
        fee_outbox_id=_after(f.get("invoice_id", ""), "fee:"), note=f.get("note", ""), on=on, user_id=uid),
    "call": lambda s, c, cid, f, on, uid: casework.log_call(
        s, c, cid, outcome=f.get("outcome", ""), note=f.get("note", ""), on=on, user_id=uid),
    "note": lambda s, c, cid, f, on, uid: casework.add_note(s, c, cid, note=f.get("note", ""), on=on, user_id=uid),
}

def _after(value: str, prefix: str) -> str | None:
    return value[len(prefix):] if value.startswith(prefix) else None


# The fields each form shows an error next to; any other error is shown above the forms.
FIELDS = {
    "promise": ("until", "amount", "invoice_ids", "note"),
    "dispute": ("invoice_ids", "note"),
    "plan": ("instalments", "invoice_ids", "note"),
    "pause": ("until", "note"),
    "resume": ("customer",),
    "resolve": (),
    "exclude": ("customer", "note"),
    "policy": ("policy_name",),
    "language": ("language",),
    "waive": ("invoice_id", "note"),
    "call": ("outcome", "note"),
    "note": ("note",),
}

DONE = {
    "promise": lazy_gettext("The promise to pay is recorded; reminders wait until its date."),
    "dispute": lazy_gettext("The dispute is recorded; these invoices are on hold until it is resolved."),
    "plan": lazy_gettext("The payment plan is recorded; reminders now follow its instalments."),
    "pause": lazy_gettext("Reminders are paused."),
    "resume": lazy_gettext("Reminders are resumed."),
    "resolve": lazy_gettext("Closed."),
    "exclude": lazy_gettext("Saved."),
    "policy": lazy_gettext("The policy of this customer is saved."),
    "language": lazy_gettext("The language of this customer's reminders is saved."),
    "waive": lazy_gettext("Late fees are waived."),
    "call": lazy_gettext("The call is logged."),
    "note": lazy_gettext("The note is saved."),
}


def _void_fee(outbox_id: int) -> None:
    from qbo_collector import dispatch

    svc = services()
    try:
        done = dispatch.waive_fee(svc.settings, svc.db, svc.vault, outbox_id, user_id())
    except errors.QboCollectorError as exc:
        if getattr(exc, "code", None) == "fee_paid":
            flash(gettext("The customer has already paid part of this invoice, so the fee line cannot be taken off: "
                          "issue a credit memo for the fee in QuickBooks instead."), "error")
        else:
            flash(gettext("The fee could not be voided in QuickBooks: %(reason)s", reason=message_of(exc)), "error")
    else:
        if done == "line":
            flash(gettext("The fee line is taken off the invoice in QuickBooks."))
        else:
            flash(gettext("The fee invoice is voided in QuickBooks."))


def _resume_email(realm_id: str, customer_id: str):  # type: ignore[no-untyped-def]
    """The "the mailbox works again" button: SendGrid first, then here (``events.lift_email_stop``)."""
    with company_session(realm_id, write=True) as (s, company, _role):
        if s.scalar(select(models.Customer.id).where(models.Customer.company_id == company.id,
                                                     models.Customer.qbo_id == customer_id)) is None:
            abort(404)
        company_id = company.id
    svc = services()
    try:
        lifted = events.lift_email_stop(svc.settings, svc.db, company_id, customer_id, user_id())
    except errors.InvalidInput as exc:
        if exc.context.get("code") != "customer_wish":
            abort(404)  # the customer went between the two reads
        log.info("customer page: resume_email refused realm=%s customer=%s: %s", realm_id, customer_id, exc.message)
        flash(gettext("This customer asked not to receive emails (a spam report or an unsubscribe): only they can "
                      "undo it. To write to them again, give them another address in QuickBooks."), "error")
    except errors.QboCollectorError as exc:
        log.warning("customer page: resume_email failed realm=%s customer=%s: %s", realm_id, customer_id, exc.message)
        if exc.context.get("code") == "suppression_permission":
            flash(gettext("SendGrid refused to take the address off its bounce list: the API key needs the "
                          "Suppressions permission. Nothing was changed."), "error")
        elif isinstance(exc, errors.TransientFailure):
            flash(gettext("SendGrid could not be reached to take the address off its bounce list. Nothing was "
                          "changed; try again in a moment."), "error")
        else:
            flash(gettext("SendGrid refused to take the address off its bounce list: %(reason)s Nothing was changed.",
                          reason=message_of(exc)), "error")
    else:
        flash(gettext("Email to this customer resumes.") if lifted else gettext("Email to this customer is not stopped."))
    return redirect(url_for("pages.customer", realm_id=realm_id, customer_id=customer_id) + "#email-stop")


@bp.post("/companies/<realm_id>/customers/<customer_id>/<action>")
def customer_action(realm_id: str, customer_id: str, action: str):  # type: ignore[no-untyped-def]
    if action == "resume_email":
        return _resume_email(realm_id, customer_id)
    if action not in ACTIONS:
        abort(404)
    with company_session(realm_id, write=True) as (s, company, role):
        if s.scalar(select(models.Customer.id).where(models.Customer.company_id == company.id,
                                                     models.Customer.qbo_id == customer_id)) is None:
            abort(404)
        try:
            with s.begin_nested():  # refused input leaves nothing behind
                result = ACTIONS[action](s, company, customer_id, request.form, today_for(company), user_id())
        except errors.InvalidInput as exc:  # the person sees it in their language; the operator, here in English
            log.info("customer page: %s refused realm=%s customer=%s field=%s%s: %s", action, realm_id, customer_id,
                     exc.field, f" line {exc.context['line']}" if exc.context.get("line") else "", exc.message)
            return _render_customer(s, company, role, customer_id, action=action, error=exc, status=400)
    flash(str(DONE[action]))
    if action == "waive" and result:  # a posted fee: void its invoice in QuickBooks
        _void_fee(int(result))
    return redirect(url_for("pages.customer", realm_id=realm_id, customer_id=customer_id) + f"#{action}")
