"""Interest up to the day the principal is paid (REFERENCE: ERPNext #58220, interest lost after principal paid).

France B2B: 10,000 EUR due 2026-04-01 bears ECB 2.15 + 10 = 12.15 % a year from 04-02, billed at
the end of each monthly period (04-02 → 05-02, 05-02 → 06-02 …). Paid on 05-30, the days of the
unfinished period, 05-02 to 05-30 (the payment day included: 29 days), are billed once it is paid.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from collections.abc import Callable

import pytest

from qbo_collector import rules
from qbo_collector.money import Money
from qbo_collector.rules import planner
from tests.unit.rules.conftest import D, company, customer, invoice, plan, policy

NO_STEPS = dict(steps=[], repeat_last=None, escalation={"call_task_after_days": None, "handoff_after_days": None})
FRANCE = policy("france_b2b", **NO_STEPS)
PAID = D(2026, 5, 30)


def eur(amount: object) -> Money:
    return Money.of(amount, "EUR")


def unpaid(**kw: object) -> rules.Invoice:
    return invoice(currency="EUR", total=10000, **kw)


def paid(on: dt.date = PAID, **kw: object) -> rules.Invoice:
    values: dict[str, object] = dict(currency="EUR", total=10000, balance=0, status="paid",
                                     payments=(rules.Payment(on=on, amount=eur(10000)),))
    return invoice(**{**values, **kw})


def fees(inv_on: Callable[[dt.date], rules.Invoice], *, days: int = 120, pol: rules.Policy = FRANCE,
         start: dt.date = D(2026, 3, 25), **kw: object) -> list[tuple[dt.date, str, str, str, int | None, dt.date | None]]:
    """Plan once a day with the invoice as the mirror has it that day, carrying out every fee."""
    history: list[rules.HistoryEntry] = []
    out = []
    for n in range(days):
        day = start + dt.timedelta(days=n)
        for a in plan(invoices=[inv_on(day)], today=day, pol=pol, history=history, **kw):  # type: ignore[arg-type]
            history.extend(rules.record(a))
            if isinstance(a, rules.ChargeFee):
                out.append((a.on, a.fee_kind, str(a.amount.amount), a.period, a.days, a.paid_on))
    return out


def paid_on_30_may(day: dt.date) -> rules.Invoice:
    return paid() if day >= PAID else unpaid()


INDEMNITY = (D(2026, 4, 2), "indemnity", "40.00", "once", None, None)
APRIL = (D(2026, 5, 2), "interest", "99.86", "2026-04-02", 30, None)  # 10,000 × 12.15 % × 30/365
MAY_TO_PAYMENT = (PAID, "interest", "96.53", "2026-05-02", 29, PAID)  # × 29/365: 05-02 … 05-30


def test_the_days_of_the_last_period_up_to_the_payment_are_billed_once() -> None:
    assert fees(paid_on_30_may) == [INDEMNITY, APRIL, MAY_TO_PAYMENT]


def test_interest_billed_on_the_day_of_payment_names_it_in_the_reason() -> None:
    history = [h for a in (plan(invoices=[unpaid()], today=D(2026, 4, 2), pol=FRANCE),
                           plan(invoices=[unpaid()], today=D(2026, 5, 2), pol=FRANCE)) for x in a for h in rules.record(x)]
    [fee] = plan(invoices=[paid()], today=D(2026, 6, 20), pol=FRANCE, history=history)
    assert isinstance(fee, rules.ChargeFee)
    assert (fee.dedupe_key, fee.days, fee.paid_on, fee.basis) == ("r1:fee:i1:interest:2026-05-02", 29, PAID, eur(0))
    assert "29 days from 2026-05-02 on the overdue balance 10000.00 EUR, up to 2026-05-30, the day it was paid" in fee.reason


def test_payment_deleted_afterwards_never_bills_the_period_twice() -> None:
    """The payment is deleted in QuickBooks on 06-10: the invoice is open again. The period 05-02 was
    billed (29 days) under its own key when it was paid: at its end nothing more; the next ones as usual."""
    def inv(day: dt.date) -> rules.Invoice:
        return paid() if PAID <= day < D(2026, 6, 10) else unpaid()

    got = fees(inv)
    assert got == [INDEMNITY, APRIL, MAY_TO_PAYMENT, (D(2026, 7, 2), "interest", "99.86", "2026-06-02", 30, None)]
    assert len({(kind, period) for _on, kind, _a, period, _d, _p in got}) == len(got)


@pytest.mark.parametrize(
    ("late_fees", "expected"),
    [
        pytest.param({"max_count": 2}, [INDEMNITY, APRIL], id="count cap reached: nothing more once paid"),
        pytest.param({"max_amount": {"EUR": "150"}}, [INDEMNITY, APRIL, (PAID, "interest", "10.14", "2026-05-02", 29, PAID)],
                     id="amount cap: the last interest is cut to the room left"),
        pytest.param({"max_amount": {"EUR": "139.86"}}, [INDEMNITY, APRIL], id="amount cap already reached"),
    ],
)
def test_caps_hold_for_the_interest_up_to_the_payment(late_fees: dict[str, object], expected: list[object]) -> None:
    data = FRANCE.model_dump(mode="json")
    data["late_fees"].update(late_fees)
    assert fees(paid_on_30_may, pol=rules.Policy.model_validate(data)) == expected


@pytest.mark.parametrize(
    ("pause", "expected"),
    [
        pytest.param(rules.Promise(made_on=D(2026, 5, 20), until=D(2026, 6, 5), amount=eur(10000)), [INDEMNITY, APRIL],
                     id="paid as promised: the interest of a day the promise held is waived"),
        pytest.param(rules.ManualPause(start=D(2026, 5, 31), resume_on=D(2026, 6, 6)),
                     [INDEMNITY, APRIL, (D(2026, 6, 6), "interest", "96.53", "2026-05-02", 29, PAID)],
                     id="paused after the payment: billed on the resume day"),
        pytest.param(rules.Dispute(opened_on=D(2026, 5, 31)), [INDEMNITY, APRIL],
                     id="an open dispute holds it"),
    ],
)
def test_pauses_hold_the_interest_up_to_the_payment(pause: rules.Pause, expected: list[object]) -> None:
    """The payment of 05-30 reaches the mirror on 06-01 (a sync that failed meanwhile)."""
    assert fees(lambda day: paid() if day >= D(2026, 6, 1) else unpaid(), pauses=[pause]) == expected


@pytest.mark.parametrize(
    ("inv_on", "cust"),
    [
        pytest.param(lambda day: paid(waived_fee=True) if day >= PAID else unpaid(waived_fee=True), None,
                     id="fees waived on the invoice"),
        pytest.param(paid_on_30_may, customer(fees_waived=True), id="fees waived for the customer"),
        pytest.param(lambda day: paid(is_late_fee=True) if day >= PAID else unpaid(is_late_fee=True), None,
                     id="a late-fee invoice bears no interest"),
        pytest.param(lambda day: invoice(currency="EUR", total=10000, balance=0, status="voided",
                                         payments=(rules.Payment(on=PAID, amount=eur(10000)),))
                     if day >= PAID else unpaid(), None, id="voided"),
        pytest.param(lambda day: invoice(currency="EUR", total=10000, balance=0, status="paid")
                     if day >= PAID else unpaid(), None, id="paid, but no payment says when"),
    ],
)
def test_no_interest_up_to_the_payment(inv_on: Callable[[dt.date], rules.Invoice], cust: rules.Customer | None) -> None:
    assert [f for f in fees(inv_on, **({"cust": cust} if cust else {})) if f[5] is not None] == []


def test_paid_before_interest_starts_bears_none() -> None:
    assert fees(lambda day: paid(D(2026, 4, 1)) if day >= D(2026, 4, 1) else unpaid()) == []


def test_paid_the_day_after_the_due_date_bears_that_day() -> None:
    """The payment day counts: paid on 04-02, the first late day, one day of interest."""
    got = fees(lambda day: paid(D(2026, 4, 2)) if day >= D(2026, 4, 2) else unpaid())
    assert got == [(D(2026, 4, 2), "interest", "3.33", "2026-04-02", 1, D(2026, 4, 2))]


def test_paid_while_the_system_was_off_bills_the_missed_period_and_the_last_days() -> None:
    """Nothing ran from 04-10 to 06-20; paid on 05-30: April's period and 05-02 … 05-30, on 06-20."""
    history: list[rules.HistoryEntry] = []
    for a in plan(invoices=[unpaid()], today=D(2026, 4, 2), pol=FRANCE):
        history.extend(rules.record(a))
    got = [(a.period, a.days, str(a.amount.amount), a.paid_on)
           for a in plan(invoices=[paid()], today=D(2026, 6, 20), pol=FRANCE, history=history)]
    assert got == [("2026-04-02", 30, "99.86", PAID), ("2026-05-02", 29, "96.53", PAID)]


