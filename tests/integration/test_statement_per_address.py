"""One message per address: with statements (the policy's ``group_by_customer``), the statements due
in one run to a parent and the jobs billed with it — one email address, one phone — are one message
listing every invoice, each named with its job; and the late-fee notices of a run's fees are one email
per address, listing each fee. Each customer's row is still settled on its own (status, timeline,
note on its QuickBooks record), and the provider's events settle all of them. Through a real sync,
run and provider webhooks on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import clock, dispatch
from qbo_collector.db import models
from qbo_collector.dispatch import outbox
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser

HARTLEY = "ap@hartley.example"
HARTLEY_MOBILE = "+14155550199"


@pytest.fixture(name="env")
def _env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    """The SMALL company on statements by email and text, every day, no gap, no late alerts."""
    policy = ds.text_and_email_policy()
    policy.update(group_by_customer=True, min_gap_days=0, alert_owner_when_late=False)
    made = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, db, policy=policy)
    yield made
    ds.stop([made])


def _customer(env, name: str, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return env.sb.intuit.create(env.realm, "Customer", {"DisplayName": name, "BillAddr": {"Country": "US"}, **fields})


def _family(env, late: int = 2) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A property manager owing one late invoice, two units billed with it owing one each, a unit billed
    on its own, and another client whose bookkeeper is the manager's (the same email, not billed with it);
    the invoices are ``late``, ``late`` + 1… days late (the firm preset's fees start after 5)."""
    manager = _customer(env, "Hartley Property Management", PrimaryEmailAddr={"Address": HARTLEY},
                        Mobile={"FreeFormNumber": HARTLEY_MOBILE})
    job = {"Job": True, "ParentRef": {"value": manager["Id"]}}
    family = {
        "manager": manager,
        "elm": _customer(env, "12 Elm Street", BillWithParent=True, **job),
        "oak": _customer(env, "48 Oak Avenue", BillWithParent=True, **job),
        "pine": _customer(env, "7 Pine Road", BillWithParent=False, PrimaryEmailAddr={"Address": "pine@tenant.example"},
                          **job),
        "other": _customer(env, "Birch Dental", PrimaryEmailAddr={"Address": HARTLEY}),
    }
    today = env.now_at(12).date()
    for n, key in enumerate(family):
        family[key]["invoice"] = ds.invoice(env, family[key]["Id"], today - dt.timedelta(days=late + n),
                                            100.0 * (n + 1))
    env.sync()
    return family


