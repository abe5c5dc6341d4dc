"""Policy editor, template editor and channel settings: what is saved, and bad input refused next to its field."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from qbo_collector import clock, rules
from qbo_collector.db import models
from tests.integration.test_pages_support import TODAY, browser, frozen_today, owner, pages_app, viewer  # noqa: F401
from web.pages import forms

POLICY = "/companies/111/policy"


def _company(db) -> models.Company:  # type: ignore[no-untyped-def]
    with db.reading() as s:
        return s.scalar(select(models.Company).where(models.Company.realm_id == "111"))


def _form(page: str) -> MultiDict[str, str]:
    """The policy form's current values, as the browser would post them."""
    form: MultiDict[str, str] = MultiDict()
    for tag in re.findall(r"<(?:input|select)[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) in ("csrf_token", "preset", "q"):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if "checkbox" in tag:
            if " checked" in tag:
                form.add(name.group(1), value.group(1) if value else "1")
        elif tag.startswith("<input"):
            form.add(name.group(1), value.group(1) if value else "")
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        if name == "preset":
            continue
        chosen = re.search(r'<option value="([^"]*)" selected', options) or re.search(r'<option value="([^"]*)"', options)
        form[name] = chosen.group(1) if chosen else ""
    return form


def _post_policy(owner, form: MultiDict[str, str]):  # type: ignore[no-untyped-def]
    data = MultiDict(form)
    data["csrf_token"] = owner.token
    return owner.client.post(POLICY, data=data)


def test_form_round_trip_keeps_every_preset(pages_app):
    for name, policy in rules.PRESETS.items():
        data, kinds = forms.data_from(forms.values_of(policy, "EUR"), "EUR", policy)
        parsed, problems = forms.validate(data, kinds)
        assert problems == {} and parsed == policy, name


def test_a_preset_is_loaded_edited_and_saved(pages_app, owner, sqlite_db):
    page = owner.get(f"{POLICY}?preset=france_b2b").get_data(as_text=True)
    assert "Preset loaded: review it, then save." in page
    form = _form(page)
    assert form["fee.indemnity.amount"] == "40" and form.getlist("fee.interest.enabled") == ["1"]
    form["steps.0.offset_days"] = "-5"
    form["late_fees.grace_days"] = "2"
    form["send_window.hour"] = "10"
    form["min_balance.EUR"] = "5,50"
    form["discount_tiers.0.days_after_invoice"] = "10"
    form["discount_tiers.0.percent"] = "2"
    assert _post_policy(owner, form).status_code == 302
    stored = rules.Policy.model_validate(_company(sqlite_db).policy)
    assert stored.name == "france_b2b" and stored.steps[0].offset_days == -5 and stored.late_fees.grace_days == 2
    assert str(stored.min_balance["EUR"]) == "5.50" and stored.send_window.hour == 10
    assert stored.discount_tiers[0].percent == 2 and stored.fee_rule("indemnity").amount == {"EUR": 40}
    assert "The policy is saved" in owner.get(POLICY).get_data(as_text=True)


@pytest.mark.parametrize(("typed", "stored"), [("1,000", "1000"), ("1\u202f000,50", "1000.50"), ("2,5", "2.5")])
def test_a_minimum_balance_typed_with_thousands_is_stored_as_meant(pages_app, owner, sqlite_db, typed, stored):
    """Found in review: "1,000" was saved as 1.000 — a minimum of one euro instead of a thousand."""
    form = _form(owner.get(f"{POLICY}?preset=friendly").get_data(as_text=True))
    form["min_balance.EUR"] = typed
    assert _post_policy(owner, form).status_code == 302
    assert str(rules.Policy.model_validate(_company(sqlite_db).policy).min_balance["EUR"]) == stored


def test_fee_notices_are_on_by_default_and_unchecking_the_box_turns_them_off(pages_app, owner, sqlite_db):
    form = _form(owner.get(f"{POLICY}?preset=us_net30").get_data(as_text=True))
    assert form.getlist("late_fees.notify_customer") == ["1"]
    del form["late_fees.notify_customer"]  # the browser posts nothing for an unchecked box
    assert _post_policy(owner, form).status_code == 302
    assert rules.Policy.model_validate(_company(sqlite_db).policy).late_fees.notify_customer is False
    form = _form(owner.get(POLICY).get_data(as_text=True))
    assert "late_fees.notify_customer" not in form
    form["late_fees.notify_customer"] = "1"
    assert _post_policy(owner, form).status_code == 302
    assert rules.Policy.model_validate(_company(sqlite_db).policy).late_fees.notify_customer is True


def test_leaving_unsent_invoices_alone_is_a_checkbox_off_by_default(pages_app, owner, sqlite_db):
    form = _form(owner.get(f"{POLICY}?preset=friendly").get_data(as_text=True))
    assert "skip_unsent_invoices" not in form
    form["skip_unsent_invoices"] = "1"
    assert _post_policy(owner, form).status_code == 302
    assert rules.Policy.model_validate(_company(sqlite_db).policy).skip_unsent_invoices is True
    form = _form(owner.get(POLICY).get_data(as_text=True))
    assert form.getlist("skip_unsent_invoices") == ["1"]
    del form["skip_unsent_invoices"]
    assert _post_policy(owner, form).status_code == 302
    assert rules.Policy.model_validate(_company(sqlite_db).policy).skip_unsent_invoices is False


def test_a_policy_change_that_moves_the_fee_periods_starts_them_on_that_day(pages_app, owner, sqlite_db, monkeypatch):
    """No back-charging: moving the grace days (or adding a fee) stores the day on the policy, so the next
    run does not charge the periods before it again under new keys; a new rate moves nothing and keeps it."""
    def saved(form: MultiDict[str, str]) -> rules.Policy:
        assert _post_policy(owner, form).status_code == 302
        return rules.Policy.model_validate(_company(sqlite_db).policy)

    def on(day) -> None:  # type: ignore[no-untyped-def]
        monkeypatch.setattr(clock, "now", lambda: dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.timezone.utc))

    form = _form(owner.get(f"{POLICY}?preset=us_net30").get_data(as_text=True))
    assert saved(form).late_fees.started == {"percent": TODAY}  # fees where the company's policy charged none
    on(TODAY + dt.timedelta(days=10))
    form = _form(owner.get(POLICY).get_data(as_text=True))
    form["fee.percent.percent"] = "2"
    assert saved(form).late_fees.started == {"percent": TODAY}  # a new rate: every period keeps its key
    form["late_fees.grace_days"] = "3"
    stamped = saved(form).late_fees
    assert stamped.started == {"percent": TODAY + dt.timedelta(days=10)} and stamped.fees_from is None
    on(TODAY + dt.timedelta(days=12))
    form = _form(owner.get(POLICY).get_data(as_text=True))
    form["late_fees.max_count"] = "2"  # a cap where there was none: nothing
    assert saved(form).late_fees.fees_from is None
    form["late_fees.max_count"] = "5"  # the cap raised: bars earlier periods, trims nothing
    stamped = saved(form).late_fees
    assert stamped.fees_from == TODAY + dt.timedelta(days=12) and stamped.started == {"percent": TODAY + dt.timedelta(days=10)}
    example = owner.get(POLICY).get_data(as_text=True).split('id="example"', 1)[1].split("</aside>", 1)[0]
    assert example.count("€20.00") == 3  # the example still shows what the policy charges in 90 days


