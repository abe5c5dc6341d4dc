"""Late fees and interest: kinds, grace, frequency, caps, waivers, rounding, one fee per period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import rules
from qbo_collector.money import Money
from tests.unit.rules.conftest import D, company, customer, invoice, money, plan, policy, simulate

NO_STEPS = dict(steps=[], repeat_last=None, escalation={"call_task_after_days": None, "handoff_after_days": None})


def fees_policy(rules_: list[dict[str, object]], **late_fees: object) -> rules.Policy:
    return policy(**NO_STEPS, late_fees={"rules": rules_, **late_fees})  # type: ignore[arg-type]


def charged(inv: rules.Invoice, pol: rules.Policy, days: int = 120, **kw: object) -> list[tuple[dt.date, str, str, str]]:
    sent = simulate(start=D(2026, 3, 25), days=days, invoices=[inv], pol=pol, **kw)  # type: ignore[arg-type]
    return [(a.on, a.fee_kind, str(a.amount.amount), a.period) for a in sent if isinstance(a, rules.ChargeFee)]


FLAT_ONCE = {"kind": "flat", "amount": {"USD": "25", "EUR": "25"}}
PERCENT_MONTHLY = {"kind": "percent", "percent": "1.5", "frequency": "monthly"}


@pytest.mark.parametrize(
    ("inv", "pol", "expected"),
    [
        pytest.param(invoice(), fees_policy([FLAT_ONCE]), [(D(2026, 4, 2), "flat", "25.00", "once")],
                     id="flat fee once on the first late day"),
        pytest.param(invoice(), fees_policy([FLAT_ONCE], grace_days=5), [(D(2026, 4, 7), "flat", "25.00", "once")],
                     id="flat fee after five grace days"),
        pytest.param(invoice(balance=400), fees_policy([PERCENT_MONTHLY]),
                     [(D(2026, 4, 2), "percent", "6.00", "2026-04-02"), (D(2026, 5, 2), "percent", "6.00", "2026-05-02"),
                      (D(2026, 6, 2), "percent", "6.00", "2026-06-02"), (D(2026, 7, 2), "percent", "6.00", "2026-07-02")],
                     id="percent fee monthly on the balance after a partial payment"),
        pytest.param(invoice(balance=700), fees_policy([{**PERCENT_MONTHLY, "frequency": "once"}]),
                     [(D(2026, 4, 2), "percent", "10.50", "once")],
                     id="percent fee on the balance after a credit memo"),
        pytest.param(invoice(), fees_policy([{"kind": "interest", "percent": "12", "frequency": "every_n_days", "every_days": 30}]),
                     [(D(2026, 5, 2), "interest", "9.86", "2026-04-02"), (D(2026, 6, 1), "interest", "9.86", "2026-05-02"),
                      (D(2026, 7, 1), "interest", "9.86", "2026-06-01")],
                     id="annual interest pro-rated per day, billed at the end of each 30-day period"),
        pytest.param(invoice(currency="EUR"), policy("france_b2b", **NO_STEPS),
                     [(D(2026, 4, 2), "indemnity", "40.00", "once"),
                      (D(2026, 5, 2), "interest", "9.99", "2026-04-02"),
                      (D(2026, 6, 2), "interest", "10.32", "2026-05-02"),
                      (D(2026, 7, 2), "interest", "9.99", "2026-06-02")],
                     id="France B2B: ECB rate plus 10 points per day and the 40 euro indemnity once"),
        pytest.param(invoice(currency="EUR"), policy("france_b2b", **NO_STEPS, ecb_rate_percent="4"),
                     [(D(2026, 4, 2), "indemnity", "40.00", "once"),
                      (D(2026, 5, 2), "interest", "11.51", "2026-04-02"),
                      (D(2026, 6, 2), "interest", "11.89", "2026-05-02"),
                      (D(2026, 7, 2), "interest", "11.51", "2026-06-02")],
                     id="France B2B with another ECB rate"),
        pytest.param(invoice(), policy("us_net30", **NO_STEPS),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 2), "percent", "15.00", "2026-05-02"),
                      (D(2026, 6, 2), "percent", "15.00", "2026-06-02"), (D(2026, 7, 2), "percent", "15.00", "2026-07-02")],
                     id="US net-30: 1.5 percent a month"),
        pytest.param(invoice(), fees_policy([FLAT_ONCE, {**PERCENT_MONTHLY, "frequency": "once"}]),
                     [(D(2026, 4, 2), "flat", "25.00", "once"), (D(2026, 4, 2), "percent", "15.00", "once")],
                     id="flat and percent together"),
        pytest.param(invoice(), fees_policy([{**FLAT_ONCE, "frequency": "every_n_days", "every_days": 7}], max_count=3),
                     [(D(2026, 4, 2), "flat", "25.00", "2026-04-02"), (D(2026, 4, 9), "flat", "25.00", "2026-04-09"),
                      (D(2026, 4, 16), "flat", "25.00", "2026-04-16")],
                     id="weekly flat fee stops at three fees"),
        pytest.param(invoice(), fees_policy([PERCENT_MONTHLY], max_amount={"USD": "40"}),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 2), "percent", "15.00", "2026-05-02"),
                      (D(2026, 6, 2), "percent", "10.00", "2026-06-02")],
                     id="amount cap cuts the last fee to the room left"),
        pytest.param(invoice(), fees_policy([PERCENT_MONTHLY], max_percent_of_principal="2"),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 2), "percent", "5.00", "2026-05-02")],
                     id="cap as a percent of the principal"),
        pytest.param(invoice(currency="JPY", total=12345), fees_policy([{**PERCENT_MONTHLY, "frequency": "once"}]),
                     [(D(2026, 4, 2), "percent", "185", "once")],
                     id="yen fee is rounded to whole yen"),
        pytest.param(invoice(currency="JPY", total=100000), fees_policy([{"kind": "interest", "percent": "12", "frequency": "monthly"}]),
                     [(D(2026, 5, 2), "interest", "986", "2026-04-02"), (D(2026, 6, 2), "interest", "1019", "2026-05-02"),
                      (D(2026, 7, 2), "interest", "986", "2026-06-02")],
                     id="yen interest per day rounded to whole yen"),
        pytest.param(invoice(currency="KWD", total="1000.005"), fees_policy([{**PERCENT_MONTHLY, "frequency": "once"}]),
                     [(D(2026, 4, 2), "percent", "15.000", "once")],
                     id="dinar fee keeps three decimals"),
        pytest.param(invoice(currency="EUR"), fees_policy([FLAT_ONCE], max_amount={"USD": "1"}),
                     [(D(2026, 4, 2), "flat", "25.00", "once")],
                     id="a cap in another currency does not apply"),
        pytest.param(invoice(currency="GBP"), fees_policy([FLAT_ONCE]), [],
                     id="no flat amount for the invoice's currency: no flat fee"),
        pytest.param(invoice(waived_fee=True), fees_policy([FLAT_ONCE]), [], id="fee waived on the invoice"),
        pytest.param(invoice(is_late_fee=True), fees_policy([FLAT_ONCE, PERCENT_MONTHLY]), [],
                     id="a late-fee invoice never bears fees"),
        pytest.param(invoice(status="paid", balance=0), fees_policy([FLAT_ONCE]), [], id="paid invoice bears no fee"),
        pytest.param(invoice(balance=0), fees_policy([FLAT_ONCE]), [], id="invoice settled by a credit memo bears no fee"),
        pytest.param(invoice(status="voided"), fees_policy([FLAT_ONCE]), [], id="voided invoice bears no fee"),
    ],
)
def test_late_fee_table(inv: rules.Invoice, pol: rules.Policy, expected: list[tuple[dt.date, str, str, str]]) -> None:
    assert charged(inv, pol) == expected


def test_fee_waived_for_the_customer() -> None:
    assert charged(invoice(), fees_policy([FLAT_ONCE]), cust=customer(fees_waived=True)) == []


def test_fee_keys_are_per_invoice_kind_and_period() -> None:
    sent = simulate(start=D(2026, 3, 25), days=65, pol=fees_policy([PERCENT_MONTHLY]))
    assert [a.dedupe_key for a in sent] == ["r1:fee:i1:percent:2026-04-02", "r1:fee:i1:percent:2026-05-02"]


def test_planning_every_hour_of_a_day_charges_the_period_once() -> None:
    """The Invoice Ninja #2330 trap: a late fee added every hour."""
    pol, history, fees = fees_policy([PERCENT_MONTHLY]), [], []
    start = dt.datetime(2026, 4, 2, tzinfo=dt.timezone.utc)
    for h in range(48):
        now = start + dt.timedelta(hours=h)
        for a in plan(today=now.astimezone(rules.calendar.zone("America/New_York")).date(), now=now, pol=pol, history=history):
            history.extend(rules.record(a))
            fees.append(a)
    assert [a.dedupe_key for a in fees] == ["r1:fee:i1:percent:2026-04-02"]


