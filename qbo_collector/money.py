"""Money: a Decimal with its currency, rounded by the currency's own rules. Never float.

Pure: no I/O. Used by the rules engine, the mirror and the templates alike.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

from babel import numbers as babel_numbers

# ISO 4217 minor units for currencies whose exponent is not 2 (Babel knows them too, but
# its table is locale data; this one is the standard and never changes under us).
_MINOR_UNITS = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0,
    "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0,
    "XOF": 0, "XPF": 0,
}


def is_known_currency(code: str) -> bool:
    """True when ``code`` is an ISO 4217 currency Babel knows."""
    return isinstance(code, str) and len(code) == 3 and code.upper() in babel_numbers.list_currencies()


def minor_units(currency: str) -> int:
    """Decimal places of ``currency`` (JPY 0, EUR 2, KWD 3)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def to_decimal(value: object) -> Decimal:
    """Parse an amount from QBO JSON (number or string) without passing through float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, float):
        # json may have produced a float already; repr() is the shortest exact round-trip.
        value = repr(value)
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return result


class Money(NamedTuple):
    """An amount in a currency. Arithmetic keeps full precision; ``rounded()`` applies the currency's rule."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: object, currency: str) -> "Money":
        return cls(to_decimal(amount), currency.upper())

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(Decimal(0), currency.upper())

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def add(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def sub(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def mul(self, factor: Decimal | int) -> "Money":
        if isinstance(factor, float):
            raise TypeError("multiply money by Decimal, never float")
        return Money(self.amount * Decimal(factor), self.currency)

    def rounded(self) -> "Money":
        return Money(self.amount.quantize(quantum(self.currency), rounding=ROUND_HALF_UP), self.currency)

    def is_positive(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:  # plain, locale-free: "1234.50 EUR"
        return f"{self.rounded().amount} {self.currency}"

    def format(self, locale: str = "en_US") -> str:
        """The amount as a person in ``locale`` reads it ("1 234,50 €" in fr_FR)."""
        r = self.rounded()
        return babel_numbers.format_currency(r.amount, r.currency, locale=locale)
