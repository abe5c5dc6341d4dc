"""Lifting a bounce by hand on the customer page: SendGrid's bounce list first (through the real
library, against the sandbox, which drops email to listed addresses as SendGrid does), then here.

A customer's own wish (spam report, unsubscribe) is not liftable; a failure at SendGrid changes
nothing; other companies' customers with the same address keep their stop.
"""

from __future__ import annotations

import html
import logging

import pytest
from sqlalchemy import func, select

from qbo_collector.db import models
from qbo_collector.dispatch import run as dispatch_run
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import Browser, browser

OWNER_EMAIL = "owner@maple.example"


@pytest.fixture
def env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    e = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, db)
    yield e
    e.web.stop()


def _browser(env, email: str, role: str = "owner", language: str = "en") -> Browser:  # type: ignore[no-untyped-def]
    return browser(env.web.app, env.db, email, role=role, realm=env.realm, language=language)


def _bounced(env, event: str = "bounce") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Send the day's reminders, then make one customer's address bounce (or report spam): (customer id, address)."""
    env.run()
    env.flush()
    message = next(m for m in env.sb.sendgrid.messages if m["to"] != OWNER_EMAIL)
    if event == "bounce":
        env.sb.sendgrid.emit(message["message_id"], "bounce", email=message["to"], type="bounce",
                             reason="550 5.2.2 mailbox full", status="5.2.2")
    else:
        env.sb.sendgrid.spamreport(message["message_id"])
    env.flush()
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.email == message["to"]))
        assert customer.email_stopped == ("bounce" if event == "bounce" else "spamreport")
        return customer.qbo_id, message["to"].lower()


def _path(env, customer_id: str) -> str:  # type: ignore[no-untyped-def]
    return f"/companies/{env.realm}/customers/{customer_id}"


def _state(env, address: str) -> tuple[list[tuple[str, str | None]], list[str]]:  # type: ignore[no-untyped-def]
    """Every customer with ``address`` (company realm, flag) and the email blocks left."""
    with env.db.session() as s:
        customers = [(realm, flag) for realm, flag in s.execute(
            select(models.Company.realm_id, models.Customer.email_stopped).join(
                models.Company, models.Company.id == models.Customer.company_id)
            .where(func.lower(models.Customer.email) == address).order_by(models.Company.realm_id, models.Customer.qbo_id))]
        blocks = list(s.scalars(select(models.ContactBlock.reason).where(models.ContactBlock.channel == "email")))
    return customers, blocks


def _resumed_lines(env) -> list[tuple[str, dict]]:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        return [(a.customer_qbo_id, a.data) for a in s.scalars(
            select(models.Activity).where(models.Activity.kind == "email.resumed").order_by(models.Activity.id))]


def _suppression_calls(env) -> int:  # type: ignore[no-untyped-def]
    return env.sb.log.count("sendgrid", "suppression/bounces")


def _next_email_events(env, address: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """Run the following days until a reminder goes to ``address``; SendGrid's events for it."""
    before = {m["message_id"] for m in env.sb.sendgrid.messages}
    for day in range(1, 15):
        env.run(now=env.now_at(12, days=day))
        new = [m for m in env.sb.sendgrid.messages if m["message_id"] not in before and m["to"].lower() == address]
        if new:
            env.flush()
            return [e for e in env.sb.sendgrid.events if e["sg_message_id"].startswith(new[0]["message_id"])]
    raise AssertionError(f"no reminder to {address} in two weeks")


