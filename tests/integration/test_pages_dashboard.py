"""Dashboard figures from the mirror (SQLite and PostgreSQL), the dashboard page, and the weekly digest."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import select

from qbo_collector import dashboard, digest, reports, rules, snapshot
from qbo_collector.db import models
from qbo_collector.money import Money
from qbo_collector.rules import forecast, model
from tests.integration.test_pages_support import (TODAY, add_credit, any_pages_app, browser, frozen_today,  # noqa: F401
                                                  owner, pages_app, seed, viewer)

pytestmark = pytest.mark.postgres


@pytest.fixture
def seeded(db):  # type: ignore[no-untyped-def]
    dashboard.forget()
    seed(db)
    return db


def _company(s) -> models.Company:  # type: ignore[no-untyped-def]
    return s.scalar(select(models.Company).where(models.Company.realm_id == "111"))


def test_dso_is_receivables_over_credit_sales_times_days(seeded):
    d = dashboard.build(seeded, "111", TODAY)
    by_days = {x.days: x for x in d.dso}
    # open balances: 1200 + 300 + 850.50 + 150 + 99.90
    assert by_days[30].receivables == Decimal("2600.40")
    # invoices issued in the last 30 days: 300 (20 days ago) + 99.90 (10 days ago)
    assert by_days[30].credit_sales == Decimal("399.90")
    assert by_days[30].value == (Decimal("2600.40") / Decimal("399.90") * 30).quantize(Decimal("0.1"))
    # last 90 days also has 1200 (75 d) and 850.50 (40 d); the paid one issued exactly 90 days ago is outside
    assert by_days[90].credit_sales == Decimal("399.90") + Decimal("1200") + Decimal("850.50")
    assert d.trend[-1].values["EUR"][30] == by_days[30].value


def test_receivables_in_the_past_add_back_what_was_paid_after(seeded):
    with seeded.reading() as s:
        company = _company(s)
        # 100 days ago: the 400 invoice (issued 130 d ago, 250 paid 20 d ago) owed its full 400 in the mirror's view
        past = TODAY - dt.timedelta(days=100)
        receivables = dashboard._receivables_at(s, company, [past, TODAY])
    paid_later = Decimal(0)
    for k in range(12):  # paid invoices issued 200 - 10k days ago, paid 165 - 11k days ago
        issued, paid_on = 200 - k * 10, 170 - k * 10 - (5 + k)
        if issued >= 100 and paid_on < 100:
            paid_later += Decimal(500)
    assert receivables["EUR"][0] == Decimal("150") + Decimal("250") + paid_later
    assert receivables["EUR"][1] == Decimal("2600.40")


def test_aging_comes_from_reports_per_currency(seeded):
    d = dashboard.build(seeded, "111", TODAY)
    assert d.aging["EUR"] == {"current": Decimal("399.90"), "1-30": Decimal("850.50"), "31-60": Decimal("1200.00"),
                              "61-90": Decimal("0.00"), "90+": Decimal("150.00"), "total": Decimal("2600.40"),
                              "credits": Decimal("0.00"), "net": Decimal("2600.40"),
                              **{age: Decimal("0.00") for age in reports.CREDIT_AGES}}


def test_top_late_customers_are_ordered_by_overdue_amount(seeded):
    d = dashboard.build(seeded, "111", TODAY)
    assert [(c.name, c.overdue, c.days_late) for c in d.top_late] == [
        ("Atelier Dubois", Decimal("1200.00"), 45), ("Boulangerie Martin", Decimal("850.50"), 10),
        ("Café Lumière", Decimal("150.00"), 100)]


def test_unused_credit_is_taken_off_the_late_customers_first(seeded):
    """Dubois paid 1,000 the bookkeeper never applied: 200 of its late invoice is still owed, below
    Martin. Lumière's credit memo covers all it owes late: it is not a late customer at all."""
    with seeded.session() as s:
        company_id = _company(s).id
        add_credit(s, company_id, "1", "P-dubois", "1000.00", memo=False)
        add_credit(s, company_id, "3", "CM-lumiere", "150.00", memo=True)
    dashboard.forget()
    d = dashboard.build(seeded, "111", TODAY)
    assert [(c.name, c.overdue, c.days_late, c.invoices) for c in d.top_late] == [
        ("Boulangerie Martin", Decimal("850.50"), 10, 1), ("Atelier Dubois", Decimal("200.00"), 45, 1)]
    with seeded.session() as s:  # the same with only one customer shown: the largest after credit
        assert [c.name for c in dashboard.top_late_customers(s, _company(s), TODAY, limit=1)] == ["Boulangerie Martin"]


