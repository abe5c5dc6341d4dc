"""The sentences of ``timeline`` in a reader's language, with or without Flask.

A ``Reader`` is a catalogue and a Babel locale. The pages make one from Flask-Babel's for their
user (``web/pages/timeline.py``); the dispatcher, which has no request, makes one for a company's
owner from the same compiled catalogue (``reader("fr", "fr_FR")``), so an owner alert reads like
the pages:

    said = translation.reader("fr", "fr_FR")
    said.sentence("pause", {"until": {"date": "2027-01-04"}}, "…")   # "Relances suspendues jusqu’au 4 janv. 2027."
    said.action(timeline.action(row)["action"])                      # an outbox row in French

A row with a key is its sentence of the catalogue; an English reader reads an engine row's own
reason; another reader its ``sentence`` (the engine's owner alerts) or a description from its
fields. The catalogue is the pages' (``web/translations``, compiled, shipped with the package):
this module reads its files and never imports ``web``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gettext as gettext_mod
import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel import support

from qbo_collector import timeline
from qbo_collector.timeline import N_

log = logging.getLogger(__name__)

# Installed side by side with this package (one distribution: ``qbo_collector`` and ``web``).
CATALOGUE = Path(__file__).resolve().parent.parent / "web" / "translations"

# Labels of an outbox row's fields (the Upcoming page's template has the same catalogue entries).
TEMPLATE_LABELS = {
    "reminder_before_due": N_("Before the due date"), "reminder_due_today": N_("Due today"),
    "reminder_overdue_gentle": N_("Overdue, gentle"), "reminder_overdue_firm": N_("Overdue, firm"),
    "reminder_final": N_("Final reminder"), "statement": N_("Statement"),
    "late_fee_notice": N_("Late fee notice"), "promise_broken": N_("Promise broken"),
    "owner_alert": N_("Alert to you"),
}
FEE_LABELS = {"flat": N_("Flat fee"), "percent": N_("Percentage fee"), "interest": N_("Interest"),
              "indemnity": N_("Recovery indemnity")}
# The name of an invoice's PDF attached to an email, in the customer's language, and why one was not.
ATTACHMENT_NAME = N_("Invoice-%(number)s.pdf")
PDF_NOT_MADE = N_("QuickBooks did not make the PDF (it answered with an error or not at all).")
PDF_NOT_PDF = N_("QuickBooks answered something that is not a PDF.")
PDF_TOO_LARGE = N_("The PDFs together are too large for one email.")
PDF_NOT_CONNECTED = N_("QuickBooks is not connected: the PDF could not be asked for.")
PDF_REFUSED = N_("QuickBooks refused the PDF: %(detail)s")
TASK_LABELS = {"call": N_("Call the customer"), "letter": N_("Send a letter"), "handoff": N_("Hand the debt over")}
TOPIC_LABELS = {
    "late": N_("An invoice became late"), "promise_broken": N_("Promise broken"),
    "instalment_missed": N_("Instalment missed"), "unreachable": N_("Customer cannot be reached"),
    "step": N_("Step to do by hand"), "reply": N_("The customer replied"),
    "reconnect": N_("QuickBooks must be reconnected"), "undeliverable": N_("A message could not be delivered"),
    "credit": N_("Unused credit to apply"), "fee_tax_code": N_("Late fees on hold"),
}


@functools.cache
def catalogue(language: str) -> gettext_mod.NullTranslations:
    """The compiled catalogue of ``language`` (none for English: the sentences are written in English)."""
    if language == "en":
        return support.NullTranslations()
    found = support.Translations.load(str(CATALOGUE), [language])
    if not isinstance(found, support.Translations):
        log.warning("no %s catalogue in %s: sentences are shown in English", language, CATALOGUE)
    return found


def reader(language: str, locale: str) -> Reader:
    """A reader of ``language`` (the catalogue) with dates and amounts in ``locale`` ("fr_CA")."""
    return Reader(locale=locale, translations=catalogue(language))


@dataclasses.dataclass(frozen=True)
class Reader:
    """Sentences, words and figures for one reader: ``translations`` (gettext), ``locale`` (Babel)."""

    locale: str
    translations: gettext_mod.NullTranslations

    @property
    def english(self) -> bool:
        return self.locale.split("_")[0] == "en"

    def gettext(self, message: str, **values: Any) -> str:
        said = self.translations.gettext(message)
        return said % values if values else said

    def ngettext(self, singular: str, plural: str, num: int, **values: Any) -> str:
        values.setdefault("num", num)  # as Flask-Babel: the count is a placeholder of its own
        return self.translations.ngettext(singular, plural, num) % values

    # --- sentences and their arguments ----------------------------------------------------

    def sentence(self, key: str | None, args: Mapping[str, Any] | None, fallback: str) -> str:
        """The sentence ``key`` in this reader's language; ``fallback`` (the stored English) without a usable key."""
        template = timeline.MESSAGES.get(key or "")
        if template is None:
            return fallback
        values = dict(args or {})
        note = str(values.pop("note", "") or "")
        try:
            formatted = {k: self.value(v) for k, v in values.items()}
            if isinstance(template, tuple):
                formatted.pop("num", None)  # ngettext's own argument, shown as the number it is
                said = self.ngettext(template[0], template[1], int(values.get("num") or 0), **formatted)
            else:
                said = self.gettext(template, **formatted)
        except (KeyError, ValueError, TypeError, ArithmeticError, InvalidOperation):
            return fallback  # arguments this version cannot read: the English as written
        return f"{said} {note}" if note else said

    def value(self, v: Any) -> str:
        """One argument of a sentence (see ``timeline`` for the shapes)."""
        if not isinstance(v, dict):
            return str(v)
        if "date" in v:
            return babel_dates.format_date(dt.date.fromisoformat(str(v["date"])[:10]), "medium", locale=self.locale)
        if "money" in v:
            if v["money"] in (None, ""):
                return ""
            if not v.get("currency"):
                return self._decimal(str(v["money"]))
            return babel_numbers.format_currency(Decimal(str(v["money"])), v["currency"], locale=self.locale)
        if "number" in v:
            return self._decimal(str(v["number"]))
        if "invoices" in v:
            return ", ".join(map(str, v["invoices"])) or self.gettext("all invoices")
        if "term" in v:
            return self.term(str(v.get("of", "")), v["term"])
        if "terms" in v:
            return ", ".join(self.term(str(v.get("of", "")), t) for t in v["terms"])
        if "error" in v:
            return self.gettext(str(v["error"]), detail=v["detail"]) if "detail" in v else self.gettext(str(v["error"]))
        if "action" in v:
            return self.action(v["action"])
        return str(v)

    def _decimal(self, text: str) -> str:
        places = len(text.split(".", 1)[1]) if "." in text else 0
        return babel_numbers.format_decimal(Decimal(text), format="#,##0." + "0" * places if places else "#,##0",
                                            locale=self.locale)

    def term(self, group: str, word: str | None) -> str:
        """A word of ``timeline.TERMS`` (a channel, a provider event…); unknown ones as they are."""
        if not word:
            return ""
        known = timeline.TERMS.get(group, {}).get(word)
        return self.gettext(known) if known else word

    # --- outbox rows ----------------------------------------------------------------------

    def action(self, fields: Mapping[str, Any]) -> str:
        """An outbox row (``timeline.action``): what it says (``reason``), else a description from its fields."""
        said = self.reason(fields)
        return said if said is not None else self.describe(fields)

    def reason(self, fields: Mapping[str, Any]) -> str | None:
        """Why the row exists, in this reader's language: its sentence when it has a key; an engine row's own
        English for an English reader, its ``sentence`` for another; None when only its fields can tell. An
        alert told in each language by ``alerts`` (``said``: language → sentence) reads in this reader's."""
        said = fields.get("said")
        if isinstance(said, Mapping) and said.get(self.locale.split("_")[0]):
            return str(said[self.locale.split("_")[0]])
        if fields.get("reason_key"):
            return self.sentence(fields["reason_key"], fields.get("reason_args"), str(fields.get("reason") or ""))
        if fields.get("kind") == "note" or (self.english and fields.get("reason")):
            return str(fields.get("reason") or "")  # a notes line of an older version: as written to QuickBooks
        said = fields.get("sentence")
        if isinstance(said, Mapping) and said.get("key") in timeline.MESSAGES:
            told = self.sentence(said["key"], said.get("args"), "")
            return told or None
        return None

    def describe(self, fields: Mapping[str, Any]) -> str:
        """A row from its kind, step, template, invoices, amount and channel ("Relance « En retard, aimable »,
        étape 3, facture 1042, par e-mail")."""
        kind = fields.get("kind")
        numbers = [str(n) for n in fields.get("invoices") or ()]
        parts: list[str] = []
        if kind == "reminder":
            template = fields.get("template") or ""
            label = TEMPLATE_LABELS.get(template)
            parts.append(self.gettext("Reminder “%(template)s”", template=self.gettext(label) if label else template))
            if fields.get("step") is not None:
                parts.append(self.gettext("step %(n)s", n=int(fields["step"]) + 1))
        elif kind == "fee":
            label = self.gettext(FEE_LABELS.get(fields.get("fee_kind") or "", N_("Late fee")))
            if fields.get("amount") is not None and fields.get("currency"):
                label = self.gettext("%(fee)s of %(amount)s", fee=label,
                                     amount=self.value(timeline.money(fields["amount"], fields["currency"])))
            parts.append(label)
        elif kind == "task":
            parts.append(self.gettext(TASK_LABELS.get(fields.get("task") or "", N_("Task"))))
        elif kind == "alert":
            topic = fields.get("topic") or ""
            parts.append(self.gettext("Alert to you: %(topic)s",
                                      topic=self.gettext(TOPIC_LABELS[topic]) if topic in TOPIC_LABELS else topic))
        else:
            parts.append(str(kind or ""))
        if numbers:
            parts.append(self.ngettext("invoice %(list)s", "invoices %(list)s", len(numbers), list=", ".join(numbers)))
        if kind in ("reminder", "alert") and fields.get("channel"):
            parts.append(self.gettext("by %(channel)s", channel=self.term("channel", fields["channel"])))
        return ", ".join(p for p in parts if p)
