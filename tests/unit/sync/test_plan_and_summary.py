"""Which streams a sync reads in full and which through CDC; the summary line; aging buckets."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from qbo_collector import reports
from qbo_collector.db import models
from qbo_collector.sync import run, streams
from qbo_collector.sync.summary import SyncSummary

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def cursors(**overrides):  # type: ignore[no-untyped-def]
    out = {}
    for s in streams.STREAMS:
        out[s.entity] = models.SyncCursor(entity=s.entity, changed_since=NOW - timedelta(hours=1),
                                          full_sync_at=NOW - timedelta(days=2))
    for entity, fields in overrides.items():
        for k, v in fields.items():
            setattr(out[entity], k, v)
    return out


def names(plan):  # type: ignore[no-untyped-def]
    full, incremental = plan
    return [(s.entity, fresh) for s, fresh in full], [s.entity for s in incremental]


def test_never_synced_reads_everything_in_full():
    full, incremental = names(run.plan({}, full_requested=False, now=NOW))
    assert [e for e, _ in full] == ["Term", "Customer", "Invoice", "Payment", "CreditMemo", "CompanyInfo"]
    assert incremental == []


def test_up_to_date_reads_only_changes():
    full, incremental = names(run.plan(cursors(), full_requested=False, now=NOW))
    assert full == [] and incremental == ["Term", "Customer", "Invoice", "Payment", "CreditMemo"]


def test_an_interrupted_full_sync_resumes_and_the_rest_reads_changes():
    plan = run.plan(cursors(Invoice={"full_sync_started_at": NOW, "full_sync_position": 3001}),
                    full_requested=False, now=NOW)
    full, incremental = names(plan)
    assert full == [("Invoice", False)]
    assert "Invoice" not in incremental


@pytest.mark.parametrize("age, full_read", [(timedelta(days=29), False), (timedelta(days=29, hours=23, minutes=30), True),
                                            (timedelta(days=45), True)],
                         ids=["29 days: CDC", "just under 30 days: full (margin)", "45 days: full"])
def test_a_cursor_near_or_over_30_days_reads_in_full(age, full_read):  # type: ignore[no-untyped-def]
    full, _ = names(run.plan(cursors(Payment={"changed_since": NOW - age}), full_requested=False, now=NOW))
    assert (("Payment", True) in full) is full_read


def test_full_requested_reads_everything_fresh():
    full, incremental = names(run.plan(cursors(), full_requested=True, now=NOW))
    assert all(fresh for _, fresh in full) and len(full) == 6 and incremental == []


def test_summary_line():
    summary = SyncSummary(realm="123", mode="full", api_calls=171, duration=12.34)
    summary.add("Invoice", written=100000)
    summary.add("Payment", written=60000, deleted=3)
    summary.skip("Invoice", "77", "invoice without a CustomerRef")
    assert summary.line() == ("realm 123: full sync, 100000 Invoice, 60000 Payment, 3 deleted, 1 skipped (see log); "
                              "171 API calls in 12.3 s")
    summary.errors.append("Invoice: QuickBooks did not answer")
    assert not summary.ok and "FAILED" in summary.line()


@pytest.mark.parametrize("due, bucket", [
    (None, "current"), (date(2026, 11, 30), "current"), (date(2026, 11, 23), "current"),
    (date(2026, 11, 22), "1-30"), (date(2026, 10, 24), "1-30"), (date(2026, 10, 23), "31-60"),
    (date(2026, 9, 24), "31-60"), (date(2026, 9, 23), "61-90"), (date(2026, 8, 25), "61-90"),
    (date(2026, 8, 24), "90+"),
])
def test_aging_bucket_edges(due, bucket):  # type: ignore[no-untyped-def]
    assert reports.aging_bucket(due, date(2026, 11, 23)) == bucket


def test_aging_as_text():
    figures = {"realm": "1", "on": "2026-11-23", "currencies": {"USD": {
        "current": "10.00", "1-30": "5.00", "31-60": "0.00", "61-90": "0.00", "90+": "1234.50", "total": "1249.50",
        "credits": "49.50", "net": "1200.00"}}}
    text = reports.format_aging(figures)
    assert text.splitlines()[1].split() == ["currency", "current", "1-30", "31-60", "61-90", "90+", "total", "credits",
                                            "net"]
    assert text.splitlines()[2].split() == ["USD", "10.00", "5.00", "0.00", "0.00", "1234.50", "1249.50", "49.50",
                                            "1200.00"]
    assert "no open balances" in reports.format_aging({"realm": "1", "on": "2026-11-23", "currencies": {}})
