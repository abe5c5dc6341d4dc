"""What a message says: the ``ReminderContext`` of an outbox row, built from fresh QuickBooks figures.

- Words in the customer's language (en/fr); numbers and dates in the locale of that language
  and the customer's country (``fr_CA`` for a Quebec customer), in the invoice's currency.
- The invoice lines use the balance and the ``InvoiceLink`` just read from QuickBooks, so a
  reminder never shows a figure older than the freshness check.
- The late-fee sentence names every fee rule of the policy (flat, percent, interest with its
  ECB rate, the recovery indemnity), each with its frequency and the grace days.
- Templates: ``company.settings["templates"][language][key]`` (subject/text/html/sms) when the
  owner edited one on the settings page, else the shipped default.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from babel import localedata

from qbo_collector import errors, rules, templates
from qbo_collector.db import models
from qbo_collector.money import Money, to_decimal

OWNER_TEMPLATE = "owner_alert"


def locale_for(language: str, country: str | None) -> str:
    if country and localedata.exists(f"{language}_{country}"):
        return f"{language}_{country}"
    return {"fr": "fr_FR", "en": "en_US"}.get(language, language)


def template_for(company: models.Company, key: str, language: str) -> templates.TemplateSet:
    stored = (((company.settings or {}).get("templates") or {}).get(language) or {}).get(key)
    if isinstance(stored, dict):
        try:
            return templates.TemplateSet(key=key, language=language, subject=str(stored.get("subject", "")),
                                         text=str(stored.get("text", "")), html=str(stored.get("html", "")),
                                         sms=str(stored.get("sms", "")))
        except errors.InvalidInput:
            pass
    return templates.default(key, language)


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def invoice_line(fresh: dict[str, Any], mirror: models.Invoice | None, today: dt.date, *,
                 job: str | None = None, fee: Money | None = None) -> templates.InvoiceLine:
    """One line of the message from the invoice as QuickBooks just returned it (mirror as fallback).
    ``job``: the name of the job or sub-customer it bills, when the message goes to its parent;
    ``fee``: a late-fee notice's fee just added for it."""
    currency = ((fresh.get("CurrencyRef") or {}).get("value") or (mirror.currency if mirror else None) or "USD")
    issue = _date(fresh.get("TxnDate")) or (mirror.txn_date if mirror else None)
    due = _date(fresh.get("DueDate")) or (mirror.due_date if mirror else None) or issue or today
    issue = issue or due
    total = to_decimal(fresh.get("TotalAmt", mirror.total if mirror else 0))
    balance = to_decimal(fresh.get("Balance", mirror.balance if mirror else 0))
    return templates.InvoiceLine(
        number=str(fresh.get("DocNumber") or (mirror.doc_number if mirror else None) or fresh.get("Id")),
        issue_date=issue, due_date=due, total=Money(total, currency), balance=Money(balance, currency),
        days_overdue=(today - due).days, po_number=mirror.po_number if mirror else None,
        payment_link=fresh.get("InvoiceLink") or (mirror.invoice_link if mirror else None) or None,
        job=job or None, fee=fee,
    )


_PERIODS = {"once": "once", "monthly": "month", "every_n_days": "days"}


def late_fee_rules(policy: rules.Policy | None, currency: str) -> tuple[templates.LateFeeRule, ...]:
    """The policy's fee rules as the customer is told them, in policy order; a flat fee or an
    indemnity with no amount in ``currency`` is left out (the planner charges nothing for it)."""
    if policy is None:
        return ()
    fees = policy.late_fees
    told = []
    for rule in fees.rules:
        common: dict[str, Any] = {"grace_days": fees.grace_days, "period": _PERIODS[rule.frequency],
                                  "every_days": rule.every_days if rule.frequency == "every_n_days" else None}
        if rule.kind == "percent" and rule.percent is not None:
            told.append(templates.LateFeeRule(kind="percent", rate=rule.percent, **common))
        elif rule.kind == "interest" and rule.percent is not None:
            annual = rule.percent + (policy.ecb_rate_percent if rule.add_ecb_rate else 0)
            told.append(templates.LateFeeRule(kind="interest", rate=annual,
                                              ecb_points=rule.percent if rule.add_ecb_rate else None, **common))
        elif rule.kind in ("flat", "indemnity") and currency in rule.amount:
            told.append(templates.LateFeeRule(kind=rule.kind, amount=Money(rule.amount[currency], currency), **common))
    return tuple(told)


def reminder_context(*, company: models.Company, row: models.Outbox, customer: models.Customer | None,
                     language: str, country: str | None, lines: list[templates.InvoiceLine],
                     policy: rules.Policy | None, today: dt.date, alert: str | None = None,
                     action_link: str | None = None) -> templates.ReminderContext:
    settings = company.settings or {}
    payload = row.payload or {}
    discount = None
    offer = payload.get("discount")
    if offer and _date(offer.get("deadline")) and _date(offer["deadline"]) >= today:
        discount = templates.DiscountOffer(amount=Money(Decimal(offer["amount"]), offer["currency"]),
                                           deadline=_date(offer["deadline"]), percent=Decimal(offer["percent"]))
    currency = lines[0].balance.currency if lines else (company.currency or "USD")
    told = late_fee_rules(policy, currency) if row.kind == "reminder" else ()
    promise = None
    if payload.get("promise"):
        p = payload["promise"]
        promise = templates.Promise(amount=Money(Decimal(p["amount"]), p["currency"]), date=_date(p["date"]) or today)
    return templates.ReminderContext(
        company_name=company.name, sender_name=settings.get("sender_name") or company.name,
        customer_name=customer.display_name if customer is not None else company.name,
        customer_language=language, locale=locale_for(language, country), today=today,
        reply_to=settings.get("reply_to") or None, company_phone=settings.get("company_phone") or None,
        invoices=tuple(lines), discount=discount,
        late_fee_rule=told[0] if told else None, late_fee_rules=told,
        fee=Money(Decimal(row.amount), row.currency or currency) if row.amount is not None and row.currency else None,
        promise=promise, tone=str(payload.get("tone") or "friendly"), alert=alert, action_link=action_link,
    )


def render(company: models.Company, key: str, language: str,
           context: templates.ReminderContext) -> templates.RenderedMessage:
    """Render the company's template (or the default). Raises InvalidInput with the part and line."""
    return templates.render(template_for(company, key, language), context)
