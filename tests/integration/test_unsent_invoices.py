"""The policy's "leave alone the invoices QuickBooks never emailed nor printed", end to end: the
mirror keeps EmailStatus and PrintStatus, the run leaves those invoices alone, and sending one from
QuickBooks (``POST /invoice/<id>/send``, then a sync) brings it into the reminders."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from qbo_collector import dispatch, snapshot
from qbo_collector.db import models
from qbo_collector.sync import run as sync_run
from tests.integration import test_dispatch_support as ds
from tests.integration import test_sync_support as support


@pytest.fixture
def env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, sqlite_db,
                    policy=ds.every_day_policy(skip_unsent_invoices=True, min_gap_days=0, alert_owner_when_late=True))
    yield made
    ds.stop([made])


def _unsent(sb, realm: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {i["Id"] for i in sb.intuit.entities(realm, "Invoice")
            if i.get("EmailStatus") != "EmailSent" and i.get("PrintStatus") != "PrintComplete"}


def _named(env) -> set[str]:  # type: ignore[no-untyped-def]
    return {i for r in env.rows() if r.kind != "note" for i in (r.invoice_ids or ())}


def test_unsent_invoices_are_left_alone_until_quickbooks_sends_them(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    today = env.now_at(12).date()
    unsent = _unsent(sb, realm)
    overdue_unsent = [i for i in sb.intuit.entities(realm, "Invoice") if i["Id"] in unsent
                      and float(i.get("Balance") or 0) > 0 and i.get("DueDate") and i["DueDate"] < today.isoformat()]
    assert overdue_unsent, "the sandbox book has overdue invoices QuickBooks never sent"
    with env.db.session() as s:  # the mirror says what QuickBooks says
        mirrored = {r.qbo_id: r for r in s.scalars(select(models.Invoice))}
    assert {i for i, r in mirrored.items() if not snapshot.was_sent(r.email_status, r.print_status)} == unsent
    assert any(r.print_status == "PrintComplete" for r in mirrored.values())  # paper counts as sent

    summary = env.run()
    assert summary.ok, summary.problems
    named = _named(env)
    assert named and not named & unsent  # no reminder, fee, task or alert names an unsent invoice

    # The business sends one from QuickBooks; the next sync sees it and the next run reminds it.
    invoice = overdue_unsent[0]
    customer = sb.intuit.get(realm, "Customer", invoice["CustomerRef"]["value"])
    address = (customer.get("PrimaryEmailAddr") or {}).get("Address") or "ap@customer.example"
    sb.intuit.send_invoice(realm, invoice["Id"], send_to=address)
    env.sync()
    with env.db.session() as s:
        row = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == invoice["Id"]))
        assert row.email_status == "EmailSent" and row.sent_on == today  # DeliveryInfo, the company's day
    env.run(now=env.now_at(13))
    # the firm preset bills 1.5 % a month after 5 days of grace: no month that began before the
    # customer had the invoice is billed
    calendar = dispatch.plan_company(env.settings, env.db, realm, on=today, days=70)
    fees = [r for r in calendar if r.kind == "fee" and r.invoice_ids == (invoice["Id"],)]
    fees += [r for r in env.rows(kind="fee") if r.invoice_ids == [invoice["Id"]]]
    assert fees and all(dt.date.fromisoformat(r.dedupe_key.rsplit(":", 1)[1]) >= today for r in fees)
    reminded = [r for r in env.rows(kind="reminder") if invoice["Id"] in (r.invoice_ids or ())]
    assert reminded and {r.status.value for r in reminded} <= {"sent", "cancelled"}
    # only the newest step that is due: no burst of the steps it missed while unsent
    assert len({r.step for r in reminded}) == 1
    assert not _named(env) & (unsent - {invoice["Id"]})


def test_the_upgrade_reads_the_invoices_again_for_their_print_status(fresh_sandbox, settings_factory, db, vault) -> None:  # type: ignore[no-untyped-def]
    """Migration 0008 adds ``print_status``; the invoices mirrored before are read again in full by the
    next sync (the others keep their incremental cursor)."""
    from alembic import command

    from qbo_collector.db import migrate

    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    assert sync_run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok
    printed = {i["Id"] for i in sb.intuit.entities(realm, "Invoice") if i.get("PrintStatus") == "PrintComplete"}
    assert printed
    with db.engine.begin() as connection:
        cfg = migrate.alembic_config(db.url)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0007")
    migrate.upgrade(db)
    with db.reading() as s:
        assert set(s.scalars(select(models.Invoice.print_status))) == {None}
    summary = sync_run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert summary.ok and summary.mode == "mixed"  # invoices in full, the rest by CDC
    with db.reading() as s:
        rows = list(s.scalars(select(models.Invoice)))
    assert {r.qbo_id for r in rows if r.print_status == "PrintComplete"} == printed
    assert all(r.print_status for r in rows)
    support.assert_mirror_equals_source(db, sb, realm)


def test_a_day_later_nothing_new_for_them_either(env) -> None:  # type: ignore[no-untyped-def]
    """The index: an unsent invoice has no next-action date (NEVER), so the indexed runs of later days never pick it."""
    unsent = _unsent(env.sb, env.realm)  # before the run posts late-fee invoices (never emailed by QuickBooks)
    env.run()
    with env.db.session() as s:
        rows = {r.qbo_id: r for r in s.scalars(select(models.Invoice))}
    open_unsent = [i for i in unsent if rows[i].balance > 0]
    assert open_unsent and all(rows[i].next_action_on == snapshot.NEVER for i in open_unsent)
    for days in (1, 2, 8):
        env.sb.clock.advance(dt.timedelta(days=1 if days < 8 else 6))
        env.run()
    assert not _named(env) & unsent


_logins = itertools.count()


def _browser(env, language: str = "en"):  # type: ignore[no-untyped-def]
    from tests.integration.test_pages_support import browser

    return browser(env.web.app, env.db, f"owner-{next(_logins)}@maple.example", realm=env.realm, language=language)


def test_the_owner_is_told_which_invoices_are_left_alone(env) -> None:  # type: ignore[no-untyped-def]
    """A setting that silently stops collecting money would lose it: the weekly digest names the
    invoices left alone and the customer page marks them, in the reader's language."""
    from qbo_collector import digest

    sb, realm = env.sb, env.realm
    today = env.now_at(12).date()
    env.run()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        left = snapshot.left_unsent(s, company)
        owed = {i.qbo_id: i for i in s.scalars(select(models.Invoice)) if i.status.value == "open" and i.balance > 0}
        numbers = {i.qbo_id: i.doc_number for i, _ in left}
    assert set(numbers) == {i for i in _unsent(sb, realm) if i in owed and not owed[i].is_late_fee}
    assert [i.balance for i, _ in left] == sorted((i.balance for i, _ in left), reverse=True)

    _subject, text, page = digest.build(env.db, realm, today)
    section = text.split("Invoices QuickBooks never emailed nor printed", 1)[1].split("\n\n", 1)[0]
    listed = [line for line in section.splitlines() if line.strip().startswith("•")]
    shown = list(numbers.values())[:digest.TOP]
    assert [line.split(",")[0].split("Invoice ")[1] for line in listed[:len(shown)]] == shown
    if len(numbers) > digest.TOP:
        assert listed[-1].strip() == f"• and {len(numbers) - digest.TOP} more"
    assert "never emailed nor printed" in page

    customer_id = next(c.qbo_id for i, c in left)
    mine = [n for i, n in numbers.items() if owed[i].customer_qbo_id == customer_id]
    english = _browser(env).get(f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)
    assert english.count("never sent from QuickBooks: no reminder until you send it") == len(mine)
    french = _browser(env, "fr").get(f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)
    assert french.count("jamais envoyée depuis QuickBooks") == len(mine)

    # The same book with the option off: nothing left alone, no section, no mark.
    with env.db.session() as s:
        s.scalar(select(models.Company)).policy = ds.every_day_policy(min_gap_days=0)
    with env.db.session() as s:
        assert snapshot.left_unsent(s, s.scalar(select(models.Company))) == []
    assert "never emailed nor printed" not in digest.build(env.db, realm, today)[1]
    assert "never sent from QuickBooks" not in _browser(env, "en").get(
        f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)


def test_a_dispute_on_an_unsent_invoice_takes_it_off_the_list(env) -> None:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        invoice, customer = snapshot.left_unsent(s, company)[0]
        s.add(models.Pause(company_id=company.id, kind="manual", customer_qbo_id=customer.qbo_id, invoice_ids=[],
                           start_on=env.now_at(12).date(), until_on=None))
    with env.db.session() as s:
        assert invoice.qbo_id in {i.qbo_id for i, _ in snapshot.left_unsent(s, s.scalar(select(models.Company)))}
        company = s.scalar(select(models.Company))
        s.add(models.Pause(company_id=company.id, kind="dispute", customer_qbo_id=customer.qbo_id,
                           invoice_ids=[invoice.qbo_id], start_on=env.now_at(12).date()))
    with env.db.session() as s:
        assert invoice.qbo_id not in {i.qbo_id for i, _ in snapshot.left_unsent(s, s.scalar(select(models.Company)))}
