"""next_action_date: the indexed date the daily run selects on; plan_calendar; record; policy choice."""

from __future__ import annotations

import datetime as dt

import pytest

from qbo_collector import rules
from tests.unit.rules.conftest import D, company, customer, invoice, money, policy, simulate

FRIENDLY = policy("friendly")
NO_ESCALATION = {"call_task_after_days": None, "handoff_after_days": None}


def nad(inv: rules.Invoice | None = None, *, today: dt.date, pol: rules.Policy = FRIENDLY,
        history: tuple[rules.HistoryEntry, ...] = (), pauses: tuple[rules.Pause, ...] = (),
        cust: rules.Customer | None = None) -> dt.date | None:
    return rules.next_action_date(company=company(), invoice=inv or invoice(), customer=cust or customer(),
                                  policy=pol, history=history, pauses=pauses, today=today)


@pytest.mark.parametrize(
    ("inv", "today", "pauses", "cust", "expected"),
    [
        pytest.param(invoice(), D(2026, 3, 10), (), None, D(2026, 3, 30),
                     id="future invoice: its first step, moved off the Sunday to Monday"),
        pytest.param(invoice(status="paid", balance=0), D(2026, 3, 10), (), None, None, id="paid invoice: never"),
        pytest.param(invoice(balance=0), D(2026, 3, 10), (), None, None, id="zero balance after a credit memo: never"),
        pytest.param(invoice(status="voided"), D(2026, 3, 10), (), None, None, id="voided invoice: never"),
        pytest.param(invoice(), D(2026, 3, 10), (), customer(excluded=True), None, id="excluded customer: never"),
        pytest.param(invoice(due_date=None, txn_date=None), D(2026, 3, 10), (), None, None,
                     id="no due date and no invoice date: never"),
        pytest.param(invoice(), D(2026, 3, 10), (rules.Dispute(opened_on=D(2026, 3, 1)),), None, None,
                     id="open dispute: never, until it is resolved"),
        pytest.param(invoice(), D(2026, 4, 10), (rules.ManualPause(start=D(2026, 4, 1), resume_on=D(2026, 4, 20)),), None,
                     D(2026, 4, 20), id="manual pause: its resume date"),
        pytest.param(invoice(), D(2026, 4, 10),
                     (rules.Promise(made_on=D(2026, 4, 1), until=D(2026, 4, 24), amount=money(1000)),), None,
                     D(2026, 4, 26), id="promise: the day after its grace day, when it may be found broken"),
        pytest.param(invoice(), D(2026, 4, 3), (), None, D(2026, 4, 3),
                     id="a step already due and not done: today"),
    ],
)
def test_next_action_date(inv: rules.Invoice, today: dt.date, pauses: tuple[rules.Pause, ...],
                          cust: rules.Customer | None, expected: dt.date | None) -> None:
    assert nad(inv, today=today, pauses=pauses, cust=cust) == expected


def test_next_action_date_after_a_step_waits_for_the_gap_and_the_next_step() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                        {"offset_days": 1, "template": "reminder_overdue_gentle"}],
                 min_gap_days=5, repeat_last=None, escalation=NO_ESCALATION)
    sent = simulate(start=D(2026, 4, 1), days=1, pol=pol, cust=customer(has_phone=False))
    history = tuple(h for a in sent for h in rules.record(a))
    assert nad(today=D(2026, 4, 2), pol=pol, history=history) == D(2026, 4, 6)  # gap ends Mon 6 April


def test_next_action_date_for_the_next_fee_period() -> None:
    pol = policy("us_net30", steps=[], escalation=NO_ESCALATION)
    first = rules.HistoryEntry(dedupe_key="r1:fee:i1:percent:2026-04-02", kind="fee",
                               at=dt.datetime(2026, 4, 2, 13, tzinfo=dt.timezone.utc), invoice_ids=frozenset({"i1"}),
                               amount=money(15))
    assert nad(today=D(2026, 4, 3), pol=pol, history=(first,)) == D(2026, 5, 2)


