"""The timeline's sentences: the English stored beside each key, and a French translation of every one."""

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.support import Translations

from qbo_collector import timeline

TRANSLATIONS = Path(__file__).resolve().parents[3] / "web" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
SAME_IN_FRENCH = {"%(action)s", "%(error)s", "STOP"}


@pytest.fixture(scope="module")
def french() -> Translations:
    return Translations.load(str(TRANSLATIONS), ["fr"])


def _pairs(french: Translations, template: str | tuple[str, str]) -> list[tuple[str, str]]:
    if isinstance(template, tuple):
        return [(template[0], french.ungettext(template[0], template[1], 1)),
                (template[1], french.ungettext(template[0], template[1], 2))]
    return [(template, french.ugettext(template))]


@pytest.mark.parametrize("key", sorted(timeline.MESSAGES))
def test_every_sentence_has_a_french_translation_with_the_same_placeholders(french, key):
    for english, translated in _pairs(french, timeline.MESSAGES[key]):
        assert translated != english or english in SAME_IN_FRENCH, f"{key}: not translated"
        assert sorted(PLACEHOLDER.findall(translated)) == sorted(PLACEHOLDER.findall(english)), key


@pytest.mark.parametrize("group", sorted(timeline.TERMS))
def test_every_word_has_a_french_translation(french, group):
    missing = [w for w in timeline.TERMS[group].values() if french.ugettext(w) == w and w not in SAME_IN_FRENCH]
    assert not missing, f"{group}: {missing}"


ROW = SimpleNamespace(kind="reminder", channel="email", template_key="reminder_overdue_gentle", step=2,
                      invoice_ids=["101"], payload={"numbers": ["F-1001"]}, amount=None, currency=None,
                      reason="Step 3 'reminder_overdue_gentle' for invoice F-1001 of Dubois by email.")


@pytest.mark.parametrize(("text", "english"), [
    pytest.param(timeline.text("promise", amount=timeline.money("1200.00", "EUR"), until=timeline.date(dt.date(2026, 12, 10)),
                               invoices=timeline.invoices(["F-1001"])),
                 "Promise to pay 1200.00 EUR by 2026-12-10 (F-1001).", id="plain amount and ISO date"),
    pytest.param(timeline.text("dispute", invoices=timeline.invoices([]), note="Wrong quantity"),
                 "Dispute opened (all invoices): Wrong quantity", id="no invoice chosen is every invoice; the note follows"),
    pytest.param(timeline.text("plan", num=1, total=timeline.money("100.00", "EUR"), until=timeline.date("2026-12-15")),
                 "Payment plan: 1 instalment, 100.00 EUR until 2026-12-15.", id="one instalment is singular"),
    pytest.param(timeline.text("call", outcome=timeline.term("call_outcome", "no_answer")),
                 "Call (no answer).", id="a word of TERMS"),
    pytest.param(timeline.text("email.event", address="a@b.example", event=timeline.term("event", "mystery")),
                 "Email to a@b.example: mystery", id="an unknown provider word as it came"),
    pytest.param(timeline.text("skipped", action=timeline.action(ROW)),
                 "Skipped: Step 3 'reminder_overdue_gentle' for invoice F-1001 of Dubois by email.",
                 id="an outbox row is its own reason in English"),
])
def test_the_english_sentence_stored_beside_the_key(text, english):
    assert text.english() == english == str(text)


def test_the_stored_arguments_keep_the_note_and_the_row_fields():
    text = timeline.text("skipped", action=timeline.action(ROW), note="Already paid by cheque")
    stored = text.stored_args()
    assert stored["note"] == "Already paid by cheque"
    assert stored["action"]["action"] == {"kind": "reminder", "channel": "email", "template": "reminder_overdue_gentle",
                                          "step": 2, "invoices": ["F-1001"], "reason": ROW.reason}


def test_an_unknown_key_is_refused_when_written():
    with pytest.raises(KeyError, match="no timeline sentence"):
        timeline.text("reminder.sent.by.pigeon")