def test_amounts_in_another_currency_come_after_the_company_currency_not_by_their_number(any_pages_app, db):
    """Found in review: lists sorted by the bare amount put ¥5,199 above $4,090. The company's currency
    comes first, largest first, then each other currency apart: in the customers list, the dashboard's
    top late customers and the weekly digest (late customers, and those reminders cannot reach)."""
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == "222"))  # in US dollars
        s.add(models.Customer(company_id=company.id, qbo_id="6", display_name="Kyoto Trading", currency="JPY"))
        s.add(models.Invoice(company_id=company.id, qbo_id="999", doc_number="J-1", customer_qbo_id="6",
                             txn_date=TODAY - dt.timedelta(days=60), due_date=TODAY - dt.timedelta(days=30),
                             total=Decimal("5199"), balance=Decimal("5199"), currency="JPY"))
        s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                               models.Customer.qbo_id == "2")).email_stopped = "bounce"
    dashboard.forget()
    late = ["Atelier Dubois", "Boulangerie Martin", "Café Lumière", "Kyoto Trading"]
    assert [c.name for c in dashboard.build(db, "222", TODAY).top_late] == late
    owner = browser(any_pages_app, db, "owner@example.com", realm="222")
    listed = owner.get("/companies/222/customers").get_data(as_text=True)
    listed_order = late[:3] + ["Épicerie Zola", "Kyoto Trading"]  # Zola owes $99.90, not yet due
    assert sorted(listed_order, key=lambda n: listed.index(f">{n}</a>")) == listed_order
    page = owner.get("/companies/222/dashboard").get_data(as_text=True)
    assert sorted(late, key=lambda n: page.index(f">{n}</a>")) == late
    _subject, text, _html = digest.build(db, "222", TODAY)
    section = text.split("Customers owing the most on overdue invoices\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split(":", 1)[0] for line in section.splitlines()] == [f"  • {n}" for n in late]
    assert ("  • Boulangerie Martin: $850.50 open\n  • Kyoto Trading: ¥5,199 open\n") in text


def _yen_customers(s, company_id: int) -> None:  # type: ignore[no-untyped-def]
    """Two customers billed in yen, each with an overdue invoice whose number is larger than any in dollars."""
    for qbo_id, name, amount in (("6", "Kyoto Trading", "5199"), ("7", "Osaka Foods", "4800")):
        s.add(models.Customer(company_id=company_id, qbo_id=qbo_id, display_name=name, currency="JPY"))
        s.add(models.Invoice(company_id=company_id, qbo_id=f"9{qbo_id}", doc_number=f"J-{qbo_id}", customer_qbo_id=qbo_id,
                             txn_date=TODAY - dt.timedelta(days=60), due_date=TODAY - dt.timedelta(days=30),
                             total=Decimal(amount), balance=Decimal(amount), currency="JPY"))


def _digest_section(text: str, title: str) -> list[str]:
    return text.split(title, 1)[1].split("\n\n", 1)[0].splitlines()[1:]


def test_invoices_never_sent_come_in_the_company_currency_first(db):
    """Found in review: the digest's invoices left alone because QuickBooks never sent them were ranked
    by the bare amount (¥5,199 above $1,200). The company's currency first, largest first, then each
    other currency apart; the ones past the top five are counted in "and N more"."""
    dashboard.forget()
    company_id = seed(db, realm="222", name="Company B", currency="USD", language="en", country="US",
                      timezone="America/Chicago")
    with db.session() as s:
        _yen_customers(s, company_id)
        s.flush()
        s.get(models.Company, company_id).policy = rules.PRESETS["friendly"].model_dump(mode="json") | {
            "skip_unsent_invoices": True}
        for invoice in s.scalars(select(models.Invoice).where(models.Invoice.company_id == company_id)):
            invoice.email_status = "NotSet"
    _subject, text, _html = digest.build(db, "222", TODAY)
    assert _digest_section(text, "Invoices QuickBooks never emailed nor printed") == [
        f"  • Invoice {number}, {name}: {amount}, due {due}" for number, name, amount, due in (
            ("F-1001", "Atelier Dubois", "$1,200.00", "Oct 9, 2026"),
            ("F-1003", "Boulangerie Martin", "$850.50", "Nov 13, 2026"),
            ("F-1002", "Atelier Dubois", "$300.00", "Dec 3, 2026"),
            ("F-1004", "Café Lumière", "$150.00", "Aug 15, 2026"),
            ("F-1005", "Épicerie Zola", "$99.90", "Dec 13, 2026"))] + ["  • and 2 more"]
    with db.reading() as s:  # the list the digest truncates: the yen ones after the dollars, largest first
        left = snapshot.left_unsent(s, s.get(models.Company, company_id))
    assert [(i.currency, i.balance) for i, _c in left][-3:] == [
        ("USD", Decimal("99.90")), ("JPY", Decimal("5199")), ("JPY", Decimal("4800"))]


def test_credit_to_apply_comes_in_the_company_currency_first(db):
    """Found in review, as above: the digest's credit to apply in QuickBooks put ¥5,199 above $1,500."""
    dashboard.forget()
    company_id = seed(db, realm="222", name="Company B", currency="USD", language="en", country="US",
                      timezone="America/Chicago")
    with db.session() as s:
        _yen_customers(s, company_id)
        for customer, amount, currency in (("1", "1500.00", "USD"), ("2", "850.50", "USD"), ("3", "150.00", "USD"),
                                           ("5", "99.90", "USD"), ("6", "5199", "JPY"), ("7", "4800", "JPY")):
            s.add(models.Payment(company_id=company_id, qbo_id=f"P-credit-{customer}", customer_qbo_id=customer,
                                 txn_date=TODAY, total=Decimal(amount), unapplied=Decimal(amount), currency=currency))
    _subject, text, _html = digest.build(db, "222", TODAY)
    assert _digest_section(text, "Credit not applied in QuickBooks") == [
        "  • Atelier Dubois: $1,500.00 of credit settles invoices F-1001, F-1002",
        "  • Boulangerie Martin: $850.50 of credit settles invoice F-1003",
        "  • Café Lumière: $150.00 of credit settles invoice F-1004",
        "  • Épicerie Zola: $99.90 of credit settles invoice F-1005",
        "  • Kyoto Trading: ¥5,199 of credit settles invoice J-6",
        "  • and 1 more"]
    with db.reading() as s:
        found = snapshot.credit_to_apply(s, s.get(models.Company, company_id), TODAY)
    assert [(c.name, c.credit.currency) for c in found][-2:] == [("Kyoto Trading", "JPY"), ("Osaka Foods", "JPY")]


def test_reminders_sent_and_followed_by_a_payment(seeded):
    r = dashboard.build(seeded, "111", TODAY).reminders
    # the reminder of 25 days ago was followed by the 250 payment 20 days ago; the one of 5 days ago by nothing yet
    assert (r.sent, r.paid_after, r.collected) == (2, 1, {"EUR": Decimal("250.00")})
    assert sum(w[1] for w in r.weeks) == 2 and sum(w[2] for w in r.weeks) == 1


def test_reminders_are_counted_on_the_company_local_days(db):
    """QuickBooks dates a payment on the company's day. A Los Angeles company texts at 17:30 on Sunday
    (01:30 UTC on Monday) and the customer pays that Sunday: the payment followed the text, which
    belongs to last week. A text at 23:30 the evening before the 90-day window is outside it, though
    inside it in UTC."""
    dashboard.forget()
    company_id = seed(db, realm="333", name="West", currency="USD", language="en", country="US",
                      timezone="America/Los_Angeles")
    zone = zoneinfo.ZoneInfo("America/Los_Angeles")
    sunday = TODAY - dt.timedelta(days=1)
    evening = dt.datetime.combine(sunday, dt.time(17, 30), zone).astimezone(dt.timezone.utc)
    too_early = dt.datetime.combine(TODAY - dt.timedelta(days=91), dt.time(23, 30), zone).astimezone(dt.timezone.utc)
    assert sunday.weekday() == 6 and evening.date() == TODAY and too_early.date() == TODAY - dt.timedelta(days=90)
    with db.session() as s:
        for key, at in (("evening", evening), ("too-early", too_early)):
            s.add(models.Outbox(company_id=company_id, dedupe_key=f"333:{key}", kind="reminder", channel="sms",
                                status=models.OutboxStatus.sent, customer_qbo_id="2", invoice_ids=["103"], step=1,
                                template_key="reminder_overdue_gentle", due_at=at, sent_at=at,
                                reason="Step 2 of invoice 103 by text.", provider_id=f"tw-{key}"))
        s.add(models.Payment(company_id=company_id, qbo_id="P-sunday", customer_qbo_id="2", txn_date=sunday,
                             total=Decimal("850.50"), currency="USD"))
        s.add(models.PaymentLink(company_id=company_id, payment_qbo_id="P-sunday", invoice_qbo_id="103",
                                 amount=Decimal("850.50")))

    def effect():  # type: ignore[no-untyped-def]
        with db.reading() as s:
            company = s.scalar(select(models.Company).where(models.Company.realm_id == "333"))
            return dashboard.reminder_effect(s, company, TODAY)

    r = effect()
    # the seed's two (the one of 25 days ago followed by 250 paid) and Sunday's text, followed by 850.50
    assert (r.sent, r.paid_after, r.collected) == (3, 2, {"USD": Decimal("1100.50")})
    by_week = {monday: (sent, paid) for monday, sent, paid in r.weeks}
    # last week: the seed's reminder of Wednesday and Sunday's text; nothing sent this week
    assert by_week[TODAY - dt.timedelta(days=7)] == (2, 1) and by_week[TODAY] == (0, 0)
    # a zone the mirror holds that Python does not know: UTC days, as before, rather than an error
    with db.session() as s:
        s.scalar(select(models.Company).where(models.Company.realm_id == "333")).timezone = "Nowhere/Atlantis"
    r = effect()
    assert (r.sent, r.paid_after) == (4, 1) and {m: (n, p) for m, n, p in r.weeks}[TODAY] == (1, 0)


def _forecast_inputs(s, company) -> tuple[list[forecast.PaidRecord], list[model.Invoice]]:  # type: ignore[no-untyped-def]
    """The mirror as ``rules.forecast`` takes it: the records (paid ones by their last payment date, open ones
    unpaid) and the open invoices."""
    invoices = list(s.scalars(select(models.Invoice).where(models.Invoice.company_id == company.id)))
    links = s.execute(select(models.PaymentLink.invoice_qbo_id, models.Payment.txn_date).join(
        models.Payment, models.Payment.qbo_id == models.PaymentLink.payment_qbo_id)).all()
    paid_on: dict[str, dt.date] = {}
    for invoice_id, day in links:
        paid_on[invoice_id] = max(day, paid_on.get(invoice_id, day))
    live = [i for i in invoices if not i.deleted]
    records = [forecast.PaidRecord(customer_id=i.customer_qbo_id, due_date=i.due_date, paid_on=paid_on[i.qbo_id])
               for i in live if i.status == models.InvoiceStatus.paid]
    open_ = [model.Invoice(realm="111", id=i.qbo_id, customer_id=i.customer_qbo_id, currency="EUR",
                           total=Money(i.total, "EUR"), balance=Money(i.balance, "EUR"), txn_date=i.txn_date,
                           due_date=i.due_date) for i in live if i.status == models.InvoiceStatus.open]
    records += [forecast.PaidRecord(customer_id=i.customer_id, due_date=i.due_date, paid_on=None) for i in open_]
    return records, open_


def _old_debt(db) -> None:  # type: ignore[no-untyped-def]
    """Ten invoices of 100 € paid 100 days late, thirty still open 120 days after their due date, and a
    voided and a deleted one 200 days late, which count for nothing."""
    due = TODAY - dt.timedelta(days=150)
    with db.session() as s:
        company_id = _company(s).id

        def invoice(qbo_id: str, due_on: dt.date, status: models.InvoiceStatus, balance: str,
                    deleted: bool = False) -> None:
            s.add(models.Invoice(company_id=company_id, qbo_id=qbo_id, customer_qbo_id="4", txn_date=due_on,
                                 due_date=due_on, total=Decimal("100.00"), balance=Decimal(balance), currency="EUR",
                                 status=status, deleted=deleted))

        for k in range(10):
            invoice(f"late-{k}", due, models.InvoiceStatus.paid, "0")
            s.add(models.Payment(company_id=company_id, qbo_id=f"P-late-{k}", customer_qbo_id="4",
                                 txn_date=due + dt.timedelta(days=100), total=Decimal("100.00"), currency="EUR"))
            s.add(models.PaymentLink(company_id=company_id, payment_qbo_id=f"P-late-{k}", invoice_qbo_id=f"late-{k}",
                                     amount=Decimal("100.00")))
        for k in range(30):
            invoice(f"old-{k}", TODAY - dt.timedelta(days=120), models.InvoiceStatus.open, "100.00")
        invoice("voided", TODAY - dt.timedelta(days=200), models.InvoiceStatus.voided, "0")
        invoice("deleted", TODAY - dt.timedelta(days=200), models.InvoiceStatus.open, "100.00", deleted=True)


@pytest.mark.parametrize("old_debt", [False, True], ids=["seed", "with paid and unpaid old debt"])
def test_expected_cash_is_the_rules_forecast_weighted_by_probability(seeded, old_debt):
    """The grouped SQL evaluation gives what ``rules.forecast`` gives invoice by invoice, the open
    invoices counting as unpaid records."""
    if old_debt:
        _old_debt(seeded)
    with seeded.reading() as s:
        company = _company(s)
        cash, later, disputed = dashboard.expected_cash(s, company, TODAY)
        records, open_ = _forecast_inputs(s, company)
    monday = TODAY - dt.timedelta(days=TODAY.weekday())
    expected: dict[int, Decimal] = defaultdict(Decimal)
    balances = {i.id: i.balance.amount for i in open_}
    for f in forecast.forecast(open_, records, TODAY):
        expected[(f.predicted_pay_date - monday).days // 7] += balances[f.invoice_id] * f.probability
    weeks = cash["EUR"]
    for n, week in enumerate(weeks):
        assert week.expected == Money(expected.get(n, Decimal(0)), "EUR").rounded().amount, n
    assert later.get("EUR", Decimal(0)) == Money(sum((v for k, v in expected.items() if k >= len(weeks)), Decimal(0)),
                                                 "EUR").rounded().amount
    assert disputed == {}


def test_open_invoices_lower_the_probability_of_collection_of_old_debt(seeded):
    """Of the invoices that reached 30 days late, the share paid: open ones still unpaid 90 days past
    that age (``forecast.UNPAID_AFTER_DAYS``) count as not paid.

    The seed's history was paid within 16 days; with ten paid 100 days late and thirty open 120 days
    late, 40 invoices reached 30 days late and 10 of them were paid: far below the prior, where
    counting paid invoices alone could only raise it. At 90 days the open ones say nothing yet."""
    _old_debt(seeded)
    with seeded.reading() as s:
        company = _company(s)
        history = dashboard._history(s, company, TODAY)
        records, _open = _forecast_inputs(s, company)
    prior = forecast.prior_probability(30)
    assert history.probability(30) == forecast.probability(30, records, TODAY) < prior - Decimal("0.3")
    assert history.probability(90) == forecast.probability(90, records, TODAY) > forecast.prior_probability(90)
    # younger ages are weighed by more invoices, the recent ones paid on time among them
    assert history.probability(0) == forecast.probability(0, records, TODAY)
    assert history.probability(-15) == forecast.probability(-15, records, TODAY)
    # older than any invoice: the prior alone
    assert history.probability(400) == forecast.probability(400, records, TODAY) == \
        forecast.prior_probability(400).quantize(Decimal("0.0001"))


def _pauses(db) -> None:  # type: ignore[no-untyped-def]
    """Atelier Dubois (1) promised 500 in 12 days; Boulangerie Martin (2) agreed a plan of 3 × 300, the first
    missed; Café Lumière (3) disputes its invoice; Épicerie Zola (5) is paused by hand."""
    day = lambda n: TODAY + dt.timedelta(days=n)  # noqa: E731
    with db.session() as s:
        company_id = _company(s).id
        s.add(models.Pause(company_id=company_id, kind="promise", customer_qbo_id="1", invoice_ids=[],
                           start_on=day(-2), until_on=day(12), amount=Decimal("500.00"), currency="EUR"))
        s.add(models.Pause(company_id=company_id, kind="plan", customer_qbo_id="2", invoice_ids=["103"],
                           start_on=day(-10), until_on=day(28), currency="EUR", data={"instalments": [
                               {"due_on": day(n).isoformat(), "amount": "300.00"} for n in (-3, 14, 28)]}))
        s.add(models.Pause(company_id=company_id, kind="dispute", customer_qbo_id="3", invoice_ids=["104"],
                           start_on=day(-5)))
        s.add(models.Pause(company_id=company_id, kind="manual", customer_qbo_id="5", invoice_ids=[],
                           start_on=day(-1), until_on=day(30)))


def _pause_records(s) -> dict[str, list]:  # type: ignore[no-untyped-def]
    pauses: dict[str, list] = defaultdict(list)
    for row in s.scalars(select(models.Pause).order_by(models.Pause.start_on, models.Pause.id)):
        pauses[row.customer_qbo_id].append(snapshot.pause_record(row, "EUR"))
    return pauses


def _assert_weeks_and_later(parts, cash, later) -> None:  # type: ignore[no-untyped-def]
    """The dashboard's weeks and "later" are the pure parts weighted and summed by week (from this Monday)."""
    monday = TODAY - dt.timedelta(days=TODAY.weekday())
    expected: dict[int, Decimal] = defaultdict(Decimal)
    for p in parts:
        if p.on is not None:
            expected[max((p.on - monday).days // 7, 0)] += p.amount * p.probability
    for n, week in enumerate(cash["EUR"]):
        assert week.expected == Money(expected.get(n, Decimal(0)), "EUR").rounded().amount, n
    assert later.get("EUR", Decimal(0)) == Money(sum((v for k, v in expected.items() if k >= 8), Decimal(0)),
                                                 "EUR").rounded().amount


def test_expected_cash_puts_promises_and_plans_on_their_dates_and_leaves_disputes_out(seeded):
    """The dashboard's grouped evaluation with pauses gives what ``rules.forecast.expected`` gives invoice by invoice."""
    before = dashboard.build(seeded, "111", TODAY)
    _pauses(seeded)
    with seeded.reading() as s:
        company = _company(s)
        cash, later, disputed = dashboard.expected_cash(s, company, TODAY)
        records, open_ = _forecast_inputs(s, company)
        pauses = _pause_records(s)
    parts = forecast.expected(open_, records, TODAY, pauses)
    _assert_weeks_and_later(parts, cash, later)
    # what the pauses say, in figures: 150 disputed; 500 promised in 12 days; 250.50 of the plan now, then 300, 300
    assert disputed == {"EUR": Decimal("150.00")}
    by = defaultdict(list)
    for p in parts:
        by[(p.customer_id, p.basis)].append((p.on, p.amount))
    assert by[("1", "promise")] == [(TODAY + dt.timedelta(days=12), Decimal("500.00"))]
    assert sorted(by[("2", "plan")]) == [(TODAY, Decimal("250.50")), (TODAY + dt.timedelta(days=14), Decimal("300.00")),
                                         (TODAY + dt.timedelta(days=28), Decimal("300.00"))]
    # the pauses changed the figures the page shows: recorded after it was last drawn, they are not missed
    after = dashboard.build(seeded, "111", TODAY)
    assert after.cash_disputed == {"EUR": Decimal("150.00")} and before.cash_disputed == {}
    assert after.cash != before.cash
    # the open balance: every euro either in a week, later, or in dispute
    assert sum(w.open_balance for w in after.cash["EUR"]) + disputed["EUR"] <= Decimal("2600.40")


def test_expected_cash_leaves_out_what_unused_credit_settles(seeded):
    """Boulangerie Martin (payment plan) has a credit memo of 100 left, Épicerie Zola one of 20, Café
    Lumière 60 unapplied on a payment but only a disputed invoice, Durand & Fils credit and no invoice.
    The dashboard gives what ``rules.forecast.expected`` gives with those credits, 120 less in all."""
    _pauses(seeded)
    before = dashboard.build(seeded, "111", TODAY)
    with seeded.session() as s:
        company_id = _company(s).id
        for qbo_id, customer, balance in (("CM1", "2", "100.00"), ("CM2", "5", "20.00"), ("CM3", "4", "35.00"),
                                          ("CM4", "1", "0.00")):
            s.add(models.CreditMemo(company_id=company_id, qbo_id=qbo_id, customer_qbo_id=customer, txn_date=TODAY,
                                    total=Decimal("100.00"), balance=Decimal(balance), currency="EUR"))
        s.add(models.Payment(company_id=company_id, qbo_id="P-credit", customer_qbo_id="3", txn_date=TODAY,
                             total=Decimal("60.00"), unapplied=Decimal("60.00"), currency="EUR"))
        s.add(models.CreditMemo(company_id=company_id, qbo_id="CM5", customer_qbo_id="5", txn_date=TODAY, deleted=True,
                                total=Decimal("50.00"), balance=Decimal("50.00"), currency="EUR"))  # deleted: ignored
    with seeded.reading() as s:
        company = _company(s)
        cash, later, disputed = dashboard.expected_cash(s, company, TODAY)
        records, open_ = _forecast_inputs(s, company)
        pauses = _pause_records(s)
    credits = {"2": {"EUR": Decimal("100.00")}, "5": {"EUR": Decimal("20.00")}, "3": {"EUR": Decimal("60.00")},
               "4": {"EUR": Decimal("35.00")}}
    parts = forecast.expected(open_, records, TODAY, pauses, credits)
    _assert_weeks_and_later(parts, cash, later)
    assert disputed == {"EUR": Decimal("150.00")}                      # a credit does not reach a disputed invoice
    plan = sorted((p.on, p.amount) for p in parts if p.basis == "plan")
    assert sum(a for _on, a in plan) == Decimal("750.50")             # 850.50 less the credit of 100
    # the page's figures were redrawn (a credit memo changes the mirror) and 120 less is to come
    after = dashboard.build(seeded, "111", TODAY)
    assert after.cash != before.cash
    unweighted = lambda board: sum(w.open_balance for w in board.cash["EUR"])  # noqa: E731
    assert unweighted(before) - unweighted(after) == Decimal("120.00")


def test_figures_are_kept_until_the_mirror_changes(seeded):
    first = dashboard.build(seeded, "111", TODAY)
    assert dashboard.build(seeded, "111", TODAY).trend is first.trend  # kept
    with seeded.session() as s:  # a sync (or the dispatcher's fresh read) rewrites an invoice
        invoice = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == "103"))
        invoice.balance, invoice.synced_at = Decimal(0), models.utcnow()
        invoice.status = models.InvoiceStatus.paid
    again = dashboard.build(seeded, "111", TODAY)
    assert again.trend is not first.trend and again.aging["EUR"]["total"] == Decimal("1749.90")


def test_api_calls_today_add_up_syncs_and_runs(seeded):
    now = dt.datetime(2026, 11, 23, 15, tzinfo=dt.timezone.utc)
    with seeded.session() as s:
        company = _company(s)
        s.add(models.Activity(company_id=company.id, kind="dispatch.run", message="run", data={"api_calls": 3},
                              at=now - dt.timedelta(hours=1)))
        s.add(models.Activity(company_id=company.id, kind="sync", message="yesterday", data={"api_calls": 99},
                              at=now - dt.timedelta(days=1)))
    with seeded.reading() as s:
        company = _company(s)
        assert dashboard.api_calls_today(s, [company.id], now) == {company.id: 12 + 3}


def test_the_digest_has_the_same_figures_in_the_company_language(seeded):
    subject, text, html = digest.build(seeded, "111", TODAY, link="https://collector.example/companies/111/dashboard")
    assert subject == ("Vos créances au 23 nov. 2026\u00a0: 2\u202f600,40\u00a0€ à encaisser, dont 2\u202f200,50\u00a0€ "
                       "en retard — Company A")
    assert "Atelier Dubois\u00a0: 1\u202f200,00\u00a0€, la plus ancienne en retard de 45 jours" in text
    assert "2 envoyées\u00a0; 1 suivie d’un paiement dans les 30 jours." in text
    assert "https://collector.example/companies/111/dashboard" in text and '<html lang="fr">' in html
    assert "<script" not in html


def test_the_digest_names_the_customers_some_reminders_cannot_reach(seeded, monkeypatch):
    _subject, text, _html = digest.build(seeded, "111", TODAY)
    assert "relances n’atteignent pas" not in text  # Durand & Fils has no address but owes nothing
    with seeded.session() as s:
        company_id = _company(s).id
        for qbo_id, change in (("1", {"email_stopped": "bounce"}), ("2", {"sms_stopped": "stop"}),
                               ("3", {"email": None}), ("5", {"email": "  "})):
            customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company_id,
                                                              models.Customer.qbo_id == qbo_id))
            for name, value in change.items():
                setattr(customer, name, value)
    monkeypatch.setattr(digest, "TOP", 2)
    _subject, text, html = digest.build(seeded, "111", TODAY)
    section = text.split("corrigez leurs coordonnées dans QuickBooks\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == ["  • Atelier Dubois\u00a0: 1\u202f500,00\u00a0€ à encaisser",
                                    "  • Boulangerie Martin\u00a0: 850,50\u00a0€ à encaisser",
                                    "  • et 2 autres sur la page Clients"]
    assert "<li>Atelier Dubois\u00a0: 1\u202f500,00\u00a0€ à encaisser</li>" in html
    seed(seeded, realm="222", name="Company B", currency="USD", language="en", country="US",
         timezone="America/Chicago")
    with seeded.session() as s:
        company_b = s.scalar(select(models.Company.id).where(models.Company.realm_id == "222"))
        s.scalar(select(models.Customer).where(models.Customer.company_id == company_b,
                                               models.Customer.qbo_id == "2")).email_stopped = "spamreport"
    _subject, text, _html = digest.build(seeded, "222", TODAY)
    assert ("Customers some reminders cannot reach (email or texts stopped, or no address): fix their details in "
            "QuickBooks\n  • Boulangerie Martin: $850.50 open\n\n") in text  # company A's customers are not listed


