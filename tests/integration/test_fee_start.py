"""No back-charging when a customer starts bearing fees under new rules, end to end on SQLite and
PostgreSQL: a customer given a policy with fees on the customer page, or taken back from an exclusion,
is charged from that day — not every month since the due date in one run — and the invoice's stored
next-action date is the next period's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import casework
from qbo_collector.db import models
from qbo_collector.rules import calendar
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser


@pytest.fixture
def env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    """The SMALL company on a policy without fees, fees counted from long ago (``fees_from``): nothing but
    the customer's own day keeps its old periods from being charged."""
    made = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, db,
                    policy=ds.every_day_policy("friendly", min_gap_days=0, alert_owner_when_late=False),
                    company_settings={"fees_from": "2000-01-01"})
    yield made
    ds.stop([made])


def _customer_late(env, first_period: dt.date, grace_days: int) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A new QuickBooks customer with one invoice whose fee periods (after ``grace_days``) start on ``first_period``."""
    customer = env.sb.intuit.create(env.realm, "Customer", {"DisplayName": "Lumen Works", "PrimaryEmailAddr": {
        "Address": "ap@lumen.example"}, "BillAddr": {"Country": "US"}})
    due = first_period - dt.timedelta(days=grace_days + 1)
    return customer["Id"], ds.invoice(env, customer["Id"], due, 1000.0)


def _fees(env, invoice_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r.payload["period"] for r in env.rows(kind="fee") if invoice_id in (r.invoice_ids or ()))


def _monthly(start: dt.date, today: dt.date) -> tuple[list[str], dt.date]:
    """The monthly periods from ``start`` that begin today (none when the month is too short for it), and the next one."""
    k = 0
    while calendar.add_months(start, k) < today:
        k += 1
    day = calendar.add_months(start, k)
    return ([day.isoformat()] if day == today else []), (calendar.add_months(start, k + 1) if day == today else day)


def _customer_row(env, customer_id: str) -> models.Customer:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        row = s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id))
        s.expunge(row)
        return row


def _next_action(env, invoice_id: str) -> dt.date | None:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        return s.scalar(select(models.Invoice.next_action_on).where(models.Invoice.qbo_id == invoice_id))


def test_a_customer_given_the_firm_policy_on_its_page_is_charged_one_fee_not_six(env) -> None:  # type: ignore[no-untyped-def]
    today = env.now_at(12).date()
    start = calendar.add_months(today, -6)  # "firm": 1.5 % a month from the due date + 5 grace days
    customer_id, invoice = _customer_late(env, start, grace_days=5)
    env.sync()
    assert env.run().ok and _fees(env, invoice["Id"]) == []  # "friendly" charges no fee
    owner = browser(env.web.app, env.db, "owner@maple.example", realm=env.realm)
    answer = owner.post(f"/companies/{env.realm}/customers/{customer_id}/policy", data={"policy_name": "firm"})
    assert answer.status_code == 302
    assert _customer_row(env, customer_id).fees_from == today
    summary = env.run()
    assert summary.ok, summary.problems
    charged, following = _monthly(start, today)
    assert _fees(env, invoice["Id"]) == charged  # the period that begins today at most, never April to now
    assert _next_action(env, invoice["Id"]) == following  # the daily run selects it again for the next one


def test_a_customer_taken_back_from_an_exclusion_is_not_charged_for_the_months_it_was_excluded(env) -> None:  # type: ignore[no-untyped-def]
    today = env.now_at(12).date()
    start = calendar.add_months(today, -4)  # "us_net30": 1.5 % a month from the day after the due date
    customer_id, invoice = _customer_late(env, start, grace_days=0)
    env.sync()
    with env.db.session() as s:  # given us_net30 and excluded long ago
        row = s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id))
        row.policy_name, row.excluded = "us_net30", True
    assert env.run().ok and _fees(env, invoice["Id"]) == []
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        casework.exclude(s, company, customer_id, excluded=False, on=today)
    summary = env.run()
    assert summary.ok, summary.problems
    charged, following = _monthly(start, today)
    assert _fees(env, invoice["Id"]) == charged
    assert today < _next_action(env, invoice["Id"]) <= following  # a reminder step of us_net30 may come first
