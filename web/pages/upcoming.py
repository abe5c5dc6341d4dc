"""Upcoming: what will go out in the next 14 days (from the planner), the dry-run switch, per-row skip, unknown rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select

from qbo_collector import casework, clock, dispatch, errors, snapshot
from qbo_collector.db import models
from qbo_collector.dispatch import run as dispatch_run
from qbo_collector.rules import calendar as rules_calendar
from web.pages import bp, company_session, message_of, services, timeline, today_for, user_id

DAYS = 14
KINDS = {"reminder": ("reminder",), "fee": ("fee",), "task": ("task", "alert", "note")}


def _calendar(s, company: models.Company, on: dt.date,  # type: ignore[no-untyped-def]
              left_out: list[str]) -> tuple[list[tuple[dt.date, list[dict[str, Any]]]], str | None]:
    """The days' rows, and a problem that stopped the plan; ``left_out`` receives the customers the
    plan had to leave out (a stored policy that does not validate…), as the dispatcher words them."""
    svc = services()
    problem = None
    try:
        planned = dispatch.plan_company(svc.settings, svc.db, company.realm_id, on=on, days=DAYS, problems=left_out)
    except errors.QboCollectorError as exc:
        planned, problem = [], message_of(exc)
    tz = company.timezone or "UTC"
    end = dt.datetime.combine(on + dt.timedelta(days=DAYS), dt.time(), dt.timezone.utc)
    queued = list(s.scalars(select(models.Outbox).where(
        models.Outbox.company_id == company.id, models.Outbox.status == models.OutboxStatus.planned,
        models.Outbox.due_at < end).order_by(models.Outbox.due_at).limit(500)))
    ids = {i for o in queued for i in (o.invoice_ids or ())}
    numbers = dict(s.execute(select(models.Invoice.qbo_id, models.Invoice.doc_number).where(
        models.Invoice.company_id == company.id, models.Invoice.qbo_id.in_(ids))).all()) if ids else {}
    days: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
    for o in queued:  # a queued row names invoices by QuickBooks id: shown by their number, as planned ones are
        days[max(rules_calendar.local_date(o.due_at, tz), on)].append(
            _row(o, queued=True, invoices=[numbers.get(i) or i for i in (o.invoice_ids or ())]))
    for r in planned:
        days[rules_calendar.local_date(r.due_at, tz)].append(_row(r, queued=False, invoices=list(r.invoice_numbers)))
    _mark_together(s, company, days)
    return sorted(days.items()), problem


def _mark_together(s, company: models.Company, days: dict[dt.date, list[dict[str, Any]]]) -> None:  # type: ignore[no-untyped-def]
    """Statements (and late-fee notices) one run carries out for one address go out as one message:
    such a row names the other customers it goes with, as the dispatcher will group them
    (``dispatch.run.messages_ahead``: by the run that carries each out, not by the day)."""
    rows = [r for day in days.values() for r in day if r["customer_id"] and r["kind"] == "reminder"
            and r["template_key"] in dispatch_run.ONE_PER_ADDRESS]  # the only rows a message tells several of
    if not rows:
        return
    wanted = sorted({r["customer_id"] for r in rows})
    own = {c.qbo_id: c for c in snapshot._chunked(s, models.Customer, company.id, wanted)}
    contact = snapshot.contact_rows(s, company.id, own)
    reached = {c.qbo_id: c for c in contact.values()}  # each address once
    phones = ({cid: snapshot.phone_e164(company, c) for cid, c in reached.items()}
              if any(r["channel"] == "sms" for r in rows) else {})
    ahead: list[tuple[models.Outbox, str | None]] = []
    shown: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r["customer_id"] not in contact:
            continue
        to = contact[r["customer_id"]]  # the address a message reaches: a job billed with its parent, the parent's
        address = phones.get(to.qbo_id) if r["channel"] == "sms" else to.email if r["channel"] == "email" else None
        row = models.Outbox(customer_qbo_id=r["customer_id"], kind=r["kind"], channel=r["channel"],
                            template_key=r["template_key"], due_at=r["due_at"], dry_run=r["dry_run"],
                            payload=r["payload"])  # not stored: what the dispatcher will hold
        ahead.append((row, address))
        shown[id(row)] = r
    for message in dispatch_run.messages_ahead(company, ahead, contact, now=clock.now()):
        for row, _address in message:
            others = {own[o.customer_qbo_id].display_name for o, _a in message
                      if o.customer_qbo_id != row.customer_qbo_id}
            if others:
                shown[id(row)]["together"] = sorted(others)


def _row(r: Any, *, queued: bool, invoices: list[str]) -> dict[str, Any]:
    customer_id = r.customer_qbo_id if queued else r.customer_id
    return {"due_at": r.due_at, "kind": r.kind, "channel": r.channel, "customer_id": customer_id,
            "customer": None if queued else r.customer, "invoices": invoices,
            "template_key": r.template_key, "amount": r.amount, "currency": r.currency,
            "said": timeline.outbox_reason(r, invoices),  # why, for the reader; None: the columns say it all
            "dedupe_key": r.dedupe_key, "queued": queued, "id": r.id if queued else None,
            "step": r.step, "payload": r.payload or {},
            "dry_run": r.dedupe_key.startswith("dryrun:")}


@bp.get("/companies/<realm_id>/upcoming")
def upcoming(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (s, company, role):
        return _render(s, company, role)


def _render(s, company: models.Company, role: str, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    on = today_for(company)
    left_out: list[str] = []
    days, problem = _calendar(s, company, on, left_out)
    kind = request.args.get("kind", "")
    counts = {k: sum(1 for _d, rows in days for r in rows if r["kind"] in KINDS[k]) for k in KINDS}
    if kind in KINDS:
        days = [(d, [r for r in rows if r["kind"] in KINDS[kind]]) for d, rows in days]
        days = [(d, rows) for d, rows in days if rows]
    names = dict(s.execute(select(models.Customer.qbo_id, models.Customer.display_name).where(
        models.Customer.company_id == company.id,
        models.Customer.qbo_id.in_({r["customer_id"] for _d, rows in days for r in rows if r["customer_id"]} or {""}))).all())
    unknown = [{"row": o, "said": timeline.outbox_text(o), "why": timeline.status_text(o.status_reason)}
               for o in s.scalars(select(models.Outbox).where(
                   models.Outbox.company_id == company.id, models.Outbox.status == models.OutboxStatus.unknown)
                   .order_by(models.Outbox.sending_at))]
    return render_template("pages/upcoming.html", company=company, role=role, tab="upcoming", days=days, on=on,
                           names=names, unknown=unknown, problem=problem, left_out=left_out, error=error,
                           horizon=DAYS,
                           count=sum(len(rows) for _d, rows in days), kind=kind if kind in KINDS else "",
                           counts=counts,
                           dry_run=bool((company.settings or {}).get("dry_run"))), status


@bp.post("/companies/<realm_id>/upcoming/dry-run")
def upcoming_dry_run(realm_id: str):  # type: ignore[no-untyped-def]
    enabled = request.form.get("dry_run") == "1"
    with company_session(realm_id, write=True) as (s, company, _role):
        casework.set_dry_run(s, company, enabled, user_id=user_id())
    flash(gettext("Dry run is on: the runs plan and log everything and send nothing.") if enabled
          else gettext("Dry run is off: reminders will be sent."))
    return redirect(url_for("pages.upcoming", realm_id=realm_id))


@bp.post("/companies/<realm_id>/upcoming/skip")
def upcoming_skip(realm_id: str):  # type: ignore[no-untyped-def]
    key = request.form.get("dedupe_key", "")
    with company_session(realm_id, write=True) as (s, company, _role):
        on = today_for(company)
        queued = s.scalar(select(models.Outbox.id).where(models.Outbox.company_id == company.id,
                                                         models.Outbox.dedupe_key == key))
    planned = None
    if queued is None:  # planned, not yet in the outbox: find it in the plan (outside a write transaction)
        svc = services()
        planned = next((r for r in dispatch.plan_company(svc.settings, svc.db, realm_id, on=on, days=DAYS)
                        if r.dedupe_key == key), None)
    with company_session(realm_id, write=True) as (s, company, role):
        row: Any = s.get(models.Outbox, queued) if queued is not None else planned
        try:
            if row is None:
                raise errors.InvalidInput(casework.N_("This action is no longer waiting to go out."), field="dedupe_key")
            with s.begin_nested():
                casework.skip(s, company, row, reason=request.form.get("note", ""), on=on, user_id=user_id())
        except errors.InvalidInput as exc:
            error = message_of(exc)
        else:
            flash(gettext("Skipped. The following steps keep their own dates."))
            return redirect(url_for("pages.upcoming", realm_id=realm_id))
    with company_session(realm_id) as (s, company, role):
        return _render(s, company, role, error=error, status=400)


@bp.post("/companies/<realm_id>/upcoming/unknown/<int:outbox_id>")
def upcoming_resolve(realm_id: str, outbox_id: int):  # type: ignore[no-untyped-def]
    decision = request.form.get("decision", "")
    with company_session(realm_id, write=True) as (s, company, role):
        row = s.get(models.Outbox, outbox_id)
        if row is None or row.company_id != company.id:
            abort(404)
    try:
        dispatch.resolve_unknown(services().db, outbox_id, decision, user_id())  # type: ignore[arg-type]
    except errors.InvalidInput as exc:
        flash(message_of(exc), "error")
        return redirect(url_for("pages.upcoming", realm_id=realm_id))
    flash({"sent": gettext("Marked as sent."), "resend": gettext("It will be sent again at the next run."),
           "cancel": gettext("Cancelled.")}[decision])
    return redirect(url_for("pages.upcoming", realm_id=realm_id))
