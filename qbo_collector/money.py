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


_TYPED_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'\u2019")  # spaces, no-break spaces, 1'500 and 1’500


def parse_typed(text: str, currency: str | None = None) -> Decimal:
    """A number as a person types it, in English or French: "1,500", "1,500.00", "1 500,00", "1.500,00",
    "149,50", "-3". The last of "," and "." is the decimal mark when both appear; a lone comma followed
    by exactly three digits groups thousands ("1,500" is fifteen hundred, as English readers mean it,
    not 1.50), unless ``currency`` counts three decimals (KWD, BHD…), where it is refused as ambiguous;
    any other lone comma is a decimal comma ("149,50", "1,5"). Grouped digits come in threes.
    Raises ``ValueError`` for anything else."""
    t = (text or "").strip().translate(_TYPED_SPACES)
    sign = ""
    if t[:1] in "+-":
        sign, t = t[:1].replace("+", ""), t[1:]
    if not t or any(ch not in "0123456789.," for ch in t):
        raise ValueError(f"not a number: {text!r}")
    if "," in t and "." in t:
        mark = max(t.rfind(","), t.rfind("."))
        whole, fraction = t[:mark], t[mark + 1:]
        group = "," if t[mark] == "." else "."
        if (group == "," and "." in whole) or (group == "." and "," in whole):
            raise ValueError(f"not a number: {text!r}")
        whole_digits = _grouped(whole, group, text)
    elif t.count(",") == 1 and len(t.split(",")[1]) == 3 and t.split(",")[0]:
        if currency is not None and minor_units(currency) == 3:
            raise ValueError(f"ambiguous: {text!r} could be read either way in {currency}")
        whole_digits, fraction = _grouped(t, ",", text), ""
    elif t.count(",") > 1:
        whole_digits, fraction = _grouped(t, ",", text), ""
    elif "," in t:
        whole_digits, fraction = t.split(",")
    else:
        whole_digits, _, fraction = t.partition(".")
        if "." in fraction:
            raise ValueError(f"not a number: {text!r}")
    if not (whole_digits or fraction) or not (whole_digits + fraction).isdigit():
        raise ValueError(f"not a number: {text!r}")
    return Decimal(f"{sign}{whole_digits or '0'}" + (f".{fraction}" if fraction else ""))


def _grouped(whole: str, group: str, text: str) -> str:
    """The digits of ``whole`` grouped by ``group`` in threes ("1,500,000"), or ``ValueError``."""
    parts = whole.split(group)
    if len(parts) > 1 and (not 1 <= len(parts[0]) <= 3 or any(len(p) != 3 for p in parts[1:])):
        raise ValueError(f"not a number: {text!r}")
    return "".join(parts)


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
