from decimal import Decimal

import pytest

from qbo_collector.money import Money, minor_units, parse_typed, to_decimal


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        pytest.param("10.005", "USD", Decimal("10.01"), id="dollars round half up to cents"),
        pytest.param("1234.5", "JPY", Decimal("1235"), id="yen have no decimals"),
        pytest.param("1.0005", "KWD", Decimal("1.001"), id="dinars have three decimals"),
        pytest.param("-2.345", "EUR", Decimal("-2.35"), id="credits round away from zero"),
    ],
)
def test_rounding_follows_the_currency(amount, currency, expected):
    assert Money.of(amount, currency).rounded().amount == expected


def test_float_never_enters():
    with pytest.raises(TypeError):
        Money.of("1", "USD").mul(1.5)
    assert to_decimal(0.1) == Decimal("0.1")  # a float from JSON is read by its shortest repr, not its binary value


def test_currencies_do_not_mix():
    with pytest.raises(ValueError, match="cannot combine"):
        Money.of("1", "USD").add(Money.of("1", "EUR"))


@pytest.mark.parametrize("bad", [None, True, "abc", "NaN", "Infinity"], ids=["none", "boolean", "letters", "nan", "infinity"])
def test_garbage_is_not_an_amount(bad):
    with pytest.raises(ValueError):
        to_decimal(bad)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("fr_FR", "1\u202f234,50\xa0€"), ("en_US", "€1,234.50")],
    ids=["french puts the symbol after", "english puts it before"],
)
def test_format_per_locale(locale, expected):
    assert Money.of("1234.5", "EUR").format(locale) == expected


def test_minor_units():
    assert (minor_units("JPY"), minor_units("usd"), minor_units("BHD")) == (0, 2, 3)


@pytest.mark.parametrize(("typed", "expected"), [
    ("1,500", "1500"),            # found in review: stored as 1.50 — English readers mean fifteen hundred
    ("1,500.00", "1500.00"), ("1,500,000", "1500000"), ("12,345.6", "12345.6"),
    ("1 500,00", "1500.00"), ("1\u202f000,00", "1000.00"), ("1\u00a0000,5", "1000.5"),  # as the French pages print
    ("1.500,00", "1500.00"), ("149,50", "149.50"), ("1,5", "1.5"), (",50", "0.50"),
    ("1500", "1500"), ("0.5", "0.5"), ("-3", "-3"), ("+7", "7"), ("1'500", "1500"),
])
def test_a_number_as_a_person_types_it_in_english_or_french(typed: str, expected: str) -> None:
    assert parse_typed(typed) == Decimal(expected) and str(parse_typed(typed)) == expected


@pytest.mark.parametrize("typed", ["", "abc", "1.2.3", "12,34,56", "1,5000,000", "1.000,000.5", "1,2,3", "--3", "1e3"])
def test_what_is_not_a_number_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_typed(typed)


def test_a_comma_before_three_digits_is_ambiguous_in_a_currency_of_three_decimals() -> None:
    assert parse_typed("1,500", "USD") == Decimal(1500) and parse_typed("1,50", "KWD") == Decimal("1.50")
    with pytest.raises(ValueError, match="ambiguous"):
        parse_typed("1,500", "KWD")
