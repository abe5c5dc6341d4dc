"""A customer's timeline reads in the reader's language: French for a French user, English for an
English one; dates and amounts by Babel; a person's note exactly as typed; older rows as stored.

The entries are written by the product's own code (the forms, the provider-event intake, the
dispatcher against the sandbox), then the customer page is read as each user.
"""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from qbo_collector import casework, dispatch
from qbo_collector.db import models
from qbo_collector.dispatch import events
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser, frozen_today, owner, pages_app  # noqa: F401
from tests.integration.web_helpers import csrf_token, login, make_user

CUSTOMER = "/companies/111/customers/1"
# What a person typed: words that look like our sentences, markup and a format placeholder.
TYPED = "Reminder sent by email? Il rappelle lundi <b>50 %(amount)s</b> & co"


def _text(page: str) -> str:
    """The page's text: tags dropped, entities decoded, every kind of space made plain."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def _timeline(page: str) -> str:
    found = re.search(r'<ol class="timeline">(.*?)</ol>', page, re.S)
    assert found, "no timeline on the page"
    return found.group(1)


def _record_everything(owner, db) -> None:  # type: ignore[no-untyped-def]
    """Every kind of entry a person records, then the provider's events on the reminder sent 5 days ago."""
    for action, data in (
        ("promise", {"until": "2026-12-10", "amount": "1 200,00", "invoice_ids": "101", "note": "Appelé"}),
        ("dispute", {"invoice_ids": "102", "note": "Quantité erronée"}),
        ("plan", {"instalments": "2026-12-15 149,50\n2027-01-15 150,50", "invoice_ids": "102"}),
        ("pause", {"until": "2026-12-24", "note": "Fêtes"}),
        ("resume", {}),
        ("exclude", {"excluded": "1"}),
        ("exclude", {"excluded": "0"}),
        ("policy", {"policy_name": "firm"}),
        ("waive", {"invoice_id": "invoice:102"}),
        ("waive", {"invoice_id": ""}),
        ("call", {"outcome": "voicemail", "note": "Rappeler jeudi"}),
        ("note", {"note": TYPED}),
    ):
        assert owner.post(f"{CUSTOMER}/{action}", data).status_code == 302, action
    with db.session() as s:
        row = s.scalar(select(models.Outbox).where(models.Outbox.dedupe_key == "111:seed:1"))
        row_id = row.id
        # a line of an older version: no key, shown as it was stored
        s.add(models.Activity(company_id=row.company_id, kind="email.delivered", customer_qbo_id="1",
                              message="Email to old@example.com: delivered (legacy line)",
                              at=dt.datetime(2026, 11, 1, 9, tzinfo=dt.timezone.utc)))
    stamp = int(dt.datetime(2026, 11, 19, 9, tzinfo=dt.timezone.utc).timestamp())
    base = {"email": "compta@dubois.example", "outbox_id": str(row_id), "realm": "111", "sg_message_id": "sg-1.filter"}
    result = events.record_sendgrid_events(db, [
        {**base, "event": "delivered", "timestamp": stamp, "sg_event_id": "ev-1"},
        {**base, "event": "open", "timestamp": stamp + 60, "sg_event_id": "ev-2"},
        {**base, "event": "bounce", "timestamp": stamp + 120, "sg_event_id": "ev-3", "reason": "550 mailbox full"},
    ])
    assert result.accepted == 3


@pytest.fixture
def recorded(pages_app, owner, sqlite_db):  # type: ignore[no-untyped-def]
    _record_everything(owner, sqlite_db)
    return pages_app


