"""Column types. Money is exact: stored as a scaled integer on every database."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Text
from sqlalchemy.types import TypeDecorator

from qbo_collector import money

SCALE = 4  # QBO amounts carry at most the currency's decimals; 4 leaves room for KWD/BHD (3)
_FACTOR = Decimal(10) ** SCALE


def amount_value(value: object) -> Decimal:
    """A value read from an ``Amount`` column or an aggregate over one: a SUM the driver did not run
    through the type comes back as the scaled integer; None (a SUM over no rows) is zero."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value) / _FACTOR
    return money.to_decimal(value)


class Amount(TypeDecorator[Decimal]):
    """A Decimal stored as ``round(value × 10⁴)`` in a BIGINT.

    SQLite has no decimal type (SQLAlchemy's Numeric goes through float there), so the same
    integer representation is used on both databases: SUM/compare in SQL stay exact and
    results come back as Decimal. The currency lives in a sibling column.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int((money.to_decimal(value) * _FACTOR).to_integral_value(rounding=ROUND_HALF_EVEN))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)) / _FACTOR).normalize() if value else Decimal(0)

    def coerce_compared_value(self, op: Any, value: Any) -> "Amount":
        return self


class EncryptedText(TypeDecorator[str]):
    """Marker type for ciphertext columns (Fernet tokens); encryption happens in ``db.secrets``."""

    impl = Text
    cache_ok = True


class UTC(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite would drop the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if dialect.name != "sqlite" else value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