def _mails(env, to: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The statements emailed to ``to`` (the firm preset's late-fee notices left out)."""
    return [m for m in env.sb.sendgrid.messages if m["to"] == to and m["subject"].startswith("Your statement")]


def _statements(env, family: dict[str, dict[str, Any]], channel: str) -> dict[str, models.Outbox]:  # type: ignore[no-untyped-def]
    by_customer = {c["Id"]: key for key, c in family.items()}
    return {by_customer[r.customer_qbo_id]: r for r in env.rows(kind="reminder", channel=channel)
            if r.customer_qbo_id in by_customer and r.template_key == "statement"}


def test_the_statements_due_to_one_address_are_one_message_listing_each_job(env) -> None:  # type: ignore[no-untyped-def]
    family = _family(env)
    # the Upcoming page says so before it happens, in the reader's language
    for language, said, other in (
            ("en", "One message with 12 Elm Street, 48 Oak Avenue (the same address).", "with"),
            ("fr", "Un seul message avec 12 Elm Street, 48 Oak Avenue (la même adresse).", "avec")):
        reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=env.realm, language=language)
        page = reader.get(f"/companies/{env.realm}/upcoming").get_data(as_text=True)
        assert page.count(said) == 2, language  # the manager's email and text
        assert f"{other} 48 Oak Avenue, Hartley Property Management (" in page  # on the Elm Street unit's rows
        assert f"{other} Birch Dental" not in page  # the same bookkeeper, another client: apart
    summary = env.run()
    assert summary.ok, summary.problems
    env.flush()
    number = {key: c["invoice"]["DocNumber"] for key, c in family.items()}

    # the manager's inbox: its own statement, with both units' invoices in it, and Birch Dental's apart
    hartley = _mails(env, HARTLEY)
    assert len(hartley) == 2, [m["subject"] for m in hartley]
    [one] = [m for m in hartley if "Hartley Property Management" in m["text"]]
    [birch] = [m for m in hartley if m is not one]
    assert one["text"].startswith("Hello Hartley Property Management,")
    lines = [line for line in one["text"].splitlines() if line.startswith("- Invoice ")]
    # every invoice by due date (the oak unit's is the oldest), each unit's named
    assert [line.split(",")[0] for line in lines] == [
        f"- Invoice {number['oak']} (48 Oak Avenue)", f"- Invoice {number['elm']} (12 Elm Street)",
        f"- Invoice {number['manager']}"]
    assert "Total due: $600.00" in one["text"]  # 100 + 200 + 300
    assert '<span style="color:#57606a;">12 Elm Street</span>' in one["html"]
    assert "Hello Birch Dental," in birch["text"] and number["other"] in birch["text"]
    assert number["elm"] not in birch["text"]  # one bookkeeper for two clients: two messages
    [pine] = _mails(env, "pine@tenant.example")  # billed on its own: its own statement, at its own address
    assert number["pine"] in pine["text"] and "Hello 7 Pine Road," in pine["text"]

    # each customer's row is settled on its own, with the one message's provider id
    rows = _statements(env, family, "email")
    lead, elm, oak = rows["manager"], rows["elm"], rows["oak"]
    assert one["custom_args"]["outbox_id"] == str(lead.id)
    assert {r.status.value for r in (lead, elm, oak)} == {"sent"}
    assert elm.provider_id == oak.provider_id == lead.provider_id and lead.provider_id
    assert f"in one message with row {lead.id}" in elm.status_reason and "in one message" not in lead.status_reason
    # the provider's events reached every row the message listed
    assert {r.provider_status for r in (lead, elm, oak)} == {"delivered"}, [r.provider_status for r in (lead, elm, oak)]
    with env.db.session() as s:
        said = {(a.customer_qbo_id, a.kind) for a in s.query(models.Activity).filter(
            models.Activity.outbox_id.in_([lead.id, elm.id, oak.id]))}
    for key in ("manager", "elm", "oak"):
        assert {(family[key]["Id"], "email.sent"), (family[key]["Id"], "email.delivered")} <= said, key
    # and each unit's QuickBooks record has its own note, naming its own invoice
    env.run(now=env.now_at(13))  # the notes of the first run are written by the next
    for key in ("elm", "oak"):
        notes = env.sb.intuit.get(env.realm, "Customer", family[key]["Id"]).get("Notes") or ""
        assert f"Reminder sent by email: invoice {number[key]}\n" in notes, (key, notes)

    # the text message: one for the three of them, at the manager's number
    texts = [m for m in env.sb.twilio.messages if m["to"] == HARTLEY_MOBILE]
    assert len(texts) == 1 and "3 open invoices" in texts[0]["body"], texts
    sms = _statements(env, family, "sms")
    assert {r.status.value for r in (sms["manager"], sms["elm"], sms["oak"])} == {"sent"}
    assert sms["elm"].provider_id == sms["manager"].provider_id == texts[0]["sid"]
    assert {r.provider_status for r in (sms["manager"], sms["elm"], sms["oak"])} == {"delivered"}
    assert summary.statuses["sent"] >= 10 and summary.channels["email"] >= 5


def test_a_unit_whose_statement_is_due_later_gets_its_own_message_and_the_page_says_so(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Found in review: the Upcoming page told the statements of one local day to one address as one
    message, but the dispatcher merges those one run carries out. The Elm Street unit is on a policy
    that sends at 14:00: its statements go in the 14:00 run, on their own, after the 9:00 run told the
    manager's and the Oak Avenue unit's as one; and the page says so beforehand."""
    family = _family(env)
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        policy = dict(company.policy)
        afternoon = {**policy, "send_window": {**policy["send_window"], "hour": 14}}
        company.policy = {"default": policy, "policies": {"afternoon": afternoon}}
        s.scalar(select(models.Customer).where(models.Customer.qbo_id == family["elm"]["Id"])).policy_name = "afternoon"
    monkeypatch.setattr(clock, "now", lambda: env.now_at(8))  # the page read before the day's first run
    reader = browser(env.web.app, env.db, "owner-en@maple.example", realm=env.realm, language="en")
    page = reader.get(f"/companies/{env.realm}/upcoming").get_data(as_text=True)
    assert page.count("One message with 48 Oak Avenue (the same address).") == 2  # the manager's email and text
    assert page.count("One message with Hartley Property Management (the same address).") == 2  # Oak Avenue's
    assert page.count("One message with") == 4  # nothing on Elm Street's rows, nor naming it

    assert env.run(now=env.now_at(9)).ok
    env.flush()
    number = {key: c["invoice"]["DocNumber"] for key, c in family.items()}
    [morning] = [m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]
    assert number["oak"] in morning["text"] and number["elm"] not in morning["text"]
    assert env.run(now=env.now_at(14)).ok
    env.flush()
    [afternoon_mail] = [m for m in _mails(env, HARTLEY) if m is not morning and "Birch Dental" not in m["text"]]
    assert number["elm"] in afternoon_mail["text"] and number["oak"] not in afternoon_mail["text"]
    rows = _statements(env, family, "email")
    assert {r.status.value for r in rows.values()} == {"sent"}
    assert rows["oak"].provider_id == rows["manager"].provider_id != rows["elm"].provider_id
    texts = [m for m in env.sb.twilio.messages if m["to"] == HARTLEY_MOBILE]
    assert len(texts) == 2 and "2 open invoices" in texts[0]["body"], texts


def test_a_paid_units_statement_is_cancelled_and_the_others_still_go_as_one(env) -> None:  # type: ignore[no-untyped-def]
    family = _family(env)
    paid = family["elm"]["invoice"]
    env.sb.intuit.create(env.realm, "Payment", {  # paid in QuickBooks after the sync: the run's check sees it
        "CustomerRef": {"value": family["elm"]["Id"]}, "TotalAmt": 200.0,
        "Line": [{"Amount": 200.0, "LinkedTxn": [{"TxnId": paid["Id"], "TxnType": "Invoice"}]}]})
    assert env.run().ok
    env.flush()
    rows = _statements(env, family, "email")
    assert rows["elm"].status.value == "cancelled" and paid["DocNumber"] in rows["elm"].status_reason
    [one] = [m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]
    assert family["oak"]["invoice"]["DocNumber"] in one["text"] and f" {paid['DocNumber']} " not in one["text"]
    assert rows["oak"].provider_id == rows["manager"].provider_id and rows["oak"].status.value == "sent"


def test_an_unknown_outcome_holds_every_row_and_the_messages_events_settle_them(env) -> None:  # type: ignore[no-untyped-def]
    """SendGrid takes the statement and delivers it, but its answer is lost (the client reads a 500):
    every row the message listed is unknown, none is resent, and the message's own events — through the
    signed webhook, or the next tick's reconciliation when they came first — settle all of them."""
    family = _family(env)
    env.sb.sendgrid.lost_answers.add(HARTLEY)
    env.run()
    rows = _statements(env, family, "email")
    lead, elm, oak = rows["manager"], rows["elm"], rows["oak"]
    assert {r.status.value for r in (lead, elm, oak)} <= {"unknown", "sent"}  # events may already have come
    assert elm.provider_id in (f"with:{lead.id}", lead.provider_id) and rows["other"].status.value == "sent"
    env.flush()
    dispatch.reconcile_unknown(env.db)  # what the scheduler's tick does
    settled = _statements(env, family, "email")
    assert {settled[k].status.value for k in ("manager", "elm", "oak")} == {"sent"}, [
        (k, settled[k].status.value, settled[k].status_reason) for k in ("manager", "elm", "oak")]
    assert all(settled[k].status_reason.startswith("Reconciled: the provider reported") for k in ("manager", "elm", "oak"))
    [message] = [m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]
    assert settled["manager"].provider_id == message["message_id"]
    assert settled["elm"].provider_id == settled["oak"].provider_id == f"with:{lead.id}"  # settled through it
    env.run(now=env.now_at(13))
    env.flush()
    assert len([m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]) == 1  # never resent

    # a crash while sending leaves the rows "sending"; the crash recovery makes them unknown, and the
    # message's stored events settle every one of them, the rows it listed through the first
    with env.db.session() as s:
        for k in ("manager", "elm", "oak"):
            s.get(models.Outbox, settled[k].id).status = models.OutboxStatus.sending
        for k in ("elm", "oak"):
            s.get(models.Outbox, settled[k].id).provider_id = f"with:{lead.id}"
        s.get(models.Outbox, lead.id).provider_id = None
    assert dispatch.recover_sending(env.db) >= 3
    assert dispatch.reconcile_unknown(env.db) == 3
    assert {r.status.value for r in env.rows() if r.id in (lead.id, elm.id, oak.id)} == {"sent"}
    with env.db.session() as s:
        assert [r.id for r in outbox.companions(s, s.get(models.Outbox, elm.id))] == sorted((lead.id, oak.id))


def test_the_late_fees_of_a_run_are_told_in_one_email_per_address(env) -> None:  # type: ignore[no-untyped-def]
    """The firm preset's 1.5 % a month, 40 days late: each invoice gets its fee, and the manager's
    inbox gets one notice listing its two invoices' fees and its units', not four emails."""
    with env.db.session() as s:  # fees back to before the company was connected, as an owner may choose
        company = s.query(models.Company).one()
        company.settings = {**(company.settings or {}), "fees_from": "2025-01-01"}
    family = _family(env, late=40)
    second = ds.invoice(env, family["manager"]["Id"], env.now_at(12).date() - dt.timedelta(days=45), 1000.0)
    env.sync()
    assert env.run().ok
    env.flush()
    ids = {c["Id"]: key for key, c in family.items()}
    fees: dict[str, Decimal] = {}  # two months late: two fees on an invoice, told as their sum on its line
    for r in env.rows(kind="fee"):
        if r.status.value == "sent" and r.customer_qbo_id in ids:
            fees[r.invoice_ids[0]] = fees.get(r.invoice_ids[0], Decimal(0)) + r.amount
    notices = {r.invoice_ids[0]: r for r in env.rows(kind="reminder") if r.template_key == "late_fee_notice"}
    assert len([r for r in env.rows(kind="reminder") if r.template_key == "late_fee_notice"]) > len(notices)
    mine = [family[k]["invoice"]["Id"] for k in ("manager", "elm", "oak")] + [second["Id"]]
    assert set(mine) <= set(fees) and set(mine) <= set(notices)
    [mail] = [m for m in env.sb.sendgrid.messages if m["to"] == HARTLEY and m["subject"].startswith("Late fees")]
    assert mail["subject"] == "Late fees were added for 4 invoices"
    assert mail["text"].startswith("Hello Hartley Property Management,")
    for invoice_id in mine:
        number = env.sb.intuit.get(env.realm, "Invoice", invoice_id)["DocNumber"]
        job = {family["elm"]["invoice"]["Id"]: " (12 Elm Street)", family["oak"]["invoice"]["Id"]: " (48 Oak Avenue)"}
        line = next(line for line in mail["text"].splitlines() if line.startswith(f"- Invoice {number}"))
        assert line.startswith(f"- Invoice {number}{job.get(invoice_id, '')}, due on "), line
        assert line.endswith(f"unpaid, late fee ${fees[invoice_id]:,.2f}"), line
    told = [r for r in env.rows(kind="reminder") if r.template_key == "late_fee_notice" and r.invoice_ids[0] in mine]
    assert len(told) > 4  # two fees on some invoices: a notice row each, all in the one email
    assert mail["custom_args"]["outbox_id"] in {str(r.id) for r in told}
    assert {r.status.value for r in told} == {"sent"} and {r.provider_status for r in told} == {"delivered"}
    lead = next(r for r in told if str(r.id) == mail["custom_args"]["outbox_id"])
    assert {r.provider_id for r in told} == {lead.provider_id} and lead.provider_id
    # one bookkeeper for two clients: Birch Dental's fee is its own email, with the one-fee wording
    [birch] = [m for m in env.sb.sendgrid.messages if m["to"] == HARTLEY and m["subject"].startswith("A late fee")]
    assert birch["subject"] == f"A late fee was added for invoice {family['other']['invoice']['DocNumber']}"
    assert "Hello Birch Dental," in birch["text"]


def test_a_persons_answer_on_one_row_of_an_unknown_message_is_the_answer_for_all_it_listed(env) -> None:  # type: ignore[no-untyped-def]
    """A 500 from SendGrid, no event ever: the statement's rows stay unknown until a person says. "Send
    it again" on any of them plans all of them again, and the next run sends them as one message."""
    family = _family(env)
    env.sb.sendgrid.failing.add(HARTLEY)
    env.run()
    env.flush()
    rows = _statements(env, family, "email")
    lead, elm, oak = rows["manager"], rows["elm"], rows["oak"]
    assert {r.status.value for r in (lead, elm, oak)} == {"unknown"}
    assert not [m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]
    assert dispatch.reconcile_unknown(env.db) == 0  # no event: nothing to settle them
    decided = dispatch.resolve_unknown(env.db, elm.id, "resend", user_id=None)
    assert decided.status.value == "planned"
    again = _statements(env, family, "email")
    assert {again[k].status.value for k in ("manager", "elm", "oak")} == {"planned"}
    assert {again[k].provider_id for k in ("manager", "elm", "oak")} == {None}
    env.run(now=max(env.now_at(13), dt.datetime.now(dt.timezone.utc)))
    env.flush()
    [one] = [m for m in _mails(env, HARTLEY) if "Hartley Property Management" in m["text"]]
    assert all(family[k]["invoice"]["DocNumber"] in one["text"] for k in ("manager", "elm", "oak"))
    sent = _statements(env, family, "email")
    assert {sent[k].status.value for k in ("manager", "elm", "oak")} == {"sent"}
    assert len({sent[k].provider_id for k in ("manager", "elm", "oak")}) == 1

    # "It went out" on one row is the answer for the others too, with a timeline line on each
    with env.db.session() as s:
        for k in ("manager", "elm", "oak"):
            s.get(models.Outbox, sent[k].id).status = models.OutboxStatus.unknown
        for k in ("elm", "oak"):
            s.get(models.Outbox, sent[k].id).provider_id = f"with:{sent['manager'].id}"
    dispatch.resolve_unknown(env.db, sent["manager"].id, "sent", user_id=None)
    assert {r.status.value for r in env.rows() if r.id in (lead.id, elm.id, oak.id)} == {"sent"}
    with env.db.session() as s:
        told = {a.outbox_id for a in s.query(models.Activity).filter(models.Activity.kind == "outbox.resolved.sent")}
    assert {lead.id, elm.id, oak.id} <= told
