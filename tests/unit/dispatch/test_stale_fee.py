"""The check before a fee goes (``dispatch.run._stale``): QuickBooks' balance against what the fee was
taken on, with fee lines and the customer's unused credit."""

from __future__ import annotations

import types

from qbo_collector import rules
from qbo_collector.dispatch import run
from tests.unit.rules.conftest import D, customer, invoice, plan
from tests.unit.rules.test_final_interest import FRANCE, PAID, eur, unpaid


def _row(fee: rules.ChargeFee) -> types.SimpleNamespace:
    payload = {"fee_kind": fee.fee_kind, "basis": {"amount": str(fee.basis.amount), "currency": "EUR"},
               "credit": {"amount": str(fee.credit.amount), "currency": "EUR"} if fee.credit else None,
               "paid_on": fee.paid_on.isoformat() if fee.paid_on else None, "numbers": ["1001"]}
    return types.SimpleNamespace(payload=payload, invoice_ids=["i1"], customer_qbo_id="c1", kind="fee", currency="EUR")


def test_line_mode_interest_up_to_the_payment_with_credit_paying_the_fee_line_goes() -> None:
    """The principal is paid and only a fee line (99.86) is left, which the customer's unused credit
    (50) pays part of: that credit is none of the principal's, so the interest is on the whole balance
    of each day, and QuickBooks' balance without its fee lines (0) is what it was planned on."""
    left = invoice(currency="EUR", total="10099.86", balance="99.86", fee_lines=eur("99.86"),
                   payments=(rules.Payment(on=PAID, amount=eur(10000)),))
    history = [h for day in (D(2026, 4, 2), D(2026, 5, 2)) for a in plan(invoices=[unpaid()], today=day, pol=FRANCE)
               for h in rules.record(a)]
    without_credit = [a for a in plan(invoices=[left], today=D(2026, 5, 31), pol=FRANCE, history=history,
                                      cust=customer(has_email=False, has_phone=False)) if isinstance(a, rules.ChargeFee)]
    [fee] = [a for a in plan(invoices=[left], today=D(2026, 5, 31), pol=FRANCE, history=history,
                             cust=customer(has_email=False, has_phone=False, credits=(eur(50),)))
             if isinstance(a, rules.ChargeFee)]
    assert [fee.amount] == [a.amount for a in without_credit] and fee.credit is None
    fresh = {"i1": {"DocNumber": "1001", "Balance": 99.86, "TotalAmt": 10099.86, "CustomerRef": {"value": "c1"},
                    "Line": [{"Amount": 10000, "SalesItemLineDetail": {"ItemRef": {"name": "Services"}}},
                             {"Amount": 99.86, "SalesItemLineDetail": {"ItemRef": {"name": "Late fee"}}}]}}
    assert run._stale(_row(fee), fresh) is None


def test_a_percent_fee_less_credit_goes_while_the_balance_holds_and_is_replanned_when_it_moves() -> None:
    fee = rules.ChargeFee(realm="r", customer_id="c1", dedupe_key="k", due_at=None, on=D(2026, 5, 2),  # type: ignore[arg-type]
                          invoice_id="i1", amount=eur("6.00"), fee_kind="percent", period="2026-05-02",
                          basis=eur(400), credit=eur(600), reason="")
    same = {"i1": {"DocNumber": "1001", "Balance": 1000, "TotalAmt": 1000, "CustomerRef": {"value": "c1"}, "Line": []}}
    assert run._stale(_row(fee), same) is None
    moved = {"i1": {**same["i1"], "Balance": 900}}
    reason, free = run._stale(_row(fee), moved)  # type: ignore[misc]
    assert free and "changed" in str(reason)
