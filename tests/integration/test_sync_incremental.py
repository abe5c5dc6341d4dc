"""Incremental sync through CDC: creates, updates, payments, voids and deletes arrive; one API call."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sqlalchemy import select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from qbo_collector.sync import run
from tests.integration import test_sync_support as support


def _sync(settings, db, vault, realm, **kwargs):  # type: ignore[no-untyped-def]
    summary = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED, **kwargs)
    assert summary.ok, summary.errors
    return summary


def _invoice(sb, realm, customer_id, amount=250):  # type: ignore[no-untyped-def]
    item = next(i for i in sb.intuit.entities(realm, "Item") if i["Name"] == "Services")
    return sb.intuit.create(realm, "Invoice", {
        "CustomerRef": {"value": customer_id},
        "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount}}]})


def test_incremental_sync_picks_up_creates_updates_payments_voids_and_deletes_in_one_call(
        fresh_sandbox, settings_factory, db, vault):
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)

    open_ids = [r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0]
    customer = sb.intuit.entities(realm, "Customer")[0]
    created = _invoice(sb, realm, customer["Id"])
    sb.intuit.update(realm, "Invoice", open_ids[0], DueDate="2030-01-31", PrivateNote="moved")
    sb.intuit.pay_invoice(realm, open_ids[1])                       # paid in full: new Payment + invoice update
    sb.intuit.pay_invoice(realm, open_ids[2], 1)                    # partial
    sb.intuit.void_invoice(realm, open_ids[3])
    sb.intuit.delete(realm, "Invoice", open_ids[4])
    payment = sb.intuit.entities(realm, "Payment")[0]
    sb.intuit.delete(realm, "Payment", payment["Id"])
    sb.intuit.delete(realm, "Customer", customer["Id"])             # list entities become inactive
    sb.intuit.update(realm, "Customer", sb.intuit.entities(realm, "Customer")[1]["Id"], Notes="Call before noon")

    before = sb.log.count("intuit", realm=realm)
    summary = _sync(settings, db, vault, realm)
    assert summary.mode == "incremental"
    # one CDC call, and one query for the pay link of the one new invoice (CDC rows carry no InvoiceLink)
    assert summary.api_calls == 2 and sb.log.count("intuit", realm=realm) - before == 2
    support.assert_mirror_equals_source(db, sb, realm)
    with db.session() as s:
        by_id = {i.qbo_id: i for i in s.scalars(select(models.Invoice))}
        assert by_id[open_ids[3]].status == models.InvoiceStatus.voided
        assert by_id[open_ids[4]].deleted and by_id[open_ids[4]].status == models.InvoiceStatus.deleted
        assert by_id[open_ids[1]].status == models.InvoiceStatus.paid
        assert by_id[created["Id"]].status == models.InvoiceStatus.open
        gone = s.scalar(select(models.Payment).where(models.Payment.qbo_id == payment["Id"]))
        assert gone.deleted
        assert not s.scalars(select(models.PaymentLink).where(models.PaymentLink.payment_qbo_id == payment["Id"])).all()
        assert s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer["Id"])).active is False

    sb.intuit.pay_invoice(realm, open_ids[5], 2)
    sb.intuit.update(realm, "Invoice", open_ids[6], DueDate="2030-03-01")
    updates_only = _sync(settings, db, vault, realm)                # no new invoice: exactly one call
    assert updates_only.api_calls == 1
    support.assert_mirror_equals_source(db, sb, realm)
    quiet = _sync(settings, db, vault, realm)                       # nothing changed: one call (the overlap re-reads)
    assert quiet.api_calls == 1


def _busy_company(sandbox_factory, settings_factory, db, vault):
    """A company of 1300 invoices, connected and synced: (sandbox, realm, settings, invoice ids)."""
    spec = server.CompanySpec(name="Busy Co", customers=20, invoices=1300, payments=10, seed=5)
    sb = sandbox_factory(companies=[spec])
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)
    return sb, realm, settings, [r["Id"] for r in sb.intuit.entities(realm, "Invoice")]


def test_a_window_over_1000_changes_is_split(sandbox_factory, settings_factory, db, vault):
    sb, realm, settings, ids = _busy_company(sandbox_factory, settings_factory, db, vault)
    for n, invoice_id in enumerate(ids[:100]):
        sb.intuit.update(realm, "Invoice", invoice_id, PrivateNote=f"note {n}", DueDate="2031-02-03")
    for n, invoice_id in enumerate(ids[100:1250]):
        if n % 200 == 0:
            sb.clock.advance(timedelta(seconds=2))                  # changes spread over several seconds
        sb.intuit.delete(realm, "Invoice", invoice_id)
    summary = _sync(settings, db, vault, realm)
    assert summary.mode == "incremental"
    assert summary.api_calls >= 3                                   # the capped answer, then the split reads
    support.assert_mirror_equals_source(db, sb, realm)
    assert set(ids[100:1250]) <= support.deleted_ids(db, realm, models.Invoice)


def test_a_window_of_over_1000_updates_is_read_in_full(sandbox_factory, settings_factory, db, vault):
    # Intuit lists deleted objects after all the active ones: 1000 updates fill the answer and
    # hide the window's deletions, which no narrower window shows; only a full read finds them.
    sb, realm, settings, ids = _busy_company(sandbox_factory, settings_factory, db, vault)
    victims = ids[-5:]
    sb.clock.advance(timedelta(seconds=2))
    for invoice_id in victims:
        sb.intuit.delete(realm, "Invoice", invoice_id)
    for n, invoice_id in enumerate(ids[:1250]):
        if n % 200 == 0:
            sb.clock.advance(timedelta(seconds=2))                  # changes spread over several seconds
        sb.intuit.update(realm, "Invoice", invoice_id, PrivateNote=f"note {n}", DueDate="2031-02-03")
    summary = _sync(settings, db, vault, realm)
    assert summary.mode == "mixed"                                  # Invoice read in full, the rest through CDC
    assert set(victims) <= support.deleted_ids(db, realm, models.Invoice)
    support.assert_mirror_equals_source(db, sb, realm)


def test_a_cursor_older_than_30_days_falls_back_to_a_full_sync(fresh_sandbox, settings_factory, db, vault):
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)
    victim = [r["Id"] for r in sb.intuit.entities(realm, "Invoice")][0]
    sb.intuit.delete(realm, "Invoice", victim)
    sb.clock.advance(timedelta(days=31))                            # QBO refuses a CDC window this old
    summary = _sync(settings, db, vault, realm)
    assert summary.mode == "mixed"                                  # CDC refused, then every stream in full
    support.assert_mirror_equals_source(db, sb, realm)
    assert victim in support.deleted_ids(db, realm, models.Invoice)  # not seen by the full sync → marked
    again = _sync(settings, db, vault, realm)
    assert again.mode == "incremental" and again.api_calls == 1


def test_a_catch_up_with_a_wide_overlap_finds_a_change_hidden_behind_the_cursor(fresh_sandbox, settings_factory, db,
                                                                               vault):
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)
    invoice_id = next(r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0)
    sb.intuit.pay_invoice(realm, invoice_id)
    with db.session() as s:                          # a lagging Intuit server: the cursor got ahead of a change
        for cursor in s.scalars(select(models.SyncCursor)):
            if cursor.changed_since is not None:
                cursor.changed_since = cursor.changed_since + timedelta(minutes=10)
    sb.clock.advance(timedelta(minutes=11))
    missed = _sync(settings, db, vault, realm)
    assert missed.written.get("Payment", 0) == 0
    caught = _sync(settings, db, vault, realm, overlap=timedelta(days=1))
    assert caught.api_calls == 1 and caught.written["Payment"] >= 1    # (and whatever else changed that day)
    support.assert_mirror_equals_source(db, sb, realm)


def test_a_stopped_address_replaced_in_quickbooks_starts_again_and_the_same_one_stays_stopped(
        fresh_sandbox, settings_factory, db, vault):
    """A bounce stops an address, a STOP a number; the business fixes the customer in QuickBooks.
    A new address or number is worked out again from its own blocks: free → reminders resume, with a
    line on the timeline; itself stopped → still stopped; the same number written differently → still
    stopped; a customer nobody stopped is left alone."""
    from qbo_collector import snapshot
    from qbo_collector.dispatch import run as dispatch_run

    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        mine = select(models.Customer).where(models.Customer.company_id == company.id).order_by(models.Customer.id)
        texted = s.scalars(mine.where(models.Customer.mobile.is_not(None))).all()[:2]
        mailed = [c for c in s.scalars(mine.where(models.Customer.email.is_not(None))) if c not in texted][:4]
        fixed, moved, other, untouched = mailed
        renumbered, same = texted
        mirrored = [fixed, moved, other, renumbered, same, untouched]
        numbers = {c.qbo_id: snapshot.phone_e164(company, c) for c in (renumbered, same)}
        for c in (fixed, moved):
            dispatch_run.block_contact(s, "email", c.email, "bounce")
        dispatch_run.block_contact(s, "email", "already@bounced.example", "spamreport")
        for c in (renumbered, same):
            dispatch_run.block_contact(s, "sms", numbers[c.qbo_id], "stop")
            c.sms_stopped = "stop"
        dispatch_run.block_contact(s, "email", other.email, "unsubscribe")
        ids = {name: c.qbo_id for name, c in zip(("fixed", "moved", "other", "renumbered", "same", "untouched"),
                                                  mirrored)}
        same_digits = "".join(ch for ch in same.mobile if ch.isdigit())
    sb.intuit.update(realm, "Customer", ids["fixed"], PrimaryEmailAddr={"Address": "accounts.payable@fixed.example"})
    sb.intuit.update(realm, "Customer", ids["moved"], PrimaryEmailAddr={"Address": "Already@Bounced.example"})
    sb.intuit.update(realm, "Customer", ids["other"], Notes="Call before noon")     # its address unchanged
    sb.intuit.update(realm, "Customer", ids["renumbered"], Mobile={"FreeFormNumber": "+1 415 555 0199"})
    sb.intuit.update(realm, "Customer", ids["same"], Mobile={"FreeFormNumber": same_digits})
    sb.intuit.update(realm, "Customer", ids["untouched"], PrimaryEmailAddr={"Address": "new@untouched.example"})
    _sync(settings, db, vault, realm)

    with db.session() as s:
        got = {name: s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                            models.Customer.qbo_id == qbo_id))
               for name, qbo_id in ids.items()}
        assert got["fixed"].email == "accounts.payable@fixed.example" and got["fixed"].email_stopped is None
        assert got["moved"].email_stopped == "spamreport"            # the new address is stopped too
        assert got["other"].email_stopped == "unsubscribe"           # nothing about its address changed
        assert got["renumbered"].sms_stopped is None
        assert got["same"].mobile == same_digits and got["same"].sms_stopped == "stop"
        assert got["untouched"].email_stopped is None and got["untouched"].sms_stopped is None
        lines = s.execute(select(models.Activity.customer_qbo_id, models.Activity.kind, models.Activity.message_key,
                                 models.Activity.message)
                          .where(models.Activity.company_id == company.id,
                                 models.Activity.kind.in_(["email.address_changed", "sms.number_changed"]))
                          .order_by(models.Activity.id)).all()
    assert [(c, k) for c, k, _key, _m in lines] == [(ids["fixed"], "email.address_changed"),
                                                    (ids["renumbered"], "sms.number_changed")]
    assert "accounts.payable@fixed.example" in lines[0].message and "+14155550199" in lines[1].message


def test_catch_up_reads_only_the_streams_it_names_in_one_call_and_moves_their_cursors(
        fresh_sandbox, settings_factory, db, vault):
    from qbo_collector.sync import client as client_mod
    from qbo_collector.sync import streams

    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    qbo = client_mod.QboClient(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    with db.session() as s:
        company_id = s.scalar(select(models.Company.id).where(models.Company.realm_id == realm))
    wanted = (streams.PAYMENT, streams.CREDIT_MEMO)
    assert run.catch_up(qbo, db, realm, company_id, wanted) is False  # never read in full: the sync's job
    assert qbo.api_calls == 0
    _sync(settings, db, vault, realm)
    with db.session() as s:
        cursors = {c.entity: c.changed_since for c in s.scalars(select(models.SyncCursor))}

    open_ids = [r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0]
    sb.clock.advance(timedelta(minutes=5))
    sb.intuit.pay_invoice(realm, open_ids[0])                    # a payment, and the invoice it pays
    before = sb.log.count("intuit", realm=realm)
    assert run.catch_up(qbo, db, realm, company_id, wanted) is True
    assert sb.log.count("intuit", realm=realm) - before == 1 == qbo.api_calls  # one CDC call
    with db.session() as s:
        moved = {c.entity: c.changed_since for c in s.scalars(select(models.SyncCursor))}
        paid = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == open_ids[0]))
        payments = {p.qbo_id for p in s.scalars(select(models.Payment))}
    assert moved["Payment"] > cursors["Payment"] and moved["CreditMemo"] > cursors["CreditMemo"]
    assert moved["Invoice"] == cursors["Invoice"] and paid.balance > 0  # the invoice is the sync's (or the freshness check's)
    assert {p["Id"] for p in sb.intuit.entities(realm, "Payment")} <= payments

    with db.session() as s:  # a cursor past CDC's 30 days: nothing read, the next sync reads it in full
        cursor = s.scalar(select(models.SyncCursor).where(models.SyncCursor.entity == "CreditMemo"))
        cursor.changed_since = cursor.changed_since - timedelta(days=31)
    assert run.catch_up(qbo, db, realm, company_id, wanted) is False and qbo.api_calls == 1


def _synced(sb, settings_factory, db, vault):  # type: ignore[no-untyped-def]
    """The sandbox's company connected and synced once: (sandbox, realm, settings, company id)."""
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    _sync(settings, db, vault, realm)
    with db.session() as s:
        return sb, realm, settings, s.scalar(select(models.Company.id).where(models.Company.realm_id == realm))


