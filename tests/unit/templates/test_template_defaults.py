"""The shipped texts: every key in every language renders, reads politely, and fits an SMS."""

from __future__ import annotations

import datetime
import re

import pytest

from qbo_collector import templates
from qbo_collector.money import Money
from qbo_collector.templates import sms

PAYMENT_LINK = "https://connect.intuit.com/pay/invoice/scs-v1-4f2a9c71e0b84d2f"  # as in conftest.py

CASES = [(key, language) for language in templates.LANGUAGES for key in templates.KEYS]
CASE_IDS = [f"{key.replace('_', ' ')} in {language}" for key, language in CASES]
CUSTOMER_KEYS = [key for key in templates.KEYS if key != "owner_alert"]

FORBIDDEN = ["net 30", "n30", "net30", "legal action", "lawyer", "attorney", "court", "poursuites",
             "huissier", "avocat", "tribunal", "contentieux", "mise en demeure"]


def test_every_key_is_shipped_in_every_language() -> None:
    for language in templates.LANGUAGES:
        assert list(templates.defaults(language)) == list(templates.KEYS)
        for key in templates.KEYS:
            template = templates.default(key, language)
            assert (template.key, template.language) == (key, language)
            assert all(getattr(template, part).strip() for part in templates.PARTS)


@pytest.mark.parametrize(("key", "language"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("minimal", [False, True], ids=["with every optional part", "with no PO, link or discount"])
def test_default_renders(context_factory, key: str, language: str, minimal: bool) -> None:
    context = context_factory(language, minimal=minimal)
    message = templates.render(templates.default(key, language), context)
    assert message.subject and "\n" not in message.subject
    assert "1042" in message.text + message.subject or key == "owner_alert"
    assert message.html.startswith("<!DOCTYPE html>") and f'lang="{language}"' in message.html
    assert message.sms and message.sms.startswith(context.company_name)
    if key != "owner_alert":
        assert context.customer_name in message.text
        assert ("PO-7781" in message.text) is (not minimal)


@pytest.mark.parametrize(("key", "language"), CASES, ids=CASE_IDS)
def test_every_default_part_passes_validation(key: str, language: str) -> None:
    template = templates.default(key, language)
    for part in templates.PARTS:
        templates.validate(getattr(template, part), part=part, key=key)


@pytest.mark.parametrize(("key", "language"), CASES, ids=CASE_IDS)
def test_default_never_threatens_or_uses_jargon(key: str, language: str) -> None:
    template = templates.default(key, language)
    for part in templates.PARTS:
        source = getattr(template, part).lower()
        for word in FORBIDDEN:
            assert not re.search(rf"\b{re.escape(word)}\b", source), f"{word!r} in {key}/{language}/{part}"


@pytest.mark.parametrize(("key", "language"), [(k, lang) for lang in templates.LANGUAGES for k in CUSTOMER_KEYS],
                         ids=[f"{k.replace('_', ' ')} in {lang}" for lang in templates.LANGUAGES for k in CUSTOMER_KEYS])
def test_customer_messages_thank_and_excuse_those_who_already_paid(context_factory, key: str, language: str) -> None:
    message = templates.render(templates.default(key, language), context_factory(language))
    if language == "en":
        assert "If you have already paid, thank you, and please ignore this message." in message.text
        assert "Already paid? Thank you!" in message.sms or key == "statement" and "Thank you!" in message.sms
    else:
        assert "Si vous avez déjà réglé" in message.text and "merci beaucoup" in message.text
        assert "Déjà réglé ? Merci !" in message.sms


@pytest.mark.parametrize(("key", "language"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("minimal", [False, True], ids=["with a payment link and discount", "minimal"])
def test_sms_default_fits_two_gsm7_segments(context_factory, key: str, language: str, minimal: bool) -> None:
    message = templates.render(templates.default(key, language), context_factory(language, minimal=minimal))
    assert sms.encoding(message.sms) == "GSM-7", message.sms
    assert sms.segments(message.sms) <= 2, (sms.length(message.sms), message.sms)
    if not minimal and key not in ("statement", "owner_alert"):
        assert PAYMENT_LINK in message.sms


REMINDERS = ["reminder_before_due", "reminder_due_today", "reminder_overdue_gentle", "reminder_overdue_firm",
             "reminder_final", "late_fee_notice", "promise_broken"]
PAY = {"en": ("Pay online: ", "reply to this email"), "fr": ("Payer en ligne : ", "répondre à ce message")}


@pytest.mark.parametrize(("key", "language"), [(k, lang) for lang in templates.LANGUAGES for k in REMINDERS],
                         ids=[f"{k.replace('_', ' ')} in {lang}" for lang in templates.LANGUAGES for k in REMINDERS])
def test_payment_link_when_there_is_one_and_a_way_to_reach_us_otherwise(context_factory, key: str, language: str) -> None:
    pay_online, reply = PAY[language]
    with_link = templates.render(templates.default(key, language), context_factory(language))
    assert f"{pay_online}{PAYMENT_LINK}" in with_link.text
    assert f'href="{PAYMENT_LINK}"' in with_link.html
    without = templates.render(templates.default(key, language), context_factory(language, minimal=True))
    assert pay_online not in without.text and reply in without.text and reply in without.html


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", ["Pay by Nov 30, 2026 and you save $24.69 (2% early-payment discount).", "$1,234.50",
                "is due on Nov 23, 2026, as our invoices are due within 30 days."]),
        ("fr", ["En réglant avant le 30 novembre 2026, vous bénéficiez d'un escompte de 24,69\xa0€ (2\xa0% pour paiement anticipé).",
                "1\u202f234,50\xa0€", "arrive à échéance le 23 novembre 2026, nos factures étant payables à 30\xa0jours."]),
    ],
    ids=["before due in English offers the discount in plain words", "before due in French offers l'escompte"],
)
def test_before_due_offers_the_early_payment_discount(context_factory, invoice_factory, language: str, expected: list[str]) -> None:
    currency = "EUR" if language == "fr" else "USD"
    context = context_factory(language, invoices=(invoice_factory(currency=currency),))
    message = templates.render(templates.default("reminder_before_due", language), context)
    for sentence in expected:
        assert sentence in message.text


