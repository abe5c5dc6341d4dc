from decimal import Decimal

import pytest

from qbo_collector.money import Money, minor_units, to_decimal


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