def test_the_owner_resumes_email_after_a_bounce_and_the_next_reminder_is_delivered(env) -> None:  # type: ignore[no-untyped-def]
    customer_id, address = _bounced(env)
    # A second customer of this company shares the address; a customer of another company too.
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        twin = s.scalar(select(models.Customer).where(models.Customer.company_id == company.id,
                                                      models.Customer.qbo_id != customer_id,
                                                      models.Customer.email.is_not(None)).order_by(models.Customer.qbo_id))
        twin.email, twin.email_stopped, twin_id = address.upper(), "bounce", twin.qbo_id
        other = models.Company(realm_id="999", name="Another company", currency="USD", timezone="America/Chicago")
        s.add(other)
        s.flush()
        s.add(models.Customer(company_id=other.id, qbo_id="1", display_name="Same mailbox", email=address,
                              email_stopped="bounce"))
    assert env.sb.sendgrid.suppressed(address) == "bounces"

    owner = _browser(env, "boss@maple.example")
    page = html.unescape(owner.get(_path(env, customer_id)).get_data(as_text=True))
    assert "Email stopped" in page and f"Email to {address} is stopped: bounced back." in page
    assert "The mailbox works again: resume email" in page
    french = html.unescape(_browser(env, "patron@maple.example", language="fr").get(_path(env, customer_id))
                           .get_data(as_text=True))
    assert f"Les e-mails à {address} sont arrêtés : rejeté (adresse en échec)." in french.replace("\u202f", " ")
    assert "La boîte fonctionne de nouveau : reprendre les e-mails" in french.replace("\u202f", " ")
    viewer = _browser(env, "viewer@maple.example", role="viewer")
    assert "The mailbox works again" not in viewer.get(_path(env, customer_id)).get_data(as_text=True)
    assert viewer.post(f"{_path(env, customer_id)}/resume_email").status_code == 403
    assert owner.client.post(f"{_path(env, customer_id)}/resume_email").status_code == 400  # no CSRF token
    assert owner.post(f"/companies/999/customers/1/resume_email").status_code == 404  # not their company
    assert _state(env, address)[1] == ["bounce"] and _suppression_calls(env) == 0

    answer = owner.post(f"{_path(env, customer_id)}/resume_email", follow_redirects=True)
    assert answer.status_code == 200 and "Email to this customer resumes." in answer.get_data(as_text=True)
    assert env.sb.sendgrid.suppressed(address) is None
    assert _state(env, address) == ([(env.realm, None), (env.realm, None), ("999", "bounce")], [])
    with env.db.session() as s:
        boss = s.scalar(select(models.User.id).where(models.User.email == "boss@maple.example"))
    assert _resumed_lines(env) == [(cid, {"user_id": boss}) for cid in sorted([customer_id, twin_id])]
    page = html.unescape(owner.get(_path(env, customer_id)).get_data(as_text=True))
    assert "Email stopped" not in page and "was lifted by hand: reminders by email resume." in page

    # A second click (another tab): nothing to lift, nothing asked of SendGrid, no second line.
    calls = _suppression_calls(env)
    again = owner.post(f"{_path(env, customer_id)}/resume_email", follow_redirects=True)
    assert "Email to this customer is not stopped." in again.get_data(as_text=True)
    assert _suppression_calls(env) == calls and len(_resumed_lines(env)) == 2

    # The next reminder to the address goes out and is delivered, not dropped.
    assert [e["event"] for e in _next_email_events(env, address)] == ["processed", "delivered"]


def test_without_sendgrid_lifted_the_next_email_would_be_dropped(env) -> None:  # type: ignore[no-untyped-def]
    """Why the button calls SendGrid: an address unblocked only here is still on SendGrid's list,
    and the next email to it is dropped — and stopped again."""
    customer_id, address = _bounced(env)
    with env.db.session() as s:
        s.execute(models.ContactBlock.__table__.delete())
        s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id)).email_stopped = None
    assert [(e["event"], e.get("reason")) for e in _next_email_events(env, address)] == [("dropped", "Bounced Address")]
    assert _state(env, address) == ([(env.realm, "bounce")], ["bounce"])


def test_a_spam_report_is_the_customers_wish_and_cannot_be_lifted(env, caplog) -> None:  # type: ignore[no-untyped-def]
    customer_id, address = _bounced(env, "spamreport")
    owner = _browser(env, "boss@maple.example")
    page = html.unescape(owner.get(_path(env, customer_id)).get_data(as_text=True))
    assert "reported as spam" in page and "The customer asked for it: only they can undo it." in page
    assert "The mailbox works again" not in page
    with caplog.at_level(logging.INFO, logger="web.pages.customers"):
        answer = owner.post(f"{_path(env, customer_id)}/resume_email", follow_redirects=True)
    assert "only they can undo it. To write to them again" in html.unescape(answer.get_data(as_text=True))
    assert "resume_email refused" in caplog.text
    assert _state(env, address) == ([(env.realm, "spamreport")], ["spamreport"])
    assert env.sb.sendgrid.suppressed(address) == "spam_reports" and _suppression_calls(env) == 0
    assert _resumed_lines(env) == []


@pytest.mark.parametrize(("fault", "said"), [
    ("scope", "the API key needs the Suppressions permission. Nothing was changed."),
    ("500", "SendGrid could not be reached to take the address off its bounce list. Nothing was changed"),
    ("key", "SendGrid refused to take the address off its bounce list: SendGrid refused the API key (HTTP 401"),
], ids=["a key restricted to Mail Send", "SendGrid answers 500", "a revoked key"])
def test_when_sendgrid_refuses_nothing_changes_and_the_person_is_told_why(env, caplog, fault, said) -> None:  # type: ignore[no-untyped-def]
    customer_id, address = _bounced(env)
    key = env.sb.sendgrid.api_key
    if fault == "scope":
        env.sb.sendgrid.scopes[key] = {"mail.send"}
    elif fault == "500":
        env.sb.sendgrid_faults.force_500 = 1
    else:
        env.sb.sendgrid.api_keys = {"SG.another.key"}
    owner = _browser(env, "boss@maple.example")
    with caplog.at_level(logging.WARNING, logger="web.pages.customers"):
        answer = owner.post(f"{_path(env, customer_id)}/resume_email", follow_redirects=True)
    assert said in html.unescape(answer.get_data(as_text=True))
    assert "resume_email failed" in caplog.text and key not in caplog.text
    assert _state(env, address) == ([(env.realm, "bounce")], ["bounce"])
    assert env.sb.sendgrid.suppressed(address) == "bounces" and _resumed_lines(env) == []
    # once SendGrid takes it, the same button works
    env.sb.sendgrid.scopes.clear()
    env.sb.sendgrid.api_keys = {key}
    owner.post(f"{_path(env, customer_id)}/resume_email")
    assert _state(env, address) == ([(env.realm, None)], []) and env.sb.sendgrid.suppressed(address) is None