@pytest.mark.parametrize(
    ("key", "language", "expected"),
    [
        ("reminder_overdue_firm", "en", "\n\nA late fee of 1.5% of the unpaid balance is added"),
        ("reminder_overdue_firm", "fr", "\n\nDes frais de retard de 1,5\xa0% du solde impayé"),
        ("late_fee_notice", "en", "a late fee of $18.52 has been added to your account."),
        ("late_fee_notice", "fr", "des frais de retard de 18,52\xa0€ ont été ajoutés à votre compte."),
        ("promise_broken", "en", "you planned to pay $1,234.50 by Nov 20, 2026."),
        ("promise_broken", "fr", "régler 1\u202f234,50\xa0€ au plus tard le 20 novembre 2026."),
        ("reminder_final", "en", "Samantha Patel will call you personally"),
        ("reminder_final", "fr", "Claire Dubois-Martin vous appellera personnellement"),
        ("owner_alert", "en", "Invoice 1042 is now late."),
        ("owner_alert", "fr", "La facture 1042 est maintenant en retard."),
    ],
    ids=[
        "firm reminder states the late-fee policy in English",
        "firm reminder states the late-fee policy in French",
        "late fee notice names the fee in English",
        "late fee notice names the fee in French",
        "broken promise recalls amount and date in English",
        "broken promise recalls amount and date in French",
        "final notice hands over to the owner's call in English",
        "final notice hands over to the owner's call in French",
        "owner alert carries the reason in English",
        "owner alert carries the reason in French",
    ],
)
def test_step_specific_content(context_factory, key: str, language: str, expected: str) -> None:
    assert expected in templates.render(templates.default(key, language), context_factory(language)).text


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        ("en", ["Total due in USD: $1,434.50", "Total due in EUR: €300.00"]),
        ("fr", ["Total à régler en USD : 1\u202f434,50\xa0$US", "Total à régler en EUR : 300,00\xa0€"]),
    ],
    ids=["statement in English totals each currency", "statement in French totals each currency"],
)
def test_statement_lists_every_open_invoice_with_a_total_per_currency(context_factory, invoice_factory, language: str, lines: list[str]) -> None:
    invoices = (
        invoice_factory(number="1042", currency="USD"),
        invoice_factory(number="1057", currency="USD", balance=Money.of("200", "USD"), po_number=None),
        invoice_factory(number="1060", currency="EUR", balance=Money.of("300", "EUR"), payment_link=None),
    )
    message = templates.render(templates.default("statement", language), context_factory(language, invoices=invoices))
    for number in ("1042", "1057", "1060"):
        assert number in message.text and number in message.html
    for line in lines:
        assert line in message.text
    assert message.text.count(PAYMENT_LINK) == 2
    assert sms.segments(message.sms) <= 2