def test_missed_periods_are_each_charged_once_after_a_shutdown() -> None:
    off = [D(2026, 4, 1) + dt.timedelta(days=n) for n in range(70)]
    got = charged(invoice(), fees_policy([PERCENT_MONTHLY]), skip=off)
    assert got == [(D(2026, 6, 10), "percent", "15.00", "2026-04-02"), (D(2026, 6, 10), "percent", "15.00", "2026-05-02"),
                   (D(2026, 6, 10), "percent", "15.00", "2026-06-02"), (D(2026, 7, 2), "percent", "15.00", "2026-07-02")]


def test_cap_counts_fees_already_in_history() -> None:
    pol = fees_policy([PERCENT_MONTHLY], max_amount={"USD": "20"})
    earlier = rules.HistoryEntry(dedupe_key="r1:fee:i1:flat:once", kind="fee", at=dt.datetime(2026, 4, 2, 13, tzinfo=dt.timezone.utc),
                                 invoice_ids=frozenset({"i1"}), amount=Money.of("12", "USD"))
    [fee] = plan(today=D(2026, 4, 2), pol=pol, history=[earlier])
    assert fee.amount == Money.of("8.00", "USD")  # type: ignore[attr-defined]


def test_interest_already_billed_stays_owed_after_the_principal_is_paid() -> None:
    """ERPNext #58220: billed interest is its own invoice; it is reminded, and bears no interest itself."""
    pol = rules.PRESETS["france_b2b"]
    principal = invoice(id="i1", currency="EUR", status="paid", balance=0)
    interest = invoice(id="fee-1", currency="EUR", total="9.99", is_late_fee=True,
                       txn_date=D(2026, 5, 4), due_date=D(2026, 5, 4))
    actions = plan(invoices=[principal, interest], today=D(2026, 5, 4), pol=pol, cust=customer(has_phone=False))
    assert [(a.kind, a.invoice_ids) for a in actions] == [("send_reminder", ("fee-1",))]


