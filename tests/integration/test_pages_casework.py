"""What people record on a customer's page, through the forms: the rows written, the calendar that follows, and refusals."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import urllib.parse
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from qbo_collector import dispatch, snapshot
from qbo_collector.db import models
from tests.integration.test_pages_support import (TODAY, add_credit, any_pages_app, browser, frozen_today, owner,  # noqa: F401
                                                  pages_app)

CUSTOMER = "/companies/111/customers/1"


def _company(s) -> models.Company:  # type: ignore[no-untyped-def]
    return s.scalar(select(models.Company).where(models.Company.realm_id == "111"))


def _snapshot(db) -> str:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        c = s.scalar(select(models.Customer).where(models.Customer.qbo_id == "1", models.Customer.company_id == _company(s).id))
        counts = [s.scalar(select(func.count()).select_from(m)) for m in (models.Pause, models.Activity, models.Outbox)]
        invoices = [(i.qbo_id, i.fees_waived) for i in s.scalars(select(models.Invoice))]
        return json.dumps([c.excluded, c.fees_waived, c.policy_name, counts, invoices])


def _planned_for(app, db, customer: str, days: int = 14) -> list[dispatch.PlannedRow]:  # type: ignore[no-untyped-def]
    services = app.config["QBO"]
    return [r for r in dispatch.plan_company(services.settings, db, "111", on=TODAY, days=days) if r.customer_id == customer]


def _activity(db, kind: str) -> list[models.Activity]:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return list(s.scalars(select(models.Activity).where(models.Activity.kind == kind)))


def test_a_promise_to_pay_pauses_the_customer_until_its_date(pages_app, owner, sqlite_db):
    before = _planned_for(pages_app, sqlite_db, "1")
    assert any(r.kind == "reminder" for r in before)
    response = owner.post(f"{CUSTOMER}/promise", {"until": "2026-12-10", "amount": "1 200,00",
                                                   "invoice_ids": "101", "note": "Called, will pay on the 10th"})
    assert response.status_code == 302
    page = owner.get(CUSTOMER).get_data(as_text=True)
    assert "The promise to pay is recorded" in page and "Promised €1,200.00 by Dec 10, 2026" in page
    with sqlite_db.reading() as s:
        pause = s.scalar(select(models.Pause))
        assert (pause.kind, pause.until_on, pause.amount, pause.invoice_ids, pause.data["open_balance_when_made"]) == \
            ("promise", dt.date(2026, 12, 10), Decimal("1200.00"), ["101"], "1200.00")
    (logged,) = _activity(sqlite_db, "promise")
    assert logged.customer_qbo_id == "1" and logged.data["note"] == "Called, will pay on the 10th"
    after = _planned_for(pages_app, sqlite_db, "1")
    assert not [r for r in after if "101" in r.invoice_ids and r.due_at.date() <= dt.date(2026, 12, 11)]
    assert len(after) < len(before)


@pytest.mark.parametrize("action,data", [
    ("promise", {"until": "2026-12-10", "amount": "500"}),
    ("plan", {"instalments": "2026-12-15 750\n2027-01-15 750"}),
])
def test_a_promise_or_plan_on_all_invoices_names_those_open_when_it_was_made(pages_app, owner, sqlite_db, action, data):
    """Found in review: with no invoice chosen, the pause stored none ("all"), and an invoice billed
    afterwards made a kept promise look broken or a paid instalment look missed. It now names the
    customer's open invoices of that moment (the page still says "all invoices")."""
    assert owner.post(f"{CUSTOMER}/{action}", data).status_code == 302
    with sqlite_db.reading() as s:
        pause = s.scalar(select(models.Pause))
        open_ids = sorted(s.scalars(select(models.Invoice.qbo_id).where(
            models.Invoice.company_id == _company(s).id, models.Invoice.customer_qbo_id == "1",
            models.Invoice.status == models.InvoiceStatus.open)))
    assert pause.kind == action and sorted(pause.invoice_ids) == open_ids and len(open_ids) >= 2


@pytest.mark.parametrize(("language", "typed"), [("en", "1,500"), ("en", "1,500.00"), ("fr", "1\u202f500,00")])
def test_a_promised_amount_with_thousands_is_stored_as_meant(pages_app, sqlite_db, language, typed):
    """Found in review: "1,500" was stored as 1.50 ("Promised $1.50"), and "1 500,00" as the French page
    prints it (a narrow no-break space) was refused."""
    from tests.integration.test_pages_support import browser

    person = browser(pages_app, sqlite_db, f"{language}@example.com", language=language)
    assert person.post(f"{CUSTOMER}/promise", {"until": "2026-12-10", "amount": typed}).status_code == 302
    with sqlite_db.reading() as s:
        assert s.scalar(select(models.Pause.amount)) == Decimal("1500.00")