def test_partial_payments_then_paid_in_full() -> None:
    """Paid in two parts (6,000 on 05-10, 4,000 on 05-30): paid on the day of the last one."""
    two = paid(payments=(rules.Payment(on=D(2026, 5, 10), amount=eur(6000)), rules.Payment(on=PAID, amount=eur(4000))))
    assert planner.paid_on(two) == PAID
    assert planner.paid_on(paid(balance=1, status="open")) is None
    [fee] = plan(invoices=[two], today=D(2026, 6, 1), pol=FRANCE, history=[
        h for a in plan(invoices=[unpaid()], today=D(2026, 5, 2), pol=FRANCE) for h in rules.record(a)])
    assert (fee.period, fee.days, fee.paid_on) == ("2026-05-02", 29, PAID)  # type: ignore[attr-defined]


def test_line_mode_interest_up_to_the_payment_when_only_fee_lines_are_left() -> None:
    """``late_fee_mode`` "line": April's interest is a line of the invoice; the customer pays the principal
    only on 05-30. The fee line left is not what interest runs on; the days up to the payment are billed."""
    line = eur("99.86")
    left = invoice(currency="EUR", total="10099.86", balance="99.86", fee_lines=line,
                   payments=(rules.Payment(on=PAID, amount=eur(10000)),))
    history = [h for day in (D(2026, 4, 2), D(2026, 5, 2)) for a in plan(invoices=[unpaid()], today=day, pol=FRANCE)
               for h in rules.record(a)]
    got = [(a.period, a.days, str(a.amount.amount), a.paid_on) for a in plan(
        invoices=[left], today=D(2026, 5, 31), pol=FRANCE, history=history, cust=customer(has_email=False, has_phone=False))
        if isinstance(a, rules.ChargeFee)]
    assert got == [("2026-05-02", 29, "96.53", PAID)]


