"""The owner's tour in a real browser: log in, connect through the consent page, policy, template, promise, dashboard.

Tests run in file order and share one logged-in page (module scope), like one person's visit.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from calendar import monthrange
from decimal import Decimal

import pytest
from babel.dates import format_date
from babel.numbers import format_currency
from playwright.sync_api import expect

from qbo_collector.db.secrets import Vault
from qbo_collector.sync import run as sync_run
from tests.browser.conftest import EMAIL, PASSWORD, Site, shot

pytestmark = pytest.mark.browser


def _realm(site: Site) -> str:
    return site.realms["fr"]


def test_log_in(page, site: Site) -> None:
    page.goto(f"{site.url}/companies")
    assert "/login" in page.url
    shot(page, "01-login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", "wrong password!!")
    page.click("button[type=submit]")
    assert page.get_by_text("Wrong email or password").is_visible()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/companies$"))
    assert page.get_by_role("heading", name="Your QuickBooks companies").is_visible()


def test_connect_a_sandbox_company_through_the_consent_page(page, site: Site) -> None:
    page.get_by_role("button", name="Connect to QuickBooks").click()
    page.wait_for_url(re.compile(re.escape(site.sandbox.url) + ".*"))
    assert page.get_by_role("heading", name="Connect your QuickBooks company").is_visible()
    shot(page, "02-intuit-consent")
    page.select_option("select#realm", _realm(site))
    page.get_by_role("button", name="Connect", exact=True).click()
    page.wait_for_url(re.compile(r".*/companies$"))
    assert page.get_by_text("“Boulangerie Martin SARL” is connected").is_visible()
    summary = sync_run.sync_company(site.settings, site.db, Vault(site.settings.secret_key()), _realm(site), full=True)
    assert summary.ok, summary.errors
    page.reload()
    row = page.locator("tr", has_text="Boulangerie Martin SARL")
    assert row.get_by_text("Connected").is_visible()
    assert "never" not in row.inner_text()
    shot(page, "03-companies")


def _one_month_of_interest(*, grace_days: int) -> tuple[dt.date, Decimal]:
    """The page's sample (EUR 1,000 unpaid 90 days, France B2B: ECB 2.15 % + 10 points a year, billed
    by calendar month from the day after the grace) on today's date in Paris: the one period ended by
    then, its first day and its interest."""
    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).date()
    start = today - dt.timedelta(days=90 - grace_days - 1)
    month, year = (start.month % 12) + 1, start.year + (start.month == 12)
    end = dt.date(year, month, min(start.day, monthrange(year, month)[1]))
    interest = (Decimal(1000) * Decimal("0.1215") * (end - start).days / 365).quantize(Decimal("0.01"))
    return start, interest


def test_edit_the_policy(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/policy")
    page.select_option("select#preset", "france_b2b")
    page.get_by_role("button", name="Load").click()
    page.fill("input[name='steps.0.offset_days']", "soon")
    page.get_by_role("button", name="Save the policy").click()
    assert page.locator("#steps-0-offset_days-error").inner_text() == "Enter a whole number."
    assert page.get_by_text("The policy was not saved").is_visible()
    page.fill("input[name='steps.0.offset_days']", "-5")
    example = page.locator("#example")
    expect(example).to_contain_text("Recovery indemnity")
    # the example follows the form as it is typed (no click): 40 days of grace leave one month of interest
    page.fill("input[name='late_fees.grace_days']", "40")
    start, interest = _one_month_of_interest(grace_days=40)
    expect(example).to_contain_text(f"period from {format_date(start, 'medium', locale='en')}")
    expect(example).to_contain_text(format_currency(Decimal(40) + interest, "EUR", locale="en"))
    page.fill("input[name='late_fees.grace_days']", "3")
    page.get_by_role("button", name="Update the example").click()
    assert "Recovery indemnity" in example.inner_text() and "€40.00" in example.inner_text()
    page.get_by_role("button", name="Save the policy").click()
    assert page.get_by_text("The policy is saved").is_visible()
    assert page.locator("input[name='steps.0.offset_days']").input_value() == "-5"
    assert page.locator("input[name='late_fees.grace_days']").input_value() == "3"
    shot(page, "04-policy")


def test_preview_a_template(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/templates?key=reminder_overdue_gentle&language=fr")
    customer = page.locator("select[name=customer] option").first.inner_text().strip()
    page.fill("#part-subject", "{{ customer_name }} : facture {{ invoice.number }}")
    page.get_by_role("button", name="Preview", exact=True).click()
    preview = page.locator("#preview")
    assert f"{customer} : facture" in preview.inner_text()
    page.fill("#part-text", "Bonjour {{ customer_name }},\n{% if invoice %}\nMerci.")
    page.get_by_role("button", name="Save", exact=True).click()
    assert "Line" in page.locator("#text-error").inner_text()
    shot(page, "05-templates-error")
    page.goto(f"{site.url}/companies/{_realm(site)}/templates?key=reminder_overdue_gentle&language=fr")  # nothing saved
    assert "{% if invoice %}\nMerci." not in page.locator("#part-text").input_value()
    page.get_by_role("button", name="Preview", exact=True).click()
    shot(page, "05-templates")


def _customer_rows(page, name: str) -> int:  # type: ignore[no-untyped-def]
    return page.locator("table.calendar tr", has_text=name).count()


def test_record_a_promise_and_see_the_calendar_change(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/upcoming")
    shot(page, "06-upcoming-before")
    first = page.locator("table.calendar tr.k-reminder a").first
    name = first.inner_text().strip()
    before = _customer_rows(page, name)
    assert before > 0
    first.click()
    page.wait_for_url(re.compile(r".*/customers/.+"))
    page.locator("summary", has_text="Promise to pay").click()
    form = page.locator("#promise form")
    form.locator("input[name=amount]").fill("-3")
    form.get_by_role("button", name="Record the promise").click()
    assert page.locator("#promise-until-error").is_visible() or page.locator("#promise-amount-error").is_visible()
    until = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    form = page.locator("#promise form")
    form.locator("input[name=until]").fill(until)
    form.locator("input[name=amount]").fill("100")
    form.locator("textarea[name=note]").fill("Appel du 23 : paiement promis")
    form.get_by_role("button", name="Record the promise").click()
    assert page.get_by_text("The promise to pay is recorded").is_visible()
    assert page.locator(".pill.promised").first.is_visible()
    assert page.locator("ol.timeline").get_by_text("Promise to pay").first.is_visible()
    shot(page, "07-customer")
    page.goto(f"{site.url}/companies/{_realm(site)}/upcoming")
    after = _customer_rows(page, name)
    assert after < before, (name, before, after)
    shot(page, "08-upcoming-after")


def test_the_dashboard(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/dashboard")
    assert page.get_by_role("heading", name="Where the money stands").is_visible()
    assert page.locator("figure.chart svg").count() >= 3
    assert page.get_by_text("DSO = receivables ÷ credit sales").is_visible()
    page.fill("#dso_target", "many")
    page.get_by_role("button", name="Save target").click()
    assert page.locator("#dso_target-error").is_visible()
    page.fill("#dso_target", "45")
    page.get_by_role("button", name="Save target").click()
    assert page.get_by_text("The DSO target is saved.").is_visible()
    shot(page, "09-dashboard")
    page.goto(f"{site.url}/companies/{_realm(site)}/customers")
    shot(page, "10-customers")

def test_channels_and_a_test_send(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/channels")
    page.fill("#owner_email", "not an address")
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.locator("#owner_email-error").is_visible()
    page.fill("#owner_email", "martin@boulangerie.example")
    page.fill("#sender_name", "Boulangerie Martin")
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_text("The channel settings are saved.").is_visible()
    before = len(site.sandbox.sendgrid.messages)
    page.get_by_role("button", name="Send a test").click()
    assert page.get_by_text("A test message was sent to martin@boulangerie.example.").is_visible()
    assert len(site.sandbox.sendgrid.messages) == before + 1
    shot(page, "11-channels")


def test_the_pages_in_french(page, site: Site) -> None:
    page.goto(f"{site.url}/companies/{_realm(site)}/dashboard")
    page.get_by_role("button", name="Français").click()
    assert page.get_by_role("heading", name="Où en est l’argent").is_visible()
    assert page.locator("html").get_attribute("lang") == "fr"
    shot(page, "12-dashboard-fr")
    page.goto(f"{site.url}/companies/{_realm(site)}/upcoming")
    shot(page, "13-upcoming-fr")
    page.goto(f"{site.url}/companies/{_realm(site)}/policy")
    shot(page, "14-policy-fr")
    page.get_by_role("button", name="English").click()
    assert page.get_by_role("heading", name="Collection policy").is_visible()
