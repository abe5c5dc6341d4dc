"""Policy editor: steps, send window, minimum balance, late fees with a worked example, discounts, presets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import format_time, gettext
from werkzeug.datastructures import MultiDict

from qbo_collector import errors, money, rules, scheduler, snapshot
from qbo_collector.db import models
from web.pages import bp, company_session, forms, today_for

log = logging.getLogger(__name__)

SAMPLE_AMOUNT = Decimal(1000)
SAMPLE_DAYS_LATE = 90


@bp.get("/companies/<realm_id>/policy")
def policy(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (_s, company, role):
        preset = request.args.get("preset")
        current, load_error = _current(company)
        shown = rules.PRESETS[preset] if preset in rules.PRESETS else current
        values = forms.values_of(shown, company.currency)
        return _render(company, role, values, {"policy": load_error} if load_error else {}, shown, preset=preset)


@bp.post("/companies/<realm_id>/policy")
def policy_save(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id, write=True) as (_s, company, role):
        current, _err = _current(company)
        if forms.too_many_rows(request.form):
            log.warning("policy form refused realm=%s: a row index past %d", realm_id, forms.MAX_FORM_ROWS)
            problems = {"policy": gettext("The form has more rows than a policy can have. Reload the page and "
                                          "try again.")}
            return _render(company, role, forms.values_of(current, company.currency), problems, current), 400
        data, rows = forms.data_from(request.form, company.currency, current)
        parsed, problems = forms.validate(data, rows)
        if parsed is None or request.form.get("do") == "example":
            return _render(company, role, request.form, problems, parsed), (400 if problems else 200)
        # fee periods that moved, or fees that begin, start today: no back-charging of invoices already late
        parsed = rules.policy.with_fee_start(current, parsed, today_for(company))
        stored = company.policy if isinstance(company.policy, dict) else {}
        if "default" in stored or "policies" in stored:
            company.policy = {**stored, "default": forms.dump(parsed)}
        else:
            company.policy = forms.dump(parsed)
        _s.add(models.Activity(company_id=company.id, kind="policy.saved",
                              message=f"Policy “{parsed.name}” saved.", data={"name": parsed.name}))
    flash(gettext("The policy is saved. It applies from the next run."))
    return redirect(url_for("pages.policy", realm_id=realm_id))


def _current(company: models.Company) -> tuple[rules.Policy, str | None]:
    try:
        return snapshot.policy_for(company), None
    except errors.InvalidInput as exc:
        return rules.PRESETS["friendly"], exc.message


def _render(company: models.Company, role: str, values: MultiDict[str, str] | Any, problems: dict[str, str],
            parsed: rules.Policy | None, preset: str | None = None):  # type: ignore[no-untyped-def]
    on = today_for(company)
    example = fee_example(company, parsed, on) if parsed is not None else None
    return render_template(
        "pages/policy.html", company=company, role=role, tab="policy", v=values, errors=problems, example=example,
        early=early_window(company, parsed) if parsed is not None else None,
        presets=sorted(rules.PRESETS), preset=preset, currency=company.currency,
        steps=max(forms.row_count(values, "steps"), 0) + forms.EXTRA_STEP_ROWS,
        tiers=max(forms.row_count(values, "discount_tiers"), 0) + forms.EXTRA_TIER_ROWS,
        template_keys=rules.TEMPLATE_KEYS, channels=rules.CHANNELS, fee_kinds=forms.FEE_KINDS,
    )


def early_window(company: models.Company, policy: rules.Policy) -> dict[str, str] | None:
    """The send window's time and the daily run's, when the window opens before the run starts: the
    scheduler plans and sends from the company's send hour, so such a window waits for it."""
    window, start = policy.send_window, scheduler.send_hour(company)
    if window.hour >= start:
        return None
    return {"window": format_time(dt.time(window.hour, window.minute), "short", rebase=False),
            "start": format_time(dt.time(start, 0), "short", rebase=False)}


def fee_example(company: models.Company, policy: rules.Policy, on: dt.date) -> dict[str, Any] | None:
    """What the rules engine charges on a sample invoice left unpaid ``SAMPLE_DAYS_LATE`` days (for the page)."""
    if not policy.late_fees.rules:
        return None
    currency = company.currency or "USD"
    due = on - dt.timedelta(days=SAMPLE_DAYS_LATE)
    amount = money.Money(SAMPLE_AMOUNT, currency)
    invoice = rules.Invoice(realm=company.realm_id, id="example", customer_id="example", currency=currency,
                            total=amount, balance=amount, txn_date=due - dt.timedelta(days=30), due_date=due,
                            doc_number="1001")
    customer = rules.Customer(id="example", display_name="Example", has_email=False)
    try:
        # the example shows what the policy charges, not this company's or this policy's first fee day
        context = dataclasses.replace(snapshot.company_context(company), fees_from=None)
        policy = policy.model_copy(update={"late_fees": policy.late_fees.model_copy(update={"fees_from": None, "started": {}})})
        actions = rules.plan(company=context, invoices=[invoice], customer=customer, policy=policy, today=on)
    except errors.QboCollectorError:
        return None
    fees = sorted((a for a in actions if isinstance(a, rules.ChargeFee)),
                  key=lambda a: (a.period != "once", a.period, a.fee_kind))
    total = money.Money.zero(currency)
    for fee in fees:
        total = total.add(fee.amount)
    return {"amount": amount, "due": due, "on": on, "days": SAMPLE_DAYS_LATE, "fees": fees, "total": total,
            "grace": policy.late_fees.grace_days}
