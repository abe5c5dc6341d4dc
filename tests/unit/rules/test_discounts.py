"""Early-payment discounts: from the QBO term or the policy tiers, mentioned before the deadline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import rules
from tests.unit.rules.conftest import D, customer, invoice, money, plan, policy

TIERS = [{"days_after_invoice": 10, "percent": "3"}, {"days_after_invoice": 20, "percent": "1.5"}]


@pytest.mark.parametrize(
    ("inv", "tiers", "on", "expected"),
    [
        pytest.param(invoice(term_discount=rules.TermDiscount(percent=Decimal(2), days=10)), [], D(2026, 3, 10),
                     (Decimal(2), "20.00", D(2026, 3, 12), "term"), id="QBO term 2/10: 2 percent until ten days after the invoice"),
        pytest.param(invoice(term_discount=rules.TermDiscount(percent=Decimal(2), days=10)), [], D(2026, 3, 13), None,
                     id="no discount after the term's deadline"),
        pytest.param(invoice(term_discount=rules.TermDiscount(percent=Decimal(2), days=10)), TIERS, D(2026, 3, 5),
                     (Decimal(2), "20.00", D(2026, 3, 12), "term"), id="the QBO term wins over the policy tiers"),
        pytest.param(invoice(), TIERS, D(2026, 3, 5), (Decimal(3), "30.00", D(2026, 3, 12), "policy"),
                     id="earliest tier gives the largest discount"),
        pytest.param(invoice(), TIERS, D(2026, 3, 15), (Decimal("1.5"), "15.00", D(2026, 3, 22), "policy"),
                     id="after the first tier the next one applies"),
        pytest.param(invoice(), TIERS, D(2026, 3, 23), None, id="after the last tier no discount"),
        pytest.param(invoice(balance=600), TIERS, D(2026, 3, 5), (Decimal(3), "18.00", D(2026, 3, 12), "policy"),
                     id="discount on the balance after a partial payment"),
        pytest.param(invoice(currency="JPY", total=33333), TIERS, D(2026, 3, 5), (Decimal(3), "1000", D(2026, 3, 12), "policy"),
                     id="yen discount rounded to whole yen"),
        pytest.param(invoice(due_date=D(2026, 3, 10)), TIERS, D(2026, 3, 10), None, id="no discount once the invoice is due"),
        pytest.param(invoice(), [], D(2026, 3, 5), None, id="no term and no tiers: no discount"),
    ],
)
def test_discount_offer(inv: rules.Invoice, tiers: list[dict[str, str]], on: dt.date,
                        expected: tuple[Decimal, str, dt.date, str] | None) -> None:
    due, _ = rules.effective_due_date(inv)
    offer = rules.discount_offer(inv, policy(discount_tiers=tiers), due, on)  # type: ignore[arg-type]
    got = None if offer is None else (offer.percent, str(offer.amount.amount), offer.deadline, offer.source)
    assert got == expected


def test_before_due_reminder_mentions_the_discount_and_later_ones_do_not() -> None:
    pol = policy(steps=[{"offset_days": -25, "template": "reminder_before_due"},
                        {"offset_days": 0, "template": "reminder_due_today"}], discount_tiers=TIERS)
    [early] = plan(today=D(2026, 3, 9), pol=pol, cust=customer(has_phone=False))
    assert early.discount == rules.DiscountOffer(percent=Decimal(3), amount=money("30.00"), deadline=D(2026, 3, 12), source="policy")  # type: ignore[attr-defined]
    [due] = plan(today=D(2026, 4, 1), pol=pol, cust=customer(has_phone=False))
    assert due.discount is None  # type: ignore[attr-defined]
