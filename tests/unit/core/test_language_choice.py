"""Which language a customer's reminders are written in: a person's choice, else the customer's
country (through Babel's official languages), else the company's language."""

from __future__ import annotations

import pytest

from qbo_collector import snapshot
from qbo_collector.db import models


def _pair(company_country: str | None, company_language: str, country: str | None, chosen: str | None = None):  # type: ignore[no-untyped-def]
    company = models.Company(realm_id="1", name="Co", currency="USD", country=company_country, language=company_language)
    customer = models.Customer(qbo_id="7", display_name="C", country=country, language=chosen)
    return company, customer


@pytest.mark.parametrize(("company_country", "company_language", "country", "chosen", "expected"), [
    ("US", "en", None, None, ("en", "company", None)),                # no country: the company's language
    ("US", "en", "USA", None, ("en", "company", "US")),               # the company's own country
    ("US", "en", "France", None, ("fr", "country", "FR")),            # a French customer of a US company
    ("US", "en", "Allemagne", None, ("en", "country", "DE")),         # German: not written here, so English
    ("US", "en", "Canada", None, ("en", "company", "CA")),            # bilingual, and English is one of them
    ("FR", "fr", "Canada", None, ("fr", "company", "CA")),            # … and French too
    ("FR", "fr", "Belgique", None, ("fr", "company", "BE")),
    ("FR", "fr", "Switzerland", None, ("fr", "company", "CH")),
    ("FR", "fr", "United Kingdom", None, ("en", "country", "GB")),
    ("FR", "fr", "US", None, ("en", "country", "US")),                # Babel lists no official language: English
    ("US", "en", "Belgium", None, ("fr", "country", "BE")),           # Dutch first, French the first we write
    ("US", "en", "Haiti", None, ("fr", "country", "HT")),
    ("US", "en", "Narnia", None, ("en", "company", None)),            # unknown: as no country
    ("FR", "fr", "United Kingdom", "fr", ("fr", "person", None)),     # a person's choice wins
    ("US", "en", "France", "en", ("en", "person", None)),
    ("US", "de", "Germany", None, ("en", "country", "DE")),           # a company language we do not write
])
def test_the_language_of_a_customers_reminders(company_country, company_language, country, chosen, expected) -> None:  # type: ignore[no-untyped-def]
    company, customer = _pair(company_country, company_language, country, chosen)
    assert snapshot.language_choice(company, customer) == expected
    assert snapshot.language_of(company, customer) == expected[0]


def test_country_names_in_english_or_french_are_understood() -> None:
    assert [snapshot.country_code(n) for n in ("Allemagne", "germany", "États-Unis", "UK", "Royaume-Uni", "Japon", "")] == \
        ["DE", "DE", "US", "GB", "GB", "JP", None]