def test_next_action_date_never_later_than_what_the_planner_does() -> None:
    """Walk the friendly preset for 200 days: every action's day was announced by the stored date."""
    pol = policy("firm")
    inv = invoice()
    history: list[rules.HistoryEntry] = []
    stored = nad(inv, today=D(2026, 3, 1), pol=pol)
    for n in range(200):
        day = D(2026, 3, 1) + dt.timedelta(days=n)
        actions = rules.plan(company=company(), invoices=[inv], customer=customer(), policy=pol,
                             history=history, today=day)
        if actions:
            assert stored is not None and stored <= day
            history.extend(h for a in actions for h in rules.record(a))
            stored = nad(inv, today=day + dt.timedelta(days=1), pol=pol, history=tuple(history))


def test_a_message_gone_out_after_midnight_delays_the_next_step_alike_for_the_indexed_run_and_a_full_plan() -> None:
    """Tuesday's step goes out at 5:00 on Wednesday in the customer's zone (held up 20 hours); the stored
    date was worked out as if it went out on Tuesday. Both runs must wait for the gap from Wednesday."""
    co = company(time_zone="America/Los_Angeles", country="US")
    kwargs = dict(company=co, invoices=[invoice(due_date=D(2026, 1, 18), txn_date=D(2025, 12, 19))],
                  customer=customer(has_phone=False), policy=policy("france_b2b", min_gap_days=2))
    history: list[rules.HistoryEntry] = []
    stored: dict[str, dt.date | None] = {"i1": D(2026, 3, 3)}
    sent = []
    for n in range(8):
        day = D(2026, 3, 3) + dt.timedelta(days=n)
        full = rules.plan(**kwargs, history=history, today=day)  # type: ignore[arg-type]
        focus = {i for i, d in stored.items() if d is not None and d <= day}
        indexed, dates = rules.plan_and_next(**kwargs, history=history, today=day, focus=focus)  # type: ignore[arg-type]
        assert indexed == full, day
        for a in indexed:
            late = isinstance(a, rules.SendReminder)
            history.extend(rules.record(a, at=a.due_at + dt.timedelta(hours=20 if late else 0)))
            sent.extend([(day, a.template_key)] if late else [])
        stored.update(dates)
    assert sent == [(D(2026, 3, 3), "reminder_overdue_firm"), (D(2026, 3, 6), "reminder_final")]


DUE_TODAY = invoice(id="a", due_date=D(2026, 4, 1))
DUE_LATER = invoice(id="b", txn_date=D(2026, 3, 31), due_date=D(2026, 5, 20))  # next action 18 May; billed before the promise
PROMISE = rules.Promise(made_on=D(2026, 4, 2), until=D(2026, 4, 15), amount=money(500),
                        open_balance_when_made=money(2000))  # kept only if the two still owe 1500 or less
PAYMENT_PLAN = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 2), instalments=(
    rules.Instalment(due_on=D(2026, 4, 30), amount=money(1000)), rules.Instalment(due_on=D(2026, 5, 30), amount=money(1000))))


@pytest.mark.parametrize(
    ("pol", "pauses", "today", "focus", "expected", "as_without_focus"),
    [
        pytest.param(FRIENDLY, (), D(2026, 4, 1), {"a"}, [("r1:reminder:a:step1:email", ("a",))], True,
                     id="the invoice not yet due is left out: its sibling's reminder goes out as without focus"),
        pytest.param(policy(group_by_customer=True), (), D(2026, 4, 1), {"a"},
                     [("r1:statement:c1:510a6c2de36695d2:email", ("a", "b"))], True,
                     id="a statement still lists the invoice left out"),
        pytest.param(FRIENDLY, (PROMISE,), D(2026, 4, 20), {"a"},
                     [("r1:alert:c1:promise-broken:2026-04-02:2026-04-15", ("a", "b")),
                      ("r1:reminder:a:step2:email", ("a",))],  # the first overdue step: "due today" is long past
                     True, id="a promise is judged broken on the balance of every invoice, the one left out included"),
        pytest.param(FRIENDLY, (PAYMENT_PLAN,), D(2026, 4, 27), set(), [("r1:plan:p1:inst0:before:email", ("a", "b"))], True,
                     id="payment-plan reminders are the customer's: they go out with no invoice focused"),
        pytest.param(FRIENDLY, (), D(2026, 4, 1), set(), [], False,
                     id="an invoice left out is not evaluated: the caller vouches that nothing of its own is due"),
    ],
)
def test_plan_focused_on_some_invoices(pol: rules.Policy, pauses: tuple[rules.Pause, ...], today: dt.date,
                                       focus: set[str], expected: list[tuple[str, tuple[str, ...]]],
                                       as_without_focus: bool) -> None:
    kwargs = dict(company=company(), invoices=[DUE_TODAY, DUE_LATER], customer=customer(has_phone=False), policy=pol,
                  pauses=pauses, today=today)
    focused = rules.plan(**kwargs, focus=focus)  # type: ignore[arg-type]
    assert [(a.dedupe_key, a.invoice_ids) for a in focused] == expected
    assert (focused == rules.plan(**kwargs)) is as_without_focus  # type: ignore[arg-type]