@pytest.mark.parametrize("action,data,field,message", [
    # promise: a date in the past, a missing amount, someone else's invoice
    ("promise", {"until": "2026-11-01", "amount": "10"}, "until", "A promise to pay is for today or a later date."),
    ("promise", {"until": "2026-12-01", "amount": ""}, "amount", "Enter an amount such as 250.00."),
    ("promise", {"until": "31/12/2026", "amount": "5"}, "until", "Enter a date such as 2026-12-31."),
    ("promise", {"until": "2026-12-01", "amount": "-5"}, "amount", "The amount must be more than zero."),
    ("promise", {"until": "2026-12-01", "amount": "5", "invoice_ids": "103"}, "invoice_ids", "Choose invoices of this customer."),
    # promise: more than the chosen invoice owes (1,200.00), more than the customer owes (1,500.00); a paid invoice
    ("promise", {"until": "2026-12-01", "amount": "1200.01", "invoice_ids": "101"}, "amount",
     "The promise is for more than the customer owes."),
    ("promise", {"until": "2026-12-01", "amount": "1500.01"}, "amount", "The promise is for more than the customer owes."),
    ("promise", {"until": "2026-12-01", "amount": "5", "invoice_ids": "106"}, "invoice_ids",
     "Choose open invoices: one of these is already paid, voided or deleted."),
    # dispute without saying what, or on an invoice already paid
    ("dispute", {"note": "  "}, "note", "Say what the customer disputes."),
    ("dispute", {"note": "Wrong quantity", "invoice_ids": "106"}, "invoice_ids",
     "Choose open invoices: one of these is already paid, voided or deleted."),
    # payment plan: bad second line, past date, more than owed
    ("plan", {"instalments": "2026-12-15 100\nsoon 100"}, "instalments", "Line 2: Enter a date such as 2026-12-31."),
    ("plan", {"instalments": "2026-11-01 100"}, "instalments", "Line 1: An instalment cannot be in the past."),
    ("plan", {"instalments": "2026-12-15 1000\n2027-01-15 1000"}, "instalments",
     "The instalments add up to more than the customer owes."),
    # payment plan: less than owed (1,500.00: the first instalment would never count as paid), a paid invoice
    ("plan", {"instalments": "2026-12-15 100\n2027-01-15 150.50"}, "instalments",
     "The instalments add up to less than the customer owes."),
    ("plan", {"instalments": "2026-12-15 500", "invoice_ids": "106"}, "invoice_ids",
     "Choose open invoices: one of these is already paid, voided or deleted."),
    # pause in the past, resume when not paused
    ("pause", {"until": "2026-11-23"}, "until", "Choose a resume date after today."),
    ("resume", {}, "customer", "This customer is not paused."),
    # exclude back when not excluded; a policy that does not exist
    ("exclude", {"excluded": "0"}, "customer", "This customer is not excluded."),
    ("policy", {"policy_name": "lenient"}, "policy_name", "Choose one of the listed policies."),
    # waive on another customer's invoice, a made-up fee
    ("waive", {"invoice_id": "invoice:103"}, "invoice_id", "Choose invoices of this customer."),
    ("waive", {"invoice_id": "fee:99999"}, "invoice_id", "Choose one of this customer's late fees."),
    # a call without an outcome, a reached call without notes, a note too long
    ("call", {"outcome": ""}, "outcome", "Choose how the call went."),
    ("call", {"outcome": "reached", "note": ""}, "note", "Write down what was said."),
    ("note", {"note": "x" * 2001}, "note", "The note is too long: keep it under 2,000 characters."),
    ("resolve", {"pause_id": "abc"}, "pause_id", "Choose one of this customer's pauses."),
])
def test_bad_input_is_shown_next_to_the_field_and_nothing_is_saved(pages_app, owner, sqlite_db, action, data, field, message):
    before = _snapshot(sqlite_db)
    response = owner.post(f"{CUSTOMER}/{action}", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    if field in ("customer",) and action in ("resume", "exclude"):
        assert f'id="{action}-customer-error"' in page
    elif action == "resolve":
        assert 'class="flash error" role="alert"' in page  # no field of its own: shown above the forms
    else:
        assert f'id="{action}-{field}-error"' in page, page[:200]
    assert message.replace("'", "&#39;") in page
    assert _snapshot(sqlite_db) == before


@pytest.mark.parametrize("action,data", [
    ("promise", {"until": "2026-12-01", "amount": "100"}),
    ("plan", {"instalments": "2026-12-15 100"}),
])
def test_nothing_to_promise_or_plan_when_the_customer_owes_nothing(pages_app, owner, sqlite_db, caplog, action, data):
    """Customer 4 has only paid invoices: the refusal is shown above the forms and logged for the operator."""
    before = _snapshot(sqlite_db)
    with caplog.at_level("INFO"):
        response = owner.post(f"/companies/111/customers/4/{action}", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'class="flash error" role="alert"' in page
    assert "Nothing is owed: there is nothing to promise or to plan." in page
    assert _snapshot(sqlite_db) == before
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert f"{action} refused" in line and "realm=111 customer=4" in line and "Nothing is owed" in line


def test_a_paid_invoice_of_a_customer_who_owes_nothing_is_refused_above_the_forms(pages_app, owner, sqlite_db):
    """Customer 4 has no open invoice, so no list to show the error under: it is shown above the forms."""
    response = owner.post("/companies/111/customers/4/dispute", {"note": "Never ordered", "invoice_ids": "109"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'class="flash error" role="alert"' in page
    assert "Choose open invoices: one of these is already paid, voided or deleted." in page


def test_a_deleted_or_voided_invoice_cannot_be_disputed(pages_app, owner, sqlite_db):
    for status in (models.InvoiceStatus.deleted, models.InvoiceStatus.voided):
        with sqlite_db.session() as s:
            invoice = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == "102",
                                                            models.Invoice.company_id == _company(s).id))
            invoice.status, invoice.deleted = status, status == models.InvoiceStatus.deleted
        before = _snapshot(sqlite_db)
        response = owner.post(f"{CUSTOMER}/dispute", {"note": "Never ordered", "invoice_ids": "102"})
        assert response.status_code == 400, status
        assert "Choose open invoices: one of these is already paid, voided or deleted." in response.get_data(as_text=True)
        assert _snapshot(sqlite_db) == before


def test_errors_are_translated_for_a_french_user(pages_app, sqlite_db):
    from tests.integration.test_pages_support import browser

    fr = browser(pages_app, sqlite_db, "fr@example.com", language="fr")
    page = fr.post(f"{CUSTOMER}/plan", {"instalments": "2026-12-15 100\nbientôt 100"}).get_data(as_text=True)
    assert "Ligne 2\u00a0: Saisissez une date, par exemple 2026-12-31." in page
    page = fr.post(f"{CUSTOMER}/plan", {"instalments": "2026-12-15 100"}).get_data(as_text=True)
    assert "Le total des échéances est inférieur à ce que doit le client." in page
    page = fr.post(f"{CUSTOMER}/dispute", {"note": "Déjà payée", "invoice_ids": "106"}).get_data(as_text=True)
    assert "Choisissez des factures ouvertes\u00a0: l’une d’elles est déjà payée, annulée ou supprimée." in page


def test_dispute_plan_pause_resume_exclude_policy_waive_call(pages_app, owner, sqlite_db):
    assert owner.post(f"{CUSTOMER}/dispute", {"invoice_ids": "101", "note": "Wrong quantity"}).status_code == 302
    assert owner.post(f"{CUSTOMER}/plan", {"instalments": "2026-12-15 149,50\n2027-01-15 150,50",
                                           "invoice_ids": "102"}).status_code == 302
    assert owner.post(f"{CUSTOMER}/pause", {"until": "2026-12-24", "note": "Holidays"}).status_code == 302
    assert "paused" in owner.get(CUSTOMER).get_data(as_text=True)
    assert owner.post(f"{CUSTOMER}/resume").status_code == 302
    assert owner.post(f"{CUSTOMER}/exclude", {"excluded": "1"}).status_code == 302
    assert owner.post(f"{CUSTOMER}/policy", {"policy_name": "firm"}).status_code == 302
    assert owner.post(f"{CUSTOMER}/waive", {"invoice_id": "invoice:102"}).status_code == 302
    assert owner.post(f"{CUSTOMER}/waive", {"invoice_id": ""}).status_code == 302
    assert owner.post(f"{CUSTOMER}/call", {"outcome": "voicemail"}).status_code == 302
    with sqlite_db.reading() as s:
        pauses = {p.kind: p for p in s.scalars(select(models.Pause))}
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == "1",
                                                          models.Customer.company_id == _company(s).id))
        invoice = s.scalar(select(models.Invoice).where(models.Invoice.qbo_id == "102"))
        kinds = [a.kind for a in s.scalars(select(models.Activity).where(models.Activity.customer_qbo_id == "1")
                                           .order_by(models.Activity.id))]
    assert pauses["dispute"].invoice_ids == ["101"] and pauses["dispute"].resolved_on is None
    assert pauses["plan"].data["instalments"] == [{"due_on": "2026-12-15", "amount": "149.50"},
                                                  {"due_on": "2027-01-15", "amount": "150.50"}]
    assert pauses["manual"].resolved_on == TODAY and pauses["manual"].until_on == TODAY
    assert customer.excluded and customer.policy_name == "firm" and customer.fees_waived and invoice.fees_waived
    assert kinds == ["dispute", "plan", "pause", "resume", "excluded", "policy.assigned", "fee.waived", "fee.waived", "call"]
    assert _planned_for(pages_app, sqlite_db, "1") == []  # excluded: nothing at all
    # the dispute is resolved from its "On hold" button
    assert owner.post(f"{CUSTOMER}/resolve", {"pause_id": str(pauses["dispute"].id)}).status_code == 302
    with sqlite_db.reading() as s:
        assert s.get(models.Pause, pauses["dispute"].id).resolved_on == TODAY
    timeline = owner.get(CUSTOMER).get_data(as_text=True)
    for title in ("Dispute opened", "Payment plan agreed", "Reminders paused", "Reminders resumed", "Dispute resolved",
                  "Excluded from reminders and fees", "Late fees waived", "Call", "Payment received"):
        assert title in timeline, title


