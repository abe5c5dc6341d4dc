"""What the providers tell us after a send: SendGrid events, Twilio statuses, replies by text.

The web layer (``web/provider_webhooks.py``) verifies signatures and hands over parsed,
authenticated data; everything here is storage. Each event is kept once
(``ProviderEvent`` is unique on provider + key: SendGrid's (message, recipient, event,
timestamp) — which also catches a retry that came back under a new ``sg_event_id`` —,
Twilio's SID + status, an inbound message's SID), so a replayed or duplicated delivery
changes nothing. Statuses only move forward. An ``unknown`` outbox row is settled as soon as
an event proves the provider took it. A bounce (not a block: ``type`` "blocked" is about our
message), a spam report, an unsubscribe, or a "dropped" naming a suppression list (bounced,
unsubscribed, spam reporting, invalid address) stops email to that address; STOP (and Twilio's
21610) stops texts to that number from the sender it answers, START lifts it. Any other reply is
logged on the timeline of the company that texted the person from that sender, and its owner is
alerted (``record_twilio_inbound``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import phonenumbers
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from qbo_collector import alerts, clock, config, errors, snapshot, timeline
from qbo_collector.rules import calendar as rules_calendar
from qbo_collector.channels import email as email_channel
from qbo_collector.channels import sms as sms_channel
from qbo_collector.channels import webhooks as channel_webhooks
from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.dispatch import outbox
from qbo_collector.dispatch import run as dispatch_run

log = logging.getLogger(__name__)
S = models.OutboxStatus
EMAIL_ORDER = {"processed": 1, "deferred": 2, "delivered": 3, "open": 4, "click": 5,
               "bounce": 9, "dropped": 9, "spamreport": 9, "unsubscribe": 8, "group_unsubscribe": 8}
EMAIL_STOPS = {"bounce": "bounce", "spamreport": "spamreport", "unsubscribe": "unsubscribe",
               "group_unsubscribe": "unsubscribe"}
# A "dropped" event's reason names the suppression list the address is on; other drops
# ("Invalid SMTPAPI header", "Spam Content", "Recipient List over Package Quota") are about our message.
DROPPED_STOPS = {"bounced address": "bounce", "unsubscribed address": "unsubscribe",
                 "spam reporting address": "spamreport", "invalid": "invalid"}
SMS_STOP_CODES = {21610: "21610", 30004: "blocked", 30005: "unknown number", 30006: "landline", 21211: "invalid",
                  21614: "landline", 21635: "landline"}
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclasses.dataclass
class EventResult:
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    reasons: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "skipped": self.skipped}


def _keep_once(s: Session, provider: str, key: str, *, outbox_id: int | None, event: str, at: dt.datetime,
               data: Mapping[str, Any]) -> bool:
    stmt = (outbox._insert(s, models.ProviderEvent.__table__)
            .values(provider=provider, event_key=key[:255], outbox_id=outbox_id, event=event[:32], at=at,
                    data=dict(data))
            .on_conflict_do_nothing(index_elements=["provider", "event_key"])
            .returning(models.ProviderEvent.__table__.c.id))
    return s.execute(stmt).first() is not None


def _row(s: Session, raw_id: Any) -> models.Outbox | None:
    try:
        return s.get(models.Outbox, int(str(raw_id)), with_for_update=True)
    except (TypeError, ValueError):
        return None


def _settle_unknown(s: Session, row: models.Outbox, event: str, accepted: bool, at: dt.datetime) -> None:
    if row.status != S.unknown:
        return
    if accepted:
        outbox.set_status(s, row.id, S.sent, f"Reconciled: the provider reported '{event}', so it went out.", sent_at=at)
    else:
        outbox.set_status(s, row.id, S.failed, f"Reconciled: the provider reported '{event}': it was not delivered.")
    outbox.activity(s, row.company_id, "outbox.reconciled",
                    timeline.text("outbox.reconciled.event", event=timeline.term("event", event),
                                  action=timeline.action(row)), row=row)


# --- SendGrid ------------------------------------------------------------------------------

def record_sendgrid_events(db: Database, events: Sequence[Mapping[str, Any]]) -> EventResult:
    """Store verified Event Webhook events; one malformed event is skipped with its reason, never the batch."""
    result = EventResult()
    for event in events:
        name = event.get("event")
        email = event.get("email")
        stamp = event.get("timestamp")
        if not isinstance(name, str) or not isinstance(email, str) or not isinstance(stamp, int | float):
            result.skipped += 1
            result.reasons.append(f"event without event/email/timestamp: {str(event)[:200]}")
            log.warning("SendGrid event skipped (missing event, email or timestamp): %.200s", event)
            continue
        at = dt.datetime.fromtimestamp(float(stamp), dt.timezone.utc)
        event_id, composite = channel_webhooks.sendgrid_event_keys(event)
        key = ("m:" + hashlib.sha256("|".join(map(str, composite)).encode()).hexdigest()
               if composite[0] else f"e:{event_id}")
        with db.session() as s:
            row = _row(s, event.get("outbox_id"))
            if row is not None and event.get("realm"):
                company = s.get(models.Company, row.company_id)
                if company is None or company.realm_id != str(event["realm"]):
                    row = None  # an id from another installation or company: not ours
            if not _keep_once(s, "sendgrid", key, outbox_id=row.id if row else None, event=name, at=at, data=event):
                result.duplicates += 1
                continue
            result.accepted += 1
            if row is None:
                log.info("SendGrid %s event for an unknown outbox id %r kept without a row", name, event.get("outbox_id"))
                continue
            detail = event.get("reason") or event.get("url") or event.get("response") or ""
            said = (timeline.text("email.event.detail", address=email, event=timeline.term("event", name), detail=str(detail))
                    if detail else timeline.text("email.event", address=email, event=timeline.term("event", name)))
            message_id = row.provider_id or channel_webhooks.sendgrid_message_id(event)
            for each in [row, *outbox.companions(s, row)]:  # one message told several rows: each of them
                if EMAIL_ORDER.get(name, 0) > EMAIL_ORDER.get(each.provider_status or "", 0):
                    each.provider_status = name[:32]
                if not each.provider_id:  # a row sent with another keeps naming it ("with:<id>")
                    each.provider_id = message_id
                _settle_unknown(s, each, name, name != "dropped", at)
                outbox.activity(s, each.company_id, f"email.{name}", said, row=each, at=at, data={"sg_event_id": event_id})
            stop = _email_stop(event)
            if stop and not (row.channel or "").startswith("owner_"):
                dispatch_run.block_contact(s, "email", email, stop)
                outbox.activity(s, row.company_id, "email.stopped",
                                timeline.text("email.stopped", address=email, reason=timeline.term("stop", stop)), row=row)
    return result


def _email_stop(event: Mapping[str, Any]) -> str | None:
    """Why this event stops email to its address, if it does."""
    name = event.get("event")
    if name == "bounce" and str(event.get("type", "")).strip().lower() == "blocked":
        # A block: the receiving server refused this message (our sending IP, its content), not the
        # address; SendGrid does not suppress later emails to it, and neither do we.
        return None
    if name == "dropped":
        return DROPPED_STOPS.get(str(event.get("reason", "")).strip().lower())
    return EMAIL_STOPS.get(str(name))


# --- Twilio ---------------------------------------------------------------------------------

def record_twilio_status(db: Database, status: channel_webhooks.TwilioStatus, outbox_id: str | None) -> bool:
    """Store one verified status callback; False for a duplicate."""
    at = clock.now()
    with db.session() as s:
        row = _row(s, outbox_id) if outbox_id else None
        if row is None:
            row = s.scalar(select(models.Outbox).where(models.Outbox.provider_id == status.message_sid))
        if row is not None and row.provider_id and row.provider_id != status.message_sid:
            log.warning("Twilio status for %s names outbox %s, which holds %s; kept without a row",
                        status.message_sid, row.id, row.provider_id)
            row = None
        if not _keep_once(s, "twilio", f"{status.message_sid}:{status.status}", outbox_id=row.id if row else None,
                          event=status.status, at=at, data=status.raw):
            return False
        if row is None:
            return True
        event = timeline.term("event", status.status)
        said = (timeline.text("sms.event.error", address=status.to or "", event=event, code=status.error_code)
                if status.error_code else timeline.text("sms.event", address=status.to or "", event=event))
        for each in [row, *outbox.companions(s, row)]:  # one message told several rows: each of them
            each.provider_status = channel_webhooks.advance(each.provider_status, status.status)[:32]
            if not each.provider_id:  # a row sent with another keeps naming it ("with:<id>")
                each.provider_id = status.message_sid
            _settle_unknown(s, each, status.status, status.status not in ("failed", "canceled"), at)
            outbox.activity(s, each.company_id, f"sms.{status.status}", said,
                            row=each, at=at, data={"sid": status.message_sid, "error_code": status.error_code})
        stop = SMS_STOP_CODES.get(status.error_code or 0)
        if stop and status.to and not (row.channel or "").startswith("owner_"):
            if stop == "21610":  # opted out of this sender's texts: the companies texting from it stop
                # the sender the text went out from, not the company's now (it may have changed since)
                sender = str((row.payload or {}).get("sent_as") or "")
                if not sender:
                    company = s.get(models.Company, row.company_id)
                    sender = snapshot.sms_sender(company) if company is not None else ""
                _stop_number(s, status.to, stop, senders={sender},
                             companies=_texting_from(s, {sender}) if sender else None)
            else:  # the number itself (invalid, a landline…): for every company
                _stop_number(s, status.to, stop)
        if status.error_code in alerts.SENDER_SMS_CODES and not (row.channel or "").startswith("owner_"):
            company = s.get(models.Company, row.company_id)
            if company is not None:
                try:
                    on = rules_calendar.local_date(at, company.timezone or "UTC")
                except (KeyError, ValueError):  # a zone QuickBooks gave that this machine does not know
                    on = at.date()
                alerts.sender_refused(s, company, status.error_code, on=on, at=at)
    return True


def _customers_with_number(s: Session, number: str) -> list[tuple[models.Company, models.Customer]]:
    """The customers whose stored mobile or phone is ``number`` (E.164) once parsed as sending does.

    QuickBooks keeps phones as typed ("(415) 555-0100 x12", "+33 (0)6 12 34 56 78"), so the stored
    text is prefiltered on the digits of the national number in order, anything between them
    (spaces, dashes, a country code or trunk prefix before, an extension after): every text that
    parses to ``number`` matches, whatever its formatting (except a number spelt with letters,
    1-800-FLOWERS, or in non-ASCII digits). One scan of the customer table, as the old
    last-two-digits LIKE was, but it brings back that customer and almost nobody else to parse.
    """
    pattern = _digits_in_order(number)
    if pattern is None:
        return []
    cond = models.Customer.mobile.like(pattern) | models.Customer.phone.like(pattern)
    found = []
    companies: dict[int, models.Company] = {}
    for customer in s.scalars(select(models.Customer).where(cond, models.Customer.deleted.is_(False))):
        company = companies.get(customer.company_id) or s.get(models.Company, customer.company_id)
        if company is None:
            continue
        companies[company.id] = company
        if snapshot.phone_e164(company, customer) == number:
            found.append((company, customer))
    return found


def _digits_in_order(number: str) -> str | None:
    """``+14155550100`` → ``%4%1%5%5%5%5%0%1%0%0%``: a LIKE pattern for its national digits in order."""
    try:
        digits = phonenumbers.national_significant_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in number if c in "0123456789")
    return "%" + "%".join(digits) + "%" if digits else None


def _stop_number(s: Session, number: str, reason: str, *, senders: Collection[str] = ("",),
                 companies: Mapping[int, models.Company] | None = None) -> list[tuple[models.Company, models.Customer]]:
    """Block texts to ``number`` from ``senders`` (``ContactBlock.sender``; "": every sender) and flag
    the customers with that number, of ``companies`` only when given."""
    for sender in sorted(senders):
        dispatch_run.block_contact(s, "sms", number, reason, sender=sender)
    matched = [(company, customer) for company, customer in _customers_with_number(s, number)
               if companies is None or company.id in companies]
    for _company, customer in matched:
        customer.sms_stopped = reason[:64]
    return matched


def _texting_from(s: Session, senders: Collection[str]) -> dict[int, models.Company]:
    """The companies whose texts go out from one of ``senders`` (as ``snapshot.sms_sender`` names them), by id."""
    return {c.id: c for c in s.scalars(select(models.Company).order_by(models.Company.id))
            if snapshot.sms_sender(c) in senders}


def _server_senders(settings: config.Settings) -> set[str]:
    """The server's own ``TWILIO_*`` sender (a number, a messaging service, or both) as ``sender_id`` writes it."""
    return {sms_channel.sender_id(v) for v in (settings.twilio_from_number, settings.twilio_messaging_service_sid) if v}


