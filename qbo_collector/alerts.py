"""Internal alerts: the business owner is told when an invoice becomes late, a promise is broken,
a customer replies, a message cannot be delivered, the QuickBooks connection needs reconnecting or
late fees wait for a tax code.

An alert is an outbox row like any message (kind ``alert``; channel ``owner_email``, plus
``owner_sms`` when an owner phone is set), so it goes out once — its dedupe key says what it
is about — and a crash never sends it twice. Rows are sent by the dispatcher's next run
(``dispatch.run_company``), which needs no QuickBooks call for alerts that name no invoice:
a company whose connection is broken still gets its "reconnect" alert.

Company settings read (``company.settings``):
    owner_email   where alerts go (no address: the alert stays in the activity log only)
    owner_phone   optional; alerts also go by SMS, in daytime where the number is (else the company's zone)
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qbo_collector import timeline
from qbo_collector.channels import qbo_notes
from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.dispatch import outbox

log = logging.getLogger(__name__)

TOPICS = ("late", "promise_broken", "instalment_missed", "unreachable", "step", "reply", "reconnect",
          "undeliverable", "credit", "fee_tax_code")


def owner_contacts(company: models.Company) -> tuple[str | None, str | None]:
    settings = company.settings or {}
    email = str(settings.get("owner_email") or "").strip() or None
    phone = str(settings.get("owner_phone") or "").strip() or None
    return email, phone


def enqueue(s: Session, company: models.Company, *, topic: str, text: timeline.Text | str, dedupe_key: str,
            customer_id: str | None = None, invoice_ids: tuple[str, ...] = (), action_link: str | None = None,
            due_at: dt.datetime | None = None, said: Mapping[str, str] | None = None) -> int:
    """Queue an owner alert (email, and SMS when ``owner_phone`` is set). Returns how many rows were new.

    ``text``: a sentence of ``timeline`` (read in the owner's language from the catalogue), or the
    English of a sentence this module tells in every language itself, given as ``said`` (language →
    sentence, kept in ``payload["said"]``)."""
    _email, phone = owner_contacts(company)
    payload: dict[str, Any] = {"topic": topic, "alert": str(text), "action_link": action_link,
                               **({"said": dict(said)} if said else {})}
    new = 0
    channels = ["owner_email"] + (["owner_sms"] if phone else [])
    for channel in channels:
        key = dedupe_key if channel == "owner_email" else f"{dedupe_key}:sms"
        if outbox.enqueue(s, company.id, dedupe_key=key, kind="alert", channel=channel, reason=text,
                          customer_id=customer_id, invoice_ids=invoice_ids, payload=payload,
                          template_key="owner_alert", due_at=due_at):
            new += 1
    outbox.activity(s, company.id, f"alert.{topic}", text, customer_id=customer_id,
                    invoice_id=invoice_ids[0] if invoice_ids else None, data={"dedupe_key": dedupe_key})
    return new


def reconnect_needed(db: Database, realm_id: str, reason: str, *, on: dt.date, at: dt.datetime | None = None) -> int:
    """The QuickBooks grant is gone: alert the owner (once per day at most: ``on`` is the company's
    local date). ``at`` is when it is due: the run's time, so the run that noticed sends it."""
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            return 0
        return enqueue(s, company, topic="reconnect",
                       text=timeline.text("alert.reconnect", company=company.name, reason=timeline.error(reason)),
                       dedupe_key=f"{realm_id}:alert:reconnect:{on.isoformat()}", action_link="/connect", due_at=at)


# Twilio error codes of a status callback that say the carriers refuse *our sender*, not the
# customer's number: every text fails the same way until the owner fixes it (nothing is stopped).
SENDER_SMS_CODES = {30034: "alert.sms_unregistered", 30032: "alert.sms_toll_free", 30007: "alert.sms_filtered"}


def sender_refused(s: Session, company: models.Company, code: int, *, on: dt.date, at: dt.datetime) -> int:
    """A text failed with one of ``SENDER_SMS_CODES``: tell the owner what to fix, once a week per code
    (``on`` is the company's local date; ``at``, the callback's time, makes the next run send it)."""
    year, week, _day = on.isocalendar()
    return enqueue(s, company, topic="undeliverable", text=timeline.text(SENDER_SMS_CODES[code]),
                   dedupe_key=f"{company.realm_id}:alert:undeliverable:{code}:{year}-W{week:02d}",
                   action_link=f"/companies/{company.realm_id}/channels", due_at=at)


def customer_replied(s: Session, company: models.Company, *, customer: models.Customer | None, sender: str,
                     body: str, message_sid: str) -> int:
    """A customer answered a text with something other than a keyword: log it and tell the owner."""
    who = customer.display_name if customer is not None else sender
    excerpt = " ".join(body.split())[:300]
    return enqueue(s, company, topic="reply", text=timeline.text("alert.reply", name=who, body=excerpt),
                   dedupe_key=f"{company.realm_id}:alert:reply:{message_sid}",
                   customer_id=customer.qbo_id if customer is not None else None)


# Told here in each language of the product rather than through the catalogue: the sentence names the
# Channels page and the setting the owner fills in, as the page does. ``{company}``: its name; ``{code}``:
# the Id chosen. By the cause ``channels.qbo_notes`` gives.
FEES_HELD = {
    "en": {
        qbo_notes.NO_FITTING_CODE: "Late fees of {company} are on hold: QuickBooks asks for a tax code on every invoice line, and "
                "none of its active tax codes is named out of scope, no VAT or exempt. Enter the Id of the tax "
                "code for late fees on the Channels page (fee_tax_code), or add such a code in QuickBooks: the "
                "next run then posts every fee on hold, each once.",
        qbo_notes.CHOSEN_CODE_GONE: "Late fees of {company} are on hold: the tax code chosen for them on the Channels page (Id "
                  "{code}, fee_tax_code) is not an active tax code of the QuickBooks company. Choose another one, "
                  "or empty the field to let the program pick an out-of-scope or exempt code: the next run then "
                  "posts every fee on hold, each once.",
    },
    "fr": {
        qbo_notes.NO_FITTING_CODE: "Les frais de retard de {company} sont en attente : QuickBooks exige un code de taxe sur chaque "
                "ligne de facture, et aucun de ses codes de taxe actifs n’est nommé hors champ, sans TVA ou "
                "exonéré. Indiquez l’identifiant du code de taxe des frais de retard sur la page Canaux "
                "(fee_tax_code), ou créez un tel code dans QuickBooks : le prochain passage enregistre alors tous "
                "les frais en attente, chacun une seule fois.",
        qbo_notes.CHOSEN_CODE_GONE: "Les frais de retard de {company} sont en attente : le code de taxe choisi pour eux sur la page "
                  "Canaux (identifiant {code}, fee_tax_code) n’est pas un code de taxe actif de la société "
                  "QuickBooks. Choisissez-en un autre, ou videz le champ pour laisser le programme prendre un code "
                  "hors champ ou exonéré : le prochain passage enregistre alors tous les frais en attente, chacun "
                  "une seule fois.",
    },
}
# French typography: a no-break space before ":" and ";".
FEES_HELD["fr"] = {k: v.replace(" :", "\u00a0:").replace(" ;", "\u00a0;") for k, v in FEES_HELD["fr"].items()}


def fees_held(s: Session, company: models.Company, *, cause: str, tax_code: str | None, since: dt.date,
              at: dt.datetime) -> int:
    """Late fees wait because QuickBooks would refuse their lines (no tax code for them): tell the owner
    what to set, once for as long as the same cause holds them (``since``: the day it first held one,
    which the held rows keep). ``at``: the run's time, so the run that found it tells it."""
    key = f"{cause}-{tax_code}" if cause == qbo_notes.CHOSEN_CODE_GONE else cause
    said = {language: words.get(cause, words[qbo_notes.NO_FITTING_CODE]).format(company=company.name, code=tax_code or "")
            for language, words in FEES_HELD.items()}
    return enqueue(s, company, topic="fee_tax_code", text=said["en"], said=said,
                   dedupe_key=f"{company.realm_id}:alert:fee_tax_code:{key}:{since.isoformat()}",
                   action_link=f"/companies/{company.realm_id}/channels#fee_tax_code", due_at=at)