def test_a_french_user_reads_every_entry_in_french(recorded, sqlite_db):
    fr = browser(recorded, sqlite_db, "fr@example.com", language="fr")
    timeline = _text(_timeline(fr.get(CUSTOMER).get_data(as_text=True)))
    for french in (
        "Promesse de payer 1 200,00 € d’ici le 10 déc. 2026 (F-1001).",
        "Litige ouvert (F-1002) : Quantité erronée",
        "Échéancier : 2 échéances, 300,00 € jusqu’au 15 janv. 2027.",
        "Relances suspendues jusqu’au 24 déc. 2026.",
        "Relances reprises.",
        "Exclu des relances et des frais.",
        "De nouveau inclus dans les relances et les frais.",
        "Politique réglée sur firm.",
        "Plus de frais de retard sur la facture F-1002.",
        "Frais de retard abandonnés pour toutes les factures de ce client.",
        "Appel (message laissé sur la messagerie). Rappeler jeudi",
        "E-mail à compta@dubois.example : remis",
        "E-mail à compta@dubois.example : ouvert",
        "E-mail à compta@dubois.example : rejeté (adresse en échec) (550 mailbox full)",
        "Les e-mails à compta@dubois.example sont arrêtés (rejeté (adresse en échec)) : plus aucune relance",
        "Paiement reçu",
    ):
        assert french in timeline, (french, timeline)
    # a row whose reason the rules engine wrote (English): described from its fields
    other = _text(_timeline(fr.get("/companies/111/customers/3").get_data(as_text=True)))
    assert "Relance « En retard, aimable », étape 3, facture 104, par e-mail" in other, other
    assert "Step 3" not in other
    for english in ("Promise to pay", "Dispute opened", "Reminders paused", "Email to compta", "instalments",
                    "Call (", "is stopped"):
        assert english not in timeline, english


def test_an_english_user_reads_the_same_entries_in_english(recorded, owner):
    timeline = _text(_timeline(owner.get(CUSTOMER).get_data(as_text=True)))
    for english in (
        "Promise to pay €1,200.00 by Dec 10, 2026 (F-1001).",
        "Dispute opened (F-1002): Quantité erronée",
        "Payment plan: 2 instalments, €300.00 until Jan 15, 2027.",
        "Reminders paused until Dec 24, 2026.",
        "Call (left a voicemail). Rappeler jeudi",
        "Email to compta@dubois.example: delivered",
        "Email to compta@dubois.example: opened",
        "Email to compta@dubois.example: bounced back (550 mailbox full)",
        "Late fees waived for every invoice of this customer.",
    ):
        assert english in timeline, (english, timeline)
    assert "Promesse" not in timeline and "Relances" not in timeline
    other = _text(_timeline(owner.get("/companies/111/customers/3").get_data(as_text=True)))
    assert "Step 3 of invoice 104 by email." in other, other  # the rules engine's own words


def test_a_typed_note_and_an_older_line_are_shown_as_stored(recorded, sqlite_db):
    fr = browser(recorded, sqlite_db, "fr@example.com", language="fr")
    page = _timeline(fr.get(CUSTOMER).get_data(as_text=True))
    assert html.escape(TYPED, quote=False) in page  # escaped, never translated or formatted
    assert "<b>50" not in page
    assert "Email to old@example.com: delivered (legacy line)" in _text(page)
    with sqlite_db.reading() as s:
        note = s.scalar(select(models.Activity).where(models.Activity.kind == "note"))
        promise = s.scalar(select(models.Activity).where(models.Activity.kind == "promise"))
    assert (note.message, note.message_key, note.message_args) == (TYPED, None, None)
    # the English sentence stays stored beside its key, for the CLI, the logs and older readers
    assert promise.message == "Promise to pay 1200.00 EUR by 2026-12-10 (F-1001)."
    assert promise.message_key == "promise" and promise.message_args["until"] == {"date": "2026-12-10"}


# --- what the dispatcher writes, against the sandbox ------------------------------------------

