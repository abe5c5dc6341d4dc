"""The days the engine reads an invoice's payments on (``snapshot.payments_of``), on SQLite and PostgreSQL:
a credit memo applied later settled the invoice when it was given, so no interest runs on what it paid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from qbo_collector import snapshot
from qbo_collector.db import models
from tests.integration.test_storage import _company


def _paid(db, *payments: tuple[str, date, dict[str, str], dict[str, str]]) -> dict[str, list[tuple[date, Decimal]]]:  # type: ignore[no-untyped-def]
    """``payments``: (Id, day, {invoice: amount}, {credit memo: amount}); the credit memo 7 was given on 04-15."""
    with db.session() as s:
        company = _company(s, currency="EUR")
        s.add(models.CreditMemo(company_id=company.id, qbo_id="7", customer_qbo_id="1", txn_date=date(2026, 4, 15),
                                total=Decimal(600), balance=Decimal(0), currency="EUR"))
        for qbo_id, on, invoices, memos in payments:
            s.add(models.Payment(company_id=company.id, qbo_id=qbo_id, customer_qbo_id="1", txn_date=on,
                                 total=sum((Decimal(a) for a in invoices.values()), Decimal(0))
                                 - sum((Decimal(a) for a in memos.values()), Decimal(0)), currency="EUR"))
            s.add_all(models.PaymentLink(company_id=company.id, payment_qbo_id=qbo_id, invoice_qbo_id=i, amount=Decimal(a))
                      for i, a in invoices.items())
            s.add_all(models.CreditMemoLink(company_id=company.id, payment_qbo_id=qbo_id, credit_memo_qbo_id=m,
                                            amount=Decimal(a)) for m, a in memos.items())
        s.flush()
        return dict(snapshot.payments_of(s, company.id, ["100"]))


def test_a_credit_memo_applied_later_pays_on_the_day_it_was_given(db):  # type: ignore[no-untyped-def]
    found = _paid(db, ("1", date(2026, 5, 20), {"100": "400"}, {}), ("2", date(2026, 6, 10), {"100": "600"}, {"7": "600"}))
    assert found == {"100": [(date(2026, 4, 15), Decimal(600)), (date(2026, 5, 20), Decimal(400))]}


def test_a_payment_with_money_in_it_keeps_its_own_day(db):  # type: ignore[no-untyped-def]
    found = _paid(db, ("2", date(2026, 6, 10), {"100": "1000"}, {"7": "600"}))  # 400 of money, 600 of credit
    assert found == {"100": [(date(2026, 6, 10), Decimal(1000))]}