def test_a_sync_from_outside_the_scheduler_waits_for_another_process_holding_the_company(
        fresh_sandbox, settings_factory, db, vault):
    """Webhooks, "Sync now" and the command line sync a company outside the scheduler. While another
    process (a worker's sync, catch-up or daily run) holds the company's sync lease, such a sync reads
    nothing — it would pay for the same reads twice — and says why; a request from a webhook is kept
    and runs once the lease is given back. Work the scheduler runs under the lease goes ahead."""
    import threading
    from datetime import datetime, timezone

    from qbo_collector import errors, leases

    sb, realm, settings, company_id = _synced(fresh_sandbox, settings_factory, db, vault)
    now = datetime.now(timezone.utc)
    assert leases.claim(db, company_id, "sync", "worker-elsewhere:1", now=now, ttl=timedelta(minutes=20))
    calls = sb.log.count("intuit", realm=realm)
    assert calls > 0
    with pytest.raises(errors.TransientFailure) as busy:
        run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED, wait=0.3)
    assert busy.value.context["code"] == leases.BUSY and "Another worker" in busy.value.message
    with db.session() as s:
        kinds = [a.kind for a in s.scalars(select(models.Activity).where(models.Activity.company_id == company_id))]
    assert kinds.count("sync") == 1 and "sync.failed" not in kinds  # nothing read, nothing recorded
    assert sb.log.count("intuit", realm=realm) == calls

    # The scheduler's own job holds the lease: its sync goes ahead (the worker is this process here).
    with leases.holding(company_id, ["sync"]):
        assert _sync(settings, db, vault, realm).api_calls == 1

    # A webhook's request while the lease is held elsewhere waits, and runs when it is given back.
    ran: list[str] = []

    def sync(r: str) -> object:
        summary = run.sync_company(settings, db, vault, r, policy=support.FAST, limiter=support.UNLIMITED, wait=0.1)
        ran.append(r)
        return summary

    requests_ = run.SyncRequests(settings, db, vault, delay=0.05, sync=sync)
    requests_.request(realm)
    threading.Event().wait(0.6)
    assert ran == [] and requests_.pending()
    leases.release_hold(db, company_id, "sync", "worker-elsewhere:1")
    assert requests_.wait_idle(10)
    assert ran == [realm]
    requests_.stop()
    with db.session() as s:
        lease = s.scalar(select(models.WorkLease).where(models.WorkLease.company_id == company_id,
                                                        models.WorkLease.kind == "sync"))
        assert lease.owner is None and lease.lease_until is None  # given back after the sync