def test_fee_lines_on_the_invoice_bear_no_fee_and_do_not_stop_the_next_periods() -> None:
    """``late_fee_mode`` "line": each month's fee is a line of the invoice itself. The next month's
    percent is taken on the balance without the fee lines (not 1.5 % of 1,015), the cap in percent of
    the principal on the total without them; and once only fee lines are left, no more fees."""
    fee = {"kind": "percent", "percent": "1.5", "frequency": "monthly"}
    with_line = invoice(total="1015", balance="1015", fee_lines=Money.of("15", "USD"))
    march = rules.HistoryEntry(dedupe_key="r1:fee:i1:percent:2026-04-02", kind="fee",
                               at=dt.datetime(2026, 4, 2, 13, tzinfo=dt.timezone.utc), invoice_ids=frozenset({"i1"}),
                               amount=Money.of("15", "USD"))
    [may] = plan(today=D(2026, 5, 2), invoices=[with_line], pol=fees_policy([fee]), history=[march])
    assert (may.amount, may.basis) == (Money.of("15.00", "USD"), Money.of("1000", "USD"))  # type: ignore[attr-defined]
    assert "1.5% of the overdue balance 1000.00 USD" in may.reason  # the fees are not what it is taken on
    capped = fees_policy([fee], max_percent_of_principal="2")  # 2 % of 1,000 = 20: 5 left, not 2 % of 1,015
    [cut] = plan(today=D(2026, 5, 2), invoices=[with_line], pol=capped, history=[march])
    assert cut.amount == Money.of("5.00", "USD")  # type: ignore[attr-defined]
    paid_down = invoice(total="1015", balance="415", fee_lines=Money.of("15", "USD"))  # a payment of 600
    [part] = plan(today=D(2026, 5, 2), invoices=[paid_down], pol=fees_policy([fee]), history=[march])
    assert part.amount == Money.of("6.00", "USD")  # type: ignore[attr-defined]  # 1.5 % of 400
    only_fees = invoice(total="1015", balance="15", fee_lines=Money.of("15", "USD"))
    assert plan(today=D(2026, 5, 2), invoices=[only_fees], pol=fees_policy([fee, FLAT_ONCE]), history=[march]) == []
    with pytest.raises(Exception, match="currency"):
        invoice(fee_lines=Money.of("15", "EUR"))