def test_customer_list_search_and_states(pages_app, owner, sqlite_db):
    owner.post(f"{CUSTOMER}/promise", {"until": "2026-12-10", "amount": "100"})
    page = owner.get("/companies/111/customers").get_data(as_text=True)
    assert "4 customers" in page and "Durand &amp; Fils" not in page  # owes nothing
    assert "promised" in page and "45 days late" in page
    # next planned action, from the rules engine: Zola's invoice is due Dec 13, reminded 3 days before
    zola = page.split("Épicerie Zola", 1)[1].split("</tr>", 1)[0]
    assert "Dec 10, 2026" in zola
    dubois = page.split("Atelier Dubois", 1)[1].split("</tr>", 1)[0]
    assert "Nov 23, 2026" not in dubois  # promised until Dec 10: nothing before
    assert "Durand &amp; Fils" in owner.get("/companies/111/customers?all=1").get_data(as_text=True)
    found = owner.get("/companies/111/customers?q=LUMI").get_data(as_text=True)
    assert "Café Lumière" in found and "Atelier Dubois" not in found
    assert "No customer matches" in owner.get("/companies/111/customers?q=zzz").get_data(as_text=True)
    # a run found that nothing will ever happen to Zola's invoices: the list says so, not "Dec 31, 9999"
    with sqlite_db.session() as s:
        zola_id = s.scalar(select(models.Customer.qbo_id).where(models.Customer.display_name == "Épicerie Zola"))
        for inv in s.scalars(select(models.Invoice).where(models.Invoice.customer_qbo_id == zola_id)):
            inv.next_action_on = snapshot.NEVER
    zola = owner.get("/companies/111/customers").get_data(as_text=True).split("Épicerie Zola", 1)[1].split("</tr>", 1)[0]
    assert "9999" not in zola and "Dec 10, 2026" not in zola and "—" in zola


