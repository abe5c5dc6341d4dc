"""The weekly digest email to the owner: the dashboard's figures in a message.

    build(db, realm, on, *, link=None) -> (subject, text, html)

Written in the company's language (English or French), amounts and dates in its locale.
The scheduler sends it (to ``company.settings["owner_email"]``); this module only writes it.
"""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from sqlalchemy import and_, func, select

from qbo_collector import casework, dashboard, snapshot
from qbo_collector.db import models
from qbo_collector.db.types import amount_value as _dec
from qbo_collector.db.session import Database

TOP = 5
CASH_WEEKS = 4

_WORDS = {
    "en": {
        "subject": "Receivables on {date}: {open} open, {late} overdue — {company}",
        "subject_none": "Receivables on {date}: nothing is owed — {company}",
        "hello": "Here is where the money stands for {company} on {date}.",
        "aging": "Open invoices by days past due ({currency})",
        "current": "Not yet due", "total": "Total open",
        "net": "Less unused credits and unapplied payments ({credits}): {net} net",
        "dso": "Days sales outstanding (receivables ÷ credit sales × days)",
        "dso_line": "Last {days} days: {value}",
        "days": "{n} days", "none": "no credit sales",
        "target": "Your target: {n} days.",
        "cash": "Expected cash, weighted by the probability of payment ({currency})",
        "week": "Week of {date}",
        "disputed": "In dispute, not expected until resolved: {amount}",
        "late": "Customers owing the most on overdue invoices",
        "late_line": "{name}: {amount}, oldest {days} day{s_days} late",
        "nobody": "Nobody is late.",
        "unreachable": "Customers some reminders cannot reach (email or texts stopped, or no address): "
                       "fix their details in QuickBooks",
        "unreachable_line": "{name}: {amount} open",
        "more": "and {n} more on the Customers page",
        "unsent": "Invoices QuickBooks never emailed nor printed: reminders leave them alone until you send them "
                  "from QuickBooks (your policy asks for it)",
        "unsent_line": "Invoice {number}, {name}: {amount}, due {due}",
        "unsent_more": "and {n} more",
        "credit": "Credit not applied in QuickBooks pays invoices these customers still owe there: apply it "
                  "in QuickBooks (meanwhile reminders leave alone the invoices it settles, and ask for the whole "
                  "balance of one it pays in part)",
        "credit_line": "{name}: {credit} of credit settles {invoices}",
        "credit_part": "{name}: {credit} of credit pays {part} of invoice {number}",
        "credit_one": "invoice {numbers}", "credit_many": "invoices {numbers}",
        "credit_from": "{name} (billed with {holder}, whose credit counts)",
        "reminders": "Reminders in the last {days} days",
        "reminders_line": "{sent} sent; {paid} followed by a payment within {within} days.{s_sent}{s_paid}",
        "open": "Open the dashboard: {link}",
        "bye": "— qbo-collector",
    },
    "fr": {
        "subject": "Vos créances au {date} : {open} à encaisser, dont {late} en retard — {company}",
        "subject_none": "Vos créances au {date} : rien à encaisser — {company}",
        "hello": "Voici où en sont les encaissements de {company} au {date}.",
        "aging": "Factures ouvertes selon le retard ({currency})",
        "current": "Pas encore échues", "total": "Total à encaisser",
        "net": "Moins les avoirs et paiements non imputés ({credits}) : {net} net",
        "dso": "Délai moyen de recouvrement, DSO (créances ÷ ventes à crédit × jours)",
        "dso_line": "Sur les {days} derniers jours : {value}",
        "days": "{n} jours", "none": "aucune vente à crédit",
        "target": "Votre objectif : {n} jours.",
        "cash": "Encaissements attendus, pondérés par la probabilité de paiement ({currency})",
        "week": "Semaine du {date}",
        "disputed": "En litige, non attendu avant résolution : {amount}",
        "late": "Clients qui doivent le plus sur des factures en retard",
        "late_line": "{name} : {amount}, la plus ancienne en retard de {days} jour{s_days}",
        "nobody": "Aucun client n’est en retard.",
        "unreachable": "Clients que certaines relances n’atteignent pas (e-mails ou SMS arrêtés, ou aucune "
                       "adresse) : corrigez leurs coordonnées dans QuickBooks",
        "unreachable_line": "{name} : {amount} à encaisser",
        "more": "et {n} autre{s} sur la page Clients",
        "unsent": "Factures que QuickBooks n’a jamais envoyées par e-mail ni imprimées : les relances les laissent "
                  "de côté tant que vous ne les envoyez pas depuis QuickBooks (votre politique le demande)",
        "unsent_line": "Facture {number}, {name} : {amount}, échue le {due}",
        "unsent_more": "et {n} autre{s}",
        "credit": "Des avoirs ou paiements non imputés dans QuickBooks paient des factures que ces clients y "
                  "doivent encore : imputez-les dans QuickBooks (d’ici là, les relances laissent de côté les factures "
                  "qu’ils règlent, et demandent tout le solde de celle qu’ils paient en partie)",
        "credit_line": "{name} : {credit} d’avoir, qui règle {invoices}",
        "credit_part": "{name} : {credit} d’avoir, qui paie {part} de la facture {number}",
        "credit_one": "la facture {numbers}", "credit_many": "les factures {numbers}",
        "credit_from": "{name} (facturé avec {holder}, dont l’avoir compte)",
        "reminders": "Relances des {days} derniers jours",
        "reminders_line": "{sent} envoyée{s_sent} ; {paid} suivie{s_paid} d’un paiement dans les {within} jours.",
        "open": "Ouvrir le tableau de bord : {link}",
        "bye": "— qbo-collector",
    },
}
# French typography: a no-break space before ":" and ";".
_WORDS["fr"] = {k: v.replace(" :", "\u00a0:").replace(" ;", "\u00a0;") for k, v in _WORDS["fr"].items()}
_BUCKETS = {"1-30": "1–30", "31-60": "31–60", "61-90": "61–90", "90+": "90+"}


