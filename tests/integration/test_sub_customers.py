"""Jobs and sub-customers in QuickBooks (``Job``, ``ParentRef``): one billed with its parent
(``BillWithParent``) is reminded at its parent's email, with its parent's stops and name, since
QuickBooks bills the parent for it; one that is not keeps its own. Through a real sync and run on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import snapshot
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser


env = pytest.fixture(ds.quiet_env, name="env")


def _invoice(env, customer_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A 500 invoice of the customer, two days late."""
    return ds.invoice(env, customer_id, env.now_at(12).date() - dt.timedelta(days=2))


def _family(env, parent_email: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A parent customer, a job billed with it (carrying the stale copy of an old address QuickBooks made
    when the job was created) and a job billed on its own, each of the jobs owing one late invoice."""
    sb, realm = env.sb, env.realm
    parent = sb.intuit.create(realm, "Customer", {"DisplayName": "Hartley Homes", "BillAddr": {"Country": "US"},
                                                  "PrimaryEmailAddr": {"Address": parent_email}})
    kitchen = sb.intuit.create(realm, "Customer", {
        "DisplayName": "Kitchen remodel", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": True,
        "PrimaryEmailAddr": {"Address": "old-ap@hartley.example"}, "BillAddr": {"Country": "US"}})
    garage = sb.intuit.create(realm, "Customer", {
        "DisplayName": "Garage build", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": False,
        "PrimaryEmailAddr": {"Address": "site@garage.example"}, "BillAddr": {"Country": "US"}})
    return parent, kitchen, garage


def _to(env, invoice: dict[str, Any]) -> set[str]:  # type: ignore[no-untyped-def]
    """Where the reminders naming ``invoice`` were emailed."""
    return {m["to"] for m in env.sb.sendgrid.messages if f" {invoice['DocNumber']}" in m["text"]
            and m["to"] != "owner@maple.example"}


def test_a_job_billed_with_its_parent_is_reminded_at_the_parents_address(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    billed, own = _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    env.sync()
    with env.db.session() as s:
        rows = {c.qbo_id: c for c in s.scalars(select(models.Customer).where(
            models.Customer.qbo_id.in_([parent["Id"], kitchen["Id"], garage["Id"]])))}
        assert (rows[kitchen["Id"]].parent_qbo_id, rows[kitchen["Id"]].bill_with_parent) == (parent["Id"], True)
        assert (rows[garage["Id"]].parent_qbo_id, rows[garage["Id"]].bill_with_parent) == (parent["Id"], False)
        assert rows[parent["Id"]].parent_qbo_id is None and rows[parent["Id"]].bill_with_parent is False

    summary = env.run()
    assert summary.ok, summary.problems
    assert _to(env, billed) == {"ap@hartley.example"}    # the parent's current address, not the job's stale copy
    assert _to(env, own) == {"site@garage.example"}      # not billed with the parent: its own
    [mail] = [m for m in sb.sendgrid.messages if m["to"] == "ap@hartley.example"]
    assert "Hartley Homes" in mail["text"] and "Kitchen remodel" not in mail["text"].split("\n", 1)[0]
    # greeted as the parent, the message says which job the invoice is for
    assert f"invoice {billed['DocNumber']} (Kitchen remodel)" in mail["text"], mail["text"]
    assert f"{billed['DocNumber']}</strong> (Kitchen remodel)" in mail["html"]
    [own_mail] = [m for m in sb.sendgrid.messages if m["to"] == "site@garage.example"]
    assert f"invoice {own['DocNumber']}, due" in own_mail["text"] and "(Garage build" not in own_mail["text"]
    [reminder] = [r for r in env.rows(kind="reminder") if billed["Id"] in (r.invoice_ids or ())]
    assert reminder.customer_qbo_id == kitchen["Id"] and reminder.status.value == "sent"  # the job's own timeline
    notes = sb.intuit.get(realm, "Customer", kitchen["Id"]).get("Notes") or ""
    assert "Reminder sent by email" in notes  # written back on the job's record in QuickBooks

    for language, said in (("en", "Billed with its parent, Hartley Homes: reminders go to the parent’s email and "
                                  "phone (ap@hartley.example), in the parent’s language."),
                           ("fr", "Facturé avec son parent, Hartley Homes\u00a0: les relances vont à l’e-mail et au "
                                  "téléphone du parent (ap@hartley.example), dans la langue du parent.")):
        reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=realm, language=language)
        page = reader.get(f"/companies/{realm}/customers/{kitchen['Id']}").get_data(as_text=True)
        assert said in page and f"/customers/{parent['Id']}\"" in page, language
        parent_page = reader.get(f"/companies/{realm}/customers/{parent['Id']}").get_data(as_text=True)
        listed = {"en": "Jobs and sub-customers billed with it (their reminders come to this customer’s email and "
                        "phone):",
                  "fr": "Travaux et sous-clients facturés avec lui (leurs relances arrivent à l’e-mail et au "
                        "téléphone de ce client)\u00a0:"}[language]
        assert listed in parent_page and f"/customers/{kitchen['Id']}\"" in parent_page, language
        assert f"/customers/{garage['Id']}\"" not in parent_page  # billed on its own: reached at its own address
        assert "Billed with its parent" not in reader.get(
            f"/companies/{realm}/customers/{garage['Id']}").get_data(as_text=True)
        # the template preview for the job is the message the parent would get
        preview = reader.get(f"/companies/{realm}/templates?key=reminder_overdue_gentle&language={language}"
                             f"&customer={kitchen['Id']}").get_data(as_text=True)
        named = {"en": "Hello Hartley Homes,", "fr": "Bonjour Hartley Homes,"}[language]
        word = {"en": "invoice", "fr": "la facture"}[language]
        assert named in preview and f"{word} {billed['DocNumber']} (Kitchen remodel)" in preview, language


def test_the_parents_bounce_stops_the_job_and_the_list_names_the_parent(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, _garage = _family(env, "ap-bounce@hartley.example")  # "bounce" addresses bounce in the sandbox
    _invoice(env, kitchen["Id"])
    env.sync()
    assert env.run().ok
    env.flush()  # the bounce event reaches the webhook: the parent's address is stopped
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        stopped = s.scalar(select(models.Customer.email_stopped).where(models.Customer.qbo_id == parent["Id"]))
        assert stopped == "bounce"
        [snap] = snapshot.load(s, company, today=dt.date(2026, 12, 7), customer_ids=[kitchen["Id"]])
        assert snap.customer.opted_out == frozenset({"email"}) and snap.email == "ap-bounce@hartley.example"
    owner = browser(env.web.app, env.db, "owner@maple.example", realm=realm)
    page = owner.get(f"/companies/{realm}/customers?unreachable=1&all=1").get_data(as_text=True)
    assert "Hartley Homes" in page and "Kitchen remodel" not in page  # fix it on the parent, where it is


def test_a_change_to_the_parent_makes_its_jobs_candidates_of_the_next_run(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    sb.clock.advance(dt.timedelta(minutes=5))  # out of the next CDC read's 30-second overlap
    env.sync()
    before = dt.datetime.now(dt.timezone.utc)
    sb.intuit.update(realm, "Customer", parent["Id"], PrimaryEmailAddr={"Address": "billing@hartley.example"})
    env.sync()  # only the parent's row changed
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        found = snapshot.candidate_customers(s, company, today=dt.date(2000, 1, 1), since=before)
    assert found.get(kitchen["Id"], "absent") is None  # planned in full: its contact changed
    assert found[garage["Id"]] is not None              # only its invoice never planned: its own address did not


def test_money_recorded_on_the_parent_holds_the_invoice_of_a_job_billed_with_it(env) -> None:  # type: ignore[no-untyped-def]
    """A contractor records the client's payment on the client (the parent), unapplied: it pays the
    invoice of the job billed with it, so that invoice is not reminded and the owner is told where the
    money sits; the job billed on its own is reminded as before."""
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    billed, own = _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    ds.pay_unapplied(env, parent["Id"], 500)
    env.sync()
    summary = env.run()
    assert summary.ok, summary.problems
    assert not _to(env, billed)                          # settled by the parent's money
    assert _to(env, own) == {"site@garage.example"}      # not billed with the parent: the parent's money is not its
    reminded = [r for r in env.rows(kind="reminder") if billed["Id"] in (r.invoice_ids or ())]
    assert not reminded
    [alert] = [r for r in env.rows(kind="alert") if r.channel == "owner_email" and r.invoice_ids == [billed["Id"]]]
    assert alert.customer_qbo_id == kitchen["Id"] and alert.status.value == "sent"
    assert alert.dedupe_key == f"{realm}:alert:{kitchen['Id']}:credit:USD:500.00"
    assert alert.payload["sentence"]["key"] == "alert.credit.parent"
    [told] = [m for m in sb.sendgrid.messages if m["to"] == "owner@maple.example" and "counting those of" in m["text"]]
    assert ("Kitchen remodel has 500.00 USD of credit in QuickBooks that is not applied to any invoice (credit memos, "
            "unapplied payments, counting those of Hartley Homes, which it is billed with). It settles invoice "
            f"{billed['DocNumber']}") in " ".join(told["text"].split())
    with env.db.session() as s:
        row = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == billed["Id"]))
        assert row.next_action_on == dt.date(9999, 12, 31)  # nothing more while the money is there

    for language, job_says, parent_says in (
            ("en", ["settled by unused credit, counting that of Hartley Homes ($500.00)",
                    "$500.00 of the unused credit of Hartley Homes, which it is billed with, pays its invoices"],
             ["Has $500.00 of unused credit in QuickBooks",
              "$500.00 of it pays invoices of Kitchen remodel, billed with this customer."]),
            ("fr", ["réglée par un avoir non utilisé, y compris celui de Hartley Homes (500,00\u00a0$US)",
                    "500,00\u00a0$US de l’avoir non utilisé de Hartley Homes, avec qui il est facturé, paient ses "
                    "factures"],
             ["Dont 500,00\u00a0$US paient des factures de Kitchen remodel, facturé avec ce client."])):
        reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=realm, language=language)
        job_page = reader.get(f"/companies/{realm}/customers/{kitchen['Id']}").get_data(as_text=True)
        parent_page = reader.get(f"/companies/{realm}/customers/{parent['Id']}").get_data(as_text=True)
        for said in job_says:
            assert job_page.count(said) == 1, (language, said)
        for said in parent_says:
            assert parent_page.count(said) == 1, (language, said)
        garage_page = reader.get(f"/companies/{realm}/customers/{garage['Id']}").get_data(as_text=True)
        assert "Hartley Homes (" not in garage_page and "celui de Hartley" not in garage_page

    from qbo_collector import digest
    text = digest.build(env.db, realm, env.now_at(12).date())[1]
    assert (f"• Kitchen remodel (billed with Hartley Homes, whose credit counts): $500.00 of credit settles invoice "
            f"{billed['DocNumber']}") in text


def test_money_on_the_parent_after_a_run_makes_its_billed_jobs_candidates_and_holds_them(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    billed, own = _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    env.sync()
    assert env.run().ok
    assert _to(env, billed) == {"ap@hartley.example"}  # reminded while nothing was paid
    sb.clock.advance(dt.timedelta(minutes=5))  # the next CDC read's 30-second overlap leaves the run's changes out
    env.sync()  # the notes the run wrote on the customers in QuickBooks come back
    before = dt.datetime.now(dt.timezone.utc)
    ds.pay_unapplied(env, parent["Id"], 300)  # part of it
    env.sync()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        found = snapshot.candidate_customers(s, company, today=dt.date(2000, 1, 1), since=before)
    assert found.get(kitchen["Id"], "absent") is None   # planned in full: the parent's credit may pay it
    assert found.get(garage["Id"], "absent") == "absent"  # billed on its own: the parent's money is not its

    ds.pay_unapplied(env, parent["Id"], 200)  # the rest, after the last sync: read before the run plans
    sent = len(sb.sendgrid.messages)
    summary = env.run(now=env.now_at(12, days=7))
    assert summary.ok and summary.credit_reads == 1, summary.problems
    fresh = [m for m in sb.sendgrid.messages[sent:] if f" {billed['DocNumber']}" in m["text"]]
    assert fresh and all(m["to"] == "owner@maple.example" for m in fresh)  # the owner's alert, no reminder
    assert [m for m in sb.sendgrid.messages[sent:] if m["to"] == "site@garage.example"]  # the other job goes on


def test_when_another_job_takes_the_parents_credit_the_held_invoice_is_reminded_again(env) -> None:  # type: ignore[no-untyped-def]
    """The parent's 500 holds the kitchen's invoice. Then an older invoice of another job billed with the
    same parent is entered: the credit goes to it first (oldest due first), so the kitchen's invoice is
    owed again. Nothing of the kitchen's changed in QuickBooks, yet the next run plans it in full."""
    sb, realm = env.sb, env.realm
    parent, kitchen, _garage = _family(env, "ap@hartley.example")
    deck = sb.intuit.create(realm, "Customer", {
        "DisplayName": "Deck", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": True,
        "BillAddr": {"Country": "US"}})
    billed = _invoice(env, kitchen["Id"])
    ds.pay_unapplied(env, parent["Id"], 500)
    env.sync()
    assert env.run().ok
    assert not _to(env, billed)
    sb.clock.advance(dt.timedelta(minutes=5))
    env.sync()  # the run's notes come back
    before = dt.datetime.now(dt.timezone.utc)
    older = ds.invoice(env, deck["Id"], env.now_at(12).date() - dt.timedelta(days=9))
    env.sync()  # only the deck's invoice (and its row's balance) changed
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        found = snapshot.candidate_customers(s, company, today=dt.date(2000, 1, 1), since=before)
    assert found.get(kitchen["Id"], "absent") is None  # the parent's credit no longer reaches it
    summary = env.run(now=env.now_at(12, days=1))
    assert summary.ok, summary.problems
    assert _to(env, billed) == {"ap@hartley.example"}  # owed again: reminded at the parent's
    assert not _to(env, older)                          # the deck's older invoice is the one the money pays


def test_a_text_waiting_for_daytime_is_cancelled_when_the_parent_pays(  # type: ignore[no-untyped-def]
        sandbox_factory, settings_factory, sqlite_db) -> None:
    """The job's text goes to the parent's mobile in Honolulu and waits for 8:00 there; the parent's money,
    recorded unapplied before it wakes (not synced), is read by the run first and the text is cancelled,
    with the parent named in the reason."""
    import zoneinfo

    env = ds.morning_text_env(sandbox_factory, settings_factory, sqlite_db)
    try:
        sb, realm = env.sb, env.realm
        parent, kitchen, _garage = _family(env, "ap@hartley.example")
        sb.intuit.update(realm, "Customer", parent["Id"], Mobile={"FreeFormNumber": "(808) 555-0177"})
        billed = _invoice(env, kitchen["Id"])
        env.sync()
        assert env.run(now=env.now_at(8) + dt.timedelta(minutes=30)).ok
        [text] = [r for r in env.rows(channel="sms") if r.invoice_ids == [billed["Id"]]]
        wakes = text.due_at.replace(tzinfo=dt.timezone.utc)
        assert text.status.value == "planned" and wakes.astimezone(zoneinfo.ZoneInfo("Pacific/Honolulu")).hour == 8

        ds.pay_unapplied(env, parent["Id"], 500)  # on the parent, before the text wakes, not synced
        later = env.run(now=wakes + dt.timedelta(minutes=30))
        assert later.ok and later.statuses["cancelled"] == 1, later.problems
        cancelled = next(r for r in env.rows() if r.id == text.id)
        assert cancelled.status_reason == (
            f"Cancelled: invoice {billed['DocNumber']} is settled by unused credit in QuickBooks, counting that of "
            "Hartley Homes, which the customer is billed with (500.00 USD, recorded since it was planned): nothing "
            "goes out for it until the credit is applied or gone; the next run plans it again.")
        assert not [m for m in sb.twilio.messages if m["to"] == "+18085550177"]
        assert (f"Annulé\u00a0: la facture {billed['DocNumber']} est réglée par un avoir non utilisé dans QuickBooks, "
                "y compris celui de Hartley Homes") in ds.customer_page(env, kitchen["Id"], "fr")
    finally:
        ds.stop([env])


def test_the_customers_billed_with_a_parent_are_found_down_the_chain(db) -> None:  # type: ignore[no-untyped-def]
    """A job of a sub-customer itself billed with its parent is found under the top parent, whose credit
    may reach it; a job billed on its own is not, nor what is below it; a holder billed with another is."""
    with db.session() as s:
        company = models.Company(realm_id="9130000000077", name="Maple", currency="USD", settings={})
        s.add(company)
        s.flush()
        for qbo_id, parent, billed in (("H", None, False), ("S", "H", True), ("J", "S", True), ("O", "H", False),
                                       ("OJ", "O", True), ("X", "H", True)):
            s.add(models.Customer(company_id=company.id, qbo_id=qbo_id, display_name=qbo_id, parent_qbo_id=parent,
                                  bill_with_parent=billed, deleted=qbo_id == "X"))
        s.flush()
        assert snapshot.billed_below(s, company.id, ["H"]) == {"S": "H", "J": "S"}
        assert snapshot.billed_below(s, company.id, ["H", "S"]) == {"S": "H", "J": "S"}
        assert snapshot.billed_below(s, company.id, ["O"]) == {"OJ": "O"}


def test_the_parents_address_gets_the_minimum_gap_between_messages_for_its_jobs(  # type: ignore[no-untyped-def]
        sandbox_factory, settings_factory, db) -> None:
    """Two jobs billed with the same parent are reached at one address: a message for one of them is a
    contact of the other, so the firm preset's two days between contacts hold at the parent's inbox. The
    job billed on its own is not delayed."""
    env = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, db,
                   policy=ds.every_day_policy("firm", alert_owner_when_late=False))
    try:
        sb, realm = env.sb, env.realm
        parent, kitchen, garage = _family(env, "ap@hartley.example")
        deck = sb.intuit.create(realm, "Customer", {
            "DisplayName": "Deck", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": True,
            "BillAddr": {"Country": "US"}})
        today = env.now_at(12).date()
        late = ds.invoice(env, kitchen["Id"], today - dt.timedelta(days=1))  # "1 day late" is due today
        soon = ds.invoice(env, deck["Id"], today + dt.timedelta(days=3))     # "due in 2 days" is due tomorrow
        own = ds.invoice(env, garage["Id"], today + dt.timedelta(days=3))
        env.sync()
        sent: list[set[str]] = []
        for day in range(3):
            before = len(sb.sendgrid.messages)
            assert env.run(now=env.now_at(12, days=day)).ok
            sent.append({f"{m['to']} {number}" for m in sb.sendgrid.messages[before:]
                         for number in (late["DocNumber"], soon["DocNumber"], own["DocNumber"])
                         if f" {number}" in m["text"] and m["to"] != "owner@maple.example"})
        hartley = "ap@hartley.example"
        assert sent == [{f"{hartley} {late['DocNumber']}"},
                        {f"site@garage.example {own['DocNumber']}"},  # the deck's step waits: a contact yesterday
                        {f"{hartley} {soon['DocNumber']}"}]           # two days after the kitchen's message
        [row] = [r for r in env.rows(kind="reminder") if r.invoice_ids == [soon["Id"]]]
        assert row.customer_qbo_id == deck["Id"] and row.step == 0

        # a change to one of them (here a new invoice of the deck) has the next run plan all of them in full
        sb.clock.advance(dt.timedelta(minutes=5))
        env.sync()  # the runs' notes come back
        since = dt.datetime.now(dt.timezone.utc)
        ds.invoice(env, deck["Id"], today + dt.timedelta(days=30))
        env.sync()
        with env.db.session() as s:
            found = snapshot.candidate_customers(s, s.scalar(select(models.Company)), today=dt.date(2000, 1, 1),
                                                 since=since)
        assert found.get(kitchen["Id"], "absent") is None and found.get(deck["Id"], "absent") is None
        assert garage["Id"] not in found
    finally:
        ds.stop([env])


