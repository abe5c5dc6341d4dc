"""A customer's unused credit in QuickBooks (credit memos' remaining credit, payments' unapplied
amounts) settles its oldest open invoices first: an invoice it settles in full gets no reminder,
fee or task — the customer has paid or been credited — and the owner is told once to apply it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import rules
from qbo_collector.rules import forecast
from tests.unit.rules.conftest import D, company, customer, invoice, money, policy, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False, "hour": 9, "minute": 0}
STEPS = [{"offset_days": -3, "template": "reminder_before_due"}, {"offset_days": 0, "template": "reminder_due_today"},
         {"offset_days": 7, "template": "reminder_overdue_gentle"}, {"offset_days": 21, "template": "reminder_final"}]
START = D(2026, 3, 1)
OLD = invoice(id="i1", doc_number="1041", due_date=D(2026, 4, 1), total=300)
NEW = invoice(id="i2", doc_number="1042", due_date=D(2026, 4, 15), total=500)


def pol(**overrides: object) -> rules.Policy:
    values: dict[str, object] = dict(steps=STEPS, repeat_last=None, min_gap_days=0, send_window=EVERY_DAY,
                                     alert_owner_when_late=True,
                                     escalation={"call_task_after_days": 7, "handoff_after_days": None})
    values.update(overrides)
    return policy("us_net30", **values)


def quiet_policy() -> rules.Policy:
    """Nothing from the due date until 14 days after it: no late alert, fee or task."""
    return pol(alert_owner_when_late=False, steps=[{"offset_days": 14, "template": "reminder_overdue_gentle"}],
               escalation={"call_task_after_days": None, "handoff_after_days": None}, late_fees={"rules": []})


def with_credit(*amounts: tuple[object, str]) -> rules.Customer:
    return customer(credits=tuple(money(a, c) for a, c in amounts))


def touched(actions: list[rules.Action]) -> set[str]:
    """The invoices something other than the credit alert was done for."""
    return {i for a in actions if not (isinstance(a, rules.AlertOwner) and a.topic == "credit")
            for i in a.invoice_ids}


def credit_alerts(actions: list[rules.Action]) -> list[rules.AlertOwner]:
    return [a for a in actions if isinstance(a, rules.AlertOwner) and a.topic == "credit"]


@pytest.mark.parametrize(("credits", "invoices", "covered"), [
    # oldest due first: 300 settles 1041 in full, nothing of 1042
    ([(300, "USD")], [OLD, NEW], {"i1"}),
    ([(800, "USD")], [NEW, OLD], {"i1", "i2"}),
    ([(799.99, "USD")], [OLD, NEW], {"i1"}),          # 1042 partly settled: reminded as usual
    ([(299.99, "USD")], [OLD, NEW], set()),            # nothing settled in full
    ([(100, "USD"), (200, "USD")], [OLD, NEW], {"i1"}),  # a memo and an unapplied payment add up
    ([(300, "EUR")], [OLD, NEW], set()),               # credit in another currency settles nothing
    ([(0, "USD")], [OLD, NEW], set()),
    # a partly paid invoice: what is left of it
    ([(120, "USD")], [dataclasses.replace(OLD, balance=money(120)), NEW], {"i1"}),
    # paid, voided: not open, the credit goes to the next one
    ([(500, "USD")], [dataclasses.replace(OLD, status="paid", balance=money(0)), NEW], {"i2"}),
    ([(500, "USD")], [dataclasses.replace(OLD, status="voided"), NEW], {"i2"}),
    # no due date: due on its invoice date (2026-03-02), so it is the oldest
    ([(500, "USD")], [OLD, dataclasses.replace(NEW, due_date=None)], {"i2"}),
    # another customer's invoice is not this customer's to settle
    ([(500, "USD")], [dataclasses.replace(OLD, customer_id="c2"), NEW], {"i2"}),
])
def test_which_invoices_the_credit_settles(credits: list[tuple[object, str]], invoices: list[rules.Invoice],
                                           covered: set[str]) -> None:
    assert rules.credit_covered(invoices, with_credit(*credits), today=START) == covered


def test_a_disputed_invoice_keeps_its_balance_and_the_credit_goes_to_the_next_one() -> None:
    dispute = rules.Dispute(opened_on=D(2026, 3, 10), invoice_ids=frozenset({"i1"}))
    assert rules.credit_covered([OLD, NEW], with_credit((500, "USD")), [dispute], today=D(2026, 3, 20)) == {"i2"}
    assert rules.credit_covered([OLD, NEW], with_credit((500, "USD")), [dispute], today=D(2026, 3, 9)) == {"i1"}


def test_a_settled_invoice_gets_nothing_but_one_alert_and_the_other_goes_on_as_usual() -> None:
    done = simulate(start=START, days=120, invoices=[OLD, NEW], pol=pol(), cust=with_credit((300, "USD")))
    assert touched(done) == {"i2"}
    assert {type(a).__name__ for a in done if "i2" in a.invoice_ids} >= {"SendReminder", "ChargeFee", "CreateTask"}
    [alert] = credit_alerts(done)
    assert alert.on == D(2026, 4, 2)  # the day after 1041 fell due: before that nothing was lost
    assert alert.invoices == ("i1",) and alert.amount == money(300)
    assert alert.dedupe_key == "r1:alert:c1:credit:USD:300.00"
    assert alert.reason == ("Acme Ltd has 300.00 USD of credit in QuickBooks that is not applied to any invoice "
                            "(credit memos, unapplied payments). It settles invoice 1041, so no reminder goes out "
                            "for it: apply the credit to it in QuickBooks.")


def test_without_the_credit_both_invoices_are_reminded_fined_and_escalated() -> None:
    done = simulate(start=START, days=120, invoices=[OLD, NEW], pol=pol(), cust=customer())
    assert touched(done) == {"i1", "i2"} and not credit_alerts(done)


def test_a_credit_that_settles_nothing_due_yet_alerts_nobody() -> None:
    future = dataclasses.replace(OLD, due_date=D(2026, 9, 1))
    done = simulate(start=START, days=60, invoices=[future], pol=pol(), cust=with_credit((300, "USD")))
    assert done == []


def test_a_new_credit_amount_is_told_again_the_same_one_once() -> None:
    history: list[rules.HistoryEntry] = []
    told = []
    for n, credit in enumerate([300, 300, 800, 800]):
        day = D(2026, 4, 20) + dt.timedelta(days=n)
        todays = rules.plan(company=company(), invoices=[OLD, NEW], customer=with_credit((credit, "USD")),
                            policy=pol(), history=tuple(history), today=day)
        for a in todays:
            history.extend(rules.record(a))
        told += [(a.on, a.invoices) for a in credit_alerts(todays)]
    assert told == [(D(2026, 4, 20), ("i1",)), (D(2026, 4, 22), ("i1", "i2"))]


def test_a_statement_does_not_list_a_settled_invoice() -> None:
    grouped = pol(group_by_customer=True)
    done = simulate(start=START, days=60, invoices=[OLD, NEW], pol=grouped, cust=with_credit((300, "USD")))
    statements = [a for a in done if isinstance(a, rules.SendReminder)]
    assert statements and all(a.invoices == ("i2",) for a in statements)


def test_one_alert_per_currency() -> None:
    eur = invoice(id="i3", doc_number="E-7", currency="EUR", total=200, due_date=D(2026, 4, 5))
    todays = rules.plan(company=company(), invoices=[OLD, NEW, eur], customer=with_credit((300, "USD"), (250, "EUR")),
                        policy=pol(), today=D(2026, 4, 20))
    assert [(a.amount, a.invoices) for a in credit_alerts(todays)] == [(money(250, "EUR"), ("i3",)),
                                                                       (money(300), ("i1",))]
    assert touched(todays) <= {"i2"}


def test_next_action_date_of_a_settled_invoice_is_the_alert_day_then_never() -> None:
    cust = with_credit((300, "USD"))
    args = dict(company=company(), customer=cust, policy=pol(), invoices=[OLD, NEW])
    assert rules.next_action_date(invoice=OLD, today=START, **args) == D(2026, 4, 2)  # type: ignore[arg-type]
    assert rules.next_action_date(invoice=OLD, today=D(2026, 5, 1), **args) == D(2026, 5, 1)  # type: ignore[arg-type]
    [alert] = credit_alerts(rules.plan(today=D(2026, 5, 1), invoices=[OLD, NEW], company=company(), customer=cust,
                                       policy=pol()))
    assert rules.next_action_date(invoice=OLD, today=D(2026, 5, 2), history=rules.record(alert),  # type: ignore[arg-type]
                                  **args) is None
    # without the customer's other invoices, the credit is weighed against this one alone
    assert rules.next_action_date(company=company(), customer=cust, policy=pol(), invoice=NEW,
                                  today=START) == D(2026, 4, 12)


def test_credit_that_pays_part_of_a_due_invoice_is_told_once_and_the_invoice_is_still_reminded() -> None:
    """200 unapplied against 1041 (300): QuickBooks still asks for 300, and so do the reminders (the payment
    link charges the QuickBooks balance); the owner is told once, the day after it falls due, to apply it."""
    done = simulate(start=START, days=120, invoices=[OLD, NEW], pol=pol(), cust=with_credit((200, "USD")))
    assert touched(done) == {"i1", "i2"}
    assert {type(a).__name__ for a in done if "i1" in a.invoice_ids} >= {"SendReminder", "ChargeFee", "CreateTask"}
    [alert] = credit_alerts(done)
    assert (alert.on, alert.invoices, alert.amount, alert.part) == (D(2026, 4, 2), ("i1",), money(200), money(200))
    assert alert.dedupe_key == "r1:alert:c1:credit:USD:200.00"
    assert alert.reason == ("Acme Ltd has 200.00 USD of credit in QuickBooks that is not applied to any invoice "
                            "(credit memos, unapplied payments). Applied, it pays 200.00 USD of invoice 1041, whose "
                            "reminders ask for the whole balance until then: apply the credit to it in QuickBooks.")


def test_credit_that_settles_one_invoice_and_part_of_the_next_is_one_alert_about_the_settled_one() -> None:
    done = simulate(start=START, days=120, invoices=[OLD, NEW], pol=pol(), cust=with_credit((400, "USD")))
    assert touched(done) == {"i2"}  # 1042 (500, 100 of it covered) is reminded for its QuickBooks balance
    [alert] = credit_alerts(done)
    assert (alert.on, alert.invoices, alert.part) == (D(2026, 4, 2), ("i1",), None)


def test_credit_that_pays_part_of_an_invoice_not_due_yet_alerts_nobody() -> None:
    done = simulate(start=START, days=30, invoices=[OLD, NEW], pol=pol(), cust=with_credit((200, "USD")))
    assert not credit_alerts(done)  # 1041 falls due on 1 April


def test_next_action_date_of_a_partly_paid_invoice_includes_the_alert_day() -> None:
    args = dict(company=company(), policy=quiet_policy(), invoices=[OLD, NEW])
    assert rules.next_action_date(invoice=OLD, customer=with_credit((200, "USD")), today=START,  # type: ignore[arg-type]
                                  **args) == D(2026, 4, 2)
    assert rules.next_action_date(invoice=OLD, customer=customer(), today=START,  # type: ignore[arg-type]
                                  **args) == D(2026, 4, 15)


@pytest.mark.parametrize("credit", [300, 200, 400])
@pytest.mark.parametrize("quiet", [False, True])
def test_plan_and_next_agrees_with_a_full_plan_day_by_day(credit: int, quiet: bool) -> None:
    """The indexed run (stored dates, focus) does what planning everything every day does: credit
    settling an invoice, paying part of one, or both; with a policy that does little after the due date."""
    cust = with_credit((credit, "USD"))
    policy_ = quiet_policy() if quiet else pol()
    full = simulate(start=START, days=120, invoices=[OLD, NEW], pol=policy_, cust=cust)
    assert credit_alerts(full)
    history: list[rules.HistoryEntry] = []
    dates: dict[str, dt.date | None] = {"i1": None, "i2": None}
    indexed: list[rules.Action] = []
    for n in range(120):
        day = START + dt.timedelta(days=n)
        focus = {i for i, d in dates.items() if d is None or d <= day}
        if not focus:
            continue
        todays, nxt = rules.plan_and_next(company=company(), invoices=[OLD, NEW], customer=cust, policy=policy_,
                                          history=tuple(history), today=day, focus=focus)
        for a in todays:
            history.extend(rules.record(a))
        indexed += todays
        dates.update({k: v or D(9999, 12, 31) for k, v in nxt.items()})
    assert [(a.on, a.dedupe_key) for a in indexed] == [(a.on, a.dedupe_key) for a in full]


def test_forecast_takes_the_credit_off_the_same_invoices() -> None:
    reduced = forecast.with_credits([NEW, OLD], {"USD": Decimal(400)})
    assert {i.id: i.balance for i in reduced} == {"i1": money(0), "i2": money(400)}


def test_a_promise_kept_with_a_payment_nobody_applied_is_not_broken() -> None:
    """The customer promised 300 by 20 April and paid it; the payment sits unapplied in QuickBooks."""
    promise = rules.Promise(made_on=D(2026, 4, 10), until=D(2026, 4, 20), amount=money(300),
                            invoice_ids=frozenset({"i1", "i2"}), open_balance_when_made=money(800))
    args = dict(company=company(), invoices=[OLD, NEW], policy=pol(), pauses=(promise,), today=D(2026, 4, 25))
    broken = [a for a in rules.plan(customer=customer(), **args)  # type: ignore[arg-type]
              if isinstance(a, rules.AlertOwner) and a.topic == "promise_broken"]
    assert broken  # without the credit: 800 still owed, more than 800 - 300
    assert not [a for a in rules.plan(customer=with_credit((300, "USD")), **args)  # type: ignore[arg-type]
                if isinstance(a, rules.AlertOwner) and a.topic == "promise_broken"]


def test_a_payment_plan_counts_unapplied_money_as_paid_instalments() -> None:
    plan_ = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 5), invoice_ids=frozenset({"i1", "i2"}), instalments=(
        rules.Instalment(due_on=D(2026, 4, 20), amount=money(400)),
        rules.Instalment(due_on=D(2026, 5, 20), amount=money(400))))
    def missed(cust: rules.Customer) -> list[str]:
        done = simulate(start=D(2026, 4, 5), days=30, invoices=[OLD, NEW], pol=pol(), pauses=[plan_], cust=cust)
        return [a.dedupe_key for a in done if isinstance(a, rules.AlertOwner) and a.topic == "instalment_missed"]
    assert missed(customer()) == ["r1:plan:p1:inst0:missed:owner"]
    assert missed(with_credit((400, "USD"))) == []  # the first instalment arrived, unapplied


# --- a parent's credit and the jobs billed with it -------------------------------------------------

PARENT_OWN = invoice(id="p1", customer_id="parent", due_date=D(2026, 4, 10), total=100)
JOB_A = invoice(id="a1", customer_id="jobA", due_date=D(2026, 4, 1), total=300)
JOB_A_LATER = invoice(id="a2", customer_id="jobA", due_date=D(2026, 5, 1), total=300)
JOB_B = invoice(id="b1", customer_id="jobB", due_date=D(2026, 4, 5), total=200)
BILLED = {"jobA": "parent", "jobB": "parent"}


def shares(invoices: list[rules.Invoice], credits: dict[str, dict[str, object]],
           parents: dict[str, str] = BILLED, skip: frozenset[str] = frozenset()) -> dict[str, dict[str, Decimal]]:
    found, _givers = rules.planner.parent_credit_shares(
        invoices, {c: {cur: Decimal(str(a)) for cur, a in v.items()} for c, v in credits.items()}, parents, skip)
    return found


@pytest.mark.parametrize(("credit", "expected"), [
    # the parent's own invoice first (100), then the jobs' oldest due first: 1 April (A), 5 April (B), 1 May (A)
    (100, {}),
    (400, {"jobA": {"USD": Decimal(300)}}),
    (550, {"jobA": {"USD": Decimal(300)}, "jobB": {"USD": Decimal(150)}}),
    (1000, {"jobA": {"USD": Decimal(600)}, "jobB": {"USD": Decimal(200)}}),
    (5000, {"jobA": {"USD": Decimal(600)}, "jobB": {"USD": Decimal(200)}}),  # the rest stays the parent's
])
def test_a_parents_credit_left_after_its_own_invoices_goes_to_its_jobs_oldest_due_first(
        credit: int, expected: dict[str, dict[str, Decimal]]) -> None:
    assert shares([PARENT_OWN, JOB_A, JOB_A_LATER, JOB_B], {"parent": {"USD": credit}}) == expected


def test_a_jobs_own_credit_pays_its_own_invoices_before_the_parents_is_shared() -> None:
    # job A's own 300 settles its 1 April invoice: the parent's 400 goes to B (200), then A's May invoice (200)
    assert shares([JOB_A, JOB_A_LATER, JOB_B], {"parent": {"USD": 400}, "jobA": {"USD": 300}}) == {
        "jobA": {"USD": Decimal(200)}, "jobB": {"USD": Decimal(200)}}


@pytest.mark.parametrize(("parents", "credits", "skip", "expected"), [
    # not billed with its parent: a job of its own, its invoices get nothing of the parent's
    ({"jobB": "parent"}, {"parent": {"USD": 1000}}, frozenset(), {"jobB": {"USD": Decimal(200)}}),
    # a disputed invoice keeps its balance: the credit goes to the next one
    (BILLED, {"parent": {"USD": 300}}, frozenset({"a1"}), {"jobB": {"USD": Decimal(200)}, "jobA": {"USD": Decimal(100)}}),
    # another currency pays nothing
    (BILLED, {"parent": {"EUR": 1000}}, frozenset(), {}),
    # a customer with credit and nobody billed with it shares nothing
    (BILLED, {"jobB": {"USD": 1000}}, frozenset(), {}),
])
def test_who_takes_part_of_a_parents_credit(parents: dict[str, str], credits: dict[str, dict[str, object]],
                                            skip: frozenset[str], expected: dict[str, dict[str, Decimal]]) -> None:
    assert shares([JOB_A, JOB_A_LATER, JOB_B], credits, parents, skip) == expected


def test_down_the_chain_the_nearest_parents_credit_goes_first() -> None:
    """grand → sub → job (each billed with its parent): the sub-customer's credit pays its job before the
    grandparent's does, and the grandparent's pays what is left across both levels."""
    job = invoice(id="j1", customer_id="job", due_date=D(2026, 4, 1), total=300)
    sub = invoice(id="s1", customer_id="sub", due_date=D(2026, 4, 20), total=100)
    found, givers = rules.planner.parent_credit_shares(
        [job, sub], {"sub": {"USD": Decimal(100)}, "grand": {"USD": Decimal(250)}}, {"job": "sub", "sub": "grand"})
    # sub's own 100 pays its own invoice; nothing of it left for the job; grand's 250 goes to the job's 300
    assert found == {"job": {"USD": Decimal(250)}} and givers == {"job": "grand"}
    found, givers = rules.planner.parent_credit_shares(
        [job, sub], {"sub": {"USD": Decimal(250)}, "grand": {"USD": Decimal(250)}}, {"job": "sub", "sub": "grand"})
    # sub's 150 left goes to its job first; grand's then pays the job's last 150 and nothing else is open
    assert found == {"job": {"USD": Decimal(300)}} and givers == {"job": "sub"}


def test_a_job_holding_its_parents_share_is_left_alone_and_the_owner_is_told_whose_credit_it_is() -> None:
    """The snapshot adds the share to the job's credits and names the parent: the engine then treats it as
    the job's credit, and the alert says where it is recorded."""
    job = customer(id="jobA", display_name="Kitchen remodel", credits=(money(300),), credit_holder="Hartley Homes")
    done = simulate(start=START, days=60, invoices=[dataclasses.replace(OLD, customer_id="jobA")], pol=pol(), cust=job)
    [alert] = credit_alerts(done)
    assert touched(done) == set() and alert.holder == "Hartley Homes"
    assert alert.reason == ("Kitchen remodel has 300.00 USD of credit in QuickBooks that is not applied to any "
                            "invoice (credit memos, unapplied payments, counting those of Hartley Homes, which it is "
                            "billed with). It settles invoice 1041, so no reminder goes out for it: apply the credit "
                            "to it in QuickBooks.")