def build(db: Database, realm_id: str, on: dt.date, *, link: str | None = None) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the weekly digest for ``realm_id`` as of ``on``."""
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        language = company.language if company is not None and company.language in _WORDS else "en"
        country = (company.country or "") if company is not None else ""
    d = dashboard.build(db, realm_id, on)
    w = _WORDS[language]
    locale = f"{language}_{country}" if country and _known(f"{language}_{country}") else {"fr": "fr_FR"}.get(language, "en_US")

    def money(amount: Decimal, currency: str) -> str:
        return babel_numbers.format_currency(amount, currency, locale=locale)

    def day(value: dt.date, style: str = "long") -> str:
        return babel_dates.format_date(value, style, locale=locale)

    def number(value: Decimal) -> str:
        return babel_numbers.format_decimal(value, format="#,##0.#", locale=locale)

    main = d.currency if d.currency in d.aging else next(iter(d.aging), None)
    if main is None:
        subject = w["subject_none"].format(date=day(on, "medium"), company=d.company_name)
    else:
        a = d.aging[main]
        late = sum((a[b] for b in _BUCKETS), Decimal(0))
        subject = w["subject"].format(date=day(on, "medium"), open=money(a["total"], main), late=money(late, main),
                                      company=d.company_name)
    sections: list[tuple[str, list[str]]] = []
    for currency, a in d.aging.items():
        lines = [f"{w['current']}: {money(a['current'], currency)}"]
        lines += [f"{w['days'].format(n=label)}: {money(a[b], currency)}" for b, label in _BUCKETS.items()]
        lines.append(f"{w['total']}: {money(a['total'], currency)}")
        if a.get("credits"):
            lines.append(w["net"].format(credits=money(a["credits"], currency), net=money(a["net"], currency)))
        sections.append((w["aging"].format(currency=currency), [_colon(x, language) for x in lines]))
    dso_lines = [f"{x.currency} — " + w["dso_line"].format(
        days=x.days, value=w["days"].format(n=number(x.value)) if x.value is not None else w["none"]) for x in d.dso]
    if d.dso_target is not None:
        dso_lines.append(w["target"].format(n=number(d.dso_target)))
    sections.append((w["dso"], dso_lines))
    for currency, weeks in d.cash.items():
        sections.append((w["cash"].format(currency=currency),
                         [_colon(f"{w['week'].format(date=day(x.start, 'medium'))}: {money(x.expected, currency)}", language)
                          for x in weeks[:CASH_WEEKS]]
                         + ([w["disputed"].format(amount=money(d.cash_disputed[currency], currency))]
                            if d.cash_disputed.get(currency) else [])))
    sections.append((w["late"], [w["late_line"].format(name=c.name, amount=money(c.overdue, c.currency), days=c.days_late,
                                                       s_days=_s(c.days_late, language))
                                 for c in d.top_late[:TOP]] or [w["nobody"]]))
    unreachable = _unreachable(db, realm_id)
    if unreachable:
        lines = [w["unreachable_line"].format(name=name, amount=money(owed, currency))
                 for name, currency, owed in unreachable[:TOP]]
        if len(unreachable) > TOP:
            lines.append(w["more"].format(n=len(unreachable) - TOP, s=_s(len(unreachable) - TOP, language)))
        sections.append((w["unreachable"], lines))
    unsent = _unsent(db, realm_id)
    if unsent:
        lines = [w["unsent_line"].format(number=number_, name=name, amount=money(owed, currency),
                                         due=day(due, "medium") if due else "—")
                 for number_, name, currency, owed, due in unsent[:TOP]]
        if len(unsent) > TOP:
            lines.append(w["unsent_more"].format(n=len(unsent) - TOP, s=_s(len(unsent) - TOP, language)))
        sections.append((w["unsent"], lines))
    credit = _credit_to_apply(db, realm_id, on)
    if credit:
        lines = []
        for c in credit[:TOP]:
            amount = money(c.credit.amount, c.credit.currency)
            name = w["credit_from"].format(name=c.name, holder=c.holder) if c.holder else c.name
            if c.part is not None:
                lines.append(w["credit_part"].format(name=name, credit=amount, number=c.numbers[0],
                                                     part=money(c.part.amount, c.part.currency)))
            else:
                which = w["credit_one" if len(c.numbers) == 1 else "credit_many"].format(numbers=", ".join(c.numbers))
                lines.append(w["credit_line"].format(name=name, credit=amount, invoices=which))
        if len(credit) > TOP:
            lines.append(w["unsent_more"].format(n=len(credit) - TOP, s=_s(len(credit) - TOP, language)))
        sections.append((w["credit"], lines))
    r = d.reminders
    sections.append((w["reminders"].format(days=r.days),
                     [w["reminders_line"].format(sent=r.sent, paid=r.paid_after, within=r.within_days,
                                                 s_sent=_s(r.sent, language) if language == "fr" else "",
                                                 s_paid=_s(r.paid_after, language) if language == "fr" else "")]))

    hello = w["hello"].format(company=d.company_name, date=day(on))
    text_parts = [hello, ""]
    for title, lines in sections:
        text_parts += [title, *(f"  • {line}" for line in lines), ""]
    if link:
        text_parts.append(w["open"].format(link=link))
    text_parts.append(w["bye"])
    text = "\n".join(text_parts) + "\n"

    body = [f"<p>{html.escape(hello)}</p>"]
    for title, lines in sections:
        body.append(f'<h2 style="font-size:16px;margin:18px 0 6px">{html.escape(title)}</h2>')
        body.append('<ul style="margin:0;padding-left:18px">' + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    if link:
        body.append(f'<p style="margin-top:18px"><a href="{html.escape(link, quote=True)}">'
                    f"{html.escape(w['open'].format(link='').rstrip(': ').rstrip(' :'))}</a></p>")
    body.append(f'<p style="color:#5b6776">{html.escape(w["bye"])}</p>')
    page = (f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head>'
            f'<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2733;max-width:640px">'
            + "".join(body) + "</body></html>")
    return subject, text, page


def _unreachable(db: Database, realm_id: str) -> list[tuple[str, str, Decimal]]:
    """(name, currency, open balance) of the customers who owe something and some reminders cannot
    reach (``casework.cannot_reach``): in the company's currency, the largest balance first, then
    each other currency apart (as ``dashboard.top_late_customers``)."""
    c, inv = models.Customer, models.Invoice
    with db.reading() as s:
        home = s.scalar(select(models.Company.currency).where(models.Company.realm_id == realm_id))
        rows = s.execute(
            select(c.display_name, inv.currency, func.sum(inv.balance).label("owed"))
            .join(models.Company, models.Company.id == c.company_id)
            .join(inv, and_(inv.company_id == c.company_id, inv.customer_qbo_id == c.qbo_id))
            .where(models.Company.realm_id == realm_id, c.deleted.is_(False), casework.cannot_reach(),
                   inv.status == models.InvoiceStatus.open, inv.deleted.is_(False), inv.balance > 0)
            .group_by(c.qbo_id, c.display_name, inv.currency)).all()
    found = [(name or "", currency, _dec(owed)) for name, currency, owed in rows]
    return sorted(found, key=lambda r: (r[1] != home, r[1], -r[2], r[0].casefold()))


def _unsent(db: Database, realm_id: str) -> list[tuple[str, str, str, Decimal, dt.date | None]]:
    """(number, customer, currency, balance, due date) of the open invoices the reminders leave alone
    because QuickBooks never sent them (``snapshot.left_unsent``), in its order: the company's currency first."""
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            return []
        return [(i.doc_number or i.qbo_id, c.display_name or "", i.currency, _dec(i.balance), i.due_date)
                for i, c in snapshot.left_unsent(s, company)]


def _credit_to_apply(db: Database, realm_id: str, on: dt.date) -> list[snapshot.CreditToApply]:
    """The customers whose unused credit settles invoices the reminders therefore leave alone."""
    with db.reading() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        return [] if company is None else snapshot.credit_to_apply(s, company, on)


def _s(count: int, language: str) -> str:
    """The plural "s": French counts 0 and 1 as singular, English only 1."""
    return "" if (count < 2 if language == "fr" else count == 1) else "s"


def _colon(line: str, language: str) -> str:
    """French typography: a (narrow) no-break space before the colon."""
    if language != "fr":
        return line
    head, sep, tail = line.partition(":")
    return f"{head.rstrip()}\u00a0:{tail}" if sep else line


def _known(locale: str) -> bool:
    from babel import localedata

    return localedata.exists(locale)

