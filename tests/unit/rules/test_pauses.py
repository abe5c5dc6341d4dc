"""Pauses: promise to pay, dispute, payment plan, manual pause; resuming at the next step."""

from __future__ import annotations

import datetime as dt

import pytest

from qbo_collector import rules
from qbo_collector.rules import planner
from tests.unit.rules.conftest import D, company, customer, invoice, money, plan, policy, reminders, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False}
STEPS = [
    {"offset_days": 0, "template": "reminder_due_today"},
    {"offset_days": 7, "template": "reminder_overdue_gentle"},
    {"offset_days": 14, "template": "reminder_overdue_firm"},
    {"offset_days": 21, "template": "reminder_final"},
]
POL = policy(steps=STEPS, repeat_last=None, min_gap_days=0, send_window=EVERY_DAY, promise_grace_days=1,
             escalation={"call_task_after_days": None, "handoff_after_days": None},
             late_fees={"rules": [{"kind": "flat", "amount": {"USD": "10"}, "frequency": "every_n_days", "every_days": 7}]})
EMAIL = customer(has_phone=False)


def run(pauses: list[rules.Pause], invoices: list[rules.Invoice] | None = None, pol: rules.Policy = POL) -> list[tuple[dt.date, str, str]]:
    sent = simulate(start=D(2026, 3, 30), days=45, invoices=invoices or [invoice()], pol=pol, pauses=pauses, cust=EMAIL)
    return [(a.on, a.kind, getattr(a, "template_key", None) or getattr(a, "topic", None) or getattr(a, "period", "")) for a in sent]


NO_PAUSE = [
    (D(2026, 4, 1), "send_reminder", "reminder_due_today"),
    (D(2026, 4, 2), "charge_fee", "2026-04-02"),
    (D(2026, 4, 8), "send_reminder", "reminder_overdue_gentle"),
    (D(2026, 4, 9), "charge_fee", "2026-04-09"),
    (D(2026, 4, 15), "send_reminder", "reminder_overdue_firm"),
    (D(2026, 4, 16), "charge_fee", "2026-04-16"),
    (D(2026, 4, 22), "send_reminder", "reminder_final"),
    (D(2026, 4, 23), "charge_fee", "2026-04-23"),
    (D(2026, 4, 30), "charge_fee", "2026-04-30"),
    (D(2026, 5, 7), "charge_fee", "2026-05-07"),
]