def test_statement_uses_the_dispatchers_total_when_given(context_factory) -> None:
    context = context_factory("en", total_due=(Money.of("10", "USD"), Money.of("5", "CAD")))
    message = templates.render(templates.default("statement", "en"), context)
    assert "Total due in USD: $10.00" in message.text and "Total due in CAD: CA$5.00" in message.text
    assert "$10.00 + CA$5.00" in message.sms


def test_owner_alert_without_an_invoice(context_factory) -> None:
    context = context_factory("en", invoices=(), alert="QuickBooks needs to be reconnected.", customer_name="-")
    message = templates.render(templates.default("owner_alert", "en"), context)
    assert message.subject == "[Maple Street Bakery and Catering] QuickBooks needs to be reconnected."
    assert "QuickBooks needs to be reconnected." in message.sms


@pytest.mark.parametrize(("key", "language"), CASES, ids=CASE_IDS)
def test_rendering_is_deterministic(context_factory, key: str, language: str) -> None:
    template = templates.default(key, language)
    assert templates.render(template, context_factory(language)) == templates.render(template, context_factory(language))


def test_defaults_refuse_unknown_languages_and_keys() -> None:
    from qbo_collector import errors

    with pytest.raises(errors.InvalidInput, match="not 'de'"):
        templates.defaults("de")
    with pytest.raises(errors.InvalidInput, match="no template called 'reminder_weekly'"):
        templates.default("reminder_weekly", "en")


JOB_WORDS = {"en": ("your PO", "Your PO"), "fr": ("votre bon de commande", "Bon de commande")}


@pytest.mark.parametrize(("key", "language"), [(k, lang) for lang in templates.LANGUAGES for k in CUSTOMER_KEYS],
                         ids=[f"{k.replace('_', ' ')} in {lang}" for lang in templates.LANGUAGES for k in CUSTOMER_KEYS])
def test_a_message_to_the_parent_names_the_job_each_invoice_is_for(context_factory, invoice_factory, key: str,
                                                                   language: str) -> None:
    """A job billed with its parent is reminded at the parent's address, greeted by the parent's name:
    each invoice then says which job it is for, beside the PO, in the text, the HTML and the text message."""
    currency = "EUR" if language == "fr" else "USD"
    po, po_html = JOB_WORDS[language]
    lines = (invoice_factory(currency=currency, days_overdue=15, job="12 Elm Street"),
             invoice_factory(currency=currency, number="1057", po_number=None, job="48 Oak Avenue"))
    message = templates.render(templates.default(key, language), context_factory(language, invoices=lines))
    assert f"1042 (12 Elm Street, {po} PO-7781)" in message.text, message.text
    if key == "statement":
        assert "1057 (48 Oak Avenue)" in message.text
        assert '1042<br><span style="color:#57606a;">12 Elm Street</span>' in message.html
        assert f'48 Oak Avenue</span>' in message.html and po_html in message.html
    else:
        assert "1042</strong> (12 Elm Street, " in message.html
        named = "1042, 12 Elm Street)" if key == "promise_broken" else "1042 (12 Elm Street)"
        assert named in message.sms and sms.segments(message.sms) <= 2, message.sms
    plain = templates.render(templates.default(key, language), context_factory(language))
    assert "Elm Street" not in plain.text + plain.html + plain.sms and f"1042 ({po} PO-7781)" in plain.text


FEES = {"en": ("Late fees were added for 2 invoices",
               "- Invoice 1042 (12 Elm Street, your PO PO-7781), due on Nov 8, 2026: $1,234.50 unpaid, late fee $18.52",
               "- Invoice 1057, due on Nov 23, 2026: $200.00 unpaid, late fee $3.00",
               "late fees were added for 2 invoices. We have emailed you the details."),
        "fr": ("Frais de retard ajoutés pour 2 factures",
               "- Facture 1042 (12 Elm Street, votre bon de commande PO-7781), échue le 8 novembre 2026 : solde de "
               "1\u202f234,50\u00a0€, frais de retard de 18,52\u00a0€",
               "- Facture 1057, échue le 23 novembre 2026 : solde de 200,00\u00a0€, frais de retard de 3,00\u00a0€",
               "des frais de retard ont été ajoutés pour 2 factures.")}


