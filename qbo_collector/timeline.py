"""The sentences the program writes on a customer's timeline, as a stable key and its arguments.

An ``Activity`` row (and an outbox row's ``reason`` when the program, not the rules engine,
wrote it) stores three things: the English sentence (``message`` / ``reason``, read by the
CLI, the logs and any older reader), and beside it the key of the sentence in ``MESSAGES``
and its arguments as JSON (``message_key`` / ``message_args``, ``reason_key`` /
``reason_args``). A reader (``translation.Reader``: the pages for their user, the dispatcher for a
company's owner) looks the key up in the translation catalogue and formats the arguments in its
locale; a row without a key (written before keys existed, or typed by a person) is shown as stored.

    text = timeline.text("pause", until=timeline.date(resume_on), note="Back in January")
    text.english()   # "Reminders paused until 2027-01-04. Back in January" (plain: ISO dates, "1200.00 EUR")
    text.key, text.stored_args()   # "pause", {"until": {"date": "2027-01-04"}, "note": "Back in January"}

Arguments are JSON values. Plain strings and numbers are shown verbatim: names, addresses,
invoice numbers, what a customer wrote, a provider's own words. Typed ones are small dicts
the page formats for its reader:

    {"date": "2026-12-10"}                   a date (Babel, the reader's locale)
    {"money": "1200.00", "currency": "EUR"}  an amount (Babel)
    {"number": "850.50"}                     a number without currency (Babel)
    {"invoices": ["F-1001", "F-1002"]}       invoice numbers; none: "all invoices"
    {"term": "open", "of": "event"}          a word of ``TERMS`` (channel, provider event, call outcome…)
    {"terms": ["email", "sms"], "of": "channel"}  several words of ``TERMS``, listed
    {"error": "…"}                           one of the program's error sentences, translated when the
                                             catalogue has it (as ``web.pages.message_of`` does)
    {"action": {…}}                          an outbox row (``action(row)``): in English its own reason,
                                             in another language its ``sentence`` (engine alerts) or a
                                             description built from its fields; an alert ``alerts`` told
                                             in each language itself (``said``) reads in the reader's

``note`` is what a person typed; it follows the sentence verbatim and is never translated. The
rules engine's reasons (``rules/``, pure and English) get no key: English readers see them, others
a description of the row from its fields (kind, step, template, invoices, amount) — or, for the
engine's owner alerts, the sentence ``dispatch.outbox.rows_for`` built from the alert's figures and
keeps in ``payload["sentence"]`` (``{"key": "alert.late", "args": {…}}``). ``translation.Reader``
turns all of these into a reader's language, with or without Flask.

Sentences marked ``N_`` / ``Np_`` are extracted into the catalogue (``web/translations/babel.cfg``).
Add a key here, use it, and translate it in ``web/translations/fr/LC_MESSAGES/messages.po``:
``tests/unit/core/test_timeline.py`` fails on a key without a French translation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any


def N_(message: str) -> str:  # noqa: N802 - gettext_noop: marks a message for the catalogue
    return message


def Np_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 - the plural pair; ``num`` chooses
    return singular, plural


MESSAGES: dict[str, str | tuple[str, str]] = {
    # what people record (casework)
    "promise": N_("Promise to pay %(amount)s by %(until)s (%(invoices)s)."),
    "dispute": N_("Dispute opened (%(invoices)s):"),
    "plan": Np_("Payment plan: %(num)s instalment, %(total)s until %(until)s.",
                "Payment plan: %(num)s instalments, %(total)s until %(until)s."),
    "pause": N_("Reminders paused until %(until)s."),
    "promise.resolved": N_("Promise to pay closed."),
    "dispute.resolved": N_("Dispute closed."),
    "plan.resolved": N_("Payment plan closed."),
    "manual.resolved": N_("Pause closed."),
    "resume": N_("Reminders resumed."),
    "excluded": N_("Excluded from reminders and fees."),
    "included": N_("Included in reminders and fees again."),
    "policy.named": N_("Policy set to %(name)s."),
    "policy.company": N_("Policy set to the company's policy."),
    "language.set": N_("Reminders written in %(language)s from now on."),
    "language.auto": N_("Reminders written in the language chosen from the customer's country again."),
    "fee.waive_requested": N_("Late fee %(amount)s waived; it is being voided in QuickBooks."),
    "fee.waive_requested.no_amount": N_("Late fee waived; it is being voided in QuickBooks."),
    "fee.waived.customer": N_("Late fees waived for every invoice of this customer."),
    "fee.waived.invoice": N_("No more late fees on invoice %(invoice)s."),
    "call": N_("Call (%(outcome)s)."),
    "skipped": N_("Skipped: %(action)s"),
    # what the dispatcher did
    "reminder.sent": Np_("Reminder sent by %(channel)s: invoice %(invoices)s to %(address)s.",
                         "Reminder sent by %(channel)s: invoices %(invoices)s to %(address)s."),
    "reminder.sent.no_invoice": N_("Reminder sent by %(channel)s to %(address)s."),
    "alert.sent": Np_("Alert sent by %(channel)s: invoice %(invoices)s to %(address)s.",
                      "Alert sent by %(channel)s: invoices %(invoices)s to %(address)s."),
    "alert.sent.no_invoice": N_("Alert sent by %(channel)s to %(address)s."),
    "task": N_("%(action)s"),
    "message.unwritable": N_("The message could not be written: %(error)s"),
    "pdf.missing": Np_("Sent without the PDF of invoice %(invoices)s: %(error)s",
                       "Sent without the PDFs of invoices %(invoices)s: %(error)s"),
    "send.refused": N_("Refused for good: %(error)s"),
    "error": N_("%(error)s"),
    "fee.charged": N_("Late fee %(amount)s posted for invoice %(invoice)s (fee invoice %(fee_invoice)s)"),
    "fee.charged.line": N_("Late fee %(amount)s posted for invoice %(invoice)s (line on the invoice)"),
    "fee.refused": N_("QuickBooks refused the late fee: %(error)s"),
    "fee.notice": N_("Tell the customer that a late fee of %(amount)s was added for invoice %(invoice)s."),
    "fee.waived.voided": N_("Late fee %(amount)s waived (fee invoice %(fee_invoice)s voided)"),
    "fee.waived.line": N_("Late fee %(amount)s waived (its line taken off invoice %(invoice)s)"),
    # why a row was cancelled before going out
    "cancel.email_not_configured": N_("Email is not configured (SENDGRID_API_KEY and SENDGRID_FROM_EMAIL): skipped."),
    "cancel.sms_not_configured": N_("Text messages are not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                                    "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID): skipped."),
    "cancel.misconfigured": N_("The %(channel)s channel is misconfigured: %(error)s"),
    "cancel.no_owner_email": N_("%(action)s Not emailed: no owner email is set (settings → owner_email)."),
    "cancel.owner_phone": N_("The owner phone cannot receive texts: %(error)s"),
    "cancel.customer_gone": N_("The customer is no longer in the mirror."),
    "cancel.no_email": N_("%(name)s has no email address any more."),
    "cancel.email_stopped": N_("Email to %(address)s is stopped (%(reason)s): not sent."),
    "cancel.no_phone": N_("%(name)s has no phone number that can receive texts."),
    "cancel.sms_stopped": N_("%(name)s opted out of texts (%(reason)s): not sent."),
    "cancel.deleted": N_("Cancelled: invoice %(invoice)s was deleted in QuickBooks."),
    "cancel.customer_changed": N_("Cancelled: invoice %(invoice)s was moved to another customer in QuickBooks; "
                                  "the next run plans it for that customer."),
    "cancel.customer_inactive": N_("Cancelled: %(name)s is inactive in QuickBooks, and nothing is sent or charged "
                                   "to an inactive customer. If the customer is made active again, the next run "
                                   "plans it again."),
    "cancel.fee_not_owed": N_("Cancelled: late fees on invoice %(invoice)s are no longer charged (waived, the "
                              "customer excluded, or a policy without this fee)."),
    "cancel.paid": N_("Cancelled: invoice %(invoice)s was paid in QuickBooks before sending."),
    "cancel.voided": N_("Cancelled: invoice %(invoice)s was voided in QuickBooks before sending."),
    "cancel.balance_changed": N_("Cancelled: the balance of invoice %(invoice)s changed in QuickBooks (%(before)s → "
                                 "%(after)s) since it was planned; the next run plans it again on the new figures."),
    "cancel.credit": N_("Cancelled: invoice %(invoice)s is settled by the customer's unused credit in QuickBooks "
                        "(%(credit)s, recorded since it was planned): nothing goes out for it until the credit is "
                        "applied or gone; the next run plans it again."),
    "cancel.credit.parent": N_("Cancelled: invoice %(invoice)s is settled by unused credit in QuickBooks, counting "
                               "that of %(holder)s, which the customer is billed with (%(credit)s, recorded since it "
                               "was planned): nothing goes out for it until the credit is applied or gone; the next "
                               "run plans it again."),
    "cancel.due_date_changed": N_("Cancelled: the due date of invoice %(invoice)s changed in QuickBooks (%(before)s → "
                                  "%(after)s); the next run plans it again."),
    # lines written to the customer's notes in QuickBooks (the note is written in English; the
    # timeline shows what was written in the reader's language)
    "note.reminder.sent": Np_("Reminder sent by %(channel)s: invoice %(invoices)s",
                              "Reminder sent by %(channel)s: invoices %(invoices)s"),
    "note.reminder.sent.no_invoice": N_("Reminder sent by %(channel)s"),
    "note.promise": N_("Promise to pay %(amount)s by %(until)s recorded"),
    "note.promise.end": N_("Promise closed"),
    "note.dispute": N_("Dispute recorded"),
    "note.dispute.invoices": N_("Dispute recorded (invoices %(invoices)s)"),
    "note.dispute.end": N_("Dispute resolved"),
    "note.plan": N_("Payment plan agreed"),
    "note.plan.invoices": N_("Payment plan agreed (invoices %(invoices)s)"),
    "note.plan.end": N_("Payment plan ended"),
    "note.manual": N_("Reminders paused until %(until)s"),
    "note.manual.open": N_("Reminders paused until further notice"),
    "note.manual.end": N_("Reminders resumed"),
    # rows settled after a crash or by a person
    "outbox.unknown": N_("Outcome unknown after a crash: %(action)s"),
    "outbox.reconciled": N_("Settled from provider events: %(action)s"),
    "outbox.reconciled.event": N_("Settled from a provider event (%(event)s): %(action)s"),
    "outbox.resolved.user": N_("User %(user)s decided '%(decision)s' for: %(action)s"),
    "outbox.resolved.person": N_("A person decided '%(decision)s' for: %(action)s"),
    # what the providers and the customer told us
    "email.event": N_("Email to %(address)s: %(event)s"),
    "email.event.detail": N_("Email to %(address)s: %(event)s (%(detail)s)"),
    "email.stopped": N_("Email to %(address)s is stopped (%(reason)s): no more reminders go to this address."),
    "sms.event": N_("Text to %(address)s: %(event)s"),
    "sms.event.error": N_("Text to %(address)s: %(event)s (error %(code)s)"),
    "sms.opt_out": N_("%(name)s (%(number)s) replied “%(body)s”: no more texts."),
    "sms.opt_in": N_("%(name)s (%(number)s) opted back in to texts."),
    "sms.help": N_("%(name)s (%(number)s) asked for help by text."),
    "email.address_changed": N_("The email address of %(name)s changed in QuickBooks to %(address)s: "
                                "reminders by email resume."),
    "email.resumed": N_("The stop on email to %(name)s (%(address)s) was lifted by hand: reminders by email resume."),
    "sms.number_changed": N_("The phone number of %(name)s changed in QuickBooks to %(number)s: texts resume."),
    "sms.reply": N_("%(name)s replied: “%(body)s”"),
    "sms.reply.unknown": N_("Text from unknown number %(number)s: “%(body)s”"),
    # owner alerts the program writes itself (the engine's alerts carry its reason)
    "alert.reply": N_("%(name)s replied by text: “%(body)s”"),
    "alert.reconnect": N_("QuickBooks needs to be reconnected for %(company)s: %(reason)s Nothing is sent until it is "
                          "reconnected on the settings page."),
    # the rules engine's owner alerts told from their fields, for readers in another language: the engine's own
    # English stays in ``reason`` (``dispatch.outbox.rows_for`` keeps these under ``payload["sentence"]``)
    "alert.sms_unregistered": N_("US carriers refuse the texts from your Twilio number: it is not registered for A2P "
                                 "10DLC (Twilio error 30034). Register it in Twilio's console (Regulatory "
                                 "compliance); until then no text reaches a US number."),
    "alert.sms_toll_free": N_("Carriers refuse the texts from your toll-free number: it is not verified (Twilio error "
                              "30032). Verify it in Twilio's console; until then texts fail."),
    "alert.sms_filtered": N_("A carrier filtered a reminder text as spam (Twilio error 30007). Check the wording of "
                             "your text templates and your sender's registration in Twilio."),
    "alert.late": N_("Invoice %(invoice)s of %(name)s became late: it was due on %(due)s."),
    "alert.step": Np_("Step %(step)s for invoice %(invoices)s of %(name)s: the policy asks you to follow up with "
                      "them yourself.",
                      "Step %(step)s for invoices %(invoices)s of %(name)s: the policy asks you to follow up with "
                      "them yourself."),
    "alert.unreachable": Np_("Step %(step)s for invoice %(invoices)s: %(name)s cannot be reached by %(channels)s "
                             "(no address or opted out): contact them another way.",
                             "Step %(step)s for invoices %(invoices)s: %(name)s cannot be reached by %(channels)s "
                             "(no address or opted out): contact them another way."),
    "alert.promise_broken": N_("%(name)s promised to pay %(amount)s by %(until)s and has not: reminders resume at "
                               "the next step."),
    "alert.instalment_missed": N_("%(name)s missed instalment %(n)s of %(amount)s due %(due)s."),
    "alert.credit.partial": N_("%(name)s has %(amount)s of credit in QuickBooks that is not applied to any invoice "
                               "(credit memos, unapplied payments). Applied, it pays %(part)s of invoice %(invoice)s, "
                               "whose reminders ask for the whole balance until then: apply the credit to it in "
                               "QuickBooks."),
    "alert.credit": Np_("%(name)s has %(amount)s of credit in QuickBooks that is not applied to any invoice "
                        "(credit memos, unapplied payments). It settles invoice %(invoices)s, so no reminder goes "
                        "out for it: apply the credit to it in QuickBooks.",
                        "%(name)s has %(amount)s of credit in QuickBooks that is not applied to any invoice "
                        "(credit memos, unapplied payments). It settles invoices %(invoices)s, so no reminder goes "
                        "out for them: apply the credit to them in QuickBooks."),
    # the same, when the credit counts that of the parent the customer is billed with
    "alert.credit.partial.parent": N_("%(name)s has %(amount)s of credit in QuickBooks that is not applied to any "
                                      "invoice (credit memos, unapplied payments, counting those of %(holder)s, which "
                                      "it is billed with). Applied, it pays %(part)s of invoice %(invoice)s, whose "
                                      "reminders ask for the whole balance until then: apply the credit to it in "
                                      "QuickBooks."),
    "alert.credit.parent": Np_("%(name)s has %(amount)s of credit in QuickBooks that is not applied to any invoice "
                               "(credit memos, unapplied payments, counting those of %(holder)s, which it is billed "
                               "with). It settles invoice %(invoices)s, so no reminder goes out for it: apply the "
                               "credit to it in QuickBooks.",
                               "%(name)s has %(amount)s of credit in QuickBooks that is not applied to any invoice "
                               "(credit memos, unapplied payments, counting those of %(holder)s, which it is billed "
                               "with). It settles invoices %(invoices)s, so no reminder goes out for them: apply the "
                               "credit to them in QuickBooks."),
    # why a row's outcome is unknown (its ``status_reason``, shown on the Upcoming page)
    "outbox.unknown.crash": N_("The run stopped after this message was handed to the provider and before its answer "
                               "was recorded: it may or may not have gone out. It will not be resent automatically; "
                               "provider events settle it, or decide on the outbox page."),
}

# Words inside sentences, by group. Unknown values are shown as they are.
TERMS: dict[str, dict[str, str]] = {
    "channel": {"email": N_("email"), "sms": N_("text message"), "qbo_fee": N_("QuickBooks invoice"),
                "qbo_notes": N_("QuickBooks notes"), "call_task": N_("call"), "letter_task": N_("letter"),
                "handoff_task": N_("hand-off"), "owner_email": N_("email to you"), "owner_sms": N_("text to you")},
    # SendGrid events and Twilio statuses (``Outbox.provider_status`` holds either)
    "event": {"processed": N_("processed"), "deferred": N_("delayed"), "delivered": N_("delivered"),
              "open": N_("opened"), "click": N_("clicked"), "bounce": N_("bounced back"), "dropped": N_("dropped"),
              "spamreport": N_("reported as spam"), "unsubscribe": N_("unsubscribed"),
              "group_unsubscribe": N_("unsubscribed from the group"), "group_resubscribe": N_("resubscribed"),
              "accepted": N_("accepted"), "scheduled": N_("scheduled"), "queued": N_("queued"),
              "sending": N_("sending"), "sent": N_("sent"), "undelivered": N_("undelivered"), "failed": N_("failed"),
              "read": N_("read"), "canceled": N_("canceled"), "received": N_("received")},
    # why an address or a number is stopped (``ContactBlock.reason``, ``Customer.*_stopped``)
    "stop": {"bounce": N_("bounced back"), "spamreport": N_("reported as spam"), "unsubscribe": N_("unsubscribed"),
             "invalid": N_("invalid address"), "blocked": N_("blocked"), "stop": N_("STOP"),
             "21610": N_("opted out at the carrier (Twilio 21610)"),
             "landline": N_("landline"), "unknown number": N_("unknown number"), "unreachable": N_("unreachable")},
    "call_outcome": {"reached": N_("spoke to them"), "voicemail": N_("left a voicemail"), "no_answer": N_("no answer"),
                     "wrong_number": N_("wrong number")},
    "decision": {"sent": N_("sent"), "resend": N_("send again"), "cancel": N_("cancel")},
    "language": {"en": N_("English"), "fr": N_("French")},
}


@dataclasses.dataclass(frozen=True)
class Text:
    """One sentence of ``MESSAGES`` with its arguments, and what a person typed after it (``note``)."""

    key: str
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        if self.key not in MESSAGES:
            raise KeyError(f"no timeline sentence {self.key!r}")

    def english(self) -> str:
        """The plain English sentence stored beside the key: ISO dates, "1200.00 EUR", the words of ``TERMS``."""
        template = MESSAGES[self.key]
        if isinstance(template, tuple):
            template = template[0] if self.args.get("num") == 1 else template[1]
        sentence = template % {k: plain(v) for k, v in self.args.items()}
        return f"{sentence} {self.note}" if self.note else sentence

    def stored_args(self) -> dict[str, Any]:
        """The arguments as stored (JSON), the note under ``"note"``."""
        return {**self.args, **({"note": self.note} if self.note else {})}

    def __str__(self) -> str:
        return self.english()


def text(key: str, *, note: str = "", **args: Any) -> Text:
    return Text(key, args, note)


def plain(value: Any) -> str:
    """An argument in the stored English sentence."""
    if not isinstance(value, dict):
        return str(value)
    if "date" in value:
        return str(value["date"])
    if "money" in value:
        return f"{value['money']} {value.get('currency') or ''}".rstrip()
    if "number" in value:
        return str(value["number"])
    if "invoices" in value:
        return ", ".join(map(str, value["invoices"])) or "all invoices"
    if "term" in value:
        return TERMS.get(value.get("of", ""), {}).get(value["term"], str(value["term"]))
    if "terms" in value:
        return ", ".join(TERMS.get(value.get("of", ""), {}).get(t, str(t)) for t in value["terms"])
    if "error" in value:
        return str(value["error"]) % {"detail": value["detail"]} if "detail" in value else str(value["error"])
    if "action" in value:
        return str(value["action"].get("reason") or "")
    return str(value)


# --- typed arguments ------------------------------------------------------------------------

def date(value: dt.date | str) -> dict[str, str]:
    return {"date": value.isoformat() if isinstance(value, dt.date) else str(value)[:10]}


def money(amount: Decimal | str | int, currency: str | None) -> dict[str, str]:
    return {"money": str(amount), "currency": currency or ""}


def number(value: Decimal | str | int) -> dict[str, str]:
    return {"number": str(value)}


def invoices(numbers: Iterable[str]) -> dict[str, list[str]]:
    return {"invoices": [str(n) for n in numbers]}


def term(group: str, value: str) -> dict[str, str]:
    return {"term": value, "of": group}


def terms(group: str, values: Iterable[str]) -> dict[str, Any]:
    return {"terms": [str(v) for v in values], "of": group}


def error(message: str, detail: str | None = None) -> dict[str, str]:
    """One of the program's error sentences; with ``detail`` (a provider's own words, never
    translated), a sentence with a ``%(detail)s`` placeholder for them."""
    return {"error": message, "detail": detail} if detail is not None else {"error": message}


def action(row: Any) -> dict[str, Any]:
    """An outbox row (or a ``PlannedRow``) as an argument: its English reason and the fields that describe it."""
    payload = getattr(row, "payload", None) or {}
    ids = list(getattr(row, "invoice_ids", None) or ())
    numbers = list(payload.get("numbers") or getattr(row, "invoice_numbers", None) or ids)
    amount = getattr(row, "amount", None)
    fields = {
        "kind": row.kind, "channel": row.channel, "template": getattr(row, "template_key", None),
        "step": getattr(row, "step", None), "invoices": [str(n) for n in numbers],
        "amount": str(amount) if amount is not None else None, "currency": getattr(row, "currency", None),
        "task": payload.get("task"), "topic": payload.get("topic"), "fee_kind": payload.get("fee_kind"),
        "reason": row.reason, "reason_key": getattr(row, "reason_key", None),
        "reason_args": getattr(row, "reason_args", None), "sentence": payload.get("sentence"),
        "said": payload.get("said"),
    }
    return {"action": {k: v for k, v in fields.items() if v is not None}}