@pytest.mark.postgres
def test_a_customer_page_shows_every_open_invoice_however_many_are_paid(any_pages_app, db):
    """Found in review: the page read the 200 latest-due invoices, so a customer with a long paid history
    lost her oldest open ones — the page said she owed less than the list did, and they could not be
    ticked for a promise, dispute or plan. Every open invoice is read, the totals are summed in SQL."""
    with db.session() as s:
        company_id = _company(s).id
        for k in range(200):  # paid after the late invoice 101 was due (45 days ago), and so later-due
            s.add(models.Invoice(company_id=company_id, qbo_id=f"9{k:03}", doc_number=f"P-{k}", customer_qbo_id="1",
                                 txn_date=TODAY - dt.timedelta(days=60), due_date=TODAY - dt.timedelta(days=k % 40),
                                 total=Decimal("10.00"), balance=Decimal("0"), currency="EUR",
                                 status=models.InvoiceStatus.paid))
    owner = browser(any_pages_app, db, "owner@example.com")
    listed = owner.get("/companies/111/customers").get_data(as_text=True).split("Atelier Dubois", 1)[1].split("</tr>", 1)[0]
    assert "€1,500.00" in listed
    page = owner.get(CUSTOMER).get_data(as_text=True)
    assert "Owes €1,500.00, of which €1,200.00 overdue" in page
    for invoice in ("101", "102"):  # 45 days late, and due in 10 days: in the promise, dispute and plan forms
        assert page.count(f'name="invoice_ids" value="{invoice}"') == 3, invoice
    assert "45 days late" in page
    assert "and 3 more" in page  # 203 paid (3 from the seed): the 200 latest are listed