def test_dashboard_page_shows_buckets_formula_and_charts(owner):
    page = owner.get("/companies/111/dashboard").get_data(as_text=True)
    assert "DSO = receivables ÷ credit sales of the period × days in the period" in page
    assert page.count("<svg") >= 4 and "<script" not in page
    assert "€2,600.40" in page and "Atelier Dubois" in page


def test_the_page_and_the_digest_say_what_is_in_dispute_and_that_promises_count_on_their_dates(
        owner, pages_app, sqlite_db):
    from tests.integration.test_pages_support import browser

    assert "In dispute" not in owner.get("/companies/111/dashboard").get_data(as_text=True)
    _pauses(sqlite_db)
    page = owner.get("/companies/111/dashboard").get_data(as_text=True)
    assert "In dispute, not expected until resolved: €150.00" in page
    assert "A promise to pay or a payment plan counts on its dates" in page
    fr = browser(pages_app, sqlite_db, "fr@example.com", language="fr").get("/companies/111/dashboard")
    assert "En litige, non attendu avant résolution\u00a0: 150,00\u00a0€" in fr.get_data(as_text=True)
    _subject, text, _html = digest.build(sqlite_db, "111", TODAY, link="https://collector.example/d")
    assert "En litige, non attendu avant résolution\u00a0: 150,00\u00a0€" in text