def test_plan_and_next_stores_tomorrow_s_dates_of_the_focused_invoices_only() -> None:
    kwargs = dict(company=company(), customer=customer(has_phone=False), policy=FRIENDLY)
    actions, dates = rules.plan_and_next(**kwargs, invoices=[DUE_TODAY, DUE_LATER], today=D(2026, 4, 1),  # type: ignore[arg-type]
                                         focus={"a"})
    assert [a.dedupe_key for a in actions] == ["r1:reminder:a:step1:email"]
    history = [h for a in actions for h in rules.record(a)]
    assert dates == {"a": D(2026, 4, 8)}  # the next step, a week after the due date
    assert dates["a"] == rules.next_action_date(**kwargs, invoice=DUE_TODAY, history=history,  # type: ignore[arg-type]
                                                today=D(2026, 4, 2))


def test_plan_calendar_lists_the_coming_days() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], repeat_last=None, escalation=NO_ESCALATION,
                 late_fees={"rules": [{"kind": "flat", "amount": {"USD": "10"}}]})
    got = rules.plan_calendar(company=company(), invoices=[invoice()], customer=customer(has_phone=False), policy=pol,
                              today=D(2026, 3, 30), days=5)
    assert [(a.on, a.kind) for a in got] == [(D(2026, 4, 1), "send_reminder"), (D(2026, 4, 2), "charge_fee")]


def test_record_turns_a_statement_into_one_entry_per_invoice_step() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], group_by_customer=True)
    [statement] = rules.plan(company=company(), invoices=[invoice(id="a"), invoice(id="b")],
                             customer=customer(has_phone=False), policy=pol, today=D(2026, 4, 1))
    entries = rules.record(statement)
    assert [(sorted(e.invoice_ids), e.step, e.kind, e.dedupe_key) for e in entries] == [
        (["a"], 0, "reminder", statement.dedupe_key), (["b"], 0, "reminder", statement.dedupe_key)]


@pytest.mark.parametrize(
    ("name", "excluded", "expected"),
    [
        pytest.param(None, False, "friendly", id="no policy of its own: the company default"),
        pytest.param("vip", False, "vip", id="a customer assigned the VIP policy"),
        pytest.param("gone", False, "friendly", id="an unknown policy name falls back to the default"),
        pytest.param("vip", True, None, id="excluded customer: no policy at all"),
    ],
)
def test_policy_for_a_customer(name: str | None, excluded: bool, expected: str | None) -> None:
    policies = {**rules.PRESETS, "vip": policy(name="vip", min_gap_days=10)}
    chosen = rules.policy_for(name, excluded=excluded, policies=policies)
    assert (chosen.name if chosen else None) == expected


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda: rules.Invoice(realm="r1", id="i9", customer_id="c1", currency="EUR", total=money(10, "USD"),
                                           balance=money(10, "USD"), txn_date=D(2026, 3, 1)), "currency",
                     id="an invoice whose amounts are in another currency is refused"),
        pytest.param(lambda: invoice(status="archived"), "status", id="an unknown invoice status is refused"),
        pytest.param(lambda: company(time_zone="Mars/Olympus"), "time_zone", id="an unknown time zone is refused"),
        pytest.param(lambda: company(country="XX"), "country", id="a country without a holiday calendar is refused"),
    ],
)
def test_bad_records_are_refused_with_the_field(build, field: str) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector import errors

    with pytest.raises(errors.InvalidInput) as caught:
        build()
    assert caught.value.field == field
