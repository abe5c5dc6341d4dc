"""An invoice moved to another customer in QuickBooks between the sync and the run (a wrong customer
corrected, or a merge, which moves the transactions): the old customer is never chased for it, and the
next run plans it for the new one. SQLite and PostgreSQL, through a real sync and run."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds

env = pytest.fixture(ds.quiet_env, name="env")


def test_an_invoice_moved_to_another_customer_is_reminded_to_the_new_one_only(env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: the run planned from the mirror and its fresh read checked the balance and
    the due date, never the customer, so the reminder went to the customer the invoice had left."""
    sb, realm = env.sb, env.realm
    today = env.now_at(12).date()
    alpha, beta = (sb.intuit.create(realm, "Customer", {
        "DisplayName": name, "PrimaryEmailAddr": {"Address": address}, "BillAddr": {"Country": "US"}})
        for name, address in (("Alpha Old", "ap@alpha.example"), ("Beta New", "ap@beta.example")))
    moved = ds.invoice(env, alpha["Id"], today - dt.timedelta(days=2), 500.0)
    env.sync()
    sb.intuit.update(realm, "Invoice", moved["Id"], CustomerRef={"value": beta["Id"]})  # no sync before the run
    env.run()
    env.flush()
    assert not [m for m in sb.sendgrid.messages if m["to"] == "ap@alpha.example"]
    [row] = [r for r in env.rows(kind="reminder") if moved["Id"] in (r.invoice_ids or ())]
    assert row.customer_qbo_id == alpha["Id"] and row.status == models.OutboxStatus.cancelled
    assert f"invoice {moved['DocNumber']} was moved to another customer" in row.status_reason
    with env.db.session() as s:  # the run's fresh read put it on Beta in the mirror already
        assert s.scalar(select(models.Invoice.customer_qbo_id).where(models.Invoice.qbo_id == moved["Id"])) == beta["Id"]

    env.run(now=env.now_at(12, days=1))
    env.flush()
    to_beta = [m for m in sb.sendgrid.messages if m["to"] == "ap@beta.example"]
    assert to_beta and moved["DocNumber"] in to_beta[0]["text"]
    assert not [m for m in sb.sendgrid.messages if m["to"] == "ap@alpha.example"]
