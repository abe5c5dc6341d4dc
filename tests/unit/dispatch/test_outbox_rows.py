"""Actions → outbox rows → history: what the dispatcher stores is what keeps the planner from deciding again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qbo_collector import rules, snapshot
from qbo_collector.db import models
from qbo_collector.dispatch import outbox, run
from tests.unit.rules import conftest as f

TODAY = dt.date(2026, 4, 20)


def _rows(actions, *, nowhere=False, owner_phone=False, dry=False):  # type: ignore[no-untyped-def]
    out = []
    for a in actions:
        out.extend(outbox.rows_for(a, customer_name="Acme Ltd", numbers={"i1": "1042"}, balances={"i1": "1000"},
                                   due_dates={"i1": "2026-04-01"}, unreachable_everywhere=nowhere,
                                   owner_phone=owner_phone, dry_run=dry))
    return out


def _stored(row: outbox.PlannedRow, status: str = "sent", dry: bool = False) -> models.Outbox:
    return models.Outbox(id=1, company_id=1, dedupe_key=row.dedupe_key, kind=row.kind, channel=row.channel,
                         status=models.OutboxStatus(status), customer_qbo_id=row.customer_id,
                         invoice_ids=list(row.invoice_ids), step=row.step, template_key=row.template_key,
                         amount=row.amount, currency=row.currency, due_at=row.due_at, payload=row.payload,
                         reason=row.reason, dry_run=dry, sent_at=row.due_at)


def test_what_the_outbox_stores_reads_back_as_the_history_that_stops_a_second_plan() -> None:
    pol = f.policy("firm")
    actions = f.plan(today=TODAY, pol=pol)
    assert {a.kind for a in actions} >= {"send_reminder", "charge_fee"}
    rows = _rows(actions)
    history = [h for r in rows for h in snapshot.history_entries(_stored(r))]
    assert f.plan(today=TODAY, pol=pol, history=history) == []


def test_a_row_held_until_the_next_morning_is_read_back_as_planned_for_its_own_day() -> None:
    """A text waiting for daytime gets a later due_at; the planner must still see the day it was decided for."""
    rows = _rows(f.plan(today=TODAY, pol=f.policy("firm")))
    stored = [_stored(r) for r in rows]
    for row in stored:
        row.due_at = row.sent_at = row.due_at + dt.timedelta(hours=20)
    history = [h for row in stored for h in snapshot.history_entries(row)]
    assert history and {h.on for h in history} == {TODAY}
    assert all(h.at.date() > TODAY for h in history)
    no_day = snapshot.history_entries(models.Outbox(**{**_columns(stored[0]), "payload": {"on": "not a day"}}))
    assert [h.on for h in no_day] == [None]  # a damaged payload: counted from the day it went out


def _columns(row: models.Outbox) -> dict[str, object]:
    return {c: getattr(row, c) for c in ("id", "company_id", "dedupe_key", "kind", "channel", "status",
                                         "customer_qbo_id", "invoice_ids", "step", "due_at", "sent_at", "reason")}


def test_dry_run_rows_carry_a_prefix_that_the_history_takes_off() -> None:
    actions = f.plan(today=TODAY, pol=f.policy("firm"))
    rows = _rows(actions, dry=True)
    assert all(r.dedupe_key.startswith("dryrun:") for r in rows)
    history = [h for r in rows for h in snapshot.history_entries(_stored(r, dry=True))]
    assert f.plan(today=TODAY, pol=f.policy("firm"), history=history) == []


@pytest.mark.parametrize(("nowhere", "owner_phone", "expected"), [
    pytest.param(True, False, [("task", "call_task")], id="no email and no phone: a call task instead"),
    pytest.param(False, False, [("alert", "owner_email")], id="opted out: the owner is told by email"),
    pytest.param(False, True, [("alert", "owner_email"), ("alert", "owner_sms")], id="and by text when a phone is set"),
])
def test_an_unreachable_customer(nowhere, owner_phone, expected) -> None:  # type: ignore[no-untyped-def]
    cust = f.customer(has_email=False, has_phone=False)
    actions = f.plan(today=dt.date(2026, 4, 8), cust=cust, pol=f.policy("friendly"))
    unreachable = [a for a in actions if isinstance(a, rules.AlertOwner) and a.topic == "unreachable"]
    assert unreachable
    rows = _rows(unreachable, nowhere=nowhere, owner_phone=owner_phone)
    assert [(r.kind, r.channel) for r in rows] == expected
    assert len({r.dedupe_key for r in rows}) == len(rows)


def test_a_fee_row_keeps_its_amount_and_period() -> None:
    fees = [a for a in f.plan(today=TODAY, pol=f.policy("firm")) if isinstance(a, rules.ChargeFee)]
    row = _rows(fees)[0]
    assert row.kind == "fee" and row.channel == "qbo_fee" and row.amount == fees[0].amount.amount
    assert row.payload["period"] == fees[0].period and row.as_dict()["amount"] == str(fees[0].amount.amount)


def _row(kind: str = "reminder", **payload: object) -> models.Outbox:
    base = {"balances": {"i1": "100.00"}, "due_dates": {"i1": "2026-04-01"}, "numbers": ["1042"]}
    return models.Outbox(id=7, kind=kind, invoice_ids=["i1"], payload={**base, **payload}, dedupe_key="k")


def _fresh(**fields: object) -> dict[str, dict]:
    return {"i1": {"Id": "i1", "DocNumber": "1042", "Balance": Decimal("100.00"), "DueDate": "2026-04-01", **fields}}


@pytest.mark.parametrize(("row", "fresh", "expected"), [
    pytest.param(_row(), _fresh(), None, id="unchanged: goes out"),
    pytest.param(_row(), {}, ("deleted", False), id="deleted in QuickBooks"),
    pytest.param(_row(), _fresh(Balance=Decimal(0)), ("paid", False), id="paid"),
    pytest.param(_row(), _fresh(Balance=Decimal(0), PrivateNote="Voided"), ("voided", False), id="voided"),
    pytest.param(_row(), _fresh(Balance=Decimal("40.00")), ("balance", True), id="partly paid: re-planned on fresh figures"),
    pytest.param(_row(), _fresh(DueDate="2026-05-01"), ("due date", True), id="due date moved"),
    pytest.param(_row("alert"), _fresh(Balance=Decimal("40.00")), None, id="an alert stays relevant while open"),
    pytest.param(_row("fee", fee_kind="flat"), _fresh(Balance=Decimal("40.00")), None, id="a flat fee ignores the amount"),
    pytest.param(_row("fee", fee_kind="percent"), _fresh(Balance=Decimal("40.00")), ("balance", True),
                 id="a percent fee is recomputed"),
])
def test_freshness_decisions(row, fresh, expected) -> None:  # type: ignore[no-untyped-def]
    got = run._stale(row, fresh)
    if expected is None:
        assert got is None
    else:
        assert got is not None and expected[0] in got[0].english() and got[1] is expected[1]


def test_the_summary_line_reads_as_a_sentence() -> None:
    s = run.RunSummary(realm="r1", planned=3, api_calls=4, credit_reads=1, freshness_queries=1, note_batches=1)
    s.statuses.update(sent=2, cancelled=1)
    assert s.line().startswith("run r1: 3 planned, 1 cancelled, 2 sent;") and "4 QuickBooks API calls (1 read of the payments, credit memos and customers, 1 freshness query, 1 note batch(es))" in s.line()