@pytest.mark.parametrize(
    ("pauses", "expected"),
    [
        pytest.param([], NO_PAUSE, id="without a pause: steps and weekly fees"),
        pytest.param(
            [rules.Promise(made_on=D(2026, 4, 3), until=D(2026, 4, 20), amount=money(1000))],
            [(D(2026, 4, 1), "send_reminder", "reminder_due_today"),
             (D(2026, 4, 2), "charge_fee", "2026-04-02"),
             # paused 3 → 21 April (promise date plus one grace day); fee periods inside are waived
             (D(2026, 4, 22), "alert_owner", "promise_broken"),
             (D(2026, 4, 22), "send_reminder", "reminder_overdue_gentle"),   # the next step, not the newest
             (D(2026, 4, 23), "charge_fee", "2026-04-23"),
             (D(2026, 4, 29), "send_reminder", "reminder_overdue_firm"),     # later steps keep their spacing
             (D(2026, 4, 30), "charge_fee", "2026-04-30"),
             (D(2026, 5, 6), "send_reminder", "reminder_final"),
             (D(2026, 5, 7), "charge_fee", "2026-05-07")],
            id="broken promise: paused until its date, then flagged and resumed at the next step"),
        pytest.param(
            [rules.Dispute(opened_on=D(2026, 4, 5), invoice_ids=frozenset({"i1"}))],
            [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 2), "charge_fee", "2026-04-02")],
            id="open dispute pauses the invoice for good"),
        pytest.param(
            [rules.Dispute(opened_on=D(2026, 4, 5), resolved_on=D(2026, 4, 25))],
            [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 2), "charge_fee", "2026-04-02"),
             (D(2026, 4, 25), "send_reminder", "reminder_overdue_gentle"),
             (D(2026, 4, 30), "charge_fee", "2026-04-30"),
             (D(2026, 5, 2), "send_reminder", "reminder_overdue_firm"), (D(2026, 5, 7), "charge_fee", "2026-05-07"),
             (D(2026, 5, 9), "send_reminder", "reminder_final")],
            id="resolved dispute resumes at the next step on the day it was resolved"),
        pytest.param(
            [rules.Dispute(opened_on=D(2026, 4, 5), invoice_ids=frozenset({"other"}))], NO_PAUSE,
            id="a dispute about another invoice changes nothing"),
        pytest.param(
            [rules.ManualPause(start=D(2026, 4, 6), resume_on=D(2026, 4, 10))],
            [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 2), "charge_fee", "2026-04-02"),
             (D(2026, 4, 10), "send_reminder", "reminder_overdue_gentle"),
             (D(2026, 4, 16), "charge_fee", "2026-04-16"),
             (D(2026, 4, 17), "send_reminder", "reminder_overdue_firm"), (D(2026, 4, 23), "charge_fee", "2026-04-23"),
             (D(2026, 4, 24), "send_reminder", "reminder_final"), (D(2026, 4, 30), "charge_fee", "2026-04-30"),
             (D(2026, 5, 7), "charge_fee", "2026-05-07")],
            id="manual pause resumes on its date at the next step"),
    ],
)
def test_pauses(pauses: list[rules.Pause], expected: list[tuple[dt.date, str, str]]) -> None:
    assert run(pauses) == expected


FROM_PREVIOUS = policy(steps=[STEPS[0], *[{**s, "offset_days": 7, "anchor": "previous_step"} for s in STEPS[1:]]],
                       repeat_last=None, min_gap_days=0, send_window=EVERY_DAY,
                       escalation={"call_task_after_days": None, "handoff_after_days": None})
REPEATING = policy(steps=[STEPS[0], STEPS[3]], repeat_last={"every_days": 10, "max_times": 2}, min_gap_days=0,
                   send_window=EVERY_DAY, escalation={"call_task_after_days": None, "handoff_after_days": None})


@pytest.mark.parametrize(
    ("pol", "pauses", "expected"),
    [
        pytest.param(
            POL, [rules.ManualPause(start=D(2026, 4, 6), resume_on=D(2026, 4, 10)),
                  rules.ManualPause(start=D(2026, 4, 12), resume_on=D(2026, 4, 14))],
            [(D(2026, 4, 1), "reminder_due_today"), (D(2026, 4, 10), "reminder_overdue_gentle"),
             (D(2026, 4, 17), "reminder_overdue_firm"),  # a week after the last one, as with the first pause alone
             (D(2026, 4, 24), "reminder_final")],
            id="a second pause between two steps keeps the shift the first one made"),
        pytest.param(
            FROM_PREVIOUS, [rules.ManualPause(start=D(2026, 4, 6), resume_on=D(2026, 4, 20))],
            [(D(2026, 4, 1), "reminder_due_today"), (D(2026, 4, 20), "reminder_overdue_gentle"),
             (D(2026, 4, 27), "reminder_overdue_firm"), (D(2026, 5, 4), "reminder_final")],
            id="steps counted from the previous step keep their seven days after a pause"),
        pytest.param(
            REPEATING, [rules.Dispute(opened_on=D(2026, 4, 5), resolved_on=D(2026, 4, 25))],
            [(D(2026, 4, 1), "reminder_due_today"), (D(2026, 4, 25), "reminder_final"),
             (D(2026, 5, 5), "reminder_final"), (D(2026, 5, 15), "reminder_final")],
            id="repeats of the last step count from the day it went out after a resolved dispute"),
    ],
)
def test_later_steps_keep_their_spacing_after_pauses(pol: rules.Policy, pauses: list[rules.Pause],
                                                     expected: list[tuple[dt.date, str]]) -> None:
    sent = simulate(start=D(2026, 3, 30), days=60, invoices=[invoice()], pol=pol, pauses=pauses, cust=EMAIL)
    assert reminders(sent) == expected


