"""Factories for reminder contexts: a realistic customer, overridable field by field."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from decimal import Decimal

import pytest

from qbo_collector.money import Money
from qbo_collector.templates import context as template_context

# A realistic QuickBooks pay-online link (about 60 characters).
PAYMENT_LINK = "https://connect.intuit.com/pay/invoice/scs-v1-4f2a9c71e0b84d2f"


@pytest.fixture
def invoice_factory() -> Callable[..., template_context.InvoiceLine]:
    def make(**overrides: object) -> template_context.InvoiceLine:
        currency = str(overrides.pop("currency", "USD"))
        fields: dict[str, object] = dict(
            number="1042",
            issue_date=datetime.date(2026, 10, 24),
            due_date=datetime.date(2026, 11, 23),
            total=Money.of("1234.50", currency),
            balance=Money.of("1234.50", currency),
            days_overdue=0,
            po_number="PO-7781",
            payment_link=PAYMENT_LINK,
        )
        fields.update(overrides)
        return template_context.InvoiceLine(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def context_factory(invoice_factory: Callable[..., template_context.InvoiceLine]) -> Callable[..., template_context.ReminderContext]:
    """``context_factory("fr", minimal=True, customer_name=...)``: a full context, or one with no optional parts."""

    def make(language: str = "en", *, minimal: bool = False, **overrides: object) -> template_context.ReminderContext:
        french = language == "fr"
        currency = "EUR" if french else "USD"
        fields: dict[str, object] = dict(
            company_name="Boulangerie Rivière et Fils" if french else "Maple Street Bakery and Catering",
            sender_name="Claire Dubois-Martin" if french else "Samantha Patel",
            reply_to="compta@boulangerie-riviere.fr" if french else "billing@maplestreetbakery.com",
            company_phone="01 42 68 53 00" if french else "(555) 010-4477",
            customer_name="Marie-Hélène Lefèvre" if french else "O'Brien & Sons Landscaping",
            customer_language=language,
            locale="fr_FR" if french else "en_US",
            today=datetime.date(2026, 11, 23),
            invoices=(
                invoice_factory(currency=currency, days_overdue=15, due_date=datetime.date(2026, 11, 8)),
                invoice_factory(
                    currency=currency, number="1057", po_number=None,
                    balance=Money.of("200", currency), total=Money.of("480", currency),
                ),
            ),
            discount=template_context.DiscountOffer(
                amount=Money.of("24.69", currency), deadline=datetime.date(2026, 11, 30), percent=Decimal("2")
            ),
            late_fee_rule=template_context.LateFeeRule(kind="percent", rate=Decimal("1.5"), grace_days=10),
            fee=Money.of("18.52", currency),
            promise=template_context.Promise(amount=Money.of("1234.50", currency), date=datetime.date(2026, 11, 20)),
            alert="Invoice 1042 is now late." if not french else "La facture 1042 est maintenant en retard.",
            action_link="https://collector.example.com/customers/58",
        )
        if minimal:
            fields.update(
                invoices=(dataclasses.replace(fields["invoices"][0], po_number=None, payment_link=None),),  # type: ignore[index]
                reply_to=None, company_phone=None, discount=None, late_fee_rule=None, action_link=None,
            )
        fields.update(overrides)
        return template_context.ReminderContext(**fields)  # type: ignore[arg-type]

    return make