def test_next_action_date_finds_the_paid_invoice_until_its_interest_is_billed() -> None:
    history = [h for day in (D(2026, 4, 2), D(2026, 5, 2)) for a in plan(invoices=[unpaid()], today=day, pol=FRANCE)
               for h in rules.record(a)]
    args = dict(company=rules.CompanyContext(realm="r1", time_zone="America/New_York", country="US", currency="USD"),
                invoice=paid(), customer=customer(), policy=FRANCE)
    assert rules.next_action_date(history=history, today=D(2026, 6, 1), **args) == D(2026, 6, 1)  # type: ignore[arg-type]
    actions, dates = rules.plan_and_next(company=args["company"], invoices=[paid()], customer=customer(),  # type: ignore[arg-type]
                                         policy=FRANCE, history=history, today=D(2026, 6, 1))
    assert [a.period for a in actions] == ["2026-05-02"] and dates == {"i1": None}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("payments", "balance", "expected"),
    [
        pytest.param((rules.Payment(on=D(2026, 4, 20), amount=eur(6000)),), 4000,
                     ("77.89", "of each day: 10000.00 EUR for 19 days, then 4000.00 EUR for 11 days"),
                     id="6,000 paid on 04-20: 10,000 up to that day, 4,000 after"),
        pytest.param((rules.Payment(on=D(2026, 4, 10), amount=eur(2000)), rules.Payment(on=D(2026, 4, 28), amount=eur(4000))),
                     4000, ("81.89", "10000.00 EUR for 9 days, then 8000.00 EUR for 18 days, then 4000.00 EUR for 3 days"),
                     id="two parts paid during the period"),
        pytest.param((rules.Payment(on=D(2026, 3, 20), amount=eur(6000)),), 4000, ("39.95", "overdue balance 4000.00 EUR"),
                     id="a part paid before the period: its whole on what was left"),
        pytest.param((rules.Payment(on=D(2026, 5, 10), amount=eur(6000)),), 4000, ("99.86", "overdue balance 10000.00 EUR"),
                     id="a part paid after the period, before it was billed: its whole on the balance before"),
    ],
)
def test_interest_of_a_period_with_a_partial_payment_is_on_each_days_balance(
        payments: tuple[rules.Payment, ...], balance: int, expected: tuple[str, str]) -> None:
    """Not on the balance left when the period is billed for all its days: 6,000 paid on 04-20 of 10,000
    leaves 4,000, but 04-02 … 04-20 bore interest on 10,000 (the payment day included)."""
    indemnity = [h for a in plan(invoices=[unpaid()], today=D(2026, 4, 2), pol=FRANCE) for h in rules.record(a)]
    on = D(2026, 5, 10) if payments[-1].on == D(2026, 5, 10) else D(2026, 5, 2)
    [fee] = plan(invoices=[unpaid(balance=balance, payments=payments)], today=on, pol=FRANCE, history=indemnity)
    assert isinstance(fee, rules.ChargeFee) and (fee.period, fee.days) == ("2026-04-02", 30)
    assert str(fee.amount.amount) == expected[0] and expected[1] in fee.reason, fee.reason
    assert fee.basis == eur(balance)  # what the freshness check compares QuickBooks' balance with


