"""Features around the sends: French customers, payment links, late-fee lines, status changes in the
notes, reconnect alerts, the next action date the daily run reads."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import casework, clock, dispatch, errors
from qbo_collector.channels import qbo_notes
from qbo_collector.db import models
from qbo_collector.sandbox import server
from tests.integration import test_dispatch_support as ds

FRENCH = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                            language="fr", customers=10, invoices=35, payments=10, seed=12)


@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = []

    def make(spec=ds.SMALL, **kwargs):  # type: ignore[no-untyped-def]
        env = ds.build(sandbox_factory(companies=[spec]), settings_factory, sqlite_db, **kwargs)
        made.append(env)
        return env

    yield make
    ds.stop(made)


def test_french_customers_read_french_words_euros_and_the_payment_link(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(FRENCH)
    with env.db.session() as s:
        s.scalar(select(models.Company)).language = "fr"
    env.run()
    reminders = [m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example"]
    assert reminders
    french = [m for m in reminders if m["text"].startswith("Bonjour")]
    assert french, [m["text"][:40] for m in reminders]
    assert any(re.search(r"\d+,\d\d\s€", m["text"]) for m in french)
    assert any(f"/pay/{env.realm}/" in m["text"] and f"/pay/{env.realm}/" in m["html"] for m in reminders)
    texts = [m for m in env.sb.twilio.messages if "/pay/" in m["body"]]
    assert all(m["body"].rstrip().split()[-1].startswith("http") for m in texts)  # the link is never cut


def test_late_fees_as_a_line_on_the_invoice_are_added_once(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"late_fee_mode": "line"})
    env.run()
    fees = [r for r in env.rows(kind="fee") if r.status.value == "sent"]
    assert fees and all(r.provider_id.startswith("line:") for r in fees)
    invoice = env.sb.intuit.get(env.realm, "Invoice", fees[0].invoice_ids[0])
    lines = [l for l in invoice["Line"] if fees[0].dedupe_key in str(l.get("Description", ""))]
    assert len(lines) == 1 and lines[0]["SalesItemLineDetail"]["ItemRef"]["name"] == "Late fee"
    # a crash after QuickBooks took the line: the retry finds it and adds nothing
    with env.db.session() as s:
        s.get(models.Outbox, fees[0].id).status = models.OutboxStatus.sending
    env.run(now=env.now_at(13))
    invoice = env.sb.intuit.get(env.realm, "Invoice", fees[0].invoice_ids[0])
    assert len([l for l in invoice["Line"] if fees[0].dedupe_key in str(l.get("Description", ""))]) == 1


def test_fees_posted_as_lines_go_on_every_month_on_the_invoice_without_them(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: after its first fee line, the mapping took the invoice for a fee invoice (it had
    a "Late fee" line), and it bore no more fees. Now each month adds its line, each computed on the
    balance without the fee lines (1.5 % of the work, never of the fees), with a sync between runs."""
    env = make_env(company_settings={"late_fee_mode": "line"})
    env.run()
    first = next(r for r in env.rows(kind="fee") if r.status.value == "sent")
    invoice_id = first.invoice_ids[0]
    principal = Decimal(str(env.sb.intuit.get(env.realm, "Invoice", invoice_id)["Balance"])) - first.amount
    for months in (1, 2):
        env.sync()
        with env.db.session() as s:
            mirrored = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == invoice_id))
            assert not mirrored.is_late_fee and mirrored.fee_lines == first.amount * months
        env.run(now=env.now_at(12, days=31 * months))
    fees = sorted((r for r in env.rows(kind="fee") if r.invoice_ids == [invoice_id]), key=lambda r: r.id)
    assert [r.status.value for r in fees] == ["sent"] * 3, [(r.dedupe_key, r.status_reason) for r in fees]
    assert len({r.dedupe_key for r in fees}) == 3
    assert [r.amount for r in fees] == [(principal * Decimal("0.015")).quantize(Decimal("0.01"))] * 3
    lines = [l for l in env.sb.intuit.get(env.realm, "Invoice", invoice_id)["Line"]
             if (l.get("SalesItemLineDetail") or {}).get("ItemRef", {}).get("name") == "Late fee"]
    assert sorted(Decimal(str(l["Amount"])) for l in lines) == sorted(r.amount for r in fees)


