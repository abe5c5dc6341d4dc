"""Owner alerts read in the company's language: the email's subject and body and the owner's text message,
sent through the SendGrid and Twilio stand-ins by the real daily run. The rules engine writes its reasons in
English; a French owner reads them told from the alert's figures, an English owner exactly as the engine wrote them.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import casework
from qbo_collector.db import models
from qbo_collector.sandbox import server
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser

FRENCH = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                            language="fr", customers=10, invoices=35, payments=10, seed=12)
OWNER_EMAIL, OWNER_PHONE = "owner@maple.example", "+33612345678"
# Words of the rules engine's English reasons (planner.py) and of the English alert sentences.
ENGLISH = ("became late", "was due on", "the policy asks you", "follow up with", "cannot be reached",
           "contact them another way", "promised to pay", "reminders resume", "missed instalment", "Invoice ",
           "invoice ", "Step ", "needs to be reconnected", "Nothing is sent until")
FRENCH_DATE = re.compile(r"\d{1,2} (janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.? 20\d\d")


@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = []

    def make(spec: server.CompanySpec, **kwargs: Any) -> ds.Env:
        env = ds.build(sandbox_factory(companies=[spec]), settings_factory, sqlite_db,
                       company_settings={"owner_phone": OWNER_PHONE}, **kwargs)
        with env.db.session() as s:
            s.scalar(select(models.Company)).language = spec.language
        made.append(env)
        return env

    yield make
    ds.stop(made)


def _alerting_policy() -> dict[str, Any]:
    """Firm, any day, owner alerted when an invoice becomes late and asked to follow the second step up himself."""
    data = ds.every_day_policy("firm")
    data["steps"][1] = {**data["steps"][1], "channels": ["email", "owner_alert"]}
    return data


def _break_a_promise(env: ds.Env) -> None:
    """A promise made ten days ago for five days ago, not kept: the engine alerts the owner."""
    today = env.now_at(12).date()
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        invoice = s.scalars(select(models.Invoice).where(
            models.Invoice.status == models.InvoiceStatus.open, models.Invoice.balance > 0,
            models.Invoice.due_date < today).order_by(models.Invoice.qbo_id)).first()
        casework.promise(s, company, invoice.customer_qbo_id, until=today - dt.timedelta(days=5),
                         amount=str(invoice.balance), invoice_ids=[invoice.qbo_id], on=today - dt.timedelta(days=10))


def _sent_to_owner(env: ds.Env) -> tuple[list[models.Outbox], list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [r for r in env.rows(kind="alert") if r.status.value == "sent"]
    mails = [m for m in env.sb.sendgrid.messages if m["to"] == OWNER_EMAIL]
    texts = [m for m in env.sb.twilio.messages if m["to"] == OWNER_PHONE]
    # everything one run tells the owner is one email and one text
    assert len(mails) == (1 if any(r.channel == "owner_email" for r in rows) else 0)
    assert len(texts) == (1 if any(r.channel == "owner_sms" for r in rows) else 0)
    return rows, mails, texts


def test_a_french_company_owner_reads_the_engine_alerts_in_french(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(FRENCH, policy=_alerting_policy())
    _break_a_promise(env)
    summary = env.run()
    assert summary.ok, summary.errors
    rows, mails, texts = _sent_to_owner(env)
    assert {"late", "step", "promise_broken"} <= {r.payload["topic"] for r in rows}
    assert all(r.reason_key is None and r.reason for r in rows)  # the engine's English stays in the row
    for part in [m[k] for m in mails for k in ("subject", "text", "html")] + [t["body"] for t in texts]:
        for english in ENGLISH:
            assert english not in part, (english, part)
    [mail] = mails
    told = [r for r in rows if r.channel == "owner_email"]
    assert mail["subject"].startswith(f"[Boulangerie Martin] {len(told)} alertes : "), mail["subject"]
    assert mail["text"].startswith(f"Bonjour,\n\n{len(told)} points demandent votre attention :\n\n- ")
    assert mail["text"].count("\n- ") == len(told) and mail["html"].count("<li>") == len(told)
    assert "est passée en retard" in mail["text"] and "la politique vous demande de relancer" in mail["text"]
    assert FRENCH_DATE.search(mail["text"]), mail["text"]
    assert re.search(r"payer [\d\s,]+€ d’ici le \d", mail["text"]), mail["text"]
    assert "les relances reprennent à l’étape suivante" in mail["text"]
    [text] = texts
    assert text["body"].startswith(f"Boulangerie Martin : {len(told)} alertes pour vous ; la première : ")


def test_a_french_owner_reads_the_reconnect_alert_in_french(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(FRENCH)
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        company.status = models.CompanyStatus.needs_reconnect
        company.status_reason = "Intuit refused the grant (invalid_grant)."
    # alerts.reconnect_needed queues the alert, due at the wall clock's now (the run's "now" is later)
    env.run(now=env.now_at(12, days=1))
    rows, mails, texts = _sent_to_owner(env)
    assert {(r.reason_key, r.payload["topic"]) for r in rows} == {("alert.reconnect", "reconnect")}
    assert all(r.reason.startswith("QuickBooks needs to be reconnected for Boulangerie Martin") for r in rows)
    assert len(mails) == 1 and len(texts) == 1
    mail, text = mails[0], texts[0]
    assert mail["subject"].startswith("[Boulangerie Martin] QuickBooks doit être reconnecté pour Boulangerie Martin")
    assert "Rien n’est envoyé tant" in mail["text"] and "Rien n’est envoyé tant" in mail["html"]
    assert "QuickBooks doit être reconnecté" in text["body"]
    for part in (mail["subject"], mail["text"], mail["html"], text["body"]):
        assert "needs to be reconnected" not in part and "Nothing is sent" not in part


def test_an_english_company_owner_reads_the_engine_reasons_as_before(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(ds.SMALL, policy=_alerting_policy())
    _break_a_promise(env)
    assert env.run().ok
    rows, mails, texts = _sent_to_owner(env)
    assert {"late", "step", "promise_broken"} <= {r.payload["topic"] for r in rows}
    [mail] = mails
    told = [r for r in rows if r.channel == "owner_email"]
    # the most pressing first (the broken promise before the steps and the late invoices): it leads the
    # message, whose events settle all of them
    [lead] = [r for r in told if str(r.id) == mail["custom_args"]["outbox_id"]]
    assert lead.payload["topic"] == "promise_broken"
    assert mail["text"].startswith(f"Hello,\n\n{len(told)} things need your attention:\n\n- {lead.reason}\n")
    for row in told:  # each as the engine wrote it, on its own line, with where to act
        assert f"\n- {row.reason}\n" in mail["text"], row.reason
        assert f"<li><strong>{row.reason}</strong>" in mail["html"].replace("&#39;", "'")
        assert row.provider_id in (lead.provider_id, f"with:{lead.id}") and row.status.value == "sent"
    assert mail["subject"].startswith(f"[Sandbox Company US] {len(told)} alerts: {lead.reason[:40]}")
    assert mail["text"].count("See the details: ") >= len(told) - 1
    for text in texts:  # a French mobile: the text waits for daytime in Paris when the run is at noon in the US
        texted = [r for r in rows if r.channel == "owner_sms"]
        first = next(r for r in texted if r.payload["topic"] == "promise_broken")
        assert text["body"].startswith(f"Sandbox Company US: {len(texted)} alerts for you, the first: "
                                       f"{first.reason[:60]}")


def test_an_owner_alert_template_edited_without_its_list_sends_one_email_per_alert(make_env) -> None:  # type: ignore[no-untyped-def]
    """The owner's own alert template names only ``alert``: a merged email would tell the first alert and
    hide the others, so each alert goes in its own email, in that template, as before."""
    env = make_env(ds.SMALL, policy=_alerting_policy())
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        company.settings = {**(company.settings or {}), "templates": {"en": {"owner_alert": {
            "subject": "Heads up: {{ alert|truncate(60) }}", "text": "{{ alert }}", "html": "<p>{{ alert }}</p>",
            "sms": "{{ alert|truncate(100) }}"}}}}
    _break_a_promise(env)
    assert env.run().ok
    told = [r for r in env.rows(kind="alert") if r.status.value == "sent" and r.channel == "owner_email"]
    mails = [m for m in env.sb.sendgrid.messages if m["to"] == OWNER_EMAIL]
    assert len(told) > 1 and len(mails) == len(told)
    assert {m["text"].strip() for m in mails} == {r.reason for r in told}
    assert all(m["subject"].startswith("Heads up: ") for m in mails)
    # the templates page says why, in the reader's language; the shipped text of another key says nothing
    for language, said in (("en", "This edited template does not use {{ alerts }}: the alerts of a run go out "
                                  "one message each, not as one."),
                           ("fr", "Ce modèle modifié n’utilise pas {{ alerts }}\u00a0: les alertes d’un passage "
                                  "partent chacune dans son message, pas en un seul.")):
        reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=env.realm, language=language)
        page = reader.get(f"/companies/{env.realm}/templates?key=owner_alert&language=en").get_data(as_text=True)
        assert html.escape(said, quote=False) in page, language
        other = reader.get(f"/companies/{env.realm}/templates?key=late_fee_notice&language=en").get_data(as_text=True)
        assert 'id="told-apart"' not in other