@pytest.mark.parametrize(
    ("balance", "when_made", "broken"),
    [
        pytest.param(1000, None, True, id="promise without a paid amount is broken while anything is owed"),
        pytest.param(600, 1000, False, id="partial promise of 400 kept: 600 left of 1000"),
        pytest.param(700, 1000, True, id="partial promise of 400 broken: only 300 paid"),
    ],
)
def test_promise_kept_or_broken(balance: int, when_made: int | None, broken: bool) -> None:
    promise = rules.Promise(made_on=D(2026, 4, 3), until=D(2026, 4, 20), amount=money(400),
                            open_balance_when_made=money(when_made) if when_made else None)
    got = run([promise], invoices=[invoice(balance=balance)])
    assert ((D(2026, 4, 22), "alert_owner", "promise_broken") in got) is broken


def test_promise_kept_by_paying_in_full_gives_nothing_more() -> None:
    promise = rules.Promise(made_on=D(2026, 4, 3), until=D(2026, 4, 20), amount=money(1000))
    assert run([promise], invoices=[invoice(status="paid", balance=0)]) == []


def test_payment_plan_reminders_follow_the_instalments() -> None:
    plan = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3), instalments=(
        rules.Instalment(due_on=D(2026, 4, 15), amount=money(500)),
        rules.Instalment(due_on=D(2026, 5, 15), amount=money(500)),
    ))
    # balance 1000: first instalment missed; then (say) paid down to 500 → second instalment only
    got = run([plan], invoices=[invoice()])
    assert got[:2] == [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 2), "charge_fee", "2026-04-02")]
    assert got[2:] == [(D(2026, 4, 12), "send_reminder", "reminder_before_due"),
                       (D(2026, 4, 16), "alert_owner", "instalment_missed"),
                       (D(2026, 4, 16), "send_reminder", "reminder_overdue_gentle")]
    paid_half = run([plan], invoices=[invoice(balance=500)])
    assert paid_half[2:] == [(D(2026, 5, 12), "send_reminder", "reminder_before_due")]


BEFORE_THE_PLAN = [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 2), "charge_fee", "2026-04-02")]


@pytest.mark.parametrize(
    ("hold", "expected"),
    [
        pytest.param(rules.ManualPause(start=D(2026, 4, 5), resume_on=D(2026, 5, 20)), BEFORE_THE_PLAN,
                     id="a manual pause of the customer holds the plan's reminders and alerts"),
        pytest.param(rules.Dispute(opened_on=D(2026, 4, 5), invoice_ids=frozenset({"i1"})), BEFORE_THE_PLAN,
                     id="an open dispute on the plan's invoice holds its reminders and alerts"),
        pytest.param(rules.ManualPause(start=D(2026, 4, 5), resume_on=D(2026, 4, 14)),
                     [*BEFORE_THE_PLAN, (D(2026, 4, 14), "send_reminder", "reminder_before_due"),  # on the resume day
                      (D(2026, 4, 16), "alert_owner", "instalment_missed"),
                      (D(2026, 4, 16), "send_reminder", "reminder_overdue_gentle")],
                     id="the instalment reminder held by a manual pause goes out on the resume day"),
    ],
)
def test_payment_plan_waits_while_its_invoice_is_otherwise_paused(hold: rules.Pause,
                                                                  expected: list[tuple[dt.date, str, str]]) -> None:
    plan = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3),
                             instalments=(rules.Instalment(due_on=D(2026, 4, 15), amount=money(1000)),))
    # the plan ends on 17 April (one day after its late reminder): the invoice's steps resume then
    assert [got for got in run([plan, hold]) if got[0] < D(2026, 4, 17)] == expected


