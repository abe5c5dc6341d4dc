"""Fixtures for the page tests: an app on SQLite with two companies, a mirror of invoices and payments, and logged-in clients.

(Named test_pages_* so it sits with the page tests; it holds no test itself.)
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import clock, dashboard
from qbo_collector.db import models
from tests.integration.web_helpers import csrf_token, login, make_user
from web import create_app

TODAY = dt.date(2026, 11, 23)


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)


def seed(db, *, realm: str = "111", name: str = "Company A", currency: str = "EUR", language: str = "fr",  # type: ignore[no-untyped-def]
         country: str = "FR", timezone: str = "Europe/Paris", today: dt.date = TODAY) -> int:
    """A company with five customers, open and paid invoices, payments and two sent reminders."""
    with db.session() as s:
        company = models.Company(realm_id=realm, name=name, currency=currency, language=language, country=country,
                                 timezone=timezone, settings={"owner_email": "owner@example.com"})
        s.add(company)
        s.flush()
        cid = company.id
        people = [("1", "Atelier Dubois", "compta@dubois.example"), ("2", "Boulangerie Martin", "martin@example.com"),
                  ("3", "Café Lumière", "cafe@example.com"), ("4", "Durand & Fils", None), ("5", "Épicerie Zola", "zola@example.com")]
        for qbo_id, display, email in people:
            s.add(models.Customer(company_id=cid, qbo_id=qbo_id, display_name=display, email=email, currency=currency,
                                  country=country))
        n = 0

        def invoice(customer: str, issued_days_ago: int, due_days_ago: int, total: str, balance: str,
                    status: models.InvoiceStatus = models.InvoiceStatus.open) -> str:
            nonlocal n
            n += 1
            s.add(models.Invoice(company_id=cid, qbo_id=f"{100 + n}", doc_number=f"F-{1000 + n}", customer_qbo_id=customer,
                                 txn_date=today - dt.timedelta(days=issued_days_ago),
                                 due_date=today - dt.timedelta(days=due_days_ago), total=Decimal(total),
                                 balance=Decimal(balance), currency=currency, status=status,
                                 bill_email=None))
            return f"{100 + n}"

        late = invoice("1", 75, 45, "1200.00", "1200.00")
        invoice("1", 20, -10, "300.00", "300.00")
        invoice("2", 40, 10, "850.50", "850.50")
        invoice("3", 130, 100, "400.00", "150.00")
        invoice("5", 10, -20, "99.90", "99.90")
        paid = []
        for k in range(12):  # paid history: each paid some days after its due date
            paid.append(invoice(str(1 + k % 5), 200 - k * 10, 170 - k * 10, "500.00", "0",
                                models.InvoiceStatus.paid))
        for k, inv in enumerate(paid):
            pay_day = today - dt.timedelta(days=170 - k * 10 - (5 + k))
            s.add(models.Payment(company_id=cid, qbo_id=f"P{k}", customer_qbo_id=str(1 + k % 5), txn_date=pay_day,
                                 total=Decimal("500.00"), currency=currency))
            s.add(models.PaymentLink(company_id=cid, payment_qbo_id=f"P{k}", invoice_qbo_id=inv, amount=Decimal("500.00")))
        s.add(models.Payment(company_id=cid, qbo_id="P-partial", customer_qbo_id="3", txn_date=today - dt.timedelta(days=20),
                             total=Decimal("250.00"), currency=currency))
        s.add(models.PaymentLink(company_id=cid, payment_qbo_id="P-partial", invoice_qbo_id="104", amount=Decimal("250.00")))
        for k, (customer, invoices_, day) in enumerate((("3", ["104"], today - dt.timedelta(days=25)),
                                                        ("1", [late], today - dt.timedelta(days=5)))):
            s.add(models.Outbox(company_id=cid, dedupe_key=f"{realm}:seed:{k}", kind="reminder", channel="email",
                                status=models.OutboxStatus.sent, customer_qbo_id=customer, invoice_ids=invoices_, step=2,
                                template_key="reminder_overdue_gentle", due_at=_at(day), sent_at=_at(day),
                                reason=f"Step 3 of invoice {invoices_[0]} by email.", provider_id=f"sg-{k}"))
        s.add(models.Activity(company_id=cid, kind="sync", message="full sync", data={"api_calls": 12},
                              at=_at(today)))
        return cid


def add_credit(s, company_id: int, customer: str, qbo_id: str, amount: str, *, memo: bool,  # type: ignore[no-untyped-def]
               left: str | None = None, on: dt.date = TODAY, deleted: bool = False) -> None:
    """Unused credit in the mirror: a credit memo (``memo``) with ``left`` of it not used, or a payment
    with ``left`` of it not applied (all of ``amount`` unless said), in euros."""
    unused = Decimal(left if left is not None else amount)
    common = dict(company_id=company_id, qbo_id=qbo_id, customer_qbo_id=customer, txn_date=on,
                  total=Decimal(amount), currency="EUR", deleted=deleted)
    s.add(models.CreditMemo(**common, balance=unused) if memo else models.Payment(**common, unapplied=unused))


@pytest.fixture
def frozen_today(monkeypatch):  # type: ignore[no-untyped-def]
    """The pages read the company's local date from ``clock.now()``: pin it to TODAY (10:00 UTC)."""
    monkeypatch.setattr(clock, "now", lambda: dt.datetime(TODAY.year, TODAY.month, TODAY.day, 10, tzinfo=dt.timezone.utc))
    return TODAY


@pytest.fixture
def pages_app(settings_factory, sqlite_db, frozen_today):  # type: ignore[no-untyped-def]
    dashboard.forget()
    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret"), db=sqlite_db)
    app.config["TESTING"] = True  # CSRF stays on
    seed(sqlite_db)
    seed(sqlite_db, realm="222", name="Company B", currency="USD", language="en", country="US",
         timezone="America/Chicago")
    yield app


@pytest.fixture
def any_pages_app(settings_factory, db, frozen_today):  # type: ignore[no-untyped-def]
    """``pages_app`` on SQLite and on PostgreSQL (``db``): for the pages whose queries the databases answer differently."""
    dashboard.forget()
    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret"), db=db)
    app.config["TESTING"] = True
    seed(db)
    seed(db, realm="222", name="Company B", currency="USD", language="en", country="US", timezone="America/Chicago")
    yield app


class Browser:
    """A logged-in test client that posts forms with their CSRF token."""

    def __init__(self, client, token: str) -> None:  # type: ignore[no-untyped-def]
        self.client, self.token = client, token

    def get(self, path: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict | None = None, **kw):  # type: ignore[no-untyped-def]
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)


def browser(app, db, email: str, *, role: str | None = "owner", realm: str = "111", admin: bool = False,  # type: ignore[no-untyped-def]
            language: str = "en") -> Browser:
    make_user(db, email, admin=admin, companies={realm: role} if role else None)
    with db.session() as s:
        s.query(models.User).filter_by(email=email).one().language = language
    client = app.test_client()
    assert login(client, email).status_code == 302
    return Browser(client, csrf_token(client, "/companies"))


@pytest.fixture
def owner(pages_app, sqlite_db) -> Browser:  # type: ignore[no-untyped-def]
    return browser(pages_app, sqlite_db, "owner@example.com")


@pytest.fixture
def viewer(pages_app, sqlite_db) -> Browser:  # type: ignore[no-untyped-def]
    return browser(pages_app, sqlite_db, "viewer@example.com", role="viewer")
