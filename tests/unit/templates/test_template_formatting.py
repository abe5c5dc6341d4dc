"""Amounts, dates, day counts and the late-fee sentence, written the way each locale reads them."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from qbo_collector import errors, templates
from qbo_collector.money import Money
from qbo_collector.templates import engine


def render_text(context: templates.ReminderContext, source: str) -> str:
    template = templates.TemplateSet(key="reminder_due_today", language=context.customer_language, subject="s", text=source)
    return templates.render(template, context).text


@pytest.mark.parametrize(
    ("language", "locale", "amount", "currency", "expected"),
    [
        ("fr", "fr_FR", "1234.5", "EUR", "1\u202f234,50\xa0€"),
        ("en", "en_US", "1234.5", "USD", "$1,234.50"),
        ("en", "en_US", "1234.5", "EUR", "€1,234.50"),
        ("en", "en_US", "1234.5", "JPY", "¥1,235"),
        ("fr", "fr_FR", "1234", "JPY", "1\u202f234\xa0JPY"),
        ("en", "en_CA", "1234.5", "CAD", "$1,234.50"),
        ("en", "en_CA", "1234.5", "USD", "US$1,234.50"),
        ("fr", "fr_CA", "1234.5", "CAD", "1\xa0234,50\xa0$"),
        ("en", "en_US", "0.005", "USD", "$0.01"),
    ],
    ids=[
        "euros in France use a narrow space and a comma",
        "dollars in the US",
        "euros for a US reader",
        "yen have no decimals and round half up",
        "yen in France",
        "Canadian dollars in English Canada",
        "US dollars in Canada say US$",
        "Canadian dollars in French Canada",
        "half a cent rounds up, never through float",
    ],
)
def test_money_filter(context_factory, language: str, locale: str, amount: str, currency: str, expected: str) -> None:
    context = context_factory(language, locale=locale, fee=Money.of(amount, currency))
    assert render_text(context, "{{ fee|money }}") == expected


@pytest.mark.parametrize(
    ("language", "locale", "source", "expected"),
    [
        ("fr", "fr_FR", "{{ today|date }}", "23 novembre 2026"),
        ("en", "en_US", "{{ today|date }}", "Nov 23, 2026"),
        ("en", "en_US", "{{ today|date('long') }}", "November 23, 2026"),
        ("fr", "fr_FR", "{{ today|date('medium') }}", "23 nov. 2026"),
        ("en", "en_CA", "{{ today|date }}", "Nov 23, 2026"),
        ("fr", "fr_CA", "{{ today|date }}", "23 novembre 2026"),
        ("en", "en_US", "{{ 1|days }}, {{ 3|days }}", "1 day, 3 days"),
        ("fr", "fr_FR", "{{ 1|days }}, {{ 3|days }}", "1\xa0jour, 3\xa0jours"),
        ("en", "en_US", "{{ discount.percent|percent }}", "2%"),
        ("fr", "fr_FR", "{{ discount.percent|percent }}", "2\xa0%"),
    ],
    ids=[
        "French dates spell the month",
        "English dates in the medium style",
        "the long style on request",
        "the medium style on request in French",
        "English Canada",
        "French Canada",
        "English plural of days",
        "French plural of days",
        "percent in English",
        "percent in French",
    ],
)
def test_date_days_and_percent_filters(context_factory, language: str, locale: str, source: str, expected: str) -> None:
    assert render_text(context_factory(language, locale=locale), source) == expected


def test_zero_days_is_singular_in_french(context_factory) -> None:
    # the space before the unit differs between CLDR releases (Babel 2.19 puts a no-break space in
    # fr_CA too): the rule under test is the singular
    assert render_text(context_factory("fr", locale="fr_CA"), "{{ 0|days }}").replace("\xa0", " ") == "0 jour"


def test_a_french_customer_of_an_english_canadian_company_reads_french_dates(context_factory) -> None:
    context = context_factory("fr", locale="en_CA", fee=Money.of("1234.5", "CAD"))
    assert render_text(context, "{{ today|date }} {{ fee|money }}") == "23 novembre 2026 1\xa0234,50\xa0$"
    assert engine.effective_locale("en_US", "fr") == "fr"  # no fr_US in the locale data: plain French


@pytest.mark.parametrize(
    ("rule", "language", "locale", "expected"),
    [
        (templates.LateFeeRule(kind="percent", rate=Decimal("1.5"), grace_days=10), "en", "en_US",
         "A late fee of 1.5% of the unpaid balance is added for each month an invoice remains unpaid,"
         " starting 10 days after its due date."),
        (templates.LateFeeRule(kind="flat", amount=Money.of("25", "USD"), period="once"), "en", "en_US",
         "A one-time late fee of $25.00 is added when an invoice is not paid by its due date."),
        (templates.LateFeeRule(kind="flat", amount=Money.of("40", "EUR"), grace_days=1, period="once"), "fr", "fr_FR",
         "Des frais de retard uniques de 40,00\xa0€ s'appliquent lorsqu'une facture reste impayée 1\xa0jour"
         " après sa date d'échéance."),
        (templates.LateFeeRule(kind="percent", rate=Decimal("2"), grace_days=0), "fr", "fr_CA",
         "Des frais de retard de 2\xa0% du solde impayé s'appliquent pour chaque mois où une facture reste impayée"
         " après sa date d'échéance."),
    ],
    ids=[
        "monthly percent with a grace period in English",
        "one-time flat fee without grace in English",
        "one-time flat fee with one day of grace in French",
        "monthly percent without grace in French Canada",
    ],
)
def test_late_fee_policy_is_one_plain_sentence(context_factory, rule, language: str, locale: str, expected: str) -> None:
    assert render_text(context_factory(language, locale=locale, late_fee_rule=rule), "{{ late_fee_terms }}") == expected


@pytest.mark.parametrize(
    ("total_due", "expected"),
    [
        (None, "$1,434.50"),
        (Money.of("99", "USD"), "$99.00"),
        ((Money.of("99", "USD"), Money.of("5", "EUR")), "$99.00 + €5.00"),
        ([Money.of("7", "JPY")], "¥7"),
    ],
    ids=[
        "no total given adds up the invoice balances",
        "one total",
        "a total per currency",
        "a list is taken as a tuple",
    ],
)
def test_total_due_in_one_or_several_currencies(context_factory, total_due, expected: str) -> None:
    context = context_factory("en", total_due=total_due)
    assert render_text(context, "{{ totals|money }}") == expected
    assert isinstance(context.totals, tuple)


def test_invoice_terms_in_days(invoice_factory) -> None:
    assert invoice_factory().terms_days == 30
    assert invoice_factory(issue_date=datetime.date(2026, 11, 23)).terms_days == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"customer_language": "de"}, "customer_language"),
        ({"locale": "xx_NOWHERE"}, "locale"),
    ],
    ids=["a language without texts is refused", "an unknown locale is refused"],
)
def test_context_refuses_what_it_cannot_write(context_factory, overrides, field: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        context_factory("en", **overrides)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "percent"}, "needs a rate"),
        ({"kind": "flat"}, "needs an amount"),
        ({"kind": "daily", "rate": Decimal(1)}, "Unknown late fee kind"),
    ],
    ids=["percent fee without a rate", "flat fee without an amount", "unknown kind"],
)
def test_late_fee_rule_refuses_incomplete_policies(kwargs, message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message):
        templates.LateFeeRule(**kwargs)
