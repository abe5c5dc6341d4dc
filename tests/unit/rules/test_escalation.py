"""Escalation after the last step: a call task, then a hand-off task for the owner."""

from __future__ import annotations

import datetime as dt

import pytest

from qbo_collector import rules
from tests.unit.rules.conftest import D, customer, invoice, policy, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False}


def run(escalation: dict[str, int | None], skip: list[dt.date] = (), **kw: object) -> list[tuple[dt.date, str, str]]:  # type: ignore[assignment]
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                        {"offset_days": 10, "template": "reminder_final", "tone": "firm"}],
                 repeat_last=None, min_gap_days=0, send_window=EVERY_DAY, escalation=escalation, **kw)
    sent = simulate(start=D(2026, 3, 30), days=90, pol=pol, cust=customer(has_phone=False), skip=skip)
    return [(a.on, a.kind, getattr(a, "task", None) or a.template_key) for a in sent]  # type: ignore[attr-defined]


STEPS_SENT = [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 4, 11), "send_reminder", "reminder_final")]


@pytest.mark.parametrize(
    ("escalation", "skip", "expected"),
    [
        pytest.param({"call_task_after_days": 5, "handoff_after_days": 20}, [],
                     STEPS_SENT + [(D(2026, 4, 16), "create_task", "call"), (D(2026, 5, 6), "create_task", "handoff")],
                     id="call task after the last step, hand-off after the call"),
        pytest.param({"call_task_after_days": None, "handoff_after_days": 20}, [],
                     STEPS_SENT + [(D(2026, 5, 1), "create_task", "handoff")], id="hand-off without a call task"),
        pytest.param({"call_task_after_days": 5, "handoff_after_days": None}, [],
                     STEPS_SENT + [(D(2026, 4, 16), "create_task", "call")], id="call task only"),
        pytest.param({"call_task_after_days": None, "handoff_after_days": None}, [], STEPS_SENT, id="no escalation"),
        pytest.param({"call_task_after_days": 5, "handoff_after_days": 20},
                     [D(2026, 4, 10) + dt.timedelta(days=n) for n in range(40)],
                     [(D(2026, 4, 1), "send_reminder", "reminder_due_today"), (D(2026, 5, 20), "send_reminder", "reminder_final"),
                      (D(2026, 5, 25), "create_task", "call"), (D(2026, 6, 14), "create_task", "handoff")],
                     id="after a shutdown the last step goes out first and the tasks keep their delays"),
    ],
)
def test_escalation(escalation: dict[str, int | None], skip: list[dt.date], expected: list[tuple[dt.date, str, str]]) -> None:
    assert run(escalation, skip) == expected


def test_escalation_keys_and_wording() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], repeat_last=None, send_window=EVERY_DAY,
                 escalation={"call_task_after_days": 1, "handoff_after_days": 1})
    sent = simulate(start=D(2026, 4, 1), days=5, pol=pol, cust=customer(has_phone=False))
    tasks = [a for a in sent if isinstance(a, rules.CreateTask)]
    assert [a.dedupe_key for a in tasks] == ["r1:task:i1:call", "r1:task:i1:handoff"]
    words = " ".join(a.reason.lower() for a in sent)
    assert not any(w in words for w in ("threat", "sue ", "court", "lawsuit", "or else"))


def test_no_escalation_while_paused_or_paid() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], repeat_last=None, send_window=EVERY_DAY)
    assert simulate(start=D(2026, 4, 1), days=90, pol=pol, invoices=[invoice(status="paid", balance=0)]) == []
    dispute = rules.Dispute(opened_on=D(2026, 4, 2))
    sent = simulate(start=D(2026, 4, 1), days=90, pol=pol, pauses=[dispute], cust=customer(has_phone=False))
    assert [a.kind for a in sent] == ["send_reminder"]


def test_owner_alert_when_an_invoice_becomes_late() -> None:
    pol = policy(steps=[], alert_owner_when_late=True, escalation={"call_task_after_days": None, "handoff_after_days": None})
    sent = simulate(start=D(2026, 3, 28), days=30, pol=pol)
    assert [(a.on, a.kind, a.dedupe_key) for a in sent] == [(D(2026, 4, 2), "alert_owner", "r1:alert:i1:late")]


def test_a_reason_that_starts_with_the_invoice_keeps_its_number_as_quickbooks_wrote_it() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], repeat_last=None, send_window=EVERY_DAY,
                 escalation={"call_task_after_days": None, "handoff_after_days": 1}, alert_owner_when_late=True)
    sent = simulate(start=D(2026, 3, 30), days=8, pol=pol, cust=customer(has_phone=False),
                    invoices=[invoice(doc_number="INV-2026/A7")])
    starting = [a.reason for a in sent if a.reason.startswith("Invoice ")]
    assert len(starting) == 2 and all(r.startswith("Invoice INV-2026/A7 of ") for r in starting), starting


@pytest.mark.parametrize("escalation", [{"call_task_after_days": 0, "handoff_after_days": None},
                                        {"call_task_after_days": None, "handoff_after_days": 0},
                                        {"call_task_after_days": 0, "handoff_after_days": 0}])
def test_zero_days_of_escalation_is_the_day_after_however_often_the_planner_runs(escalation) -> None:  # type: ignore[no-untyped-def]
    """Found in review: with 0 days an hourly planner created the task the day the last step went out,
    the daily one the day after. 0 now reads as 1, the same whatever the run frequency."""
    from tests.unit.rules import test_properties as tp
    from tests.unit.rules.conftest import company

    assert rules.Policy.model_validate({"escalation": escalation}).escalation.model_dump() == {
        k: (1 if v == 0 else v) for k, v in escalation.items()}
    scenario = dict(company=company(), customer=customer(), pauses=[],
                    invoices=[invoice(due_date=D(2026, 3, 1), txn_date=D(2026, 1, 30))],
                    policy=policy("friendly", escalation=escalation, repeat_last=None))
    tasks = [(a.dedupe_key, a.on) for a in tp.run_daily(scenario) if "task" in a.dedupe_key]
    assert tasks and tasks == [(a.dedupe_key, a.on) for a in tp.run_hourly(scenario, False) if "task" in a.dedupe_key]