def test_fee_reason_explains_the_computation() -> None:
    [fee] = plan(today=D(2026, 5, 2), invoices=[invoice(currency="EUR", balance=600)],
                 pol=policy("france_b2b", **NO_STEPS),
                 history=[rules.HistoryEntry(dedupe_key="r1:fee:i1:indemnity:once", kind="fee",
                                             at=dt.datetime(2026, 4, 2, 7, tzinfo=dt.timezone.utc),
                                             invoice_ids=frozenset({"i1"}), amount=Money.of(40, "EUR"))])
    assert isinstance(fee, rules.ChargeFee)
    assert (fee.fee_kind, fee.days, fee.annual_percent, fee.basis) == ("interest", 30, Decimal("12.15"), Money.of("600.00", "EUR"))
    assert "12.15% a year for 30 days" in fee.reason


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        pytest.param(D(2028, 1, 31), [(D(2028, 3, 1), "interest", "9.53", "2028-02-01")],
                     id="interest over February of a leap year counts 29 days"),
        pytest.param(D(2027, 1, 31), [(D(2027, 3, 1), "interest", "9.21", "2027-02-01")],
                     id="interest over February of a common year counts 28 days"),
        pytest.param(D(2028, 2, 28), [(D(2028, 3, 29), "interest", "9.53", "2028-02-29")],
                     id="a monthly period from the leap day ends on 29 March: 29 days"),
    ],
)
def test_interest_around_a_leap_day(due: dt.date, expected: list[tuple[dt.date, str, str, str]]) -> None:
    pol = fees_policy([{"kind": "interest", "percent": "12", "frequency": "monthly"}])
    sent = simulate(start=due, days=32, invoices=[invoice(txn_date=due - dt.timedelta(days=30), due_date=due)], pol=pol)
    assert [(a.on, a.fee_kind, str(a.amount.amount), a.period) for a in sent] == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("pol", "fees_from", "expected"),
    [
        pytest.param(policy("us_net30", **NO_STEPS), None,
                     [("percent", f"2026-{m:02d}-02", "15.00") for m in range(4, 12)],
                     id="without a start day every missed monthly fee is charged at once"),
        pytest.param(policy("us_net30", **NO_STEPS), D(2026, 11, 20), [],
                     id="a company connected on 20 November is not back-charged for April to November"),
        pytest.param(policy("us_net30", **NO_STEPS), D(2026, 11, 2), [("percent", "2026-11-02", "15.00")],
                     id="the period starting on the first fee day is charged"),
        pytest.param(policy("france_b2b", **NO_STEPS), D(2026, 10, 17),
                     [("interest", "2026-10-02", "5.33")],  # 1000 × 12.15 % × 16/365
                     id="interest straddling the first fee day counts only the days from it"),
    ],
)
def test_no_back_charging_before_the_company_started(pol, fees_from, expected):
    currency = "EUR" if pol.name == "france_b2b" else "USD"
    actions = plan(today=D(2026, 11, 23), pol=pol, invoices=[invoice(currency=currency)],
                   co=company(fees_from=fees_from))
    got = [(a.fee_kind, a.period, str(a.amount.amount)) for a in actions if isinstance(a, rules.ChargeFee)]
    assert got == expected



