"""A promise to pay recorded before the invoice is due and broken after it: end to end through casework,
the daily runs (their stored next-action dates) and the SendGrid stand-in, on SQLite and PostgreSQL.
Found in an audit: when the promise ended, the customer was told the invoice "is due on" a day weeks
gone, then "is due today", and every later reminder slipped as far."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from qbo_collector import casework
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds

env = pytest.fixture(ds.quiet_env, name="env")


def test_a_promise_made_before_the_due_date_and_broken_resumes_at_the_first_overdue_step(env) -> None:  # type: ignore[no-untyped-def]
    # The Firm preset, every day a send day, no gap: before due (-2), gentle (+1), firm (+7), final (+14).
    sb, realm = env.sb, env.realm
    today = env.now_at(12).date()
    due = today + dt.timedelta(days=3)
    customer = sb.intuit.create(realm, "Customer", {"DisplayName": "Lumen Works", "PrimaryEmailAddr": {
        "Address": "ap@lumen.example"}, "BillAddr": {"Country": "US"}})
    invoice = ds.invoice(env, customer["Id"], due)
    env.sync()
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        # paid in full by a week after the due date, the customer says; it is not
        casework.promise(s, company, customer["Id"], until=due + dt.timedelta(days=7), amount=str(invoice["Balance"]),
                         invoice_ids=[invoice["Id"]], on=today)
    for day in range(0, 26):
        assert env.run(now=env.now_at(12, days=day)).ok

    reminders = [((r.due_at.date() - today).days, r.step, r.template_key) for r in env.rows(kind="reminder")
                 if r.invoice_ids == [invoice["Id"]] and r.step is not None and r.status.value == "sent"]
    # held from today to the day after the promise's grace day (due + 9 = day 12); then the first step
    # after the due date, and the later ones keep their spacing from it (firm 6 days, final 13 days after)
    assert reminders == [(12, 1, "reminder_overdue_gentle"), (18, 2, "reminder_overdue_firm"),
                         (25, 3, "reminder_final")]
    [alert] = [r for r in env.rows(kind="alert") if r.channel == "owner_email" and r.payload.get("topic") == "promise_broken"]
    assert (alert.due_at.date() - today).days == 12
    mail = [m for m in sb.sendgrid.messages if m["to"] == "ap@lumen.example"]
    assert len(mail) == 3 and mail[0]["subject"].startswith("Friendly reminder: invoice")
    assert not [m for m in mail if "is due" in m["subject"] or "is due" in m["text"]]
