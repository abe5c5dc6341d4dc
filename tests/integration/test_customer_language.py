"""The language of a customer's reminders, end to end: chosen from the customer's country in
QuickBooks unless a person picks one on the customer page, and used by the next email."""

from __future__ import annotations

import html
import logging

import pytest
from sqlalchemy import select

from qbo_collector import snapshot
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import Browser, browser

OWNER = "owner@maple.example"


@pytest.fixture
def env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, sqlite_db,
                    policy=ds.every_day_policy(min_gap_days=0))
    yield made
    ds.stop([made])


def _browser(env, email: str, role: str = "owner", language: str = "en") -> Browser:  # type: ignore[no-untyped-def]
    return browser(env.web.app, env.db, email, role=role, realm=env.realm, language=language)


def _reminded(env) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Customer id → the first word of the last email reminder sent to them."""
    rows = {str(r.id): r.customer_qbo_id for r in env.rows(kind="reminder", channel="email")}
    return {rows[m["custom_args"]["outbox_id"]]: m["text"].split()[0] for m in env.sb.sendgrid.messages
            if m["custom_args"].get("outbox_id") in rows}


def _customer(env, customer_id: str) -> models.Customer:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        row = s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id))
        s.expunge(row)
        return row


def test_a_customer_in_france_of_a_us_company_reads_french_and_a_person_can_choose(env, caplog) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    plan = ds.dispatch.plan_company(env.settings, env.db, realm, on=env.now_at(12).date())
    due = sorted({r.customer_id for r in plan if r.kind == "reminder" and r.channel == "email"})
    french_one, chosen_one = due[0], due[1]
    row = sb.intuit.get(realm, "Customer", french_one)
    sb.intuit.update(realm, "Customer", french_one, BillAddr={**row["BillAddr"], "Country": "France"})
    env.sync()
    owner = _browser(env, "boss@maple.example")
    path = f"/companies/{realm}/customers/{chosen_one}"
    page = owner.get(f"/companies/{realm}/customers/{french_one}").get_data(as_text=True)
    assert "Language of the reminders: French" in page and "from the customer's country (France)" in page

    # A person writes to the other customer in French; a value not offered is refused, nothing changes.
    with caplog.at_level(logging.INFO, logger="web.pages.customers"):
        refused = owner.post(f"{path}/language", {"language": "de"})
    assert refused.status_code == 400 and "Choose one of the listed languages." in refused.get_data(as_text=True)
    assert _customer(env, chosen_one).language is None
    assert any("language refused" in r.getMessage() and "field=language" in r.getMessage() for r in caplog.records)
    saved = html.unescape(owner.post(f"{path}/language", {"language": "fr"}, follow_redirects=True).get_data(as_text=True))
    assert "The language of this customer's reminders is saved." in saved
    assert "Reminders written in French from now on." in saved and "Chosen here." in saved
    assert _customer(env, chosen_one).language == "fr"

    env.run()
    words = _reminded(env)
    assert words[french_one] == "Bonjour" and words[chosen_one] == "Bonjour"
    assert {w for c, w in words.items() if c not in (french_one, chosen_one)} == {"Hello"}

    # Back to automatic: the customer's country (the US company's own) gives English again.
    assert owner.post(f"{path}/language", {"language": ""}).status_code == 302
    customer = _customer(env, chosen_one)
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        assert customer.language is None and snapshot.language_choice(company, customer)[:2] == ("en", "company")
        lines = [(a.message_key, a.data.get("user_id") is not None) for a in s.scalars(
            select(models.Activity).where(models.Activity.kind == "language.set").order_by(models.Activity.id))]
    assert lines == [("language.set", True), ("language.auto", True)]
    french_page = _browser(env, "patron@maple.example", language="fr").get(path).get_data(as_text=True)
    assert "Relances rédigées en français désormais." in french_page
    assert "Langue des relances\u00a0: anglais" in french_page


def test_only_an_owner_of_the_company_may_choose_it(env) -> None:  # type: ignore[no-untyped-def]
    customer_id = next(iter(env.sb.intuit.entities(env.realm, "Customer")))["Id"]
    path = f"/companies/{env.realm}/customers/{customer_id}/language"
    viewer = _browser(env, "viewer@maple.example", role="viewer")
    assert viewer.post(path, {"language": "fr"}).status_code == 403
    owner = _browser(env, "boss@maple.example")
    assert owner.client.post(path, data={"language": "fr"}).status_code == 400  # no CSRF token
    assert owner.post(f"/companies/999/customers/{customer_id}/language", {"language": "fr"}).status_code == 404
    assert _customer(env, customer_id).language is None