@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_one_fee_notice_tells_every_fee_of_a_run_each_on_its_invoice(context_factory, invoice_factory,
                                                                     language: str) -> None:
    """The fees a run posted for one address are one email: the notice lists each invoice with its fee
    (``fees``, the lines with ``line.fee``), and its payment link; with one fee it reads as before."""
    currency = "EUR" if language == "fr" else "USD"
    subject, first, second, sms_words = FEES[language]
    lines = (invoice_factory(currency=currency, days_overdue=15, due_date=datetime.date(2026, 11, 8),
                             job="12 Elm Street", fee=Money.of("18.52", currency)),
             invoice_factory(currency=currency, number="1057", po_number=None, balance=Money.of("200", currency),
                             fee=Money.of("3", currency), payment_link=None))
    notice = templates.render(templates.default("late_fee_notice", language),
                              context_factory(language, invoices=lines, fee=Money.of("21.52", currency)))
    assert notice.subject == subject
    assert first in notice.text and second in notice.text, notice.text
    assert notice.text.count(PAYMENT_LINK) == 1 and f'href="{PAYMENT_LINK}"' in notice.html  # the first line's only
    assert "<li><strong>1057</strong>, " in notice.html
    assert sms_words in notice.sms and sms.segments(notice.sms) <= 2
    single = templates.render(templates.default("late_fee_notice", language),
                              context_factory(language, invoices=lines[:1], fee=Money.of("18.52", currency)))
    assert single.subject.endswith("1042") and first not in single.text


OWNER = {"en": ("[Maple Street Bakery and Catering] 2 alerts: Invoice 1042 is now late.",
                "Hello,\n\n2 things need your attention:\n\n- Invoice 1042 is now late.\n"
                "  Invoice 1042 for O'Brien & Sons Landscaping: $1,234.50 unpaid, due Nov 8, 2026 (15 days past due).\n"
                "  See the details: https://collector.example.com/customers/58\n"
                "- Birch Dental replied: call me.\n  See the details: https://collector.example.com/customers/7\n",
                "Maple Street Bakery and Catering: 2 alerts for you, the first: Invoice 1042 is now late."),
         "fr": ("[Boulangerie Rivière et Fils] 2 alertes : La facture 1042 est en retard.",
                "Bonjour,\n\n2 points demandent votre attention :\n\n- La facture 1042 est en retard.\n"
                "  Facture 1042 (Marie-Hélène Lefèvre) : 1\u202f234,50\u00a0€ à régler, échéance le 8 novembre 2026 "
                "(en retard de 15\u00a0jours).\n  Voir le détail : https://collector.example.com/customers/58\n"
                "- Birch Dental a répondu : appelez-moi.\n  Voir le détail : https://collector.example.com/customers/7\n",
                "Boulangerie Rivière et Fils : 2 alertes pour vous ; la première : La facture 1042 est en retard.")}


@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_one_owner_email_tells_everything_a_run_found(context_factory, language: str) -> None:
    """Everything a run tells the owner is one message (``alerts``): each sentence, the invoice it is
    about and where to act; one alert reads as before."""
    subject, text, sms_text = OWNER[language]
    context = context_factory(language)
    first, second = ((("Invoice 1042 is now late.", "Birch Dental replied: call me.") if language == "en" else
                      ("La facture 1042 est en retard.", "Birch Dental a répondu : appelez-moi.")))
    alerts = (templates.OwnerAlert(alert=first, action_link="https://collector.example.com/customers/58",
                                   customer_name=context.customer_name, invoice=context.invoices[0]),
              templates.OwnerAlert(alert=second, action_link="https://collector.example.com/customers/7"))
    message = templates.render(templates.default("owner_alert", language),
                               context.replace(alert=first, alerts=alerts))
    assert message.subject == subject
    assert message.text.startswith(text), message.text
    assert message.html.count("<li>") == 2 and 'href="https://collector.example.com/customers/7"' in message.html
    assert message.sms.startswith(sms_text) and sms.segments(message.sms) <= 2
    one = templates.render(templates.default("owner_alert", language), context.replace(alert=first, alerts=alerts[:1]))
    assert one.subject.endswith(first) and one.text.startswith(("Hello,\n\n" if language == "en" else "Bonjour,\n\n") + first)
