"""Reminder steps: which step goes out on which day, once, with catch-up and without bursts."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from qbo_collector import rules
from tests.unit.rules.conftest import D, company, customer, invoice, plan, policy, reminders, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False, "hour": 9, "minute": 0}
THREE_STEPS = [
    {"offset_days": -3, "template": "reminder_before_due"},
    {"offset_days": 0, "template": "reminder_due_today"},
    {"offset_days": 7, "template": "reminder_overdue_gentle"},
]


def simple(**overrides: object) -> rules.Policy:
    values: dict[str, object] = dict(steps=THREE_STEPS, repeat_last=None, min_gap_days=0, send_window=EVERY_DAY,
                                     escalation={"call_task_after_days": None, "handoff_after_days": None})
    values.update(overrides)
    return policy(**values)


EMAIL_ONLY = customer(has_phone=False)


@pytest.mark.parametrize(
    ("pol", "inv", "skip", "start", "expected"),
    [
        pytest.param(simple(), invoice(), (), D(2026, 3, 1),
                     [(D(2026, 3, 29), "reminder_before_due"), (D(2026, 4, 1), "reminder_due_today"),
                      (D(2026, 4, 8), "reminder_overdue_gentle")],
                     id="each step goes out once on its day when run daily"),
        pytest.param(simple(), invoice(), [D(2026, 3, 25) + dt.timedelta(days=n) for n in range(16)], D(2026, 3, 1),
                     [(D(2026, 4, 10), "reminder_overdue_gentle")],
                     id="after days off only the newest due step is sent, never a burst"),
        pytest.param(simple(), invoice(), [D(2026, 4, 1)], D(2026, 3, 1),
                     [(D(2026, 3, 29), "reminder_before_due"),
                      (D(2026, 4, 2), "reminder_overdue_gentle"),  # the due-today step, a day late: overdue words
                      (D(2026, 4, 8), "reminder_overdue_gentle")],
                     id="a step due on a missed day goes out on the next run"),
        pytest.param(simple(), invoice(due_date=None, term_due_days=30), (), D(2026, 3, 1),
                     [(D(2026, 3, 29), "reminder_before_due"), (D(2026, 4, 1), "reminder_due_today"),
                      (D(2026, 4, 8), "reminder_overdue_gentle")],
                     id="no due date: derived from the term's due days"),
        pytest.param(simple(), invoice(due_date=None), (), D(2026, 3, 2),
                     [(D(2026, 3, 2), "reminder_due_today"), (D(2026, 3, 9), "reminder_overdue_gentle")],
                     id="no due date and no term: due on the invoice date, the before-due step is skipped"),
        pytest.param(simple(), invoice(due_date=None, txn_date=None), (), D(2026, 3, 1), [],
                     id="no due date and no invoice date: nothing"),
        pytest.param(simple(repeat_last={"every_days": 10, "max_times": 2}), invoice(), (), D(2026, 3, 1),
                     [(D(2026, 3, 29), "reminder_before_due"), (D(2026, 4, 1), "reminder_due_today"),
                      (D(2026, 4, 8), "reminder_overdue_gentle"), (D(2026, 4, 18), "reminder_overdue_gentle"),
                      (D(2026, 4, 28), "reminder_overdue_gentle")],
                     id="last step repeats every 10 days and stops at its cap"),
        pytest.param(simple(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                                   {"offset_days": 5, "anchor": "previous_step", "template": "reminder_overdue_gentle"}]),
                     invoice(), [D(2026, 4, 1), D(2026, 4, 2), D(2026, 4, 3)], D(2026, 3, 1),
                     [(D(2026, 4, 4), "reminder_overdue_gentle"),  # the due-today step, after the due date
                      (D(2026, 4, 9), "reminder_overdue_gentle")],
                     id="a step counted from the previous one counts from when that one went out"),
        pytest.param(simple(steps=[{"offset_days": 14, "anchor": "invoice_date", "template": "reminder_before_due"}]),
                     invoice(), (), D(2026, 3, 1), [(D(2026, 3, 16), "reminder_before_due")],
                     id="a step counted from the invoice date"),
        pytest.param(simple(steps=[{"offset_days": 40, "anchor": "invoice_date", "template": "reminder_before_due"},
                                   {"offset_days": 0, "template": "reminder_due_today"}]),
                     invoice(), (), D(2026, 3, 1), [(D(2026, 4, 11), "reminder_overdue_gentle")],  # the due-today step
                     id="a step never comes before the step above it"),
    ],
)
def test_step_schedule(pol: rules.Policy, inv: rules.Invoice, skip: list[dt.date], start: dt.date,
                       expected: list[tuple[dt.date, str]]) -> None:
    sent = simulate(start=start, days=90, invoices=[inv], pol=pol, cust=EMAIL_ONLY, skip=skip)
    assert reminders(sent) == expected


@pytest.mark.parametrize(
    ("invoices", "expected_ids"),
    [
        pytest.param([invoice()], [("i1",)], id="open invoice is reminded"),
        pytest.param([invoice(balance=400)], [("i1",)], id="partly paid invoice is reminded for its balance"),
        pytest.param([invoice(balance=0)], [], id="credit memo brought the balance to zero: nothing"),
        pytest.param([invoice(balance=-5)], [], id="overpaid invoice: nothing"),
        pytest.param([invoice(status="paid", balance=0)], [], id="paid between plan and send: nothing"),
        pytest.param([invoice(status="paid", balance=1000)], [], id="paid status wins over a stale balance"),
        pytest.param([invoice(status="voided")], [], id="voided invoice: nothing"),
        pytest.param([invoice(status="deleted")], [], id="deleted invoice: nothing"),
        pytest.param([invoice(id="i1", status="paid", balance=0), invoice(id="i2")], [("i2",)],
                     id="one of several invoices paid: only the open one is reminded"),
        pytest.param([invoice(customer_id="someone-else")], [], id="another customer's invoice is ignored"),
    ],
)
def test_only_open_invoices_with_a_balance_are_reminded(invoices: list[rules.Invoice],
                                                        expected_ids: list[tuple[str, ...]]) -> None:
    actions = plan(invoices=invoices, today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY)
    assert [a.invoice_ids for a in actions] == expected_ids


@pytest.mark.parametrize(
    ("min_balance", "balance", "currency", "count"),
    [
        pytest.param({"USD": "25"}, "24.99", "USD", 0, id="balance under the currency minimum: nothing"),
        pytest.param({"USD": "25"}, "25", "USD", 1, id="balance at the minimum is reminded"),
        pytest.param({"USD": "25"}, "10", "EUR", 1, id="a minimum in another currency does not apply"),
        pytest.param({"JPY": "1000"}, "999", "JPY", 0, id="minimum in yen"),
    ],
)
def test_minimum_balance_per_currency(min_balance: dict[str, str], balance: str, currency: str, count: int) -> None:
    inv = invoice(currency=currency, total=balance, balance=balance)
    assert len(plan(invoices=[inv], today=D(2026, 4, 1), pol=simple(min_balance=min_balance), cust=EMAIL_ONLY)) == count


def test_excluded_customer_gets_nothing_at_all() -> None:
    pol = simple(late_fees={"rules": [{"kind": "flat", "amount": {"USD": "10"}}]}, alert_owner_when_late=True)
    assert simulate(start=D(2026, 3, 1), days=120, pol=pol, cust=customer(excluded=True)) == []


def test_reason_says_when_the_due_date_was_derived() -> None:
    [action] = plan(invoices=[invoice(due_date=None, term_due_days=30)], today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY)
    assert "term" in action.reason and "2026-04-01" in action.reason


def test_planning_again_after_recording_yields_nothing() -> None:
    first = plan(today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY)
    history = [h for a in first for h in rules.record(a)]
    assert first and plan(today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY, history=history) == []


def test_planning_twice_without_recording_gives_the_same_keys() -> None:
    a = plan(today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY)
    b = plan(today=D(2026, 4, 1), pol=simple(), cust=EMAIL_ONLY)
    assert a == b and [x.dedupe_key for x in a] == ["r1:reminder:i1:step1:email"]


@pytest.mark.parametrize(
    ("cust", "channels", "expected"),
    [
        pytest.param(customer(), ["email", "sms"], [("send_reminder", "email"), ("send_reminder", "sms")],
                     id="email and sms step sends both"),
        pytest.param(customer(has_phone=False), ["email", "sms"], [("send_reminder", "email")],
                     id="sms is skipped for a customer without a phone"),
        pytest.param(customer(opted_out=frozenset({"email"})), ["email", "sms"], [("send_reminder", "sms")],
                     id="a customer who stopped email still gets the sms"),
        pytest.param(customer(has_email=False, has_phone=False), ["email", "sms"], [("alert_owner", "unreachable")],
                     id="no way to reach the customer alerts the owner instead"),
        pytest.param(customer(), ["email", "call_task"], [("send_reminder", "email"), ("create_task", "call")],
                     id="a call-task channel creates a call task"),
        pytest.param(customer(), ["letter_task"], [("create_task", "letter")], id="a letter-task channel creates a letter task"),
        pytest.param(customer(), ["owner_alert"], [("alert_owner", "step")], id="an owner-alert channel alerts the owner"),
    ],
)
def test_channels(cust: rules.Customer, channels: list[str], expected: list[tuple[str, str]]) -> None:
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today", "channels": channels}])
    actions = plan(today=D(2026, 4, 1), pol=pol, cust=cust)
    got = [(a.kind, getattr(a, "channel", None) or getattr(a, "task", None) or a.topic) for a in actions]  # type: ignore[attr-defined]
    assert got == expected


def test_unreachable_alert_counts_as_the_step() -> None:
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"}])
    sent = simulate(start=D(2026, 3, 25), days=30, pol=pol, cust=customer(has_email=False, has_phone=False))
    assert [(a.kind, a.on) for a in sent] == [("alert_owner", D(2026, 4, 1))]


@pytest.mark.parametrize(
    ("dues", "gap", "expected"),
    [
        pytest.param([D(2026, 4, 1), D(2026, 4, 2)], 3, [(D(2026, 4, 1), ("i1",)), (D(2026, 4, 4), ("i2",))],
                     id="minimum gap defers another invoice's step, it goes out later"),
        pytest.param([D(2026, 4, 1), D(2026, 4, 1)], 3, [(D(2026, 4, 1), ("i1",)), (D(2026, 4, 1), ("i2",))],
                     id="steps of several invoices due the same day go out together"),
        pytest.param([D(2026, 4, 1), D(2026, 4, 2)], 0, [(D(2026, 4, 1), ("i1",)), (D(2026, 4, 2), ("i2",))],
                     id="no gap: each on its own day"),
        pytest.param([D(2026, 4, 1)] + [D(2026, 4, 2)] * 5, 7,
                     [(D(2026, 4, 1), ("i1",))] + [(D(2026, 4, 8), (f"i{n}",)) for n in range(2, 7)],
                     id="five invoices blocked by one reminder all go out when the gap ends"),
    ],
)
def test_minimum_gap_between_contacts(dues: list[dt.date], gap: int, expected: list[tuple[dt.date, tuple[str, ...]]]) -> None:
    invoices = [invoice(id=f"i{n}", due_date=d) for n, d in enumerate(dues, start=1)]
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"}], min_gap_days=gap)
    sent = simulate(start=D(2026, 3, 25), days=30, invoices=invoices, pol=pol, cust=EMAIL_ONLY)
    assert [(a.on, a.invoice_ids) for a in sent] == expected


def test_gap_counts_from_the_last_contact_in_history() -> None:
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"}], min_gap_days=3)
    earlier = rules.HistoryEntry(dedupe_key="r1:reminder:old:step0:email", kind="reminder",
                                 at=dt.datetime(2026, 3, 30, 13, tzinfo=dt.timezone.utc), invoice_ids=frozenset({"old"}), step=0)
    assert plan(today=D(2026, 4, 1), pol=pol, cust=EMAIL_ONLY, history=[earlier]) == []
    assert len(plan(today=D(2026, 4, 2), pol=pol, cust=EMAIL_ONLY, history=[earlier])) == 1


def test_a_bare_contact_delays_the_next_step_and_does_nothing_else() -> None:
    """A message sent to the same address for another customer (a job billed with the same parent) comes as
    a reminder entry with no invoice and no step: it counts for the gap only, never as a step done."""
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                        {"offset_days": 3, "template": "reminder_overdue_gentle"}], min_gap_days=3)
    bare = rules.HistoryEntry(dedupe_key="r1:reminder:other:step0:email#contact", kind="reminder",
                              at=dt.datetime(2026, 3, 31, 16, tzinfo=dt.timezone.utc))
    assert plan(today=D(2026, 4, 1), pol=pol, cust=EMAIL_ONLY, history=[bare]) == []  # the gap holds it
    [late] = plan(today=D(2026, 4, 3), pol=pol, cust=EMAIL_ONLY, history=[bare])
    assert late.dedupe_key == "r1:reminder:i1:step0:email"  # the step itself was never done: it goes now
    assert rules.next_action_date(company=company(), invoice=invoice(), customer=EMAIL_ONLY, policy=pol,
                                  history=[bare], today=D(2026, 4, 1)) == D(2026, 4, 3)


LOS_ANGELES = customer(has_phone=False, time_zone="America/Los_Angeles")


def _contact(planned: dt.date, at: dt.datetime) -> rules.HistoryEntry:
    return rules.HistoryEntry(dedupe_key=f"r1:reminder:old:step0:{planned}", kind="reminder", at=at,
                              invoice_ids=frozenset({"old"}), step=0, on=planned)


@pytest.mark.parametrize(
    ("contact", "gap", "sent"),
    [
        pytest.param(_contact(D(2026, 3, 31), dt.datetime(2026, 4, 1, 15, 5, tzinfo=dt.timezone.utc)), 2, False,
                     id="planned yesterday, went out this morning (a text held overnight): today's step waits"),
        pytest.param(_contact(D(2026, 3, 31), dt.datetime(2026, 4, 1, 15, 5, tzinfo=dt.timezone.utc)), 0, True,
                     id="the same without a minimum gap: today's step goes out"),
        pytest.param(_contact(D(2026, 4, 1), dt.datetime(2026, 4, 1, 16, tzinfo=dt.timezone.utc)), 2, True,
                     id="planned for today (another invoice's step, an earlier run): goes out together"),
        pytest.param(_contact(D(2026, 3, 31), dt.datetime(2026, 3, 31, 16, tzinfo=dt.timezone.utc)), 1, True,
                     id="planned and sent yesterday, a gap of one day: today is allowed"),
        pytest.param(_contact(D(2026, 3, 31), dt.datetime(2026, 4, 1, 6, 30, tzinfo=dt.timezone.utc)), 1, True,
                     id="sent at 23:30 yesterday in the customer's zone (06:30 UTC today): counts as yesterday"),
        pytest.param(dataclasses.replace(_contact(D(2026, 3, 31), dt.datetime(2026, 4, 1, 15, 5, tzinfo=dt.timezone.utc)),
                                         on=None), 2, True,
                     id="an entry without its planned day is taken as planned for the day it went out"),
    ],
)
def test_the_gap_counts_a_late_contact_on_the_day_it_went_out(contact: rules.HistoryEntry, gap: int, sent: bool) -> None:
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"}], min_gap_days=gap)
    actions = plan(today=D(2026, 4, 1), pol=pol, cust=LOS_ANGELES, history=[contact])
    assert [a.dedupe_key for a in actions] == (["r1:reminder:i1:step0:email"] if sent else [])


def test_statement_groups_all_open_invoices_in_one_message() -> None:
    pol = simple(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                        {"offset_days": 10, "template": "reminder_overdue_firm", "tone": "firm"}],
                 group_by_customer=True)
    invoices = [invoice(id="i1", due_date=D(2026, 4, 1)), invoice(id="i2", due_date=D(2026, 5, 1)),
                invoice(id="i3", due_date=D(2026, 4, 1), status="paid", balance=0)]
    sent = simulate(start=D(2026, 3, 25), days=60, invoices=invoices, pol=pol, cust=EMAIL_ONLY)
    got = [(a.on, a.template_key, a.invoice_ids, [(r.invoice_id, r.step) for r in a.steps], a.tone) for a in sent]  # type: ignore[attr-defined]
    assert got == [
        (D(2026, 4, 1), "statement", ("i1", "i2"), [("i1", 0)], "friendly"),
        (D(2026, 4, 11), "statement", ("i1", "i2"), [("i1", 1)], "firm"),
        (D(2026, 5, 1), "statement", ("i1", "i2"), [("i2", 0)], "friendly"),
        (D(2026, 5, 11), "statement", ("i1", "i2"), [("i2", 1)], "firm"),
    ]
    assert all(a.dedupe_key.startswith("r1:statement:c1:") for a in sent)
    assert len({a.dedupe_key for a in sent}) == 4


def test_friendly_preset_calendar_on_business_days() -> None:
    """Due Wednesday 1 April 2026, US company: weekends and the gap move steps, never drop them."""
    sent = simulate(start=D(2026, 3, 1), days=200, cust=EMAIL_ONLY)
    assert [(a.on, a.kind, getattr(a, "template_key", getattr(a, "task", None))) for a in sent] == [
        (D(2026, 3, 30), "send_reminder", "reminder_before_due"),    # Sun 29 → Mon 30
        (D(2026, 4, 2), "send_reminder", "reminder_overdue_gentle"), # due today, 3-day gap after Mon: it is late
        (D(2026, 4, 8), "send_reminder", "reminder_overdue_gentle"),
        (D(2026, 4, 22), "send_reminder", "reminder_overdue_firm"),
        (D(2026, 5, 18), "send_reminder", "reminder_final"),         # Sat 16 → Mon 18
        (D(2026, 6, 17), "send_reminder", "reminder_final"),         # repeat 1: 30 days after it went out
        (D(2026, 7, 17), "send_reminder", "reminder_final"),         # repeat 2: 60 days after it
        (D(2026, 7, 24), "create_task", "call"),                     # 7 days after the last step
        (D(2026, 8, 24), "create_task", "handoff"),                  # Sun 23 → Mon 24
    ]