def test_the_worked_example_is_computed_by_the_rules_engine(pages_app, owner):
    page = owner.get(f"{POLICY}?preset=france_b2b").get_data(as_text=True)
    example = page.split('id="example"', 1)[1].split("</aside>", 1)[0]
    # €1,000 due 90 days ago: the €40 indemnity once, and monthly interest at 12.15 % a year
    assert "An invoice of €1,000.00 due on Aug 25, 2026, still unpaid 90 days later" in example
    assert "Recovery indemnity" in example and "€40.00" in example and "12.15% a year" in example
    firm = owner.get(f"{POLICY}?preset=firm").get_data(as_text=True).split('id="example"', 1)[1]
    assert "Percentage fee" in firm and "€15.00" in firm  # 1.5 % of €1,000 each month after 5 days of grace


@pytest.mark.parametrize("field,value,message", [
    ("steps.0.offset_days", "soon", "Enter a whole number."),
    ("steps.0.offset_days", "5000", "Enter 3650 or less."),
    ("send_window.hour", "25", "Enter 23 or less."),
    ("min_gap_days", "-1", "Enter 0 or more."),
    ("name", "", "This field is required."),
    ("fee.percent.percent", "", "A percent fee needs a percent."),
    ("fee.percent.percent", "abc", "Enter a number, such as 1.5."),
    ("discount_tiers.0.percent", "80", "Enter 50 or less."),
])
def test_bad_policy_input_is_shown_next_to_the_field_and_nothing_is_saved(pages_app, owner, sqlite_db, field, value, message):
    form = _form(owner.get(f"{POLICY}?preset=firm").get_data(as_text=True))
    form["fee.percent.enabled"] = "1"
    if field.startswith("discount_tiers"):
        form["discount_tiers.0.days_after_invoice"] = "10"
    form[field] = value
    response = _post_policy(owner, form)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    error_id = (field if field != "fee.percent.percent" or value else "fee.percent").replace(".", "-") + "-error"
    found = re.search(rf'id="{re.escape(error_id)}">([^<]*)<', page)
    assert found and found.group(1) == message, (error_id, page.count("field-error"))
    assert "The policy was not saved" in page
    assert _company(sqlite_db).policy is None


