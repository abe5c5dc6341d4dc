"""The customer timeline in the reader's language.

A row that carries a ``qbo_collector.timeline`` key is shown as that sentence of the
catalogue, its dates and amounts formatted by Babel in the reader's locale; a row without
one (written before keys existed, or a person's own note) is shown as stored. A rules-engine
reason (an outbox row without a key) is English: English readers see it, others a
description built from the row's fields, as the Upcoming page does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import format_currency, format_date, format_decimal, get_locale, gettext, lazy_gettext, ngettext

from qbo_collector import timeline
from qbo_collector.db import models

# The labels of the Upcoming page (same catalogue entries).
TEMPLATE_LABELS = {
    "reminder_before_due": lazy_gettext("Before the due date"), "reminder_due_today": lazy_gettext("Due today"),
    "reminder_overdue_gentle": lazy_gettext("Overdue, gentle"), "reminder_overdue_firm": lazy_gettext("Overdue, firm"),
    "reminder_final": lazy_gettext("Final reminder"), "statement": lazy_gettext("Statement"),
    "late_fee_notice": lazy_gettext("Late fee notice"), "promise_broken": lazy_gettext("Promise broken"),
    "owner_alert": lazy_gettext("Alert to you"),
}
FEE_LABELS = {"flat": lazy_gettext("Flat fee"), "percent": lazy_gettext("Percentage fee"),
              "interest": lazy_gettext("Interest"), "indemnity": lazy_gettext("Recovery indemnity")}
TASK_LABELS = {"call": lazy_gettext("Call the customer"), "letter": lazy_gettext("Send a letter"),
               "handoff": lazy_gettext("Hand the debt over")}
TOPIC_LABELS = {
    "late": lazy_gettext("An invoice became late"), "promise_broken": lazy_gettext("Promise broken"),
    "instalment_missed": lazy_gettext("Instalment missed"), "unreachable": lazy_gettext("Customer cannot be reached"),
    "step": lazy_gettext("Step to do by hand"), "reply": lazy_gettext("The customer replied"),
    "reconnect": lazy_gettext("QuickBooks must be reconnected"),
    "undeliverable": lazy_gettext("A message could not be delivered"),
}


def sentence(key: str | None, args: Mapping[str, Any] | None, fallback: str) -> str:
    """The sentence ``key`` in the reader's language; ``fallback`` (the stored English) without a usable key."""
    template = timeline.MESSAGES.get(key or "")
    if template is None:
        return fallback
    values = dict(args or {})
    note = str(values.pop("note", "") or "")
    try:
        formatted = {k: value(v) for k, v in values.items()}
        if isinstance(template, tuple):
            formatted.pop("num", None)  # ngettext's own argument, shown as the number it is
            said = ngettext(template[0], template[1], int(values.get("num") or 0), **formatted)
        else:
            said = gettext(template, **formatted) if formatted else gettext(template)
    except (KeyError, ValueError, TypeError, ArithmeticError, InvalidOperation):
        return fallback  # arguments this version cannot read: the English as written
    return f"{said} {note}" if note else said


def value(v: Any) -> str:
    """One argument of a sentence, for the reader (see ``qbo_collector.timeline`` for the shapes)."""
    if not isinstance(v, dict):
        return str(v)
    if "date" in v:
        return format_date(dt.date.fromisoformat(str(v["date"])[:10]), "medium")  # type: ignore[no-any-return]
    if "money" in v:
        if v["money"] in (None, ""):
            return ""
        amount = Decimal(str(v["money"]))
        return format_currency(amount, v["currency"]) if v.get("currency") else _decimal(str(v["money"]))  # type: ignore[no-any-return]
    if "number" in v:
        return _decimal(str(v["number"]))
    if "invoices" in v:
        return ", ".join(map(str, v["invoices"])) or gettext("all invoices")
    if "term" in v:
        return term(str(v.get("of", "")), v["term"])
    if "error" in v:
        return gettext(str(v["error"]))  # type: ignore[no-any-return]
    if "action" in v:
        return action(v["action"])
    return str(v)


def _decimal(text: str) -> str:
    places = len(text.split(".", 1)[1]) if "." in text else 0
    return format_decimal(Decimal(text), format="#,##0." + "0" * places if places else "#,##0")  # type: ignore[no-any-return]


def term(group: str, word: str | None) -> str:
    """A word of ``timeline.TERMS`` (a channel, a provider event…) in the reader's language; unknown ones as they are."""
    if not word:
        return ""
    known = timeline.TERMS.get(group, {}).get(word)
    return gettext(known) if known else word  # type: ignore[no-any-return]


def _english() -> bool:
    locale = get_locale()
    return locale is None or locale.language == "en"


def action(fields: Mapping[str, Any]) -> str:
    """An outbox row (``timeline.action``): its sentence when it has a key; else, in English, the rules
    engine's reason, and in another language a description from its kind, step, invoices and amount."""
    if fields.get("reason_key"):
        return sentence(fields["reason_key"], fields.get("reason_args"), str(fields.get("reason") or ""))
    if fields.get("kind") == "note" or (_english() and fields.get("reason")):
        return str(fields.get("reason") or "")  # a notes line of an older version: as written to QuickBooks
    return describe(fields)


def describe(fields: Mapping[str, Any]) -> str:
    kind = fields.get("kind")
    numbers = [str(n) for n in fields.get("invoices") or ()]
    parts: list[str] = []
    if kind == "reminder":
        template = fields.get("template")
        parts.append(gettext("Reminder “%(template)s”", template=TEMPLATE_LABELS.get(template or "", template or "")))
        if fields.get("step") is not None:
            parts.append(gettext("step %(n)s", n=int(fields["step"]) + 1))
    elif kind == "fee":
        label = FEE_LABELS.get(fields.get("fee_kind") or "", lazy_gettext("Late fee"))
        if fields.get("amount") is not None and fields.get("currency"):
            label = gettext("%(fee)s of %(amount)s", fee=label,
                            amount=value(timeline.money(fields["amount"], fields["currency"])))
        parts.append(str(label))
    elif kind == "task":
        parts.append(str(TASK_LABELS.get(fields.get("task") or "", lazy_gettext("Task"))))
    elif kind == "alert":
        parts.append(gettext("Alert to you: %(topic)s",
                             topic=TOPIC_LABELS.get(fields.get("topic") or "", fields.get("topic") or "")))
    else:
        parts.append(str(kind or ""))
    if numbers:
        parts.append(ngettext("invoice %(list)s", "invoices %(list)s", len(numbers), list=", ".join(numbers)))
    if kind in ("reminder", "alert") and fields.get("channel"):
        parts.append(gettext("by %(channel)s", channel=term("channel", fields["channel"])))
    return ", ".join(p for p in parts if p)


def outbox_text(row: models.Outbox) -> str:
    """What an outbox row shown on the timeline is about."""
    return action(timeline.action(row)["action"])