@pytest.fixture
def dispatched(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    """A sandbox company after one run (email and text reminders, late fees, notes written back, owner
    alerts, call tasks), with one invoice paid between plan and send, a promise recorded on another
    customer, and the provider's events recorded."""
    env = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, sqlite_db,
                   policy=ds.text_and_email_policy())
    today = env.now_at(12).date()
    planned = dispatch.plan_company(env.settings, env.db, env.realm, on=today)
    paid = next(p for p in planned if p.kind == "reminder" and len(p.invoice_ids) == 1)
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        promised = s.scalars(select(models.Invoice).where(
            models.Invoice.status == models.InvoiceStatus.open, models.Invoice.balance > 0,
            models.Invoice.customer_qbo_id != paid.customer_id).order_by(models.Invoice.qbo_id)).first()
        casework.promise(s, company, promised.customer_qbo_id, until=today + dt.timedelta(days=7),
                         amount=str(promised.balance), invoice_ids=[promised.qbo_id], on=today)
    env.sb.intuit.pay_invoice(env.realm, paid.invoice_ids[0])
    summary = env.run()
    assert summary.ok, summary.errors
    env.flush()
    reminder = next(m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example")
    env.sb.sendgrid.open(reminder["message_id"])
    env.flush()
    env.paid, env.promised = paid, promised  # type: ignore[attr-defined]
    yield env
    if env.web is not None:
        env.web.stop()


def _reader(env, email: str, language: str):  # type: ignore[no-untyped-def]
    make_user(env.db, email, companies={env.realm: "viewer"})
    with env.db.session() as s:
        s.scalar(select(models.User).where(models.User.email == email)).language = language
    client = env.web.app.test_client()
    assert login(client, email).status_code == 302
    csrf_token(client, "/companies")
    return client


def _customer_with(env, kind: str) -> str:  # type: ignore[no-untyped-def]
    with env.db.reading() as s:
        found = s.scalar(select(models.Activity.customer_qbo_id).where(models.Activity.kind == kind,
                                                                       models.Activity.customer_qbo_id.is_not(None)))
    assert found, f"no {kind} entry"
    return found


def _page(client, env, customer_id: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(f"/companies/{env.realm}/customers/{customer_id}")
    assert response.status_code == 200
    return _text(_timeline(response.get_data(as_text=True)))


def test_what_the_dispatcher_wrote_reads_in_french(dispatched):
    env = dispatched
    fr = _reader(env, "lecteur@example.com", "fr")
    with env.db.reading() as s:
        opened = s.scalar(select(models.Activity).where(models.Activity.kind == "email.open"))
        number = s.scalar(select(models.Invoice.doc_number).where(models.Invoice.qbo_id == env.paid.invoice_ids[0]))
    mailed = _page(fr, env, opened.customer_qbo_id)
    assert re.search(r"Relance envoyée par e-mail : factures? [\w\-, ]+, à \S+@\S+\.", mailed), mailed
    assert "E-mail à " in mailed and " : remis" in mailed and " : ouvert" in mailed
    assert "Écrit dans les notes QuickBooks" in mailed and re.search(r"Relance envoyée par (e-mail|SMS) : facture", mailed)
    texted = _page(fr, env, _customer_with(env, "sms.sent"))
    assert re.search(r"Relance envoyée par SMS : factures? [\w\-, ]+, à \+\d+\.", texted), texted
    assert re.search(r"SMS à \+\d+ : remis", texted), texted
    fees = _page(fr, env, _customer_with(env, "fee.charged"))
    assert re.search(r"Frais de retard de [\d  ,]+ \$US facturés pour la facture \S+ \(facture de frais \S+\)", fees), fees
    cancelled = _page(fr, env, env.paid.customer_id)
    assert f"Annulé : la facture {number} a été payée dans QuickBooks avant l’envoi." in cancelled, cancelled
    promised = _page(fr, env, env.promised.customer_qbo_id)
    assert re.search(r"Écrit dans les notes QuickBooks Promesse de payer [\d  ,]+ \$US d’ici le \d+ \w+\.? 20\d\d "
                     r"enregistrée", promised), promised
    tasks = _page(fr, env, _customer_with(env, "task.call"))
    assert re.search(r"Appeler le client, facture \S+", tasks), tasks  # the rules engine's reason, described
    for english in ("Reminder sent", "Alert sent", "Email to", "Text to", "Late fee", "Cancelled:", "Written to the notes",
                    "Call ", "by email", "invoice "):
        assert english not in mailed + texted + fees + cancelled + promised + tasks, english


def test_what_the_dispatcher_wrote_reads_in_english_for_an_english_user(dispatched):
    env = dispatched
    en = _reader(env, "reader@example.com", "en")
    fees = _page(en, env, _customer_with(env, "fee.charged"))
    assert re.search(r"Late fee \$[\d,.]+ posted for invoice \S+ \(fee invoice \S+\)", fees), fees
    assert re.search(r"Reminder sent by (email|text message): invoices? ", fees + _page(en, env, _customer_with(env, "email.sent")))
    with env.db.reading() as s:
        number = s.scalar(select(models.Invoice.doc_number).where(models.Invoice.qbo_id == env.paid.invoice_ids[0]))
    assert f"Cancelled: invoice {number} was paid in QuickBooks before sending." in _page(en, env, env.paid.customer_id)


# --- the Upcoming page: the same sentences, for rows still to go out --------------------------

@pytest.fixture
def upcoming(pages_app, sqlite_db):  # type: ignore[no-untyped-def]
    """Company A on the firm policy (the engine alerts the owner of late invoices), a reconnect alert queued
    by the program, and a reminder whose outcome a crash left unknown."""
    from qbo_collector import alerts, rules
    from qbo_collector.dispatch import outbox

    with sqlite_db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == "111"))
        company.policy = rules.PRESETS["firm"].model_dump(mode="json")
        s.scalar(select(models.Outbox).where(models.Outbox.dedupe_key == "111:seed:1")).status = \
            models.OutboxStatus.sending
        company_id = company.id
    assert alerts.reconnect_needed(sqlite_db, "111", "Disconnected by a user.", on=dt.date(2026, 11, 23)) == 1
    assert outbox.recover_sending(sqlite_db, company_id=company_id) == 1
    return pages_app


