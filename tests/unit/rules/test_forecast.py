"""Collection probability and payment prediction."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import rules
from qbo_collector.money import Money
from qbo_collector.rules import forecast
from tests.unit.rules.conftest import D, invoice

TODAY = D(2026, 6, 1)


@pytest.mark.parametrize(
    ("days_late", "low", "high"),
    [
        pytest.param(-10, Decimal("0.95"), Decimal("1"), id="not yet due is almost surely collected"),
        pytest.param(30, Decimal("0.89"), Decimal("0.91"), id="thirty days late: about 90 percent"),
        pytest.param(60, Decimal("0.79"), Decimal("0.81"), id="minus ten percent a month after thirty days"),
        pytest.param(90, Decimal("0.69"), Decimal("0.71"), id="ninety days late: about 70 percent"),
        pytest.param(180, Decimal("0.49"), Decimal("0.51"), id="six months late: about half"),
        pytest.param(365, Decimal("0"), Decimal("0.0999"), id="a year late: under ten percent"),
        pytest.param(2000, Decimal("0"), Decimal("0.05"), id="years late: nearly nothing"),
    ],
)
def test_industry_prior(days_late: int, low: Decimal, high: Decimal) -> None:
    assert low <= forecast.prior_probability(days_late) <= high


def test_prior_never_rises_with_age() -> None:
    values = [forecast.prior_probability(d) for d in range(0, 800, 5)]
    assert values == sorted(values, reverse=True)


def record(due: dt.date, paid: dt.date | None, customer: str = "c1") -> forecast.PaidRecord:
    return forecast.PaidRecord(customer_id=customer, due_date=due, paid_on=paid)


def test_company_history_refines_the_prior() -> None:
    # 40 invoices that reached 90 days late, all eventually paid: better than the 70 % prior
    good = [record(D(2025, 1, 1), D(2025, 4, 15)) for _ in range(40)]
    bad = [record(D(2025, 1, 1), None) for _ in range(40)]
    prior = forecast.prior_probability(90)
    assert forecast.probability(90, good, TODAY) > prior > forecast.probability(90, bad, TODAY)
    assert forecast.probability(90, [], TODAY) == prior.quantize(Decimal("0.0001"))


@pytest.mark.parametrize(
    ("days_late", "low", "high"),
    [
        pytest.param(-10, Decimal("0.91"), Decimal("0.92"), id="due in ten days: weighed by every invoice, the early ones paid"),
        pytest.param(-5, Decimal("0.91"), Decimal("0.92"), id="due in five days: the invoices paid five days early count"),
        pytest.param(0, Decimal("0.65"), Decimal("0.66"), id="due today: only the invoices still unpaid on their due date"),
    ],
)
def test_history_of_early_payers_refines_invoices_not_yet_late(days_late: int, low: Decimal, high: Decimal) -> None:
    # nine in ten invoices paid five days early, one in ten never paid
    early = [record(D(2025, 1, 1), D(2024, 12, 27)) for _ in range(90)]
    never = [record(D(2025, 1, 1), None) for _ in range(10)]
    assert low <= forecast.probability(days_late, early + never, TODAY) <= high


@pytest.mark.parametrize(
    ("records", "due", "expected"),
    [
        pytest.param([record(D(2026, 1, 1), D(2026, 1, 11)), record(D(2026, 2, 1), D(2026, 2, 21))], D(2026, 6, 10),
                     D(2026, 6, 25), id="due date plus the customer's average delay"),
        pytest.param([record(D(2026, 1, 1), D(2026, 1, 5), customer="other")], D(2026, 6, 10), D(2026, 6, 14),
                     id="no history for the customer: the company's average"),
        pytest.param([], D(2026, 6, 10), D(2026, 6, 10), id="no history at all: the due date"),
        pytest.param([record(D(2026, 1, 1), D(2026, 1, 6)), record(D(2026, 2, 1), D(2026, 3, 13))], D(2026, 5, 1),
                     D(2026, 6, 10), id="already later than usual: the remaining delay of as-late invoices"),
        pytest.param([record(D(2026, 1, 1), D(2026, 1, 6))], D(2026, 3, 1), D(2026, 6, 15),
                     id="later than any history: two weeks from today"),
    ],
)
def test_predicted_pay_date(records: list[forecast.PaidRecord], due: dt.date, expected: dt.date) -> None:
    [result] = forecast.forecast([invoice(due_date=due)], records, TODAY)
    assert result.predicted_pay_date == expected and result.predicted_pay_date >= TODAY


def test_forecast_skips_paid_invoices_and_profiles_customers() -> None:
    records = [record(D(2026, 1, 1), D(2026, 1, 11)), record(D(2026, 2, 1), D(2026, 1, 30))]
    assert forecast.forecast([invoice(status="paid", balance=0)], records, TODAY) == []
    assert forecast.profile("c1", records).average_days_late == Decimal("4.0")


# --- what a person recorded: promises, payment plans, disputes ------------------------------

def _usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


OLD = invoice(id="old", due_date=D(2026, 4, 1), total=Decimal(1000))            # 61 days late on TODAY
NEW = invoice(id="new", due_date=D(2026, 5, 20), total=Decimal(400))            # 12 days late


def _plan(*instalments: tuple[dt.date, str], ids: frozenset[str] = frozenset(), agreed: dt.date = D(2026, 5, 1)
          ) -> rules.PaymentPlan:
    return rules.PaymentPlan(id="p1", agreed_on=agreed, invoice_ids=ids,
                             instalments=tuple(rules.Instalment(due_on=d, amount=_usd(a)) for d, a in instalments))


@pytest.mark.parametrize(
    ("pauses", "parts", "disputed"),
    [
        pytest.param([], {}, set(), id="nothing recorded: nothing committed"),
        pytest.param([rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("1200"))],
                     {"old": [(D(2026, 6, 10), Decimal(1000), "promise")], "new": [(D(2026, 6, 10), Decimal(200), "promise")]},
                     set(), id="a promise covers the oldest invoice first, then the next"),
        pytest.param([rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("5000"))],
                     {"old": [(D(2026, 6, 10), Decimal(1000), "promise")], "new": [(D(2026, 6, 10), Decimal(400), "promise")]},
                     set(), id="never more than the balance"),
        pytest.param([rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("300"),
                                    invoice_ids=frozenset({"new"}))],
                     {"new": [(D(2026, 6, 10), Decimal(300), "promise")]}, set(), id="a promise on one invoice"),
        pytest.param([rules.Promise(made_on=D(2026, 5, 1), until=D(2026, 5, 31), amount=_usd("300"))],
                     {}, set(), id="a promise whose date has passed predicts nothing"),
        pytest.param([rules.Promise(made_on=D(2026, 6, 2), until=D(2026, 6, 30), amount=_usd("300"))],
                     {}, set(), id="a promise recorded after today predicts nothing yet"),
        pytest.param([_plan((D(2026, 5, 15), "500"), (D(2026, 6, 15), "500"), (D(2026, 7, 15), "500"))],
                     {"old": [(D(2026, 6, 1), Decimal(400), "plan"), (D(2026, 6, 15), Decimal(500), "plan"),
                              (D(2026, 7, 15), Decimal(100), "plan")],
                      "new": [(D(2026, 7, 15), Decimal(400), "plan")]},
                     set(), id="a plan: the last instalments are still owed, a missed one counts from today"),
        pytest.param([_plan((D(2026, 5, 15), "500"), (D(2026, 5, 30), "500"))], {}, set(),
                     id="a plan past its last instalment predicts nothing"),
        pytest.param([rules.Dispute(opened_on=D(2026, 5, 20), invoice_ids=frozenset({"old"}))], {}, {"old"},
                     id="a dispute takes its invoice out"),
        pytest.param([rules.Dispute(opened_on=D(2026, 5, 20), resolved_on=D(2026, 5, 30))], {}, set(),
                     id="a resolved dispute no longer does"),
        pytest.param([rules.Dispute(opened_on=D(2026, 5, 20), invoice_ids=frozenset({"old"})),
                      rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("600"))],
                     {"new": [(D(2026, 6, 10), Decimal(400), "promise")]}, {"old"},
                     id="a promise does not reach a disputed invoice"),
        pytest.param([rules.ManualPause(start=D(2026, 5, 20), resume_on=D(2026, 7, 1))], {}, set(),
                     id="a manual pause says nothing about payment"),
    ],
)
def test_commitments(pauses: list[rules.Pause], parts: dict[str, list[tuple[dt.date, Decimal, str]]],
                     disputed: set[str]) -> None:
    said = forecast.commitments([NEW, OLD], pauses, TODAY)
    assert said.parts == parts and said.disputed == disputed


def test_expected_puts_the_recorded_parts_on_their_dates_and_the_rest_on_the_prediction() -> None:
    records = [record(D(2026, 1, 1), D(2026, 1, 11)), record(D(2026, 2, 1), D(2026, 2, 11))]  # 10 days late
    other = invoice(id="other", customer_id="c2", due_date=D(2026, 5, 25), total=Decimal(250))
    pauses = {"c1": [rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("300"),
                                   invoice_ids=frozenset({"old"})),
                     rules.Dispute(opened_on=D(2026, 5, 21), invoice_ids=frozenset({"new"}))]}
    parts = forecast.expected([OLD, NEW, other], records, TODAY, pauses)
    by = {(p.invoice_id, p.basis): p for p in parts}
    assert by[("old", "promise")].on == D(2026, 6, 10) and by[("old", "promise")].amount == Decimal(300)
    assert by[("old", "forecast")].amount == Decimal(700)
    assert by[("new", "dispute")].on is None and by[("new", "dispute")].amount == Decimal(400)
    assert by[("other", "forecast")].on == forecast.forecast([other], records, TODAY)[0].predicted_pay_date
    # a commitment moves when, not whether: the invoice's probability by age
    probability = {f.invoice_id: f.probability for f in forecast.forecast([OLD, NEW, other], records, TODAY)}
    assert all(p.probability == probability[p.invoice_id] for p in parts)
    # every open balance is accounted for exactly once
    assert sum(p.amount for p in parts) == Decimal(1000 + 400 + 250)
    assert forecast.expected([OLD, NEW, other], records, TODAY) == [
        forecast.CashPart(invoice_id=f.invoice_id, customer_id=f.customer_id, on=f.predicted_pay_date,
                          amount={"old": Decimal(1000), "new": Decimal(400), "other": Decimal(250)}[f.invoice_id],
                          probability=f.probability, basis="forecast")
        for f in forecast.forecast([OLD, NEW, other], records, TODAY)]


EUR_NEW = invoice(id="eur", due_date=D(2026, 5, 25), total=Decimal(300), currency="EUR")


@pytest.mark.parametrize(
    ("credit", "skip", "balances"),
    [
        pytest.param({}, frozenset(), {"new": Decimal(400), "old": Decimal(1000), "eur": Decimal(300)},
                     id="no credit: balances as they are"),
        pytest.param({"USD": Decimal(250)}, frozenset(), {"new": Decimal(400), "old": Decimal(750), "eur": Decimal(300)},
                     id="the oldest invoice first"),
        pytest.param({"USD": Decimal(1100)}, frozenset(), {"new": Decimal(300), "old": Decimal(0), "eur": Decimal(300)},
                     id="then the next one; a settled invoice owes nothing"),
        pytest.param({"USD": Decimal(9000)}, frozenset(), {"new": Decimal(0), "old": Decimal(0), "eur": Decimal(300)},
                     id="more credit than owed: never below zero"),
        pytest.param({"EUR": Decimal(100)}, frozenset(), {"new": Decimal(400), "old": Decimal(1000), "eur": Decimal(200)},
                     id="credit in a currency settles invoices in that currency only"),
        pytest.param({"USD": Decimal(250)}, frozenset({"old"}),
                     {"new": Decimal(150), "old": Decimal(1000), "eur": Decimal(300)},
                     id="a disputed invoice is skipped: the credit goes to the next one"),
        pytest.param({"USD": Decimal(-50)}, frozenset(), {"new": Decimal(400), "old": Decimal(1000), "eur": Decimal(300)},
                     id="a negative figure is no credit"),
    ],
)
def test_with_credits(credit: dict[str, Decimal], skip: frozenset[str], balances: dict[str, Decimal]) -> None:
    got = forecast.with_credits([NEW, OLD, EUR_NEW], credit, skip)
    assert [i.id for i in got] == ["new", "old", "eur"]                 # the order given is kept
    assert {i.id: i.balance.amount for i in got} == balances
    assert all(i.total == j.total for i, j in zip(got, [NEW, OLD, EUR_NEW]))


def test_expected_leaves_out_what_the_customers_credit_settles_before_commitments() -> None:
    """A credit of 1,100: the old invoice (1,000) is settled and 100 of the new one; the promise of 300
    then covers the 300 the new one still owes, and the other customer is untouched."""
    records = [record(D(2026, 1, 1), D(2026, 1, 11))]
    other = invoice(id="other", customer_id="c2", due_date=D(2026, 5, 25), total=Decimal(250))
    pauses = {"c1": [rules.Promise(made_on=D(2026, 5, 25), until=D(2026, 6, 10), amount=_usd("300"))]}
    parts = forecast.expected([OLD, NEW, other], records, TODAY, pauses, credits={"c1": {"USD": Decimal(1100)}})
    assert [(p.invoice_id, p.basis, p.amount) for p in parts] == [
        ("new", "promise", Decimal(300)), ("other", "forecast", Decimal(250))]
    more = forecast.expected([OLD, NEW, other], records, TODAY, pauses, credits={"c1": {"USD": Decimal(1300)}})
    assert [(p.invoice_id, p.basis, p.amount) for p in more][0] == ("new", "promise", Decimal(100))
    assert forecast.expected([OLD, NEW, other], records, TODAY, pauses, credits={"c2": {"USD": Decimal(0)}}) == \
        forecast.expected([OLD, NEW, other], records, TODAY, pauses)


def test_invoices_not_yet_due_or_barely_late_say_nothing_yet_about_collection() -> None:
    """Found in review: every open invoice counted as never paid at every age it had reached, so a company
    whose customers pay on time saw its expected cash cut by a third by its invoices not yet due."""
    today = D(2026, 6, 1)
    on_time = [forecast.PaidRecord(customer_id="c", due_date=today - dt.timedelta(days=200 + n),
                                   paid_on=today - dt.timedelta(days=200 + n)) for n in range(100)]
    current = [forecast.PaidRecord(customer_id="c", due_date=today + dt.timedelta(days=15), paid_on=None)] * 50
    late_week = [forecast.PaidRecord(customer_id="c", due_date=today - dt.timedelta(days=5), paid_on=None)] * 10
    for age in (-20, -5, 0):
        assert forecast.probability(age, on_time + current + late_week, today) == forecast.probability(age, on_time, today)
    given_up = [forecast.PaidRecord(customer_id="c", due_date=today - dt.timedelta(days=150), paid_on=None)] * 50
    assert forecast.probability(0, on_time + given_up, today) < forecast.probability(0, on_time, today)