def test_fee_periods_shared_between_plans_are_never_cut_short() -> None:
    """A rule's periods are worked out once and shared by every plan, threads included: a plan that
    started reading them before another one extended them to their end still reads them all."""
    from qbo_collector.rules import planner

    periods = planner._Periods("flat", "every_n_days", 1, D(2016, 6, 1))  # a daily fee, ten years late
    first = periods.until(D(2026, 4, 1))
    read = [next(first) for _ in range(8)]  # the first chunk worked out
    everything = list(periods.until(D(2026, 4, 1)))  # meanwhile another plan runs them to their end (3,660)
    read.extend(first)
    assert read == everything
    assert len(everything) == (D(2026, 4, 1) - D(2016, 6, 1)).days + 1


OLDER = invoice(id="i0", due_date=D(2026, 3, 1), txn_date=D(2026, 2, 1))


@pytest.mark.parametrize(
    ("invoices", "credit", "rule", "expected"),
    [
        pytest.param([invoice()], money(600), {**PERCENT_MONTHLY, "frequency": "once"},
                     ("percent", "6.00", "400.00", "600.00"),
                     id="percent fee on the balance less the unused credit that pays part of it"),
        pytest.param([invoice()], money(600), {"kind": "interest", "percent": "12", "frequency": "every_n_days", "every_days": 30},
                     ("interest", "3.95", "400.00", "600.00"),  # 400 × 12 % × 30/365
                     id="interest on the balance less the unused credit that pays part of it"),
        pytest.param([invoice()], money(600), FLAT_ONCE, ("flat", "25.00", "400.00", "600.00"),
                     id="a flat fee is the same whatever the credit"),
        pytest.param([OLDER, invoice()], money(1100), {**PERCENT_MONTHLY, "frequency": "once"},
                     ("percent", "13.50", "900.00", "100.00"),
                     id="the credit settles the older invoice first and what is left pays part of this one"),
        pytest.param([invoice(total="1015", balance="1015", fee_lines=money(15))], money(600),
                     {**PERCENT_MONTHLY, "frequency": "once"}, ("percent", "6.00", "400.00", "600.00"),
                     id="fee lines aside, the credit pays the principal first"),
        pytest.param([invoice(total="1015", balance="1015", fee_lines=money(15))], money(1010),
                     {**PERCENT_MONTHLY, "frequency": "once"}, None,
                     id="a credit that leaves only fee lines to pay: no percent fee, never a negative basis"),
        pytest.param([invoice()], money(600, "EUR"), {**PERCENT_MONTHLY, "frequency": "once"},
                     ("percent", "15.00", "1000.00", None),
                     id="credit in another currency pays nothing of it"),
    ],
)
def test_fees_on_the_balance_after_unapplied_credit(invoices: list[rules.Invoice], credit: Money,
                                                    rule: dict[str, object],
                                                    expected: tuple[str, str, str, str | None] | None) -> None:
    day = D(2026, 5, 2) if rule["kind"] == "interest" else D(2026, 4, 2)
    actions = plan(today=day, invoices=invoices, pol=fees_policy([rule]), cust=customer(credits=(credit,)))
    fees = [(a.fee_kind, str(a.amount.amount), str(a.basis.amount), a.credit and str(a.credit.amount))
            for a in actions if isinstance(a, rules.ChargeFee) and a.invoice_id == "i1"]
    assert fees == ([expected] if expected else [])


def test_the_fee_reason_names_the_balance_less_the_credit() -> None:
    actions = plan(today=D(2026, 4, 2), pol=fees_policy([PERCENT_MONTHLY]), cust=customer(credits=(money(600),)))
    [fee] = [a for a in actions if isinstance(a, rules.ChargeFee)]  # and the owner's alert to apply the credit
    assert fee.reason == ("Late fee 6.00 USD on invoice i1 (due 2026-04-01), period 2026-04-02: 1.5% of the overdue "  # type: ignore[attr-defined]
                          "balance 400.00 USD (1000.00 USD less 600.00 USD of the customer's unused credit that pays "
                          "part of it).")
