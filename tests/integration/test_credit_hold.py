"""A customer who paid without the payment being applied (an unapplied payment in QuickBooks), or
who holds a credit memo, is not reminded of the invoices that credit settles: end to end through a
real sync (CDC) and run on SQLite and PostgreSQL. The owner is told once to apply it; when the
credit goes away, the reminders resume."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select

from qbo_collector import snapshot
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds
from tests.integration import test_sync_support as support
from tests.integration.test_pages_support import browser


env = pytest.fixture(ds.quiet_env, name="env")


def _customer_owing(env, *due_in_days: int, amount: float = 500.0) -> tuple[str, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """A new QuickBooks customer (no credit, nothing else owed) with one invoice of ``amount`` per
    ``due_in_days`` (negative: overdue by that many days), oldest due first."""
    sb, realm = env.sb, env.realm
    today = env.now_at(12).date()
    customer = sb.intuit.create(realm, "Customer", {"DisplayName": "Lumen Works", "PrimaryEmailAddr": {
        "Address": "ap@lumen.example"}, "BillAddr": {"Country": "US"}})
    invoices = [ds.invoice(env, customer["Id"], today + dt.timedelta(days=days), amount) for days in sorted(due_in_days)]
    return customer["Id"], invoices


def _french_digest(env, realm: str, today: dt.date) -> str:  # type: ignore[no-untyped-def]
    from qbo_collector import digest
    with env.db.session() as s:
        s.scalar(select(models.Company)).language = "fr"
    try:
        return digest.build(env.db, realm, today)[1]
    finally:
        with env.db.session() as s:
            s.scalar(select(models.Company)).language = "en"


def _naming(env, invoice_id: str, *, alerts: bool = False) -> list[Any]:  # type: ignore[no-untyped-def]
    return [r for r in env.rows() if r.kind != "note" and invoice_id in (r.invoice_ids or ())
            and (r.kind == "alert") == alerts]


def test_an_unapplied_payment_holds_the_invoice_it_settles_until_it_goes_away(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (oldest, other) = _customer_owing(env, -2, 5)
    env.sync()
    first = env.run()  # the first run plans everyone: the overdue invoice gets its step
    assert first.ok and first.full_plan, first.problems
    assert [r.step for r in _naming(env, oldest["Id"]) if r.kind == "reminder"] == [1]  # "1 day late", by email

    # The customer pays exactly the oldest invoice; the bookkeeper records the money without applying it.
    payment = sb.intuit.create(realm, "Payment", {"CustomerRef": {"value": customer_id},
                                                  "TotalAmt": float(oldest["Balance"])})
    assert float(payment["UnappliedAmt"]) == float(oldest["Balance"])
    env.sync()  # CDC brings the payment; the invoice itself did not change
    before = {r.id for r in env.rows()}
    summary = env.run(now=env.now_at(12, days=1))
    assert summary.ok and not summary.full_plan, summary.problems  # the payment made the customer a candidate
    new = [r for r in env.rows() if r.id not in before]
    assert not [r for r in new if oldest["Id"] in (r.invoice_ids or ()) and r.kind != "alert"]
    [alert] = [r for r in new if r.kind == "alert" and r.channel == "owner_email"]
    assert alert.invoice_ids == [oldest["Id"]] and alert.payload["topic"] == "credit"
    assert alert.dedupe_key == f"{realm}:alert:{customer_id}:credit:USD:{Decimal(str(oldest['Balance'])):.2f}"
    assert alert.status.value == "sent"
    assert alert.payload["sentence"]["key"] == "alert.credit"
    assert any("apply the credit to it in QuickBooks" in str(m) for m in sb.sendgrid.messages)  # the owner's email
    with env.db.session() as s:  # nothing more will happen to it while the credit is there
        row = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == oldest["Id"]))
        assert row.next_action_on == dt.date(9999, 12, 31)

    # A week of daily runs: no second alert, nothing for the settled invoice; the other one goes on.
    for day in range(2, 9):
        env.run(now=env.now_at(12, days=day))
    assert [r.dedupe_key for r in _naming(env, oldest["Id"], alerts=True)] == [alert.dedupe_key]
    assert not [r for r in _naming(env, oldest["Id"]) if r.id not in before]
    assert [r.step for r in _naming(env, other["Id"]) if r.channel == "email"] == [0, 1]  # before and after its due date

    # The payment was a mistake and is deleted in QuickBooks: the invoice is reminded again (one step).
    sb.intuit.delete(realm, "Payment", payment["Id"])
    env.sync()
    later = {r.id for r in env.rows()}
    env.run(now=env.now_at(12, days=10))
    resumed = [r for r in _naming(env, oldest["Id"]) if r.id not in later and r.kind == "reminder"]
    # 12 days late: the newest step due, not the one it skipped (and the notice of the fee now charged)
    assert sorted((r.step, r.template_key) for r in resumed if r.step is not None) == [(2, "reminder_overdue_firm")]
    assert {r.template_key for r in resumed if r.step is None} == {"late_fee_notice"}


def test_a_credit_memo_settles_the_oldest_invoice_and_the_page_says_so(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (oldest, second) = _customer_owing(env, -9, -3)
    amount = 501.0  # more than the oldest, less than both: only the oldest is settled
    item = next(iter(sb.intuit.entities(realm, "Item")))
    sb.intuit.create(realm, "CreditMemo", {
        "CustomerRef": {"value": customer_id},
        "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount}}]})
    env.sync()
    assert env.run().ok
    assert not _naming(env, oldest["Id"])  # not reminded, fined nor escalated
    assert _naming(env, second["Id"])      # partly settled: reminded for its QuickBooks balance

    from qbo_collector import digest
    today = env.now_at(12).date()
    _subject, text, _page = digest.build(env.db, realm, today)
    section = text.split("Credit not applied in QuickBooks pays invoices", 1)[1].split("\n\n", 1)[0]
    assert f"• Lumen Works: $501.00 of credit settles invoice {oldest['DocNumber']}" in [x.strip() for x in section.splitlines()]
    with env.db.session() as s:
        listed = snapshot.credit_to_apply(s, s.scalar(select(models.Company)), today)
    assert [(c.name, c.numbers, c.settles) for c in listed if c.customer_id == customer_id] == [
        ("Lumen Works", (oldest["DocNumber"],), Decimal("500.00"))]
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        s.add(models.Pause(company_id=company.id, kind="dispute", customer_qbo_id=customer_id,
                           invoice_ids=[oldest["Id"]], start_on=today))
    # disputed, the oldest keeps its balance: the credit goes to the next one
    assert f"Lumen Works: $501.00 of credit settles invoice {second['DocNumber']}" in digest.build(env.db, realm, today)[1]
    with env.db.session() as s:
        s.execute(delete(models.Pause))
    french = _french_digest(env, realm, today)
    assert f"Lumen Works\u00a0: 501,00\u00a0$US d’avoir, qui règle la facture {oldest['DocNumber']}" in french

    for language, said in (("en", "settled by the customer's unused credit ($"),
                           ("fr", "réglée par l’avoir non utilisé du client (")):
        page = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=realm, language=language).get(
            f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)
        assert page.count(said) == 1, language
        assert page.count({"en": "Has $501.00 of unused credit in QuickBooks",
                           "fr": "Dispose de 501,00\u00a0$US d’avoir non utilisé dans QuickBooks"}[language]) == 1


def test_a_payment_recorded_after_the_last_sync_is_read_before_planning(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (oldest, second) = _customer_owing(env, -3, -2)  # both have their "1 day late" step due today
    env.sync()
    payment = ds.pay_unapplied(env, customer_id, oldest["Balance"])  # after the sync; no webhook either
    calls = sb.log.count("intuit", "cdc", realm=realm)
    summary = env.run()
    assert summary.ok and summary.credit_reads == 1, summary.problems
    assert sb.log.count("intuit", "cdc", realm=realm) - calls == 1  # one CDC call: payments, credit memos, customers
    assert not _naming(env, oldest["Id"])  # settled by the money just recorded: not reminded, fined nor tasked
    assert [(r.step, r.status.value) for r in _naming(env, second["Id"]) if r.channel == "email"] == [(1, "sent")]
    [alert] = [r for r in _naming(env, oldest["Id"], alerts=True) if r.channel == "owner_email"]
    assert alert.payload["topic"] == "credit" and alert.status.value == "sent"
    with env.db.session() as s:  # mirrored as a sync would, its cursor moved on
        row = s.scalar(select(models.Payment).where(models.Payment.qbo_id == payment["Id"]))
        assert row is not None and row.unapplied == Decimal(str(oldest["Balance"]))
    quiet = env.run(now=env.now_at(13))  # nothing new in QuickBooks: the call reads nothing
    assert quiet.ok and quiet.credit_reads == 1 and quiet.statuses["sent"] == 0


def test_a_text_planned_before_the_credit_came_is_cancelled_not_sent(  # type: ignore[no-untyped-def]
        sandbox_factory, settings_factory, sqlite_db) -> None:
    env = ds.morning_text_env(sandbox_factory, settings_factory, sqlite_db)
    try:
        sb, realm = env.sb, env.realm
        customer_id, (invoice,) = _customer_owing(env, -2)
        sb.intuit.update(realm, "Customer", customer_id, Mobile={"FreeFormNumber": "(808) 555-0142"})
        env.sync()
        early = env.run(now=env.now_at(8) + dt.timedelta(minutes=30))
        assert early.ok and early.waiting >= 1, early.problems
        [text] = [r for r in _naming(env, invoice["Id"]) if r.channel == "sms"]
        wakes = text.due_at.replace(tzinfo=dt.timezone.utc)
        assert text.status.value == "planned" and wakes.astimezone(zoneinfo.ZoneInfo("Pacific/Honolulu")).hour == 8

        ds.pay_unapplied(env, customer_id, invoice["Balance"])  # before it wakes, not synced
        later = env.run(now=wakes + dt.timedelta(minutes=30))
        assert later.ok and later.statuses["cancelled"] == 1, later.problems
        cancelled = next(r for r in env.rows() if r.id == text.id)
        assert cancelled.status.value == "cancelled"
        assert cancelled.status_reason == (
            f"Cancelled: invoice {invoice['DocNumber']} is settled by the customer's unused credit in QuickBooks "
            f"(500.00 USD, recorded since it was planned): nothing goes out for it until the credit is applied or "
            f"gone; the next run plans it again.")
        assert cancelled.dedupe_key == f"{text.dedupe_key}#cancelled{text.id}"  # the step may be planned again
        assert not [m for m in sb.twilio.messages if m["to"] == "+18085550142"]
        assert [r.payload["topic"] for r in _naming(env, invoice["Id"], alerts=True) if r.channel == "owner_email"] == [
            "credit"]  # the owner is told to apply it, in the same run
        assert (f"Annulé\u00a0: la facture {invoice['DocNumber']} est réglée par l’avoir non utilisé du client dans "
                "QuickBooks (500,00\u00a0$US, enregistré depuis la planification)") in ds.customer_page(env, customer_id, "fr")
    finally:
        ds.stop([env])


def test_when_the_payments_cannot_be_read_no_reminder_goes_out(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    _customer_id, (invoice,) = _customer_owing(env, -2)
    env.sync()
    sb.intuit_faults.force_500 = support.FAST.attempts  # every try of the CDC call fails; the next call works
    summary = env.run()
    assert summary.deferred >= 1 and summary.freshness_queries == 1
    assert [e for e in summary.errors if e.startswith(
        "The payments, credit memos and customers changed since the last sync could not be read, so no reminder, fee "
        "or task naming an invoice was carried out:")]
    assert {r.status.value for r in _naming(env, invoice["Id"])} == {"planned"}  # kept for the next run, not lost
    assert not [m for m in sb.sendgrid.messages if m["to"] == "ap@lumen.example"]
    again = env.run(now=env.now_at(13))
    assert again.ok and again.credit_reads == 1, again.problems
    assert {r.status.value for r in _naming(env, invoice["Id"]) if r.channel == "email"} == {"sent"}


def test_a_payment_that_pays_part_of_an_invoice_leaves_it_reminded_and_tells_the_owner(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (invoice,) = _customer_owing(env, -2)
    ds.pay_unapplied(env, customer_id, 200)
    env.sync()
    summary = env.run()
    assert summary.ok, summary.problems
    [email] = [r for r in _naming(env, invoice["Id"]) if r.channel == "email"]
    assert email.status.value == "sent" and Decimal(email.payload["balances"][invoice["Id"]]) == 500  # QuickBooks' balance
    [alert] = [r for r in _naming(env, invoice["Id"], alerts=True) if r.channel == "owner_email"]
    assert alert.status.value == "sent" and alert.dedupe_key == f"{realm}:alert:{customer_id}:credit:USD:200.00"
    assert alert.payload["sentence"]["key"] == "alert.credit.partial"
    told = [m for m in sb.sendgrid.messages if m["to"] == "owner@maple.example" and "Applied, it pays" in m["text"]]
    assert len(told) == 1 and f"Applied, it pays 200.00 USD of invoice {invoice['DocNumber']}" in told[0]["text"]
    env.run(now=env.now_at(12, days=1))  # told once for that amount
    assert len([r for r in _naming(env, invoice["Id"], alerts=True) if r.channel == "owner_email"]) == 1

    from qbo_collector import digest
    today = env.now_at(12).date()
    assert f"• Lumen Works: $200.00 of credit pays $200.00 of invoice {invoice['DocNumber']}" in digest.build(
        env.db, realm, today)[1]
    assert (f"Lumen Works\u00a0: 200,00\u00a0$US d’avoir, qui paie 200,00\u00a0$US de la facture {invoice['DocNumber']}"
            in _french_digest(env, realm, today))
    for language, said in (("en", "$200.00 of it paid by the customer's unused credit: reminded for its QuickBooks "
                                  "balance until you apply the credit there"),
                           ("fr", "200,00\u00a0$US payés par l’avoir non utilisé du client\u00a0: relancée pour son "
                                  "solde QuickBooks tant que vous n’y appliquez pas l’avoir")):
        page = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=realm, language=language).get(
            f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)
        assert page.count(said) == 1, language


def test_a_late_fee_is_taken_on_what_the_unapplied_payment_leaves_and_posted(env) -> None:  # type: ignore[no-untyped-def]
    """1.5 % of the 300.00 the customer still owes once its 200.00 payment is applied, not of QuickBooks'
    500.00 balance; the freshness check before posting compares that balance with the basis plus the credit."""
    sb, realm = env.sb, env.realm
    customer_id, (invoice,) = _customer_owing(env, -6)  # firm: a fee each month from 5 days after the due date
    ds.pay_unapplied(env, customer_id, 200)
    env.sync()
    summary = env.run()
    assert summary.ok, summary.problems
    [fee] = [r for r in _naming(env, invoice["Id"]) if r.kind == "fee"]
    assert (fee.status.value, fee.amount) == ("sent", Decimal("4.50")), fee.status_reason
    assert (fee.payload["basis"], fee.payload["credit"]) == ({"amount": "300.00", "currency": "USD"},
                                                             {"amount": "200.00", "currency": "USD"})
    assert ("1.5% of the overdue balance 300.00 USD (500.00 USD less 200.00 USD of the customer's unused credit that "
            "pays part of it)") in fee.reason
    posted = sb.intuit.get(realm, "Invoice", fee.provider_id)
    assert float(posted["TotalAmt"]) == 4.5 and posted["CustomerRef"]["value"] == customer_id