def test_unused_credits_are_netted_on_the_page_in_the_digest_and_in_the_report(owner, pages_app, sqlite_db):
    from tests.integration.test_pages_support import browser

    assert "Net owed to you" not in owner.get("/companies/111/dashboard").get_data(as_text=True)
    with sqlite_db.session() as s:  # a sync brings a credit memo not yet applied and a payment left unapplied
        company_id = _company(s).id
        s.add(models.CreditMemo(company_id=company_id, qbo_id="CM1", customer_qbo_id="1", txn_date=TODAY,
                                total=Decimal("100.00"), balance=Decimal("100.00"), currency="EUR"))
        s.add(models.Payment(company_id=company_id, qbo_id="P-over", customer_qbo_id="2", txn_date=TODAY,
                             total=Decimal("60.40"), unapplied=Decimal("60.40"), currency="EUR"))
        s.add(models.CreditMemo(company_id=company_id, qbo_id="CM2", customer_qbo_id="1", txn_date=TODAY,
                                total=Decimal("999.00"), balance=Decimal("999.00"), currency="EUR", deleted=True))
    aging = dashboard.build(sqlite_db, "111", TODAY).aging["EUR"]
    assert (aging["total"], aging["credits"], aging["net"]) == (Decimal("2600.40"), Decimal("160.40"), Decimal("2440.00"))
    page = owner.get("/companies/111/dashboard").get_data(as_text=True)
    assert "Less unused credits and unapplied payments: €160.40. Net owed to you: €2,440.00." in page
    fr = browser(pages_app, sqlite_db, "fr@example.com", language="fr").get("/companies/111/dashboard")
    assert "Net dû\u00a0: 2\u202f440,00\u00a0€" in fr.get_data(as_text=True)
    _subject, text, _html = digest.build(sqlite_db, "111", TODAY, link="https://collector.example/d")
    assert "Moins les avoirs et paiements non imputés (160,40\u00a0€)\u00a0: 2\u202f440,00\u00a0€ net" in text
    with sqlite_db.session() as s:  # a credit memo alone (no invoice or payment changed) redraws the figures
        s.add(models.CreditMemo(company_id=company_id, qbo_id="CM3", customer_qbo_id="3", txn_date=TODAY,
                                total=Decimal("10.00"), balance=Decimal("10.00"), currency="EUR"))
    assert dashboard.build(sqlite_db, "111", TODAY).aging["EUR"]["credits"] == Decimal("170.40")
    assert "more than 60 days old" not in owner.get("/companies/111/dashboard").get_data(as_text=True)
    with sqlite_db.session() as s:  # a payment of 75 days ago nobody applied: in 61–90, and the page says so
        s.add(models.Payment(company_id=company_id, qbo_id="P-old", customer_qbo_id="3",
                             txn_date=TODAY - dt.timedelta(days=75), total=Decimal("30.00"),
                             unapplied=Decimal("30.00"), currency="EUR"))
    aging = dashboard.build(sqlite_db, "111", TODAY).aging["EUR"]
    assert (aging["credits"], aging["credits_current"], aging["credits_61-90"]) == (
        Decimal("200.40"), Decimal("170.40"), Decimal("30.00"))
    page = owner.get("/companies/111/dashboard").get_data(as_text=True)
    assert ("€30.00 of it is more than 60 days old: usually money received and never applied to its invoices, or "
            "credit to refund. Apply or refund it in QuickBooks.") in page
    fr = browser(pages_app, sqlite_db, "fr2@example.com", language="fr").get("/companies/111/dashboard")
    assert "30,00\u00a0€ de ce montant date de plus de 60\u00a0jours" in fr.get_data(as_text=True)