def test_a_sync_lease_left_by_a_process_of_this_machine_that_died_is_taken_over_at_once(
        fresh_sandbox, settings_factory, db, vault):
    """A sync killed mid-way (SIGKILL, a crash) leaves its lease for twenty minutes; one run by hand on
    the same machine right after takes it over at once, since its holder is gone. A holder on another
    machine, or alive here, is waited for."""
    import os
    import socket
    import subprocess
    import sys
    from datetime import datetime, timezone

    from qbo_collector import errors, leases

    sb, realm, settings, company_id = _synced(fresh_sandbox, settings_factory, db, vault)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = datetime.now(timezone.utc)
    for holder, waited in ((f"{socket.gethostname()}:{dead.stdout.strip()}:7", False),
                           (f"another-host.example:{dead.stdout.strip()}:7", True),
                           (f"{socket.gethostname()}:{os.getppid()}:7", True)):  # alive: our parent
        with db.session() as s:
            lease = s.scalar(select(models.WorkLease).where(models.WorkLease.company_id == company_id,
                                                            models.WorkLease.kind == "sync"))
            lease.owner, lease.lease_until = holder, now + timedelta(minutes=20)
        if waited:
            with pytest.raises(errors.TransientFailure) as busy:
                run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED, wait=0.2)
            assert busy.value.context["code"] == leases.BUSY
        else:
            assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED,
                                    wait=0.2).ok
