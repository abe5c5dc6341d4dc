"""Internal alerts: the business owner is told when an invoice becomes late, a promise is broken,
a customer replies, a message cannot be delivered or the QuickBooks connection needs reconnecting.

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
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qbo_collector import timeline
from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.dispatch import outbox

log = logging.getLogger(__name__)

TOPICS = ("late", "promise_broken", "instalment_missed", "unreachable", "step", "reply", "reconnect",
          "undeliverable", "credit")


def owner_contacts(company: models.Company) -> tuple[str | None, str | None]:
    settings = company.settings or {}
    email = str(settings.get("owner_email") or "").strip() or None
    phone = str(settings.get("owner_phone") or "").strip() or None
    return email, phone


def enqueue(s: Session, company: models.Company, *, topic: str, text: timeline.Text, dedupe_key: str,
            customer_id: str | None = None, invoice_ids: tuple[str, ...] = (), action_link: str | None = None,
            due_at: dt.datetime | None = None) -> int:
    """Queue an owner alert (email, and SMS when ``owner_phone`` is set). Returns how many rows were new."""
    _email, phone = owner_contacts(company)
    payload: dict[str, Any] = {"topic": topic, "alert": text.english(), "action_link": action_link}
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
