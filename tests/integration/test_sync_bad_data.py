"""Bad records from QuickBooks are logged with their Id and skipped or stored as-is; the sync goes on."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from qbo_collector.sync import run
from tests.integration import test_sync_support as support


def test_bad_records_are_skipped_or_kept_and_logged_and_the_sync_goes_on(sandbox_factory, settings_factory, db,
                                                                          vault, caplog):
    sb = sandbox_factory(companies=[server.CompanySpec(name="Messy Co", customers=10, invoices=40, payments=10, seed=3)])
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    table = sb.intuit.companies[realm].tables["Invoice"]
    ids = sorted(table, key=int)
    table[ids[0]]["CurrencyRef"] = {"value": "DOLLARS"}           # not a currency: skipped
    del table[ids[1]]["CustomerRef"]                                # nobody to remind: skipped
    table[ids[2]]["TotalAmt"] = "lots"                              # not an amount: skipped
    table[ids[3]]["CurrencyRef"] = {"value": "XQQ"}                 # unknown ISO code: kept as-is
    table[ids[4]]["Balance"] = -12.5                                # negative: kept as-is
    table[ids[5]].pop("DueDate", None)                              # derived from the term
    table[ids[5]]["SalesTermRef"] = {"value": next(t["Id"] for t in sb.intuit.entities(realm, "Term")
                                                   if t["DueDays"] == 30)}
    table[ids[6]].pop("DueDate", None)                              # no term either: due on TxnDate
    table[ids[6]].pop("SalesTermRef", None)
    table[ids[7]].pop("BillEmail", None)                            # cannot be emailed, still mirrored
    with caplog.at_level(logging.INFO, logger="qbo_collector"):
        summary = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert summary.ok and summary.skipped == {"Invoice": 3}
    assert {ident for _, ident, _ in summary.skipped_rows} == set(ids[:3])
    for ident in ids[:5] + [ids[6]]:                                # derived from a term: no log needed
        assert f"Id={ident} " in caplog.text
    with db.session() as s:
        rows = {i.qbo_id: i for i in s.scalars(select(models.Invoice))}
    assert not set(ids[:3]) & set(rows)
    assert len(rows) == len(table) - 3
    assert rows[ids[3]].currency == "XQQ"
    assert rows[ids[4]].balance == Decimal("-12.5")
    txn5 = date.fromisoformat(table[ids[5]]["TxnDate"])
    assert (rows[ids[5]].due_date, rows[ids[5]].due_date_derived) == (txn5 + timedelta(days=30), "term")
    assert rows[ids[6]].due_date == date.fromisoformat(table[ids[6]]["TxnDate"])
    assert rows[ids[6]].due_date_derived == "txn_date"
    assert rows[ids[7]].bill_email is None
    assert summary.written["Payment"] == len(sb.intuit.entities(realm, "Payment"))   # the rest went on