def test_payment_plan_keys() -> None:
    plan = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3),
                             instalments=(rules.Instalment(due_on=D(2026, 4, 15), amount=money(1000)),))
    sent = simulate(start=D(2026, 4, 3), days=20, pol=POL, pauses=[plan], cust=EMAIL)
    assert [a.dedupe_key for a in sent if ":plan:" in a.dedupe_key] == ["r1:plan:p1:inst0:before:email", "r1:plan:p1:inst0:missed:owner",
                                            "r1:plan:p1:inst0:after:email"]


def test_pause_for_the_whole_customer() -> None:
    pause = rules.ManualPause(start=D(2026, 3, 1), resume_on=D(2026, 6, 1))
    assert run([pause], invoices=[invoice(id="i1"), invoice(id="i2")]) == []


LATER = invoice(id="i2", total=300, txn_date=D(2026, 4, 10), due_date=D(2026, 4, 25))  # billed after the promise


@pytest.mark.parametrize(("balance", "broken"), [(600, False), (700, True)], ids=["kept", "broken"])
def test_a_promise_on_all_invoices_is_about_those_there_when_it_was_made(balance: int, broken: bool) -> None:
    """Found in review: a promise made with no invoice chosen (all of them) counted an invoice billed
    afterwards, so a kept promise was reported broken to the owner. It is judged on the invoices billed
    by the day it was made; the new one is still held by it (no reminder before the promised day)."""
    promise = rules.Promise(made_on=D(2026, 4, 3), until=D(2026, 4, 20), amount=money(400),
                            open_balance_when_made=money(1000))
    got = run([promise], invoices=[invoice(balance=balance), LATER])
    assert ((D(2026, 4, 22), "alert_owner", "promise_broken") in got) is broken
    assert not [g for g in got if D(2026, 4, 3) <= g[0] < D(2026, 4, 21) and g[1] == "send_reminder"]


def test_a_plan_on_all_invoices_is_about_those_there_when_it_was_agreed() -> None:
    """Found in review: the first instalment paid, a new invoice made it look missed — an alert to the
    owner and a "missed instalment" reminder to the customer. The new invoice keeps its own steps."""
    plan = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3), instalments=(
        rules.Instalment(due_on=D(2026, 4, 15), amount=money(500)),
        rules.Instalment(due_on=D(2026, 5, 15), amount=money(500))))
    got = run([plan], invoices=[invoice(balance=500), LATER])
    assert not [g for g in got if g[2] == "instalment_missed"]
    assert (D(2026, 5, 12), "send_reminder", "reminder_before_due") in got  # the second instalment, as planned
    named = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3), invoice_ids=frozenset({"i1", "i2"}),
                              instalments=plan.instalments)  # a plan naming the later invoice counts it
    assert (D(2026, 4, 16), "alert_owner", "instalment_missed") in run([named], invoices=[invoice(balance=500), LATER])


@pytest.mark.parametrize("kind", ["plan", "promise"])
def test_a_plan_or_promise_closed_by_a_person_keeps_the_days_it_held(kind: str) -> None:
    """Found in review: a plan (or a promise) a person cancelled was forgotten, so the next run charged
    the fee periods it had held back and jumped to the last step. Its days stay held: fees of those
    periods stay waived, and the steps go on from where they were."""
    from qbo_collector import snapshot
    from qbo_collector.db import models

    row = models.Pause(id=7, kind=kind, customer_qbo_id="c1", invoice_ids=["i1"], start_on=D(2026, 4, 10),
                       until_on=D(2026, 7, 1), currency="USD", amount=1000, resolved_on=D(2026, 6, 15),
                       data={"instalments": [{"due_on": "2026-05-01", "amount": "500"},
                                             {"due_on": "2026-07-01", "amount": "500"}]})
    held = snapshot.pause_record(row, "USD")
    assert held == rules.ManualPause(start=D(2026, 4, 10), resume_on=D(2026, 6, 15), invoice_ids=frozenset({"i1"}))
    sent = simulate(start=D(2026, 3, 30), days=90, invoices=[invoice()], pol=POL, pauses=[held], cust=EMAIL)
    got = [(a.on, a.kind, getattr(a, "template_key", None) or getattr(a, "period", "")) for a in sent]
    assert not [g for g in got if g[1] == "charge_fee" and D(2026, 4, 10) <= dt.date.fromisoformat(g[2]) < D(2026, 6, 15)]
    after = [g for g in got if g[0] >= D(2026, 6, 15) and g[1] == "send_reminder"]
    assert after[:1] == [(D(2026, 6, 15), "send_reminder", "reminder_overdue_firm")]  # the next step, not the last
    row.resolved_on = row.start_on  # closed the day it was made: it held nothing
    assert snapshot.pause_record(row, "USD") is None