# --- found in the second review of the engine ----------------------------------------------


def _history_until(inv: rules.Invoice, *days: dt.date, **kw: object) -> list[rules.HistoryEntry]:
    return [h for day in days for a in plan(invoices=[inv], today=day, pol=FRANCE, **kw) for h in rules.record(a)]


def test_fee_lines_paid_after_the_principal_bear_no_interest() -> None:
    """Line mode: 10,000 of principal and 500 of fee lines; the principal is paid on 05-30, the fee lines
    on 06-20. A payment pays the principal first, so the one of 06-20 paid fee lines, which bear no
    interest: nothing is billed after 05-30 and the invoice counts as paid on 05-30."""
    first, then = rules.Payment(on=PAID, amount=eur(10000)), rules.Payment(on=D(2026, 6, 20), amount=eur(500))

    def mirror(day: dt.date) -> rules.Invoice:
        if day < PAID:
            return invoice(currency="EUR", total=10500, fee_lines=eur(500))
        if day < D(2026, 6, 20):
            return invoice(currency="EUR", total=10500, balance=500, fee_lines=eur(500), payments=(first,))
        return invoice(currency="EUR", total=10500, balance=0, status="paid", fee_lines=eur(500), payments=(first, then))

    got = fees(mirror, days=110)
    assert [(on, kind) for on, kind, *_rest in got if kind == "interest"] == [
        (D(2026, 5, 2), "interest"), (PAID, "interest")]
    assert rules.paid_on(mirror(D(2026, 7, 1))) == PAID