def inbound_sender(s: Session, settings: config.Settings, form: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """Which sender an inbound text went to: its ``To`` (the number the person texted) and its
    ``MessagingServiceSid`` (the service that number belongs to, when it does) as ``sms_channel.sender_id``
    writes them, and the ``ContactBlock.sender`` names of the senders among them that texts go out
    from: a company's own (``sms_from``), ``SHARED_SENDER`` for the server's ``TWILIO_*`` one. A number
    no company texts from any more (given up) has no name."""
    texted = {sms_channel.sender_id(v) for v in (form.get("To"), form.get("MessagingServiceSid")) if v and v.strip()}
    names = {models.SHARED_SENDER} if texted & _server_senders(settings) else set()
    names |= {sender for c in s.scalars(select(models.Company)) if (sender := snapshot.sms_sender(c)) in texted}
    return texted, names


def sender_taken(s: Session, settings: config.Settings, value: str, *, company_id: int) -> str | None:
    """Why company ``company_id`` may not text from ``value`` (a number or a messaging service SID), or None:
    "server" — the server's own ``TWILIO_*`` sender, which the companies without their own share;
    "company" — another company's own sender. Replies and STOPs are told to a company by the sender
    they answer (``record_twilio_inbound``): one sender, one company, or its texts would go out under
    another's name and its customers' answers reach the wrong owner."""
    wanted = sms_channel.sender_id(value)
    if wanted in _server_senders(settings):
        return "server"
    others = s.scalars(select(models.Company).where(models.Company.id != company_id))
    return "company" if any(snapshot.sms_sender(c) == wanted for c in others) else None


def _last_texted(s: Session, number: str, senders: Collection[str],
                 matched: Sequence[tuple[models.Company, models.Customer]]) -> int | None:
    """The company that last texted ``number`` from one of ``senders``, among the companies of ``matched``
    (the outbox rows keep which sender texted which number since they are sent from one or the other)."""
    customers: dict[int, set[str]] = {}
    for company, customer in matched:
        customers.setdefault(company.id, set()).add(customer.qbo_id)
    o = models.Outbox
    last: tuple[dt.datetime, int, int] | None = None
    for company_id, ids in customers.items():
        ids |= set(snapshot.billed_below(s, company_id, sorted(ids)))  # a job billed with its parent is texted there
        rows = s.scalars(select(o).where(o.company_id == company_id, o.channel == "sms", o.sending_at.is_not(None),
                                         o.status.in_((S.sent, S.unknown)), o.customer_qbo_id.in_(sorted(ids)))
                         .order_by(o.sending_at.desc(), o.id.desc()))
        for row in rows:
            sent = row.payload or {}
            if sent.get("sent_to") == number and sent.get("sent_from") in senders:
                assert row.sending_at is not None
                if last is None or (row.sending_at, row.id) > last[:2]:
                    last = (row.sending_at, row.id, company_id)
                break
    return last[2] if last is not None else None


def record_twilio_inbound(settings: config.Settings, db: Database, form: Mapping[str, str]) -> str:
    """A verified inbound text: STOP / START / HELP, or a reply logged and passed to the owner. Returns what it was.

    A text answers one sender (``inbound_sender``), and concerns the companies texting from it, never
    the others that have the same person as a customer:
    - STOP blocks the number for the companies texting from that sender — the one whose own number or
      service it is; for the server's sender, every company sharing it (Twilio refuses that sender's
      texts to the person from then on, 21610, whichever company sends them) — and flags their
      customers with that number. START lifts the same, and the stops kept for every sender (an
      invalid number, a STOP from before senders were told apart). To a number given up: nothing to stop.
    - A reply, or HELP, goes to the timeline and owner of the company that texted this number last
      from that sender (outbox rows). When none did (texts sent before rows kept their sender), to
      every company texting from it with the person as a customer; when there is none, to the
      installation's timeline as a reply from an unknown number.
    """
    sid = form.get("MessageSid") or form.get("SmsSid")
    sender = (form.get("From") or "").strip()
    body = form.get("Body") or ""
    if not sid or not sender:
        raise errors.InvalidInput("The inbound text has no MessageSid or From.", field="From")
    try:
        number = sms_channel.to_e164(sender, None)
    except errors.InvalidInput:
        number = sender
    at = clock.now()
    keyword = sms_channel.parse_keyword(body)
    with db.session() as s:
        if not _keep_once(s, "twilio-inbound", sid, outbox_id=None, event=keyword or "reply", at=at, data=dict(form)):
            return "duplicate"
        texted, names = inbound_sender(s, settings, form)
        sharing = _texting_from(s, names)
        if keyword in ("stop", "start") and not names:
            log.warning("%s from %s to %s, a sender no company texts from: nothing changed", keyword.upper(), number,
                        ", ".join(sorted(texted)) or "no number")
            return str(keyword)
        if keyword == "stop":
            for company, customer in _stop_number(s, number, "stop", senders=names, companies=sharing):
                outbox.activity(s, company.id, "sms.opt_out",
                                timeline.text("sms.opt_out", name=customer.display_name, number=number,
                                              body=body.strip()[:40]), customer_id=customer.qbo_id)
            return "stop"
        matched = _customers_with_number(s, number)
        if keyword == "start":
            s.execute(delete(models.ContactBlock).where(models.ContactBlock.channel == "sms",
                                                        models.ContactBlock.address == number,
                                                        models.ContactBlock.sender.in_(sorted({"", *names}))))
            for company, customer in matched:
                if company.id not in sharing:
                    continue
                customer.sms_stopped = None
                outbox.activity(s, company.id, "sms.opt_in",
                                timeline.text("sms.opt_in", name=customer.display_name, number=number),
                                customer_id=customer.qbo_id)
            return "start"
        last = _last_texted(s, number, texted, matched)
        told = [(c, cu) for c, cu in matched if (c.id == last if last is not None else c.id in sharing)]
        if keyword == "help":
            for company, customer in told:
                outbox.activity(s, company.id, "sms.help",
                                timeline.text("sms.help", name=customer.display_name, number=number),
                                customer_id=customer.qbo_id)
            return "help"
        if not told:
            outbox.activity(s, None, "sms.reply", timeline.text("sms.reply.unknown", number=number, body=body[:300]),
                            data={"sid": sid, "from": number})
            log.info("reply from %s matches no customer of a company texting from %s", number,
                     ", ".join(sorted(texted)) or "its sender")
            return "reply"
        for company, customer in told:
            outbox.activity(s, company.id, "sms.reply", timeline.text("sms.reply", name=customer.display_name,
                                                                      body=body[:500]),
                            customer_id=customer.qbo_id, data={"sid": sid, "from": number})
            alerts.customer_replied(s, company, customer=customer, sender=number, body=body, message_sid=sid)
        return "reply"


# --- lifting an email stop by hand ---------------------------------------------------------

# The stops a person may lift (the mailbox works again), with the SendGrid list each one is on.
# A spam report or an unsubscribe is the customer's own wish: only they can undo it.
LIFTABLE_EMAIL_STOPS = {"bounce": "bounces", "invalid": "invalid_emails"}


@dataclasses.dataclass(frozen=True)
class EmailStop:
    """Why email to a customer is stopped, and whether a person may lift it."""

    reason: str          # a ``timeline.TERMS["stop"]`` key: "bounce", "invalid", "spamreport"…
    liftable: bool
    # the SendGrid list to take each stopped address off (lower-case): its block's, else the flag's
    lists: tuple[tuple[str, str], ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address, _list in self.lists)


def email_stop(s: Session, customer: models.Customer) -> EmailStop | None:
    """The stop on ``customer``'s email (its flag, or blocks on its addresses), if there is one."""
    addresses = [a.lower() for a in snapshot.email_addresses(customer.email)]
    block = models.ContactBlock
    blocks = dict(s.execute(select(block.address, block.reason).where(
        block.channel == "email", block.address.in_(addresses or [""]))).all())
    flag = customer.email_stopped
    reasons = ([flag] if flag else []) + [blocks[a] for a in addresses if a in blocks]
    if not reasons:
        return None
    wished = [r for r in reasons if r not in LIFTABLE_EMAIL_STOPS]
    # the flag stops every address of the customer; a block, its own
    stopped = {a: blocks.get(a) or flag for a in addresses if flag or a in blocks}
    return EmailStop(reason=(wished or reasons)[0], liftable=not wished, lists=tuple(
        (a, LIFTABLE_EMAIL_STOPS.get(r or "", "")) for a, r in stopped.items()))


def lift_email_stop(settings: Any, db: Database, company_id: int, customer_id: str, user_id: int | None) -> list[str]:
    """A person says the customer's mailbox works again (the customer page's "resume email" button).

    The customer's addresses are taken off SendGrid's bounce or invalid list first (it drops
    every email to a listed address), then unblocked here, and every customer *of this company*
    with those addresses has email resumed, with a timeline line naming who did it; other
    companies' customers keep their own flag until their owner decides. Returns the addresses
    lifted, [] when email was not stopped (a second click). Raises ``InvalidInput`` for a spam
    report or an unsubscribe, and the errors of ``SendGridSuppressions.remove`` — then nothing
    changed here. Without a SendGrid key only the blocks here are lifted (nothing was sent)."""
    with db.reading() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company_id,
                                                          models.Customer.qbo_id == customer_id))
        if customer is None:
            raise errors.InvalidInput("There is no such customer.", field="customer")
        stop = email_stop(s, customer)
        if stop is None:
            return []
        if not stop.liftable:
            raise errors.InvalidInput(
                "This customer asked not to receive emails (a spam report or an unsubscribe): only they can undo it.",
                field="customer", code="customer_wish")
    if settings.sendgrid_api_key:
        suppressions = email_channel.SendGridSuppressions(settings.sendgrid_api_key, host=settings.sendgrid_api_host)
        for address, list_name in sorted(stop.lists):
            suppressions.remove(list_name, address)
    lifted = set(stop.addresses)
    block, c = models.ContactBlock, models.Customer
    with db.session() as s:
        s.execute(delete(block).where(block.channel == "email", block.address.in_(sorted(lifted)),
                                      block.reason.in_(sorted(LIFTABLE_EMAIL_STOPS))))
        still = set(s.scalars(select(block.address).where(block.channel == "email",
                                                          block.address.in_(sorted(lifted)))))
        for other in s.scalars(select(c).where(c.company_id == company_id, or_(
                c.qbo_id == customer_id, c.email_stopped.in_(sorted(LIFTABLE_EMAIL_STOPS)))).order_by(c.qbo_id)):
            theirs = {a.lower() for a in snapshot.email_addresses(other.email)}
            if (other.qbo_id != customer_id and not theirs & lifted) or theirs & still:
                continue  # another address, or one still stopped for another reason
            other.email_stopped = None
            outbox.activity(s, company_id, "email.resumed", timeline.text(
                "email.resumed", name=other.display_name, address=other.email or ""),
                customer_id=other.qbo_id, data={"user_id": user_id})
    log.info("email stop lifted by user %s for customer %s of company %s (%d address(es))",
             user_id, customer_id, company_id, len(lifted))
    return sorted(lifted)