def test_without_a_sendgrid_key_the_stop_is_lifted_here_only(sandbox_factory, settings_factory, sqlite_db) -> None:  # type: ignore[no-untyped-def]
    env = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, sqlite_db, email=False)
    try:
        with env.db.session() as s:
            customer = s.scalar(select(models.Customer).where(models.Customer.email.is_not(None))
                                .order_by(models.Customer.qbo_id))
            customer_id, address = customer.qbo_id, customer.email.lower()
            dispatch_run.block_contact(s, "email", address, "invalid")
        owner = _browser(env, "boss@maple.example")
        answer = owner.post(f"{_path(env, customer_id)}/resume_email", follow_redirects=True)
        assert "Email to this customer resumes." in answer.get_data(as_text=True)
        assert _state(env, address)[1] == [] and env.sb.log.count("sendgrid") == 0
        assert [cid for cid, _ in _resumed_lines(env)] == [customer_id]
    finally:
        env.web.stop()


def test_with_several_addresses_only_the_bounced_one_is_taken_off_sendgrids_list(env) -> None:  # type: ignore[no-untyped-def]
    customer_id, address = _bounced(env)
    with env.db.session() as s:  # QuickBooks holds two addresses for the customer; only the old one bounced
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id))
        customer.email, customer.email_stopped = f"ap@dubois.example, {address}", None
    owner = _browser(env, "boss@maple.example")
    page = html.unescape(owner.get(_path(env, customer_id)).get_data(as_text=True))
    assert f"Email to {address} is stopped: bounced back." in page
    owner.post(f"{_path(env, customer_id)}/resume_email")
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in env.sb.log.entries()
            if r.endpoint.startswith("suppression/")] == [("DELETE", address)]
    assert _state(env, address)[1] == [] and [cid for cid, _ in _resumed_lines(env)] == [customer_id]


def test_the_channels_test_send_warns_when_the_key_cannot_lift_bounces(env) -> None:  # type: ignore[no-untyped-def]
    owner = _browser(env, "boss@maple.example")
    path = f"/companies/{env.realm}/channels/test"
    warning = "this SendGrid key may not take an address off its bounce list"
    page = owner.post(path, follow_redirects=True).get_data(as_text=True)
    assert "A test message was sent to owner@maple.example." in page and warning not in page
    env.sb.sendgrid.scopes[env.sb.sendgrid.api_key] = {"mail.send"}  # a key made for Mail Send only
    page = html.unescape(owner.post(path, follow_redirects=True).get_data(as_text=True))
    assert "A test message was sent to owner@maple.example." in page and warning in page
    assert [m["to"] for m in env.sb.sendgrid.messages] == ["owner@maple.example"] * 2
    assert env.sb.log.count("sendgrid", "scopes") == 2


@pytest.mark.parametrize(("reason", "said", "how"), [
    ("stop", "Texts to +14155550142 are stopped: STOP.", "only their START reply lifts it"),
    ("21610", "Texts to +14155550142 are stopped: opted out at the carrier (Twilio 21610).",
     "only their START reply lifts it"),
    ("landline", "Texts to +14155550142 are stopped: landline.", "Correct the number in QuickBooks"),
], ids=["a STOP reply", "opted out at the carrier", "a landline"])
def test_the_customer_page_says_why_texts_are_stopped_and_what_lifts_it(env, reason, said, how) -> None:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).order_by(models.Customer.qbo_id))
        customer.mobile, customer.sms_stopped, customer_id = "(415) 555-0142", reason, customer.qbo_id
    page = html.unescape(_browser(env, "boss@maple.example").get(_path(env, customer_id)).get_data(as_text=True))
    assert "Texts stopped" in page and said in page and how in page
    with env.db.session() as s:
        s.scalar(select(models.Customer).where(models.Customer.qbo_id == customer_id)).sms_stopped = None
    assert "Texts stopped" not in _browser(env, "other@maple.example").get(_path(env, customer_id)).get_data(as_text=True)