def test_fee_lines_left_for_unused_credit_still_bring_the_interest_up_to_the_payment() -> None:
    """The principal is paid; 15 of fee lines are left, which the customer's unused credit settles: the
    invoice is covered by the credit, and its next-action date still names the day its last interest is
    billed (a plan of the due invoices only would have missed it)."""
    cust = customer(credits=(eur(15),))
    history = _history_until(invoice(currency="EUR", total=10015, fee_lines=eur(15)), D(2026, 4, 2), D(2026, 5, 2),
                             cust=cust)
    left = invoice(currency="EUR", total=10015, balance=15, fee_lines=eur(15), payments=(rules.Payment(on=PAID, amount=eur(10000)),))
    today = D(2026, 6, 1)
    assert [a for a in plan(invoices=[left], today=today, pol=FRANCE, cust=cust, history=history)
            if isinstance(a, rules.ChargeFee)]
    assert rules.next_action_date(company=company(), invoice=left, customer=cust, policy=FRANCE, history=history,
                                  today=today, invoices=(left,)) == today


def test_an_unsent_invoice_a_promise_made_chargeable_gets_its_last_interest() -> None:
    """Unsent invoices are left alone, unless a promise, dispute or plan says the customer knew of it: such
    an invoice bore monthly interest, and is billed the interest up to its payment as well."""
    pol = policy("france_b2b", **NO_STEPS, skip_unsent_invoices=True)
    promise = rules.Promise(made_on=D(2026, 3, 20), until=D(2026, 3, 25), amount=eur(10000))
    history = [h for day in (D(2026, 4, 2), D(2026, 5, 2))
               for a in plan(invoices=[unpaid(sent=False)], today=day, pol=pol, pauses=[promise]) for h in rules.record(a)]
    assert any(":interest:2026-04-02" in h.dedupe_key for h in history)
    acts = plan(invoices=[paid(sent=False)], today=D(2026, 5, 31), pol=pol, history=history, pauses=[promise])
    assert [a.dedupe_key for a in acts] == ["r1:fee:i1:interest:2026-05-02"]


def test_a_last_interest_that_rounds_to_nothing_settles_the_invoice() -> None:
    """¥50 paid a few days late: its interest rounds to ¥0; the invoice is not a candidate every day forever."""
    yen = invoice(currency="JPY", total=50, balance=0, status="paid",
                  payments=(rules.Payment(on=D(2026, 4, 20), amount=Money.of(50, "JPY")),))
    today = D(2026, 6, 1)
    assert plan(invoices=[yen], today=today, pol=FRANCE) == []
    assert rules.next_action_date(company=company(), invoice=yen, customer=customer(), policy=FRANCE, today=today) is None


def test_a_cap_whose_room_rounds_to_nothing_is_reached() -> None:
    """A 1.999 % cap on ¥1,050 is ¥20.99: after ¥20 of fees the room (¥0.99) rounds down to nothing, so no
    further period is due (it was a candidate every day, for a fee of ¥0)."""
    capped = policy("us_net30", **NO_STEPS, late_fees={"rules": [{"kind": "flat", "amount": {"JPY": "10"},
                                                                  "frequency": "monthly"}],
                                                       "max_percent_of_principal": "1.999"})
    inv = invoice(currency="JPY", total=1050)
    history: list[rules.HistoryEntry] = []
    charged = Decimal(0)
    for day in (D(2026, 4, 2), D(2026, 5, 2), D(2026, 6, 2)):
        for a in plan(invoices=[inv], today=day, pol=capped, history=history):
            history.extend(rules.record(a))
            charged += a.amount.amount if isinstance(a, rules.ChargeFee) else 0
    assert charged == 20  # 10 + 10, then the room rounds down to nothing
    assert rules.next_action_date(company=company(), invoice=inv, customer=customer(), policy=capped,
                                  history=history, today=D(2026, 6, 3)) is None