def _upcoming(client) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/companies/111/upcoming")
    assert response.status_code == 200
    return _text(response.get_data(as_text=True))


def test_a_french_user_reads_the_upcoming_rows_in_french(upcoming, sqlite_db):
    page = _upcoming(browser(upcoming, sqlite_db, "fr@example.com", language="fr"))
    # queued by the program, with its sentence key (an error sentence the catalogue lacks stays as written)
    assert "QuickBooks doit être reconnecté pour Company A : Disconnected by a user. Rien n’est envoyé" in page, page
    # planned by the rules engine: told from the alert's figures
    assert re.search(r"La facture F-1001 de Atelier Dubois est passée en retard : elle était due le \d+ \w+\.? 2026\.",
                     page), page
    # the row a crash left unknown, and why
    assert "Relance « En retard, aimable », étape 3, facture 101, par e-mail" in page
    assert "L’exécution s’est arrêtée après la remise de ce message au fournisseur" in page
    for english in ("needs to be reconnected", "Nothing is sent", "became late", "it was due on", "Step 3 of invoice",
                    "The run stopped"):
        assert english not in page, english


def test_an_english_user_reads_the_upcoming_rows_in_english(upcoming, owner):
    page = _upcoming(owner)
    assert "QuickBooks needs to be reconnected for Company A: Disconnected by a user." in page
    # the engine's own words (the invoice number keeps its case)
    assert re.search(r"Invoice F-1001 of Atelier Dubois became late: it was due on 2026-\d\d-\d\d\.", page), page
    assert "Step 3 of invoice 101 by email." in page
    assert "The run stopped after this message was handed to the provider" in page
    assert "Relance" not in page and "QuickBooks doit" not in page


def test_the_upcoming_page_names_the_customers_its_plan_leaves_out(pages_app, sqlite_db, owner):  # type: ignore[no-untyped-def]
    """A named policy that no longer validates: its customers are neither in the calendar nor in the runs, and
    the page says so in the reader's language (the reason, the dispatcher's, as stored)."""
    from qbo_collector import rules

    assert "left out of this calendar" not in _upcoming(owner)
    with sqlite_db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == "111"))
        company.policy = {"default": rules.PRESETS["firm"].model_dump(mode="json"),
                          "policies": {"vip": {"steps": "every day"}}}
        customer = s.scalars(select(models.Customer).where(models.Customer.company_id == company.id)
                             .order_by(models.Customer.id)).first()
        customer.policy_name, name = "vip", customer.display_name
    page = _upcoming(owner)
    assert (f"1 customer is left out of this calendar, and of the daily runs, until this is fixed: customer {name}: "
            "The stored 'vip' policy is not valid (") in page, page
    french = _upcoming(browser(pages_app, sqlite_db, "fr-left-out@example.com", language="fr"))
    assert (f"1 client est exclu de ce calendrier, et des exécutions quotidiennes, tant que ceci n’est pas corrigé : "
            f"customer {name}: ") in french, french
