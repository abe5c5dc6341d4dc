"""Invoices QuickBooks never emailed nor printed: left alone when the policy says so (the customer
may never have seen them), until they are sent or a person records that the customer knows."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from qbo_collector import rules
from tests.unit.rules.conftest import D, company, customer, invoice, money, plan, policy, reminders, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False, "hour": 9, "minute": 0}
STEPS = [{"offset_days": -3, "template": "reminder_before_due"}, {"offset_days": 0, "template": "reminder_due_today"},
         {"offset_days": 7, "template": "reminder_overdue_gentle"}, {"offset_days": 21, "template": "reminder_final"}]


def pol(skip: bool, **overrides: object) -> rules.Policy:
    values: dict[str, object] = dict(steps=STEPS, repeat_last=None, min_gap_days=0, send_window=EVERY_DAY,
                                     alert_owner_when_late=True, skip_unsent_invoices=skip,
                                     escalation={"call_task_after_days": 7, "handoff_after_days": None})
    values.update(overrides)
    return policy("us_net30", **values)


UNSENT = invoice(sent=False)
START = D(2026, 3, 1)


def kinds(actions: list[rules.Action]) -> set[str]:
    return {type(a).__name__ for a in actions}


def test_the_policy_default_reminds_every_invoice_as_before() -> None:
    assert rules.PRESETS["friendly"].skip_unsent_invoices is False
    assert reminders(simulate(start=START, days=90, invoices=[UNSENT], pol=pol(False))) == \
        reminders(simulate(start=START, days=90, invoices=[invoice()], pol=pol(False)))


def test_an_unsent_invoice_gets_nothing_at_all_and_no_next_action_date() -> None:
    done = simulate(start=START, days=120, invoices=[UNSENT], pol=pol(True))
    assert done == []
    assert rules.next_action_date(company=company(), invoice=UNSENT, customer=customer(), policy=pol(True),
                                  today=D(2026, 4, 20)) is None


def test_a_late_fee_invoice_the_program_posted_counts_as_sent() -> None:
    fee = invoice(id="fee1", sent=False, is_late_fee=True, total=25)
    assert reminders(simulate(start=START, days=90, invoices=[fee], pol=pol(True)))


def test_a_sent_invoice_beside_it_is_reminded_fined_and_escalated() -> None:
    sent = invoice(id="i2")
    done = simulate(start=START, days=120, invoices=[UNSENT, sent], pol=pol(True))
    assert done and all(a.invoices == ("i2",) for a in done if hasattr(a, "invoices"))
    assert {"SendReminder", "ChargeFee", "CreateTask", "AlertOwner"} <= kinds(done)


def daily(*, changed_on: dt.date, before: tuple[rules.Invoice, tuple[rules.Pause, ...]],
          after: tuple[rules.Invoice, tuple[rules.Pause, ...]], days: int = 90) -> list[rules.Action]:
    """Run the planner every day, carrying out everything; from ``changed_on`` on, the invoice and
    the pauses are ``after`` (sent in QuickBooks, a pause recorded…)."""
    history: list[rules.HistoryEntry] = []
    done: list[rules.Action] = []
    for n in range(days):
        day = START + dt.timedelta(days=n)
        inv, pauses = before if day < changed_on else after
        todays = plan(invoices=[inv], today=day, history=history, pauses=pauses, pol=pol(True))
        for action in todays:
            history.extend(rules.record(action))
        done.extend(todays)
    return done


def test_once_sent_only_the_newest_due_step_goes_out_and_fees_count_from_the_day_it_was_sent() -> None:
    sent_on = D(2026, 4, 25)  # 24 days late: the due-today and gentle steps are long past
    sent = dataclasses.replace(UNSENT, sent=True, sent_on=sent_on)
    done = daily(changed_on=sent_on, before=(UNSENT, ()), after=(sent, ()))
    assert min(a.on for a in done) == sent_on
    assert reminders(done) == [(sent_on, "reminder_final")]  # no burst of the missed steps
    fees = [a for a in done if isinstance(a, rules.ChargeFee)]
    # us_net30 bills 1.5 % a month from the due date: the periods that began before the customer
    # had the invoice are never billed, the next ones are, each once
    assert fees and all(f.on >= sent_on for f in fees) and len({f.dedupe_key for f in fees}) == len(fees)
    always = [a for a in simulate(start=START, days=90, invoices=[invoice()], pol=pol(True))
              if isinstance(a, rules.ChargeFee)]
    assert [f.dedupe_key for f in fees] == [f.dedupe_key for f in always if f.on >= sent_on]
    assert rules.next_action_date(company=company(), invoice=sent, customer=customer(), policy=pol(True),
                                  today=sent_on, history=()) >= sent_on


def test_an_invoice_emailed_after_its_due_date_is_not_late_before_it() -> None:
    late_sent = invoice(sent_on=D(2026, 5, 15))  # due April 1, emailed six weeks later
    with_skip = [a.on for a in simulate(start=START, days=120, invoices=[late_sent], pol=pol(True))
                 if isinstance(a, rules.ChargeFee)]
    without = [a.on for a in simulate(start=START, days=120, invoices=[late_sent], pol=pol(False))
               if isinstance(a, rules.ChargeFee)]
    assert with_skip and min(with_skip) >= D(2026, 5, 15)
    assert min(without) < D(2026, 5, 15)  # the option off: the due date rules, as before


@pytest.mark.parametrize(("pause", "acts"), [
    pytest.param(rules.Promise(made_on=D(2026, 4, 5), until=D(2026, 4, 12), amount=money(1000)), True,
                 id="a promise to pay: the customer knows the invoice"),
    pytest.param(rules.Dispute(opened_on=D(2026, 4, 5), resolved_on=D(2026, 4, 10)), True,
                 id="a dispute, resolved: so does a customer who disputed it"),
    pytest.param(rules.ManualPause(start=D(2026, 4, 5), resume_on=D(2026, 4, 10)), False,
                 id="a manual pause says nothing of the customer: still left alone"),
])
def test_a_recorded_promise_or_dispute_counts_as_sent(pause: rules.Pause, acts: bool) -> None:
    recorded = getattr(pause, "made_on", None) or getattr(pause, "opened_on", None) or getattr(pause, "start")
    done = daily(changed_on=recorded, before=(UNSENT, ()), after=(UNSENT, (pause,)))
    assert bool(reminders(done)) is acts
    if acts:
        assert min(on for on, _ in reminders(done)) >= D(2026, 4, 10)  # not while the pause holds


def test_the_flag_is_checked_on_policy_load() -> None:
    stored = rules.Policy.model_validate_json(pol(True).model_dump_json())
    assert stored.skip_unsent_invoices is True
    with pytest.raises(Exception):
        rules.Policy.model_validate({**rules.PRESETS["friendly"].model_dump(mode="json"), "skip_unsent_invoices": "maybe"})