def _names(owner, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The customers the Customers list shows for ``query``, in its order."""
    page = owner.get(f"/companies/111/customers?{query}").get_data(as_text=True)
    return re.findall(r'/customers/\d+">([^<]+)</a>', html.unescape(page))


@pytest.mark.postgres
@pytest.mark.parametrize("typed", ["Élodie", "élodie", "ÉLODIE", "élodie leroy"])
def test_the_customer_search_finds_names_with_accented_capitals(any_pages_app, db, typed):
    """Found in review: SQLite's lower() leaves "É" as it is, so on the default database "Élodie" found
    nobody (and "lodie" found her). Both databases now lower every letter."""
    with db.session() as s:
        s.add(models.Customer(company_id=_company(s).id, qbo_id="6", display_name="Élodie Leroy", currency="EUR"))
    owner = browser(any_pages_app, db, "owner@example.com")
    assert _names(owner, f"all=1&q={urllib.parse.quote(typed)}") == ["Élodie Leroy"]


@pytest.mark.parametrize(("typed", "found"), [("100%", ["100% Bio"]), ("a_b", ["a_b Conseil"]), ("%", ["100% Bio"])])
def test_percent_and_underscore_in_a_search_are_what_they_are(any_pages_app, db, typed, found):
    """A "%" typed in the search matched every customer, and "_" any letter (LIKE wildcards)."""
    with db.session() as s:
        company_id = _company(s).id
        s.add_all([models.Customer(company_id=company_id, qbo_id="7", display_name="100% Bio", currency="EUR"),
                   models.Customer(company_id=company_id, qbo_id="8", display_name="a_b Conseil", currency="EUR"),
                   models.Customer(company_id=company_id, qbo_id="9", display_name="aXb Conseil", currency="EUR")])
    owner = browser(any_pages_app, db, "owner@example.com")
    assert _names(owner, f"all=1&q={urllib.parse.quote(typed)}") == found


def test_the_customer_list_picks_out_those_reminders_cannot_reach(pages_app, owner, sqlite_db):
    assert _names(owner, "unreachable=1") == []
    assert "Reminders can reach every customer." in owner.get("/companies/111/customers?unreachable=1").get_data(as_text=True)
    assert _names(owner, "unreachable=1&all=1") == ["Durand & Fils"]  # no email, no phone, owes nothing
    with sqlite_db.session() as s:
        company_id = _company(s).id
        for qbo_id, change in (("2", {"email_stopped": "bounce"}), ("5", {"sms_stopped": "stop"}),
                               ("3", {"email": "  ", "phone": None})):  # a blank email is no address
            customer = s.scalar(select(models.Customer).where(models.Customer.company_id == company_id,
                                                              models.Customer.qbo_id == qbo_id))
            for name, value in change.items():
                setattr(customer, name, value)
    assert _names(owner, "unreachable=1") == ["Boulangerie Martin", "Café Lumière", "Épicerie Zola"]  # by balance
    assert _names(owner, "unreachable=1&q=zola") == ["Épicerie Zola"]
    page = owner.get("/companies/111/customers?unreachable=1").get_data(as_text=True)
    assert 'name="unreachable" value="1" checked' in page
    with sqlite_db.session() as s:  # Café Lumière gets a mobile number in QuickBooks: texts can reach it
        s.scalar(select(models.Customer).where(models.Customer.company_id == company_id,
                                               models.Customer.qbo_id == "3")).mobile = "+33 6 12 34 56 78"
    assert "Café Lumière" not in _names(owner, "unreachable=1")


def test_the_customer_list_picks_out_those_with_unused_credit(pages_app, owner, sqlite_db):
    assert _names(owner, "credit=1") == []
    assert "No customer has unused credit." in owner.get("/companies/111/customers?credit=1").get_data(as_text=True)
    with sqlite_db.session() as s:
        company_id = _company(s).id
        add_credit(s, company_id, "3", "CM1", "20.00", memo=True)
        add_credit(s, company_id, "4", "P-over", "5.00", memo=False)
        add_credit(s, company_id, "2", "CM2", "20.00", memo=True, left="0.00")  # used up
        add_credit(s, company_id, "5", "P-gone", "9.00", memo=False, deleted=True)
    assert _names(owner, "credit=1") == ["Café Lumière"]  # Durand & Fils owes nothing: only with "all"
    assert _names(owner, "credit=1&all=1") == ["Café Lumière", "Durand & Fils"]
    page = owner.get("/companies/111/customers?credit=1").get_data(as_text=True)
    assert 'name="credit" value="1" checked' in page


def test_upcoming_skip_dry_run_and_unknown_rows(pages_app, owner, sqlite_db):
    rows = _planned_for(pages_app, sqlite_db, "2")
    first = rows[0]
    page = owner.get("/companies/111/upcoming").get_data(as_text=True)
    assert first.dedupe_key in page and "Boulangerie Martin" in page
    # a row already queued in the outbox names its invoice by number too, not by QuickBooks id
    with sqlite_db.session() as s:
        company = _company(s)
        invoice = s.scalar(select(models.Invoice).where(models.Invoice.company_id == company.id,
                                                        models.Invoice.qbo_id == "101"))
        s.add(models.Outbox(company_id=company.id, dedupe_key="111:queued:test", kind="reminder", channel="email",
                            customer_qbo_id=invoice.customer_qbo_id, invoice_ids=["101"],
                            due_at=dt.datetime.combine(TODAY, dt.time(9), dt.timezone.utc), reason="queued"))
    queued = owner.get("/companies/111/upcoming").get_data(as_text=True).split("111:queued:test", 1)[0]
    assert f"Invoice {invoice.doc_number}" in queued.rsplit("<tr", 1)[1]
    assert owner.post("/companies/111/upcoming/skip", {"dedupe_key": first.dedupe_key}).status_code == 302
    assert first.dedupe_key not in [r.dedupe_key for r in _planned_for(pages_app, sqlite_db, "2")]
    with sqlite_db.reading() as s:
        skipped = s.scalar(select(models.Outbox).where(models.Outbox.dedupe_key == first.dedupe_key))
        assert skipped.status == models.OutboxStatus.cancelled and "Skipped" in skipped.status_reason
    again = owner.post("/companies/111/upcoming/skip", {"dedupe_key": first.dedupe_key})
    assert again.status_code == 400 and "no longer waiting to go out" in again.get_data(as_text=True)
    assert owner.post("/companies/111/upcoming/skip", {"dedupe_key": "made-up"}).status_code == 400
    # dry run on: planned keys carry the dry-run prefix, and the page says so
    assert owner.post("/companies/111/upcoming/dry-run", {"dry_run": "1"}).status_code == 302
    page = owner.get("/companies/111/upcoming").get_data(as_text=True)
    assert "Dry run: on" in page and "dryrun:" in page
    with sqlite_db.reading() as s:
        assert _company(s).settings["dry_run"] is True
    owner.post("/companies/111/upcoming/dry-run", {"dry_run": "0"})
    # an unknown row: the owner decides
    with sqlite_db.session() as s:
        row = s.scalar(select(models.Outbox).where(models.Outbox.company_id == _company(s).id,
                                                   models.Outbox.dedupe_key == "111:seed:1"))
        row.status, row.sending_at = models.OutboxStatus.unknown, row.sent_at
        row_id = row.id
    assert "To resolve: did these go out?" in owner.get("/companies/111/upcoming").get_data(as_text=True)
    assert owner.post(f"/companies/111/upcoming/unknown/{row_id}", {"decision": "sent"}).status_code == 302
    with sqlite_db.reading() as s:
        assert s.get(models.Outbox, row_id).status == models.OutboxStatus.sent
    refused = owner.post(f"/companies/111/upcoming/unknown/{row_id}", {"decision": "sent"}, follow_redirects=True)
    assert "not unknown" in refused.get_data(as_text=True)