def test_the_aging_by_customer_downloads_as_csv_for_whoever_may_see_the_company(owner, viewer, pages_app, sqlite_db):
    from tests.integration.test_pages_support import browser

    with sqlite_db.session() as s:  # a customer with credit only; a name a spreadsheet would run
        company_id = _company(s).id
        s.add(models.CreditMemo(company_id=company_id, qbo_id="CM1", customer_qbo_id="4", txn_date=TODAY,
                                total=Decimal("40.00"), balance=Decimal("40.00"), currency="EUR"))
        s.scalar(select(models.Customer).where(models.Customer.company_id == company_id,
                                               models.Customer.qbo_id == "2")).display_name = "=SUM(A1:A9)"
    page = owner.get("/companies/111/dashboard").get_data(as_text=True)
    assert 'href="/companies/111/dashboard/aging.csv" download' in page
    answer = viewer.get("/companies/111/dashboard/aging.csv")  # reading is enough
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="aging-111-2026-11-23.csv"'
    text = answer.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = text.removeprefix("\ufeff").split("\r\n")
    assert lines == [
        "customer_id,customer,currency,current,1-30,31-60,61-90,90+,total,credits,net",
        "2,'=SUM(A1:A9),EUR,0.00,850.50,0.00,0.00,0.00,850.50,0.00,850.50",
        "1,Atelier Dubois,EUR,300.00,0.00,1200.00,0.00,0.00,1500.00,0.00,1500.00",
        "3,Café Lumière,EUR,0.00,0.00,0.00,0.00,150.00,150.00,0.00,150.00",
        "4,Durand & Fils,EUR,0.00,0.00,0.00,0.00,0.00,0.00,40.00,-40.00",
        "5,Épicerie Zola,EUR,99.90,0.00,0.00,0.00,0.00,99.90,0.00,99.90",
        ""]
    # as of a past day: 50 days ago the 1,200 was not due yet, the 300 not yet issued, the credit memo not made
    past = owner.get("/companies/111/dashboard/aging.csv?on=2026-10-04").get_data(as_text=True)
    assert "\r\n1,Atelier Dubois,EUR,1200.00,0.00,0.00,0.00,0.00,1200.00,0.00,1200.00\r\n" in past
    assert "Durand" not in past
    bad = owner.get("/companies/111/dashboard/aging.csv?on=last-week")
    assert bad.status_code == 400 and "“last-week” is not a date like 2026-11-23." in bad.get_data(as_text=True)
    other = browser(pages_app, sqlite_db, "b@example.com", realm="222")
    assert other.get("/companies/111/dashboard/aging.csv").status_code == 404  # not their company
    anonymous = pages_app.test_client().get("/companies/111/dashboard/aging.csv")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_dso_target_is_validated_and_saved(owner, sqlite_db):
    bad = owner.post("/companies/111/dashboard/target", {"dso_target": "soon"})
    assert bad.status_code == 400 and "Enter a number of days" in bad.get_data(as_text=True)
    with sqlite_db.reading() as s:
        assert "dso_target" not in (_company(s).settings or {})
    assert owner.post("/companies/111/dashboard/target", {"dso_target": "45"}).status_code == 302
    with sqlite_db.reading() as s:
        assert _company(s).settings["dso_target"] == "45"
    assert "13.6 days over target" not in owner.get("/companies/111/dashboard").get_data(as_text=True)