def test_several_periods_due_at_once_in_line_mode_are_all_posted_in_one_run(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: each fee line the run added changed the invoice's balance, and the freshness check
    then cancelled every other period of that invoice as "the balance changed in QuickBooks" — one period
    posted a day, a notice email a day. A period is taken on the balance without the fee lines, which a
    fee line does not change."""
    env = make_env(company_settings={"late_fee_mode": "line", "fees_from": "2000-01-01"})
    env.run()
    fees = env.rows(kind="fee")
    by_invoice = collections.Counter(r.invoice_ids[0] for r in fees)
    invoice_id, periods = by_invoice.most_common(1)[0]
    assert periods >= 3
    mine = [r for r in fees if r.invoice_ids[0] == invoice_id]
    assert {r.status.value for r in mine} == {"sent"}, {(r.status.value, r.status_reason) for r in mine}
    amounts = collections.Counter(r.amount for r in mine if (r.payload or {}).get("fee_kind") == "percent")
    assert amounts.most_common(1)[0][1] >= periods - 1  # the same principal each time (the last may be cut to the cap)
    lines = [l for l in env.sb.intuit.get(env.realm, "Invoice", invoice_id)["Line"]
             if (l.get("SalesItemLineDetail") or {}).get("ItemRef", {}).get("name") == "Late fee"]
    assert len(lines) == periods


def test_a_late_fee_item_made_inactive_in_quickbooks_is_made_active_again(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: QuickBooks hides an inactive item from a plain query and refuses to create another
    of the same name (6240), so every fee failed for good, each losing its period. The item is found
    with ``Active IN (true, false)`` and made active again, once, and the fees are posted."""
    env = make_env(dataclasses.replace(ds.SMALL, late_fee_item=True))
    item = next(i for i in env.sb.intuit.entities(env.realm, "Item") if i["Name"] == "Late fee")
    env.sb.intuit.update(env.realm, "Item", item["Id"], Active=False)  # the owner tidied the item list
    env.run()
    fees = env.rows(kind="fee")
    assert fees and {r.status.value for r in fees} == {"sent"}, {(r.status.value, r.status_reason) for r in fees}
    assert env.sb.intuit.get(env.realm, "Item", item["Id"])["Active"] is True
    assert [i["Id"] for i in env.sb.intuit.entities(env.realm, "Item") if i["Name"] == "Late fee"] == [item["Id"]]
    posted = env.sb.intuit.get(env.realm, "Invoice", fees[0].provider_id)
    assert posted["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": item["Id"], "name": "Late fee"}


def test_the_late_fee_notice_preview_tells_the_fee_rule_as_the_sent_notice_does(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: the preview built the notice as a fee row, and the fee rule is told only in a
    reminder, so the preview left out a sentence every sent notice has."""
    import html
    import re

    from tests.integration.test_pages_support import browser

    env = make_env()
    env.run()
    notice = next(r for r in env.rows(kind="reminder") if r.template_key == "late_fee_notice" and r.status.value == "sent")
    sentence = "A late fee of 1.5% of the unpaid balance is added for each month"
    sent = next(m for m in env.sb.sendgrid.messages if m["custom_args"]["outbox_id"] == str(notice.id))
    assert sentence in sent["text"]
    page = browser(env.web.app, env.db, "owner@maple.example", realm=env.realm).get(
        f"/companies/{env.realm}/templates?key=late_fee_notice&language=en&customer={notice.customer_qbo_id}")
    assert sentence in html.unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))


def test_voiding_one_fee_on_the_page_leaves_the_later_periods_charged(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: "Void the fee of $2.80" also set "no more fees" on the invoice it was for, a
    choice the same menu offers on its own. Voiding voids that fee (its period is not charged again)."""
    from tests.integration.test_pages_support import browser

    env = make_env()
    env.run()
    fee = next(r for r in env.rows(kind="fee") if r.status.value == "sent")
    invoice_id, on = fee.invoice_ids[0], env.now_at(12).date()

    def fees_ahead() -> list[str]:
        return [p.dedupe_key for p in dispatch.plan_company(env.settings, env.db, env.realm, on=on, days=70)
                if p.kind == "fee" and invoice_id in p.invoice_ids]

    before = fees_ahead()
    assert before and fee.dedupe_key not in before
    owner = browser(env.web.app, env.db, "owner@maple.example", realm=env.realm)
    answer = owner.post(f"/companies/{env.realm}/customers/{fee.customer_qbo_id}/waive",
                        data={"invoice_id": f"fee:{fee.id}", "note": "charged by mistake"})
    assert answer.status_code == 302
    with env.db.session() as s:
        assert s.scalar(select(models.Invoice.fees_waived).where(models.Invoice.qbo_id == invoice_id)) is False
        assert (s.get(models.Outbox, fee.id).payload or {}).get("waived")
    assert fees_ahead() == before  # the later periods, and never the voided one again


def test_waiving_a_fee_posted_as_a_line_takes_the_line_off_the_invoice(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"late_fee_mode": "line"})
    env.run()
    fee = next(r for r in env.rows(kind="fee") if r.status.value == "sent")
    invoice_id = fee.invoice_ids[0]
    before = env.sb.intuit.get(env.realm, "Invoice", invoice_id)

    def D(value) -> Decimal:  # type: ignore[no-untyped-def]  # the sandbox keeps JSON numbers
        return Decimal(str(value))

    def fee_lines(invoice):  # type: ignore[no-untyped-def]
        return [l for l in invoice["Line"] if fee.dedupe_key in str(l.get("Description", ""))]

    # The customer paid part of the invoice, fee included: taking the line off would leave a payment
    # larger than the invoice. Refused with the reason; the fee stays, nothing is marked waived.
    payment = env.sb.intuit.pay_invoice(env.realm, invoice_id, D(before["Balance"]) - fee.amount / 2)
    with pytest.raises(errors.PermanentFailure) as refused:
        dispatch.waive_fee(env.settings, env.db, env.vault, fee.id, user_id=None)
    assert refused.value.code == "fee_paid" and "credit memo" in refused.value.message
    assert fee_lines(env.sb.intuit.get(env.realm, "Invoice", invoice_id))
    with env.db.session() as s:
        assert not (s.get(models.Outbox, fee.id).payload or {}).get("waived")
    env.sb.intuit.delete(env.realm, "Payment", payment["Id"])  # the payment was a mistake: the balance is whole again

    before = env.sb.intuit.get(env.realm, "Invoice", invoice_id)
    assert dispatch.waive_fee(env.settings, env.db, env.vault, fee.id, user_id=None) == "line"
    after = env.sb.intuit.get(env.realm, "Invoice", invoice_id)
    assert not fee_lines(after)
    assert D(after["TotalAmt"]) == D(before["TotalAmt"]) - fee.amount
    assert D(after["Balance"]) == D(before["Balance"]) - fee.amount
    sales = [l for l in after["Line"] if l.get("DetailType") == "SalesItemLineDetail"]
    assert len(sales) == len([l for l in before["Line"] if l.get("DetailType") == "SalesItemLineDetail"]) - 1
    with env.db.session() as s:
        assert s.get(models.Outbox, fee.id).payload["waived"] is True
        waived = s.scalars(select(models.Activity).where(models.Activity.kind == "fee.waived")).one()
        assert f"line taken off invoice {invoice_id}" in waived.message
        assert s.scalars(select(models.Outbox).where(models.Outbox.dedupe_key == f"{env.realm}:note:waive:{fee.id}")).one()
    assert dispatch.waive_fee(env.settings, env.db, env.vault, fee.id, user_id=None) is None  # twice: nothing more
    assert env.sb.intuit.get(env.realm, "Invoice", invoice_id)["SyncToken"] == after["SyncToken"]


def _notices(env):  # type: ignore[no-untyped-def]
    return [r for r in env.rows(kind="reminder") if r.template_key == "late_fee_notice"]


def test_each_posted_fee_is_told_to_the_customer_once_by_email(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.run()
    fees = [r for r in env.rows(kind="fee") if r.status.value == "sent"]
    notices = _notices(env)
    with env.db.session() as s:
        with_email = {c.qbo_id for c in s.scalars(select(models.Customer)) if c.email}
    told = [f for f in fees if f.customer_qbo_id in with_email]
    assert told and sorted(n.dedupe_key for n in notices) == sorted(f"{f.dedupe_key}:notice" for f in told)
    assert all(n.status.value == "sent" and n.channel == "email" for n in notices)  # in the same run
    by_id = {m["custom_args"]["outbox_id"]: m for m in env.sb.sendgrid.messages}
    # the fees of one customer in a run are told in one email (``test_statement_per_address``)
    per_customer = collections.Counter(f.customer_qbo_id for f in told)
    for customer_id in per_customer:
        assert len({n.provider_id for n in notices if n.customer_qbo_id == customer_id}) == 1
    fee = next(f for f in told if per_customer[f.customer_qbo_id] == 1)
    notice = next(n for n in notices if n.dedupe_key == f"{fee.dedupe_key}:notice")
    mail = by_id[str(notice.id)]
    original = env.sb.intuit.get(env.realm, "Invoice", fee.invoice_ids[0])
    assert mail["subject"] == f"A late fee was added for invoice {original['DocNumber']}"
    # "$2.80" in en_US, "US$2.80" in a Canadian customer's en_CA
    assert re.search(rf"a late fee of (US)?\${fee.amount:,.2f} has been added to your account", mail["text"])
    assert f"/pay/{env.realm}/" in mail["text"]  # the payment link
    with env.db.session() as s:
        assert s.get(models.Outbox, notice.id).amount == fee.amount
    again = env.run(now=env.now_at(13))
    assert not again.statuses and len(_notices(env)) == len(notices)  # never twice


def test_a_notice_left_by_a_stopped_run_is_cancelled_if_the_invoice_is_paid_meanwhile(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.run()
    notice = _notices(env)[0]
    with env.db.session() as s:  # as if the run had stopped between the fee and its notice
        row = s.get(models.Outbox, notice.id)
        row.status, row.sent_at, row.provider_id = models.OutboxStatus.planned, None, None
    sent_before = len(env.sb.sendgrid.messages)
    env.sb.intuit.pay_invoice(env.realm, notice.invoice_ids[0])
    env.run(now=env.now_at(13))
    with env.db.session() as s:
        row = s.get(models.Outbox, notice.id)
        assert row.status == models.OutboxStatus.cancelled and "paid" in row.status_reason
    assert not [m for m in env.sb.sendgrid.messages[sent_before:] if m["custom_args"]["outbox_id"] == str(notice.id)]


def test_a_fee_line_notice_shows_the_balance_with_the_fee(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"late_fee_mode": "line"})
    env.run()
    notice = _notices(env)[0]
    fee = next(r for r in env.rows(kind="fee") if f"{r.dedupe_key}:notice" == notice.dedupe_key)
    invoice = env.sb.intuit.get(env.realm, "Invoice", fee.invoice_ids[0])
    mail = next(m for m in env.sb.sendgrid.messages if m["custom_args"]["outbox_id"] == str(notice.id))
    # the fee line included; "$" in en_US, "US$" for a Canadian customer (en_CA)
    assert re.search(rf"still has (US)?\${Decimal(str(invoice['Balance'])):,.2f} unpaid", mail["text"])


def test_the_policy_can_turn_fee_notices_off(make_env) -> None:  # type: ignore[no-untyped-def]
    quiet = make_env(policy=ds.every_day_policy("firm", late_fees={**ds.every_day_policy("firm")["late_fees"],
                                                                    "notify_customer": False}))
    quiet.run()
    assert [r for r in quiet.rows(kind="fee") if r.status.value == "sent"] and not _notices(quiet)


def test_an_owner_alert_with_no_owner_email_says_what_it_was_about(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(policy=ds.every_day_policy("firm"), company_settings={"owner_email": ""})
    env.run()
    alerts = [r for r in env.rows(kind="alert") if r.channel == "owner_email"]
    assert alerts and all(r.status.value == "cancelled" for r in alerts)
    assert all(r.status_reason.startswith(r.reason) and "no owner email is set" in r.status_reason for r in alerts)


def test_a_promise_recorded_on_the_page_goes_to_the_notes_and_pauses_reminders(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    today = env.now_at(12).date()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        invoice = s.scalars(select(models.Invoice).where(models.Invoice.status == models.InvoiceStatus.open,
                                                         models.Invoice.due_date < today)).first()
        customer_id = invoice.customer_qbo_id
        casework.promise(s, company, customer_id, until=today + dt.timedelta(days=7), amount=str(invoice.balance),
                         invoice_ids=[invoice.qbo_id], on=today)
    env.run()
    promised = [r for r in env.rows() if invoice.qbo_id in (r.invoice_ids or []) and r.kind in ("reminder", "fee")]
    assert promised == []
    notes = env.sb.intuit.get(env.realm, "Customer", customer_id)["Notes"]
    assert "Promise to pay" in notes and qbo_notes.START_MARK in notes


def test_a_company_that_needs_reconnecting_alerts_its_owner_once_a_day(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        company.status = models.CompanyStatus.needs_reconnect
        company.status_reason = "Intuit refused the grant (invalid_grant)."
    # yesterday's runs (a replay, or a scheduler late on its clock): the run's time, not the wall clock,
    # decides what is due, so the alert the run itself queued goes out with it
    first = env.run(now=env.now_at(12, days=-1))
    second = env.run(now=env.now_at(13, days=-1))
    assert first.errors and second.errors
    owner = [m for m in env.sb.sendgrid.messages if m["to"] == "owner@maple.example" and "reconnect" in m["text"]]
    assert len(owner) == 1
    assert not [m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example"]


def test_next_action_dates_are_stored_and_later_runs_plan_only_what_is_due(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.run()
    today = env.now_at(12).date()
    with env.db.session() as s:
        dates = [d for (d,) in s.execute(select(models.Invoice.next_action_on).where(
            models.Invoice.status == models.InvoiceStatus.open))]
    assert any(d is not None and d > today for d in dates)
    # tomorrow: the first run plans the candidates only; a second run the same day finds nothing new
    tomorrow = env.run(now=env.now_at(12, days=1))
    with env.db.session() as s:
        with_open = set(s.scalars(select(models.Invoice.customer_qbo_id).where(
            models.Invoice.status == models.InvoiceStatus.open)))
    assert not tomorrow.full_plan and tomorrow.planned_customers < len(with_open)
    again = env.run(now=env.now_at(15, days=1))
    assert again.planned == 0



def test_a_later_run_evaluates_the_invoices_due_and_leaves_the_others_dates_alone(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.run()
    today = env.now_at(12).date()
    with env.db.session() as s:
        dated = list(s.scalars(select(models.Invoice).where(
            models.Invoice.status == models.InvoiceStatus.open, models.Invoice.next_action_on.is_not(None))
            .order_by(models.Invoice.customer_qbo_id, models.Invoice.qbo_id)))
        by_customer: dict[str, list[models.Invoice]] = {}
        for row in dated:
            by_customer.setdefault(row.customer_qbo_id, []).append(row)
        due, other = next(rows for rows in by_customer.values() if len(rows) >= 2)[:2]
        due.next_action_on = None  # unknown: this one is evaluated again
        far = today + dt.timedelta(days=300)
        other.next_action_on = far  # still a lower bound: a run that does not evaluate it keeps it
        due_id, other_id = due.id, other.id
    again = env.run(now=env.now_at(15))
    assert again.planned == 0
    with env.db.session() as s:
        refreshed, kept = s.get(models.Invoice, due_id).next_action_on, s.get(models.Invoice, other_id).next_action_on
    assert refreshed is not None and refreshed > today
    assert kept == far


def _local_day(env, days: int) -> dt.date:  # type: ignore[no-untyped-def]
    return env.now_at(12, days=days).astimezone(
        __import__("zoneinfo").ZoneInfo(env.sb.intuit.companies[env.realm].timezone)).date()


def _keys(env) -> set[str]:  # type: ignore[no-untyped-def]
    with env.db.session() as s:  # a key given up by a cancelled row ("…#cancelled<id>") still counts as inserted
        return {k.split("#cancelled")[0] for k in s.scalars(select(models.Outbox.dedupe_key))}


def test_the_indexed_daily_run_inserts_everything_a_full_plan_would_whatever_changes(make_env) -> None:  # type: ignore[no-untyped-def]
    """Two weeks of daily runs: each day, what a full plan would insert (``plan_company``, computed
    just before) is inserted by the run, which plans only the candidates — while payments arrive
    through the sync, a customer is excluded and taken back, an address bounces and the policy
    changes. Full plans happen only on the first day, after the policy change, and a week later.

    It starts tomorrow, so that every run's time comes after the wall clock, as in production (a run
    given an earlier time still sends at the wall clock's time, which may be the contact's next day)."""
    env = make_env()
    assert env.run(now=env.now_at(12, days=1)).full_plan
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        customers = sorted(c.qbo_id for c in s.scalars(select(models.Customer).where(models.Customer.email.is_not(None))))
        total = len(list(s.scalars(select(models.Customer))))
        open_invoices = list(s.scalars(select(models.Invoice).where(models.Invoice.status == models.InvoiceStatus.open)))
    full_on: list[int] = []
    indexed_customers: list[int] = []
    for day in range(1, 15):
        on = _local_day(env, day + 1)
        if day == 2:  # a payment in QuickBooks, mirrored by the sync
            env.sb.intuit.pay_invoice(env.realm, open_invoices[0].qbo_id, Decimal("1.00"))
            env.sync()
        if day == 3:
            with env.db.session() as s:
                casework.exclude(s, s.scalar(select(models.Company)), customers[0], on=on)
        if day == 5:
            with env.db.session() as s:
                casework.exclude(s, s.scalar(select(models.Company)), customers[0], excluded=False, on=on)
                dispatch.run.block_contact(s, "email", s.scalar(select(models.Customer.email).where(
                    models.Customer.qbo_id == customers[1])), "bounce", company_id=company.id, customer_id=customers[1])
        if day == 6:
            with env.db.session() as s:
                s.scalar(select(models.Company)).policy = ds.every_day_policy("us_net30")
        expected = {r.dedupe_key for r in dispatch.plan_company(env.settings, env.db, env.realm, on=on)}
        summary = env.run(now=env.now_at(12, days=day + 1))
        assert not summary.errors, summary.errors
        missing = expected - _keys(env)
        assert not missing, (day, sorted(missing)[:5])
        if summary.full_plan:
            full_on.append(day)
        else:
            indexed_customers.append(summary.planned_customers)
    assert full_on == [6, 13]  # the policy changed; a week after that full plan
    assert max(indexed_customers) < total  # the other days planned only some customers


def test_the_next_run_looks_for_changes_from_when_this_one_read_not_from_when_it_ended(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    before = clock.now()
    env.run()
    with env.db.session() as s:
        lease = s.get(models.WorkLease, (s.scalar(select(models.Company.id)), "dispatch"))
        sent = list(s.scalars(select(models.Outbox.updated_at).where(models.Outbox.status == models.OutboxStatus.sent)))
    # the mark is the wall clock's (as every synced_at it is compared with), taken when the run read, so
    # before every row it then sent: a change made while it worked is the next run's to see
    assert sent and before <= lease.done_at <= min(sent)


def test_loading_some_customers_reads_only_their_rows_and_sees_what_a_full_load_sees(make_env) -> None:  # type: ignore[no-untyped-def]
    """An indexed run loads its candidates only: no invoice, history row, pause or customer of
    another customer is read, and each loaded customer looks exactly as in a full load (history,
    pauses, a number blocked by an earlier STOP)."""
    from sqlalchemy import event

    from qbo_collector import snapshot

    env = make_env()
    env.run()  # history to read
    today = env.now_at(12).date()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        everyone = sorted({snap.customer.id for snap in snapshot.load(s, company, today=today)})
        chosen, others = everyone[:2], everyone[2:]
        assert others
        casework.pause(s, company, chosen[0], until=today + dt.timedelta(days=9), on=today)
        casework.pause(s, company, others[0], until=today + dt.timedelta(days=9), on=today)
        number = next(snap.phone for snap in snapshot.load(s, company, today=today) if snap.customer.id in chosen and snap.phone)
        s.add(models.ContactBlock(channel="sms", address=number, reason="stop"))
    with env.db.session() as s:
        full = {snap.customer.id: snap for snap in snapshot.load(s, s.scalar(select(models.Company)), today=today)}
    read: list[object] = []
    loading: list[object] = []  # the session of the load under test: the web server's threads load rows too

    def on_load(target: object, context: Any) -> None:
        if context.session in loading:
            read.append(target)

    watched = (models.Invoice, models.Outbox, models.Pause, models.Customer)
    for model in watched:
        event.listen(model, "load", on_load)
    try:
        with env.db.session() as s:
            loading.append(s)
            part = snapshot.load(s, s.scalar(select(models.Company)), today=today, customer_ids=chosen)
    finally:
        for model in watched:
            event.remove(model, "load", on_load)
    assert [snap.customer.id for snap in part] == chosen
    assert {type(r).__name__ for r in read} >= {"Invoice", "Outbox", "Pause", "Customer"}
    strangers = [r for r in read
                 if (r.qbo_id if isinstance(r, models.Customer) else r.customer_qbo_id) not in chosen]  # type: ignore[attr-defined]
    assert strangers == []
    for snap in part:
        whole = full[snap.customer.id]
        assert (snap.customer, snap.invoices, snap.history, snap.pauses) == \
            (whole.customer, whole.invoices, whole.history, whole.pauses)
    assert any("sms" in snap.customer.opted_out for snap in part)
    assert any(snap.pauses for snap in part)


def test_a_customer_whose_invoice_was_voided_or_whose_row_changed_is_planned_in_full(make_env) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector import snapshot

    env = make_env()
    env.run()
    with env.db.session() as s:
        lease = s.get(models.WorkLease, (s.scalar(select(models.Company.id)), "dispatch"))
        since = lease.done_at
        by_customer: dict[str, list[str]] = {}
        for inv in s.scalars(select(models.Invoice).where(models.Invoice.status == models.InvoiceStatus.open)):
            by_customer.setdefault(inv.customer_qbo_id, []).append(inv.qbo_id)
        voided_for, (voided, *_rest) = next((c, ids) for c, ids in by_customer.items() if len(ids) >= 2)
        flagged = next(c for c in by_customer if c != voided_for)
    env.sb.intuit.void_invoice(env.realm, voided)
    env.sync()  # the voided invoice is no longer open, but its customer's other invoices may need a new plan
    with env.db.session() as s:
        s.scalar(select(models.Customer).where(models.Customer.qbo_id == flagged)).sms_stopped = "stop"
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        found = snapshot.candidate_customers(s, company, today=env.now_at(12).date(), since=since)
    assert found[voided_for] is None and found[flagged] is None
    assert [c for c in by_customer if found.get(c, "") is not None]  # the others are not all planned in full


def test_an_invoice_nothing_will_happen_to_is_not_selected_again_until_something_changes(make_env) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector import snapshot

    env = make_env()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        customer = s.scalar(select(models.Invoice.customer_qbo_id).where(
            models.Invoice.status == models.InvoiceStatus.open))
        casework.exclude(s, company, customer, on=env.now_at(12).date())
    env.run()
    with env.db.session() as s:
        dates = set(s.scalars(select(models.Invoice.next_action_on).where(
            models.Invoice.customer_qbo_id == customer, models.Invoice.status == models.InvoiceStatus.open)))
        since = s.get(models.WorkLease, (s.scalar(select(models.Company.id)), "dispatch")).done_at
        found = snapshot.candidate_customers(s, s.scalar(select(models.Company)), today=env.now_at(12, days=1).date(),
                                             since=since)
    assert dates == {snapshot.NEVER} and customer not in found  # excluded: nothing ever, not selected every run
    with env.db.session() as s:
        casework.exclude(s, s.scalar(select(models.Company)), customer, excluded=False, on=env.now_at(12).date())
    with env.db.session() as s:
        found = snapshot.candidate_customers(s, s.scalar(select(models.Company)), today=env.now_at(12, days=1).date(),
                                             since=since)
    assert customer in found  # taken back: its dates are cleared, so it is planned again


def test_the_plan_fingerprint_follows_what_every_customer_s_plan_reads(make_env) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector import snapshot

    env = make_env()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        first = snapshot.plan_fingerprint(s, company)
        assert snapshot.plan_fingerprint(s, company) == first  # stable
        company.settings = {**company.settings, "holiday_subdivision": "CA"}
        s.flush()
        second = snapshot.plan_fingerprint(s, company)
        company.timezone = "America/Denver"
        s.flush()
        third = snapshot.plan_fingerprint(s, company)
        term = s.scalars(select(models.Term)).first()
        term.synced_at = term.synced_at + dt.timedelta(seconds=1)
        s.flush()
        fourth = snapshot.plan_fingerprint(s, company)
    assert len({first, second, third, fourth}) == 4


def test_plan_over_several_days_is_json_and_changes_nothing(make_env) -> None:  # type: ignore[no-untyped-def]
    import json

    env = make_env()
    rows = dispatch.plan_company(env.settings, env.db, env.realm, on=env.now_at(12).date(), days=30)
    assert rows and json.loads(json.dumps([r.as_dict() for r in rows]))
    assert len({r.dedupe_key for r in rows}) == len(rows)
    assert {r.due_at.date() for r in rows} > {env.now_at(12).date()}
    assert env.rows() == []


def test_the_company_sms_sender_from_the_channels_page_is_used(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"sms_from": "+15005550123"})
    env.sb.twilio.owned_numbers = {"+15005550123"}  # any other From is refused by Twilio (21606)
    env.run()
    texts = env.sb.twilio.messages
    assert texts and {m["from"] for m in texts} == {"+15005550123"}


def test_after_the_clock_moves_on_a_synced_change_is_still_seen_by_the_next_daily_run(make_env) -> None:  # type: ignore[no-untyped-def]
    """The demo's "advance one day" moves the program's clock: the sync stamps what it mirrors on that
    clock too, so a change synced after a run is after the run's mark and the next indexed run plans
    that customer in full (on the wall clock, it looked a day older than the mark and was skipped)."""
    from qbo_collector import snapshot

    env = make_env()
    env.run()
    try:
        ahead = dt.timedelta(days=1)
        clock.advance(ahead)
        env.sb.clock.advance(ahead)
        env.run()  # tomorrow's run: its mark is on the moved clock
        with env.db.session() as s:
            company = s.scalar(select(models.Company))
            mark = s.get(models.WorkLease, (company.id, "dispatch")).done_at
            customer = s.scalar(select(models.Invoice.customer_qbo_id).where(
                models.Invoice.status == models.InvoiceStatus.open).order_by(models.Invoice.id))
        env.sb.intuit.update(env.realm, "Customer", customer, PrimaryEmailAddr={"Address": "new@example.com"})
        env.sync()
        with env.db.session() as s:
            company = s.scalar(select(models.Company))
            synced = s.scalar(select(models.Customer.synced_at).where(models.Customer.qbo_id == customer))
            found = snapshot.candidate_customers(s, company, today=_local_day(env, 0), since=mark)
        assert synced >= mark
        assert customer in found and found[customer] is None  # changed: all its invoices evaluated
    finally:
        clock.reset()