# The Friendly preset, every day a send day and no gap: before due 29 March, due today 1 April,
# gentle 8 April, firm 22 April, final 16 May (then every 30 days, twice), a call 7 days after.
FRIENDLY = policy("friendly", send_window=EVERY_DAY, min_gap_days=0)
FRIENDLY_NO_PAUSE = [(D(2026, 3, 29), "reminder_before_due"), (D(2026, 4, 1), "reminder_due_today"),
                     (D(2026, 4, 8), "reminder_overdue_gentle"), (D(2026, 4, 22), "reminder_overdue_firm"),
                     (D(2026, 5, 16), "reminder_final")]


def spanning(pauses: list[rules.Pause], pol: rules.Policy = FRIENDLY) -> list[tuple[dt.date, str, str]]:
    sent = simulate(start=D(2026, 3, 15), days=90, invoices=[invoice()], pol=pol, pauses=pauses, cust=EMAIL)
    return [(a.on, a.kind, getattr(a, "template_key", None) or getattr(a, "topic", None) or getattr(a, "task", ""))
            for a in sent]


@pytest.mark.parametrize(
    ("pauses", "expected"),
    [
        pytest.param([], [(d, "send_reminder", t) for d, t in FRIENDLY_NO_PAUSE], id="without a pause"),
        pytest.param(
            [rules.Dispute(opened_on=D(2026, 3, 20), resolved_on=D(2026, 5, 1))],
            [(D(2026, 5, 1), "send_reminder", "reminder_overdue_gentle"),  # before due and due today passed over
             (D(2026, 5, 15), "send_reminder", "reminder_overdue_firm"),   # 14 days after it, as planned
             (D(2026, 6, 8), "send_reminder", "reminder_final")],
            id="dispute opened before the due date, resolved after it: the first overdue step on the day it ends"),
        pytest.param(
            [rules.Promise(made_on=D(2026, 3, 25), until=D(2026, 4, 20), amount=money(1000))],
            [(D(2026, 4, 22), "alert_owner", "promise_broken"),
             (D(2026, 4, 22), "send_reminder", "reminder_overdue_gentle"),
             (D(2026, 5, 6), "send_reminder", "reminder_overdue_firm"), (D(2026, 5, 30), "send_reminder", "reminder_final")],
            id="promise made before the due date and broken after it"),
        pytest.param(
            [rules.ManualPause(start=D(2026, 3, 27), resume_on=D(2026, 4, 15))],
            [(D(2026, 4, 15), "send_reminder", "reminder_overdue_gentle"),
             (D(2026, 4, 29), "send_reminder", "reminder_overdue_firm"), (D(2026, 5, 23), "send_reminder", "reminder_final")],
            id="manual pause from before the due date to after it"),
        pytest.param(
            [rules.PaymentPlan(id="p1", agreed_on=D(2026, 3, 25),
                               instalments=(rules.Instalment(due_on=D(2026, 4, 10), amount=money(1000)),))],
            [(D(2026, 4, 7), "send_reminder", "reminder_before_due"),  # the instalment's own reminders
             (D(2026, 4, 11), "alert_owner", "instalment_missed"), (D(2026, 4, 11), "send_reminder", "reminder_overdue_gentle"),
             (D(2026, 4, 12), "send_reminder", "reminder_overdue_gentle"),  # the plan is over: the invoice's first overdue step
             (D(2026, 4, 26), "send_reminder", "reminder_overdue_firm"), (D(2026, 5, 20), "send_reminder", "reminder_final")],
            id="payment plan agreed before the due date, its last instalment missed after it"),
        pytest.param(
            [rules.ManualPause(start=D(2026, 3, 30), resume_on=D(2026, 4, 3))],
            [(D(2026, 3, 29), "send_reminder", "reminder_before_due"), *[
                (d, "send_reminder", t) for d, t in FRIENDLY_NO_PAUSE[2:]]],
            id="a pause over the due date that ends before the next step: due today passed over, nothing moves"),
        pytest.param(
            [rules.ManualPause(start=D(2026, 3, 20), resume_on=D(2026, 3, 30))],
            [(D(2026, 3, 30), "send_reminder", "reminder_before_due"), *[
                (d, "send_reminder", t) for d, t in FRIENDLY_NO_PAUSE[1:]]],
            id="a pause that ends before the due date: before due on the resume day, due today on the due date"),
        pytest.param(
            [rules.ManualPause(start=D(2026, 3, 20), resume_on=D(2026, 4, 1))],
            [(d, "send_reminder", t) for d, t in FRIENDLY_NO_PAUSE[1:]],
            id="a pause that ends on the due date: due today goes out that day"),
    ],
)
def test_a_pause_over_the_due_date_does_not_send_the_before_due_steps_late(
        pauses: list[rules.Pause], expected: list[tuple[dt.date, str, str]]) -> None:
    """Found in an audit: after a pause that began before the due date and ended after it, "due on
    1 April" and "due today" went out in May, and every later step slipped as far. The steps of the due
    date are passed over, as catch-up passes over missed steps; the first overdue step takes the resume day."""
    assert spanning(pauses) == expected