def test_a_parent_with_many_jobs_gives_each_a_bounded_list_of_contacts(db, settings_factory) -> None:  # type: ignore[no-untyped-def]
    """150 jobs billed with one parent, each sent a reminder on the same 6 days of the last month and one
    long ago: each job's plan gets its own history and one bare contact per day that counts (6), not the
    900 messages of its siblings, and none older than a minimum gap can reach."""
    from decimal import Decimal

    today = dt.date(2026, 6, 30)
    with db.session() as s:
        company = models.Company(realm_id="9130000000078", name="Maple", currency="USD", settings={},
                                 timezone="America/New_York", country="US")
        s.add(company)
        s.flush()
        s.add(models.Customer(company_id=company.id, qbo_id="P", display_name="Hartley Homes",
                              email="ap@hartley.example"))
        days = [today - dt.timedelta(days=d) for d in (2, 5, 9, 14, 20, 27, 200)]
        for n in range(150):
            job = f"J{n}"
            s.add(models.Customer(company_id=company.id, qbo_id=job, display_name=f"Unit {n}", parent_qbo_id="P",
                                  bill_with_parent=True))
            s.add(models.Invoice(company_id=company.id, qbo_id=f"I{n}", customer_qbo_id=job, currency="USD",
                                 total=Decimal(100), balance=Decimal(100), txn_date=today - dt.timedelta(days=60),
                                 due_date=today - dt.timedelta(days=30), status=models.InvoiceStatus.open))
            for k, day in enumerate(days):
                at = dt.datetime.combine(day, dt.time(14, n % 50), dt.timezone.utc)
                s.add(models.Outbox(company_id=company.id, dedupe_key=f"r:reminder:I{n}:step{k}:email", kind="reminder",
                                    channel="email", status=models.OutboxStatus.sent, customer_qbo_id=job,
                                    invoice_ids=[f"I{n}"], step=k, due_at=at, sent_at=at,
                                    payload={"on": day.isoformat(), "steps": [{"invoice_id": f"I{n}", "step": k}]}))
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == "9130000000078"))
        for snaps in (snapshot.load(s, company, today=today, customer_ids=["J7"]), snapshot.load(s, company, today=today)):
            for snap in snaps:
                bare = [h for h in snap.history if not h.invoice_ids]
                own = [h for h in snap.history if h.invoice_ids]
                assert len(own) == 7 and {h.on for h in bare} == set(days[:-1]), snap.customer.id
            assert len(snaps) in (1, 150)

    from web import create_app

    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret"), db=db)
    page = browser(app, db, "owner@maple.example", realm="9130000000078").get(
        "/companies/9130000000078/customers/P").get_data(as_text=True)
    assert page.count("/customers/J") == 20 and "and 130 more" in page  # the first 20 by name, the rest counted