def test_dashboard_page_in_french(pages_app, sqlite_db):
    from tests.integration.test_pages_support import browser

    fr = browser(pages_app, sqlite_db, "fr@example.com", language="fr")
    page = fr.get("/companies/111/dashboard").get_data(as_text=True)
    assert '<html lang="fr">' in page
    assert "Où en est l’argent" in page and "2\u202f600,40\u00a0€" in page


# --- figures computed after a sync (dashboard.refresh) ------------------------------------

def _figures(d: dashboard.Dashboard) -> tuple:
    return d.aging, d.dso, d.trend, d.cash, d.cash_later, d.cash_disputed, d.top_late


def _no_computing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("the figures were computed instead of read back")
    monkeypatch.setattr(dashboard, "_compute", refuse)


def test_figures_refreshed_after_a_sync_are_read_back_exactly_without_computing(seeded, monkeypatch):
    computed = dashboard.build(seeded, "111", TODAY)
    assert dashboard.refresh(seeded, "111", TODAY) is True
    dashboard.forget()  # another process (a web worker) that never computed them
    _no_computing(monkeypatch)
    read = dashboard.build(seeded, "111", TODAY)
    assert _figures(read) == _figures(computed)
    assert read.aging["EUR"]["total"] == Decimal("2600.40")


def test_refresh_skips_an_unchanged_mirror_and_redoes_a_changed_one(seeded):
    assert dashboard.refresh(seeded, "111", TODAY) is True
    with seeded.session() as s:  # a sync that found nothing new only moves last_sync_at
        _company(s).last_sync_at = models.utcnow()
    assert dashboard.refresh(seeded, "111", TODAY) is False
    with seeded.session() as s:  # a payment arrived: the sync rewrote the invoice
        invoice = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == "103"))
        invoice.balance, invoice.status, invoice.synced_at = Decimal(0), models.InvoiceStatus.paid, models.utcnow()
    assert dashboard.refresh(seeded, "111", TODAY) is True
    dashboard.forget()
    assert dashboard.build(seeded, "111", TODAY).aging["EUR"]["total"] == Decimal("1749.90")


