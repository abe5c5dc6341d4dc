"""End to end over real HTTP: sync → plan → send by email and SMS → notes and fees in the sandbox's
QuickBooks → provider events in the activity log. On SQLite and PostgreSQL (the ``db`` fixture).
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import zoneinfo
from decimal import Decimal

import pytest
from sqlalchemy import select

from qbo_collector import dispatch, scheduler, snapshot
from qbo_collector.channels import qbo_notes, sms
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds


@pytest.fixture
def env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    sb = sandbox_factory(companies=[ds.SMALL])
    realm = next(iter(sb.intuit.companies))
    # A customer with words of their own in QuickBooks Notes, and a mobile number for texts.
    customers = sb.intuit.entities(realm, "Customer")
    open_by_customer = collections.Counter(i["CustomerRef"]["value"] for i in sb.intuit.entities(realm, "Invoice")
                                           if i["Balance"] > 0)
    chosen = max(customers, key=lambda c: (bool(c.get("PrimaryEmailAddr")), open_by_customer[c["Id"]]))
    sb.intuit.update(realm, "Customer", chosen["Id"], Notes="Prefers calls after 2pm. Gate code 4411.",
                     Mobile={"FreeFormNumber": "(415) 555-0142"})
    e = ds.build(sb, settings_factory, db)
    e.chosen = chosen["Id"]  # type: ignore[attr-defined]
    yield e
    if e.web is not None:
        e.web.stop()


def _messages_by_outbox(sb):  # type: ignore[no-untyped-def]
    emails = collections.Counter(m["custom_args"].get("outbox_id") for m in sb.sendgrid.messages)
    texts = collections.Counter(m["status_callback"].split("outbox_id=")[1] for m in sb.twilio.messages
                                if m.get("status_callback"))
    return emails, texts


def test_a_run_sends_email_and_sms_writes_notes_and_fees_and_records_provider_events(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    planned = dispatch.plan_company(env.settings, env.db, realm, on=env.now_at(12).date())
    assert planned and all(p.as_dict()["dedupe_key"] for p in planned)
    assert env.rows() == [], "plan changes nothing"
    queries_before = sb.log.count("intuit", "query", realm=realm)
    batches_before = sb.log.count("intuit", "batch", realm=realm)

    summary = env.run()
    assert summary.ok, summary.errors
    assert summary.planned == len({p.dedupe_key for p in planned})
    rows = env.rows()
    env.flush()

    # one message per row — or per group of rows told together (the owner's alerts of the run, a customer's
    # late-fee notices): each carries its first row's id, and every row it told has its provider id;
    # reply-to the business; text ≤ 2 segments
    emails, texts = _messages_by_outbox(sb)
    sent_email = {str(r.id) for r in rows if r.channel in ("email", "owner_email") and r.status.value == "sent"}
    sent_sms = {str(r.id) for r in rows if r.channel in ("sms", "owner_sms") and r.status.value == "sent"}
    assert sent_email and sent_sms
    assert set(emails) <= sent_email and all(n == 1 for n in emails.values())
    assert set(texts) <= sent_sms and all(n == 1 for n in texts.values())
    by_provider_id = {m["message_id"]: m["custom_args"]["outbox_id"] for m in sb.sendgrid.messages}
    by_provider_id.update((m["sid"], m["status_callback"].split("outbox_id=")[1]) for m in sb.twilio.messages)
    for r in rows:
        if str(r.id) in sent_email | sent_sms:
            lead = by_provider_id[r.provider_id]
            assert lead == str(r.id) or f"in one message with row {lead}" in r.status_reason, r.status_reason
    assert len([r for r in rows if r.channel == "owner_email" and r.status.value == "sent"]) > 1
    assert len([m for m in sb.sendgrid.messages if m["to"] == "owner@maple.example"]) == 1
    reminder = next(m for m in sb.sendgrid.messages if m["to"] != "owner@maple.example")
    assert reminder["reply_to"] == "billing@maple.example" and reminder["from_name"] == "Sam Patel"
    assert reminder["html"] and reminder["text"] and reminder["tracking_settings"]["open_tracking"]["enable"]
    assert all(int(m["num_segments"]) <= 2 for m in sb.twilio.messages)

    # the freshness check: one query for the whole batch; the notes: ⌈customers/30⌉ batch calls
    assert summary.freshness_queries == math.ceil(len({i for r in rows for i in r.invoice_ids}) / 1000) == 1
    noted = {r.customer_qbo_id for r in env.rows(kind="note")}
    assert summary.note_batches == math.ceil(len(noted) / 30)
    assert sb.log.count("intuit", "batch", realm=realm) - batches_before == summary.note_batches
    assert sb.log.count("intuit", "query", realm=realm) - queries_before <= 3  # freshness + "Late fee" item + income account

    # notes: the user's words untouched, our section newest first, within 1000 characters
    notes = sb.intuit.get(realm, "Customer", env.chosen)["Notes"]
    assert notes.startswith("Prefers calls after 2pm. Gate code 4411.")
    assert qbo_notes.START_MARK in notes and len(notes) <= 1000
    for cid in noted:
        assert qbo_notes.START_MARK in (sb.intuit.get(realm, "Customer", cid).get("Notes") or "")

    # fees: a separate invoice with the "Late fee" item, referencing the original invoice number
    fee_rows = [r for r in rows if r.kind == "fee" and r.status.value == "sent"]
    assert fee_rows
    fees = {i["Id"]: i for i in sb.intuit.entities(realm, "Invoice")
            if any((l.get("SalesItemLineDetail") or {}).get("ItemRef", {}).get("name") == "Late fee" for l in i["Line"])}
    assert {r.provider_id for r in fee_rows} <= set(fees)
    one = fees[fee_rows[0].provider_id]
    original = sb.intuit.get(realm, "Invoice", fee_rows[0].invoice_ids[0])
    assert f"invoice {original['DocNumber']}" in one["Line"][0]["Description"]
    assert Decimal(str(one["TotalAmt"])) == fee_rows[0].amount

    # provider events reach the activity log: delivered (automatic), opened, clicked; SMS delivered
    sb.sendgrid.open(reminder["message_id"])
    sb.sendgrid.click(reminder["message_id"])
    env.flush()
    with env.db.session() as s:
        kinds = collections.Counter(a.kind for a in s.scalars(select(models.Activity)))
        row = s.get(models.Outbox, int(reminder["custom_args"]["outbox_id"]))
        assert row.provider_status == "click"
    assert kinds["email.delivered"] >= len(sent_email) - kinds["email.bounce"]
    assert kinds["email.open"] == 1 and kinds["email.click"] == 1
    assert kinds["sms.delivered"] == len(sent_sms)

    # a second run the same day plans and sends nothing new
    again = env.run()
    assert again.planned == 0 and not again.statuses
    assert _messages_by_outbox(sb)[0] == emails


def test_an_invoice_paid_between_plan_and_send_gets_nothing(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    planned = dispatch.plan_company(env.settings, env.db, realm, on=env.now_at(12).date())
    target = next(p for p in planned if p.kind == "reminder" and len(p.invoice_ids) == 1)
    invoice_id = target.invoice_ids[0]
    sb.intuit.pay_invoice(realm, invoice_id)  # the mirror still says open: no sync in between
    env.run()
    rows = [r for r in env.rows() if invoice_id in r.invoice_ids]
    assert rows and all(r.status.value == "cancelled" for r in rows)
    assert all("paid" in r.status_reason for r in rows)
    env.flush()
    emails, texts = _messages_by_outbox(sb)
    assert not ({str(r.id) for r in rows} & (set(emails) | set(texts)))
    with env.db.session() as s:
        mirrored = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == invoice_id))
        assert mirrored.status.value == "paid"  # the fresh read was written to the mirror


def test_texts_wait_for_daytime_instead_of_failing(env) -> None:  # type: ignore[no-untyped-def]
    late = env.now_at(22)
    summary = env.run(now=late)
    sms_rows = env.rows(channel="sms")
    assert sms_rows and summary.waiting >= len(sms_rows)
    assert all(r.status.value == "planned" and "daytime" in r.status_reason for r in sms_rows)
    # 8:00 the next morning where each number is (the sandbox's customers have 415, 512 and 617 numbers)
    assert all(r.due_at == _eight_next_morning_for(env, r, late) for r in sms_rows)
    assert not env.sb.twilio.messages
    morning = env.run(now=env.now_at(8, days=1))
    assert morning.statuses["sent"] >= len(sms_rows)
    assert all(r.status.value == "sent" for r in env.rows(channel="sms"))


def _eight_next_morning_for(env, row, now):  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                          models.Customer.qbo_id == row.customer_qbo_id))
        (zone,) = sms.number_time_zones(snapshot.phone_e164(company, customer))
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    day = local.date() + dt.timedelta(days=1 if local.hour >= 8 else 0)
    return dt.datetime.combine(day, dt.time(8), tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.timezone.utc)


def test_a_text_waits_for_daytime_where_the_number_is_not_where_the_company_is(env) -> None:  # type: ignore[no-untyped-def]
    # A Los Angeles company sending at 9:00, a customer with a Honolulu mobile: 6:00 or 7:00 in Hawaii.
    morning = env.now_at(9)
    planned = dispatch.plan_company(env.settings, env.db, env.realm, on=morning.date())
    texted = next(p.customer_id for p in planned if p.channel == "sms")
    env.sb.intuit.update(env.realm, "Customer", texted, Mobile={"FreeFormNumber": "(808) 555-0142"})
    env.sync()
    summary = env.run(now=morning)
    texts = [r for r in env.rows(channel="sms") if r.customer_qbo_id == texted]
    assert texts
    honolulu = zoneinfo.ZoneInfo("Pacific/Honolulu")
    eight_in_hawaii = dt.datetime.combine(morning.astimezone(honolulu).date(), dt.time(8), tzinfo=honolulu)
    assert all(r.status.value == "planned" and "Pacific/Honolulu" in r.status_reason for r in texts)
    assert all(r.due_at == eight_in_hawaii.astimezone(dt.timezone.utc) for r in texts)
    assert summary.wake_at == min(r.due_at for r in env.rows(channel="sms") if r.status.value == "planned")
    env.flush()
    assert not [m for m in env.sb.twilio.messages if m["to"] == "+18085550142"]
    env.run(now=eight_in_hawaii.astimezone(dt.timezone.utc))
    assert all(r.status.value == "sent" for r in env.rows(channel="sms") if r.customer_qbo_id == texted)


def test_an_owner_text_waits_for_daytime_where_the_owners_mobile_is(env) -> None:  # type: ignore[no-untyped-def]
    # A Los Angeles company whose owner carries a Honolulu mobile: the 9:00 run is 6:00 or 7:00 there.
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        company.settings = {**company.settings, "owner_phone": "+18085550199"}
        company.policy = {**company.policy, "alert_owner_when_late": True}
    morning = env.now_at(9)
    env.run(now=morning)
    texts = env.rows(channel="owner_sms")
    assert texts and all(r.status.value == "planned" and "Pacific/Honolulu" in r.status_reason for r in texts)
    honolulu = zoneinfo.ZoneInfo("Pacific/Honolulu")
    eight = dt.datetime.combine(morning.astimezone(honolulu).date(), dt.time(8), tzinfo=honolulu).astimezone(dt.timezone.utc)
    assert {r.due_at for r in texts} == {eight}
    assert all(r.status.value == "sent" for r in env.rows(channel="owner_email"))  # email is not held
    env.flush()
    assert not [m for m in env.sb.twilio.messages if m["to"] == "+18085550199"]
    env.run(now=eight)
    assert all(r.status.value == "sent" for r in env.rows(channel="owner_sms"))


def test_a_run_before_the_send_window_wakes_for_the_earliest_row_due_later(env) -> None:  # type: ignore[no-untyped-def]
    # 8:00 in Los Angeles, the policy sends at 9:00 where each customer is: the run plans the day and
    # tells the scheduler when the first row is due (dry runs send nothing, so never wake it).
    early = env.now_at(8)
    assert env.run(now=early, dry_run=True).wake_at is None
    summary = env.run(now=early)
    later = [r for r in env.rows(status=models.OutboxStatus.planned, dry_run=False) if r.kind != "note"]
    assert later and all(r.due_at > early for r in later)
    assert summary.wake_at == min(r.due_at for r in later)


def test_the_scheduler_sends_a_waiting_text_when_its_recipient_wakes_up(env) -> None:  # type: ignore[no-untyped-def]
    # A customer in India: the Los Angeles company's 9:00 run is 21:30 there, every day.
    morning = env.now_at(9)
    planned = dispatch.plan_company(env.settings, env.db, env.realm, on=morning.date())
    texted = next(p.customer_id for p in planned if p.channel == "sms")
    env.sb.intuit.update(env.realm, "Customer", texted, Mobile={"FreeFormNumber": "+91 98765 43210"},
                         BillAddr={"Line1": "12 MG Road", "City": "Bengaluru", "Country": "India"})
    env.sync()
    clock = {"now": morning}
    ticker = scheduler.Ticker(env.settings, env.db, env.vault, owner="proc", now=lambda: clock["now"])
    sent_at = []  # the scheduler's moments at which a text to India went out
    while clock["now"] < morning + dt.timedelta(hours=48):
        before = sum(1 for m in env.sb.twilio.messages if m["to"] == "+919876543210")
        ticker.tick()
        sent_at += [clock["now"]] * (sum(1 for m in env.sb.twilio.messages if m["to"] == "+919876543210") - before)
        clock["now"] += dt.timedelta(minutes=30)
    assert sent_at, "the text went out once it was daytime in India"
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    assert all(8 <= at.astimezone(kolkata).hour < 21 for at in sent_at)


def test_a_customer_with_several_addresses_in_quickbooks_gets_the_email_at_each(env) -> None:  # type: ignore[no-untyped-def]
    # QuickBooks takes several addresses in one email field, separated by commas (≤ 100 characters).
    planned = dispatch.plan_company(env.settings, env.db, env.realm, on=env.now_at(12).date())
    emailed = next(p.customer_id for p in planned if p.kind == "reminder" and p.channel == "email")
    env.sb.intuit.update(env.realm, "Customer", emailed,
                         PrimaryEmailAddr={"Address": "ap@dubois.example, Claire@Dubois.example"})
    env.sync()
    env.run()
    rows = [r for r in env.rows(channel="email") if r.customer_qbo_id == emailed and r.kind == "reminder"]
    assert rows and all(r.status.value == "sent" for r in rows), [r.status_reason for r in rows]
    sent = [m for m in env.sb.sendgrid.messages if str(m["custom_args"].get("outbox_id")) in {str(r.id) for r in rows}]
    assert sent and all(m["recipients"] == ["ap@dubois.example", "Claire@Dubois.example"] for m in sent)
    with env.db.session() as s:
        assert not s.scalars(select(models.ContactBlock)).all()
    # one of them bounces: email to the customer is still possible, at the other address
    env.flush()
    env.sb.sendgrid.emit(sent[0]["message_id"], "bounce", email="Claire@Dubois.example", type="bounce",
                         reason="550 5.1.1 unknown user")
    env.flush()
    with env.db.session() as s:
        assert [b.address for b in s.scalars(select(models.ContactBlock))] == ["claire@dubois.example"]
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        (snap,) = snapshot.load(s, company, today=env.now_at(12).date(), customer_ids=[emailed])
        assert "email" not in snap.customer.opted_out


def test_a_second_process_finds_the_lease_taken(env) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector import leases

    with env.db.session() as s:
        company_id = s.scalar(select(models.Company.id))
    assert leases.claim(env.db, company_id, "dispatch", "someone-else", now=ds.dt.datetime.now(ds.dt.timezone.utc),
                        ttl=ds.dt.timedelta(minutes=5))
    summary = env.run()
    assert "Another worker" in summary.errors[0] and not env.rows()


def test_a_run_that_outlives_its_lease_and_a_second_run_never_send_one_row_twice(env) -> None:  # type: ignore[no-untyped-def]
    # A run longer than its dispatch lease (here a lease of zero: slow providers, many rows) is
    # joined by another process's run; both read the same planned rows. Each row goes out once.
    import threading
    import time

    for knobs in (env.sb.sendgrid_faults, env.sb.twilio_faults):
        knobs.latency_seconds = 0.2
    first = threading.Thread(target=lambda: env.run(lease_ttl=ds.dt.timedelta(0)))
    first.start()
    deadline = time.monotonic() + 30
    while not (env.sb.sendgrid.messages or env.sb.twilio.messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = env.run(lease_ttl=ds.dt.timedelta(0))
    first.join(timeout=120)
    assert not second.contended
    emails, texts = _messages_by_outbox(env.sb)
    assert sum(emails.values()) + sum(texts.values()) >= 3
    assert max(emails.values()) == 1, [k for k, n in emails.items() if n > 1]
    assert max(texts.values(), default=1) == 1, [k for k, n in texts.items() if n > 1]


def test_a_note_another_run_holds_is_left_to_it_and_the_rest_are_written_without_waiting(env) -> None:  # type: ignore[no-untyped-def]
    # Two overlapping runs (one outlived its lease) both find the same planned notes. The one that is
    # second to a row skips it rather than wait: waiting, with the rows locked in another order by the
    # other run, was PostgreSQL's "deadlock detected" (CI, 2026-12-06).
    import threading

    if env.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite has one writer at a time")
    env.run()
    other = next(c["Id"] for c in env.sb.intuit.entities(env.realm, "Customer") if c["Id"] != env.chosen)
    with env.db.session() as s:
        for cid in (env.chosen, other):
            dispatch.outbox.enqueue(s, _company_id(env, s),
                                    dedupe_key=f"test-note:{cid}", kind="note", channel="qbo_notes",
                                    reason="note", customer_id=cid, payload={"line": f"2026-12-06 line for {cid}"})
    held = env.rows(dedupe_key=f"test-note:{other}")[0]
    with env.db.engine.connect() as holder:
        holder.execute(select(models.Outbox).where(models.Outbox.id == held.id).with_for_update())
        done = threading.Event()
        runner = threading.Thread(target=lambda: (env.run(), done.set()))
        runner.start()
        finished = done.wait(timeout=60)
        holder.rollback()  # the "other run" lets go
    runner.join(timeout=60)
    assert finished, "the run waited for the row another run holds"
    notes = lambda cid: env.sb.intuit.get(env.realm, "Customer", cid).get("Notes") or ""  # noqa: E731
    assert f"line for {env.chosen}" in notes(env.chosen)
    assert f"line for {other}" not in notes(other)
    assert env.rows(dedupe_key=f"test-note:{other}")[0].status.value == "planned"
    env.run(now=env.now_at(13))  # the next run writes it, once
    assert notes(other).count(f"line for {other}") == 1
    assert env.rows(dedupe_key=f"test-note:{other}")[0].status.value == "sent"


def _company_id(env, s) -> int:  # type: ignore[no-untyped-def]
    return s.scalars(select(models.Company.id).where(models.Company.realm_id == env.realm)).one()


def test_a_run_longer_than_its_lease_keeps_it_and_a_second_run_finds_it_taken(env) -> None:  # type: ignore[no-untyped-def]
    import threading
    import time

    for knobs in (env.sb.sendgrid_faults, env.sb.twilio_faults):
        knobs.latency_seconds = 0.2
    first = threading.Thread(target=lambda: env.run(lease_ttl=ds.dt.timedelta(seconds=0.6)))
    first.start()
    deadline = time.monotonic() + 30
    while not (env.sb.sendgrid.messages or env.sb.twilio.messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)  # the first lease's ttl is long past; the run is still sending
    second = env.run()
    first.join(timeout=120)
    assert second.contended and second.recovered == 0
    assert not env.rows(status=models.OutboxStatus.unknown)


def test_dry_run_renders_and_checks_but_sends_and_writes_nothing(env) -> None:  # type: ignore[no-untyped-def]
    sb = env.sb
    batches = sb.log.count("intuit", "batch")
    summary = env.run(dry_run=True)
    assert summary.dry_run and summary.statuses["sent"] > 0 and summary.freshness_queries == 1
    assert not sb.sendgrid.messages and not sb.twilio.messages
    assert sb.log.count("intuit", "batch") == batches
    assert all(r.dry_run and r.dedupe_key.startswith("dryrun:") for r in env.rows())
    assert any((r.payload or {}).get("preview") for r in env.rows(channel="email"))
    real = env.run()  # dry-run rows never block the real reminders
    assert real.statuses["sent"] > 0 and sb.sendgrid.messages


def test_waiving_a_fee_voids_it_in_quickbooks(env) -> None:  # type: ignore[no-untyped-def]
    env.run()
    fee = next(r for r in env.rows(kind="fee") if r.status.value == "sent")
    dispatch.waive_fee(env.settings, env.db, env.vault, fee.id, user_id=None)
    voided = env.sb.intuit.get(env.realm, "Invoice", fee.provider_id)
    assert voided["Balance"] == voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    with env.db.session() as s:
        assert s.scalars(select(models.Activity).where(models.Activity.kind == "fee.waived")).one()