def test_a_pause_over_the_due_date_with_no_overdue_step_sends_the_last_one_when_it_ends() -> None:
    """The last step is never passed over (the escalation waits for it): it goes out on the resume day,
    in overdue words."""
    pol = policy("friendly", steps=FRIENDLY.model_dump(mode="json")["steps"][:2], repeat_last=None,
                 send_window=EVERY_DAY, min_gap_days=0)
    got = spanning([rules.Dispute(opened_on=D(2026, 3, 20), resolved_on=D(2026, 4, 10))], pol)
    assert got == [(D(2026, 4, 10), "send_reminder", "reminder_overdue_gentle"), (D(2026, 4, 17), "create_task", "call"),
                   (D(2026, 5, 17), "create_task", "handoff")]


def test_the_next_action_date_after_a_pause_over_the_due_date_is_the_first_overdue_step() -> None:
    dispute = rules.Dispute(opened_on=D(2026, 3, 20), resolved_on=D(2026, 4, 3))
    got = rules.next_action_date(company=company(), invoice=invoice(), customer=EMAIL, policy=FRIENDLY,
                                 pauses=(dispute,), today=D(2026, 3, 25))
    assert got == D(2026, 4, 8)


def test_two_promises_with_the_same_dates_on_two_invoices_are_two_broken_promise_alerts() -> None:
    """Found in review: the alert's key was the promise's dates only, so the second of two promises made
    the same day to pay two invoices by the same day was never told. A promise alone keeps its key."""
    a, b = invoice(id="A"), invoice(id="B")
    promises = [rules.Promise(made_on=D(2026, 4, 5), until=D(2026, 4, 10), amount=money(1000),
                              invoice_ids=frozenset({i})) for i in ("A", "B")]
    alerts = [x for x in plan(invoices=[a, b], today=D(2026, 4, 13), pauses=promises)
              if isinstance(x, rules.AlertOwner) and x.topic == "promise_broken"]
    assert sorted(x.invoices for x in alerts) == [("A",), ("B",)] and len({x.dedupe_key for x in alerts}) == 2
    assert planner.promise_key("r1", "c1", promises[0]) == "r1:alert:c1:promise-broken:2026-04-05:2026-04-10"