def test_stale_or_unreadable_stored_figures_are_never_shown(seeded, monkeypatch, caplog):
    dashboard.refresh(seeded, "111", TODAY - dt.timedelta(days=1))  # yesterday's
    calls = []
    real = dashboard._compute
    monkeypatch.setattr(dashboard, "_compute", lambda *a: calls.append(1) or real(*a))
    dashboard.forget()
    dashboard.build(seeded, "111", TODAY)
    assert calls == [1], "yesterday's figures were shown today"
    dashboard.refresh(seeded, "111", TODAY)
    with seeded.session() as s:  # a row written by another version of the program
        row = s.scalar(select(models.DashboardFigures))
        row.data = {**row.data, "format": dashboard.FIGURES_FORMAT + 1}
    dashboard.forget()
    assert dashboard.build(seeded, "111", TODAY).aging["EUR"]["total"] == Decimal("2600.40")
    assert calls == [1, 1]  # (refresh took today's figures from memory) the unreadable row was not used
    with seeded.session() as s:
        row = s.scalar(select(models.DashboardFigures))
        row.data = {"format": dashboard.FIGURES_FORMAT, "aging": {"EUR": {"total": "not a number"}}}
    dashboard.forget()
    assert dashboard.build(seeded, "111", TODAY).aging["EUR"]["total"] == Decimal("2600.40")
    assert "unreadable" in caplog.text


def test_the_scheduler_refreshes_figures_for_the_company_local_date_and_survives_a_failure(seeded, monkeypatch, caplog):
    from qbo_collector import scheduler

    late_evening = dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.timezone.utc)  # already the 23rd in Paris
    scheduler.refresh_figures(seeded, "111", late_evening)
    with seeded.reading() as s:
        assert s.scalar(select(models.DashboardFigures.on)) == TODAY

    def broken(*_a, **_k):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")
    monkeypatch.setattr(dashboard, "refresh", broken)
    scheduler.refresh_figures(seeded, "111", late_evening)  # logged, never raised into the sync
    assert "refreshing the dashboard figures failed" in caplog.text