def test_sms_hours_are_a_policy_wide_error(pages_app, owner, sqlite_db):
    form = _form(owner.get(f"{POLICY}?preset=firm").get_data(as_text=True))
    form["send_window.hour"] = "22"
    page = _post_policy(owner, form).get_data(as_text=True)
    assert "Text messages may only go out between 8:00 and 21:00" in page
    assert _company(sqlite_db).policy is None


def _error(page: str, field: str) -> str | None:
    found = re.search(rf'id="{re.escape(field.replace(".", "-"))}-error">([^<]*)<', page)
    return found.group(1) if found else None


def test_an_error_shows_on_the_row_it_was_typed_in_and_a_removed_step_stays_removed(pages_app, owner, sqlite_db):
    """Removed and blank rows are left out of the policy, not of the form: step 4's error stays on
    step 4 though step 2 is removed, the tick on step 2 is kept, and the corrected form saves without it."""
    form = _form(owner.get(POLICY).get_data(as_text=True))  # friendly: -3, 0, 7, 21, 45
    form["steps.1.remove"] = "1"
    form["steps.3.offset_days"] = "abc"
    refused = _post_policy(owner, form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert _error(page, "steps.3.offset_days") == "Enter a whole number."
    assert _error(page, "steps.2.offset_days") is None  # step 3 (7 days) is fine
    again = _form(page)
    assert again.getlist("steps.1.remove") == ["1"] and again["steps.3.offset_days"] == "abc"
    again["steps.3.offset_days"] = "21"
    assert _post_policy(owner, again).status_code == 302
    stored = rules.Policy.model_validate(_company(sqlite_db).policy)
    assert [step.offset_days for step in stored.steps] == [-3, 7, 21, 45]


@pytest.mark.parametrize("field", ["steps.99999999.remove", "discount_tiers.64.percent", "steps.1" + "0" * 5000 + ".remove"])
def test_a_row_index_past_what_a_policy_can_have_is_refused_at_once(pages_app, owner, sqlite_db, field, caplog):
    """A one-line post naming row 99,999,999 used to loop that far and render that many rows (a worker
    held for hours): it is refused with the policy left as it was, and the page shows the stored policy."""
    form = _form(owner.get(POLICY).get_data(as_text=True))
    form[field] = "1"
    refused = _post_policy(owner, form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and len(page) < 500_000
    assert "The form has more rows than a policy can have." in page
    assert 'name="steps.4.offset_days"' in page and 'name="steps.64.offset_days"' not in page
    assert _company(sqlite_db).policy is None
    assert "a row index past 64" in caplog.text


def test_row_names_that_are_not_plain_numbers_are_ignored(pages_app, owner, sqlite_db):
    form = _form(owner.get(POLICY).get_data(as_text=True))
    form["steps.\u00b2.remove"] = "1"  # "²" is a digit to str.isdigit, not to int()
    assert _post_policy(owner, form).status_code == 302


def test_a_discount_tier_error_shows_on_its_own_row_after_a_blank_one(pages_app, owner, sqlite_db):
    form = _form(owner.get(POLICY).get_data(as_text=True))
    form["discount_tiers.1.days_after_invoice"] = "10"
    form["discount_tiers.1.percent"] = "80"  # row 0 left blank
    page = _post_policy(owner, form).get_data(as_text=True)
    assert _error(page, "discount_tiers.1.percent") == "Enter 50 or less."
    assert _error(page, "discount_tiers.0.percent") is None


def test_fee_rules_missing_their_figure_are_named_with_the_right_article(pages_app, owner, sqlite_db):
    form = _form(owner.get(f"{POLICY}?preset=france_b2b").get_data(as_text=True))
    form["fee.indemnity.amount"] = ""
    form["fee.interest.percent"] = ""
    page = _post_policy(owner, form).get_data(as_text=True)
    assert _error(page, "fee.indemnity") == "An indemnity fee needs an amount for at least one currency."
    assert _error(page, "fee.interest") == "An interest fee needs a percent."
    assert _company(sqlite_db).policy is None


def test_a_send_window_before_the_daily_run_is_pointed_out(pages_app, owner, sqlite_db):
    form = _form(owner.get(POLICY).get_data(as_text=True))
    assert 'id="send-hour-warning"' not in owner.get(POLICY).get_data(as_text=True)  # 9:00 and a run at 9
    form["send_window.hour"] = "8"
    assert _post_policy(owner, form).status_code == 302
    page = owner.get(POLICY).get_data(as_text=True)
    warning = page.split('id="send-hour-warning">', 1)[1].split("</p>", 1)[0]
    assert "The daily run starts at 9:00\u202fAM" in warning and "a send window at 8:00\u202fAM go out" in warning
    assert owner.post(CHANNELS, {"send_hour": "8"}).status_code == 302
    assert 'id="send-hour-warning"' not in owner.get(POLICY).get_data(as_text=True)


# --- templates ---------------------------------------------------------------------------

TEMPLATES = "/companies/111/templates"


def test_template_preview_uses_a_real_customer_and_saving_stores_the_override(pages_app, owner, sqlite_db):
    page = owner.get(f"{TEMPLATES}?key=reminder_overdue_gentle&language=fr&customer=2").get_data(as_text=True)
    assert "Boulangerie Martin" in page and "{{ customer_name }}" in page  # placeholders listed
    assert "customer_name" in page and "Le nom du client" not in page  # help in the user's language (en)
    preview = owner.post(TEMPLATES, {"key": "reminder_overdue_gentle", "language": "fr", "customer": "2", "do": "preview",
                                     "subject": "Facture {{ invoice.number }} pour {{ customer_name }}",
                                     "text": "Bonjour {{ customer_name }}, il reste {{ invoice.balance|money }}.",
                                     "html": "", "sms": ""})
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Facture F-1003 pour Boulangerie Martin" in body
    assert "il reste 850,50\u00a0€." in body
    assert "templates" not in (_company(sqlite_db).settings or {})
    saved = owner.post(TEMPLATES, {"key": "reminder_overdue_gentle", "language": "fr", "do": "save",
                                   "subject": "Facture {{ invoice.number }}", "text": "Bonjour {{ customer_name }}",
                                   "html": "", "sms": "Rappel {{ invoice.number }}"})
    assert saved.status_code == 302
    stored = _company(sqlite_db).settings["templates"]["fr"]["reminder_overdue_gentle"]
    assert stored == {"subject": "Facture {{ invoice.number }}", "text": "Bonjour {{ customer_name }}", "html": "",
                      "sms": "Rappel {{ invoice.number }}"}
    assert "edited" in owner.get(f"{TEMPLATES}?key=reminder_overdue_gentle&language=fr").get_data(as_text=True)
    owner.post(TEMPLATES, {"key": "reminder_overdue_gentle", "language": "fr", "do": "reset"})
    assert "reminder_overdue_gentle" not in _company(sqlite_db).settings["templates"]["fr"]


def test_the_preview_names_the_pdfs_the_email_would_carry(pages_app, owner, sqlite_db):
    url = f"{TEMPLATES}?key=reminder_overdue_gentle&language=fr&customer=2"
    assert "Attached:" not in owner.get(url).get_data(as_text=True)  # off until Channels turns it on
    assert owner.post(CHANNELS, {"attach_invoice_pdf": "1"}).status_code == 302
    page = owner.get(url).get_data(as_text=True)
    attached = page.split("Attached:</span>", 1)[1].split("</p>", 1)[0]
    assert "Facture-F-1003.pdf" in attached and "Invoice-" not in attached  # the French file names
    assert "Attached:" not in owner.get(f"{TEMPLATES}?key=owner_alert&language=fr").get_data(as_text=True)


@pytest.mark.parametrize("part,source,expected", [
    ("text", "Bonjour {{ customer_name }},\n{% if invoice %}\nMerci.", "Line 3"),
    ("subject", "{{ customer_name", "Line 1"),
    ("html", "<p>{{ invoice.nope.deeper }}</p>", "nope"),
    ("text", "", "A message needs a text."),
])
def test_a_template_that_would_not_render_is_refused_with_its_line(pages_app, owner, sqlite_db, part, source, expected):
    data = {"key": "reminder_due_today", "language": "en", "do": "save", "subject": "Invoice {{ invoice.number }}",
            "text": "Hello {{ customer_name }}", "html": "", "sms": ""}
    data[part] = source
    response = owner.post(TEMPLATES, data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    error = re.search(rf'id="{part}-error" role="alert">([^<]*)<', page)
    assert error and expected in error.group(1), page.count("field-error")
    assert "templates" not in (_company(sqlite_db).settings or {})


# --- channels ----------------------------------------------------------------------------

CHANNELS = "/companies/111/channels"


def test_channels_are_validated_and_saved(pages_app, owner, sqlite_db):
    bad = owner.post(CHANNELS, {"sender_name": "Claire <x>", "reply_to": "not-an-address", "owner_phone": "12",
                                "sms_from": "MGxyz", "owner_email": "owner@example.com"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    for field in ("sender_name", "reply_to", "owner_phone", "sms_from"):
        assert f'id="{field}-error"' in page, field
    assert "Nothing was saved" in page
    assert "sender_name" not in _company(sqlite_db).settings
    good = owner.post(CHANNELS, {"sender_name": "Claire Dubois", "reply_to": "Compta@Dubois.example",
                                 "owner_email": "claire@dubois.example", "owner_phone": "06 12 34 56 78",
                                 "sms_from": "MG" + "a" * 32, "company_phone": "01 42 68 53 00", "dry_run": "1"})
    assert good.status_code == 302
    settings = _company(sqlite_db).settings
    assert settings["sender_name"] == "Claire Dubois" and settings["owner_phone"] == "+33612345678"
    assert settings["reply_to"] == "Compta@dubois.example" and settings["dry_run"] is True
    assert settings["sms_from"] == "MG" + "a" * 32
    assert settings["attach_invoice_pdf"] is False


@pytest.fixture
def two_senders_app(settings_factory, db, frozen_today):  # type: ignore[no-untyped-def]
    """Companies 111 and 222 on a server texting from +15017122661; 222 has its own number and service."""
    from tests.integration.test_pages_support import seed
    from web import create_app

    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret",
                                      twilio_from_number="+15017122661"), db=db)
    app.config["TESTING"] = True
    seed(db)
    seed(db, realm="222", name="Company B", currency="USD", language="en", country="US", timezone="America/Chicago")
    with db.session() as s:
        b = s.scalar(select(models.Company).where(models.Company.realm_id == "222"))
        b.settings = {**b.settings, "sms_from": "+14155550102"}
    yield app


@pytest.mark.parametrize(("sms_from", "said"), [
    pytest.param("+1 (415) 555-0102", "Another company on this server already texts from this sender",
                 id="another company's number, written another way"),
    pytest.param("+15017122661", "This is the server&#39;s own sender", id="the server's own number"),
])
def test_a_company_may_not_text_from_a_sender_another_company_uses(two_senders_app, db, sms_from, said):
    """Replies and STOPs are told to a company by the number they answer: one sender, one company."""
    a = browser(two_senders_app, db, "a@example.com", realm="111")
    form = {"timezone": "Europe/Paris", "send_hour": "9", "language": "fr"}
    refused = a.post(CHANNELS, {**form, "sms_from": sms_from})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and 'id="sms_from-error"' in page and said in page
    assert "sms_from" not in _company(db).settings
    assert a.post(CHANNELS, {**form, "sms_from": "+1 415 555 0101"}).status_code == 302
    assert _company(db).settings["sms_from"] == "+14155550101"
    b = browser(two_senders_app, db, "b@example.com", realm="222")  # saving its own number again is fine
    assert b.post("/companies/222/channels", {"sms_from": "+14155550102", "timezone": "America/Chicago",
                                              "send_hour": "9", "language": "en"}).status_code == 302
    assert b.post("/companies/222/channels", {"sms_from": "+14155550101", "timezone": "America/Chicago",
                                              "send_hour": "9", "language": "en"}).status_code == 400


def test_the_tax_code_of_late_fees_is_a_quickbooks_id_set_on_the_channels_page(pages_app, owner, sqlite_db):
    """Outside the US every fee line needs a VAT code (``QboNotes.fee_tax_code``): the owner may name it."""
    refused = owner.post(CHANNELS, {"fee_tax_code": "Hors champ"})
    assert refused.status_code == 400 and 'id="fee_tax_code-error"' in refused.get_data(as_text=True)
    assert "A QuickBooks tax code Id is a number, such as 7." in refused.get_data(as_text=True)
    assert "fee_tax_code" not in (_company(sqlite_db).settings or {})
    assert owner.post(CHANNELS, {"fee_tax_code": " 12 "}).status_code == 302
    assert _company(sqlite_db).settings["fee_tax_code"] == "12"
    assert 'name="fee_tax_code" type="text" value="12"' in owner.get(CHANNELS).get_data(as_text=True)
    assert owner.post(CHANNELS, {"fee_tax_code": ""}).status_code == 302  # empty: chosen by name again
    assert _company(sqlite_db).settings["fee_tax_code"] == ""


def test_attaching_the_invoice_pdf_is_a_checkbox_kept_through_a_refused_save(pages_app, owner, sqlite_db):
    box = 'name="attach_invoice_pdf" value="1"'
    assert f"{box}>" in owner.get(CHANNELS).get_data(as_text=True)  # off until asked for
    refused = owner.post(CHANNELS, {"reply_to": "not-an-address", "attach_invoice_pdf": "1"})
    assert refused.status_code == 400 and f"{box} checked>" in refused.get_data(as_text=True)
    assert "attach_invoice_pdf" not in (_company(sqlite_db).settings or {})
    assert owner.post(CHANNELS, {"attach_invoice_pdf": "1"}).status_code == 302
    assert _company(sqlite_db).settings["attach_invoice_pdf"] is True
    assert f"{box} checked>" in owner.get(CHANNELS).get_data(as_text=True)
    assert owner.post(CHANNELS, {}).status_code == 302  # unticked: a form leaves the box out
    assert _company(sqlite_db).settings["attach_invoice_pdf"] is False


def test_time_zone_send_hour_and_language_are_set_on_the_channels_page(pages_app, owner, sqlite_db):
    page = owner.get(CHANNELS).get_data(as_text=True)
    assert '<option value="Europe/Paris" selected>' in page and 'name="send_hour" type="text" value="9"' in page
    # the French company's zones come first
    assert page.index("Europe/Paris") < page.index("America/Chicago") < page.index("Europe/Berlin")
    assert '<option value="fr" selected>' in page
    saved = owner.post(CHANNELS, {"timezone": "America/Martinique", "send_hour": "7", "language": "en",
                                  "owner_email": "owner@example.com"})
    assert saved.status_code == 302
    company = _company(sqlite_db)
    assert (company.timezone, company.language, company.settings["send_hour"]) == ("America/Martinique", "en", 7)
    assert company.settings["timezone_set_by_user"] is True and company.settings["language_set_by_user"] is True
    page = owner.get(CHANNELS).get_data(as_text=True)
    assert '<option value="America/Martinique" selected>' in page and 'value="7"' in page
    assert '<option value="en" selected>' in page
    assert owner.post(CHANNELS, {"send_hour": "0"}).status_code == 302  # midnight is an hour too
    assert _company(sqlite_db).settings["send_hour"] == 0
    assert 'name="send_hour" type="text" value="0"' in owner.get(CHANNELS).get_data(as_text=True)


def test_saving_the_channels_page_unchanged_leaves_the_zone_to_quickbooks(pages_app, owner, sqlite_db):
    assert owner.post(CHANNELS, {"timezone": "Europe/Paris", "send_hour": "9", "language": "fr"}).status_code == 302
    settings = _company(sqlite_db).settings
    assert settings["send_hour"] == 9
    assert "timezone_set_by_user" not in settings and "language_set_by_user" not in settings


@pytest.mark.parametrize("field,value,message", [
    ("timezone", "Mars/Olympus_Mons", "Choose a time zone from the list, such as Europe/Paris or America/Chicago."),
    ("timezone", "", "Choose a time zone from the list, such as Europe/Paris or America/Chicago."),
    ("send_hour", "24", "Enter a whole hour from 0 to 23, such as 9 for 9:00."),
    ("send_hour", "-1", "Enter a whole hour from 0 to 23, such as 9 for 9:00."),
    ("send_hour", "7.5", "Enter a whole hour from 0 to 23, such as 9 for 9:00."),
    ("send_hour", "", "Enter a whole hour from 0 to 23, such as 9 for 9:00."),
    ("language", "de", "Choose English or French."),
])
def test_a_bad_time_zone_send_hour_or_language_is_refused_next_to_its_field(pages_app, owner, sqlite_db,
                                                                            field, value, message):
    data = {"timezone": "America/Chicago", "send_hour": "7", "language": "en", "sender_name": "Claire"}
    data[field] = value
    refused = owner.post(CHANNELS, data)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Nothing was saved" in page
    assert re.search(rf'id="{field}-error" role="alert">([^<]*)<', page).group(1) == message
    company = _company(sqlite_db)
    assert (company.timezone, company.language) == ("Europe/Paris", "fr")
    assert "send_hour" not in company.settings and "sender_name" not in company.settings


def test_a_viewer_sees_the_time_zone_send_hour_and_language_but_cannot_change_them(pages_app, viewer, owner,
                                                                                    sqlite_db):
    page = viewer.get(CHANNELS).get_data(as_text=True)
    assert re.search(r'<select id="timezone" name="timezone" disabled>', page)
    assert re.search(r'<select id="language" name="language" disabled>', page)
    assert 'name="send_hour" type="text" value="9" readonly' in page
    wanted = {"timezone": "America/Chicago", "send_hour": "7", "language": "en"}
    assert viewer.post(CHANNELS, wanted).status_code == 403
    assert owner.client.post(CHANNELS, data=wanted).status_code == 400  # an owner's post without its CSRF token
    company = _company(sqlite_db)
    assert (company.timezone, company.language, company.settings.get("send_hour")) == ("Europe/Paris", "fr", None)


def test_test_send_without_a_configured_provider_says_so(pages_app, owner):
    response = owner.post(f"{CHANNELS}/test", follow_redirects=True)
    assert "Email is not configured on this server" in response.get_data(as_text=True)


def test_test_send_reaches_the_sendgrid_stand_in(settings_factory, sqlite_db, frozen_today, sandbox):
    from tests.integration.test_pages_support import seed
    from web import create_app

    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret",
                                      sendgrid_api_key=sandbox.sendgrid.api_key, sendgrid_api_host=sandbox.sendgrid_host,
                                      sendgrid_from_email="reminders@example.com"), db=sqlite_db)
    app.config["TESTING"] = True
    seed(sqlite_db)
    b = browser(app, sqlite_db, "owner@example.com")
    before = len(sandbox.sendgrid.messages)
    page = b.post(f"{CHANNELS}/test", follow_redirects=True).get_data(as_text=True)
    assert "A test message was sent to owner@example.com." in page
    assert len(sandbox.sendgrid.messages) == before + 1
    assert "Test message from qbo-collector" in str(sandbox.sendgrid.messages[-1])
