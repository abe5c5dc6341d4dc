"""The invoice PDF attached to email reminders: QuickBooks makes it (``GET /invoice/<id>/pdf``, through
python-quickbooks), SendGrid carries it (``attachments``), both over HTTP against the sandbox."""

from __future__ import annotations

import logging

import pytest

from sqlalchemy import select

from qbo_collector import dispatch, translation
from qbo_collector.db import models
from qbo_collector.dispatch import run as dispatch_run
from tests.integration import test_dispatch_support as ds
from tests.integration.test_dispatch_features import FRENCH, make_env  # noqa: F401 - the fixture


def _emails(env):  # type: ignore[no-untyped-def]
    """Outbox id → the message SendGrid took, for the reminders to customers."""
    return {int(m["custom_args"]["outbox_id"]): m for m in env.sb.sendgrid.messages
            if m["to"] != "owner@maple.example"}


def _named(env) -> set[str]:  # type: ignore[no-untyped-def]
    """The invoices the customer emails of the run named and asked a PDF for (at most the cap each):
    each is downloaded once in the run while it does not change (the default fee mode leaves it as is)."""
    return {i for r in env.rows(kind="reminder", channel="email") if r.status.value == "sent"
            for i in (r.invoice_ids or [])[:dispatch_run.PDF_ATTACH_MAX]}


def _numbers(env, ids):  # type: ignore[no-untyped-def]
    return [env.sb.intuit.get(env.realm, "Invoice", i).get("DocNumber") or i for i in ids]


def test_each_email_reminder_carries_the_pdf_of_its_invoice(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"attach_invoice_pdf": True})
    summary = env.run()
    sent = {r.id: r for r in env.rows(kind="reminder", channel="email") if r.status.value == "sent"}
    emails = _emails(env)
    assert sent and set(sent) <= set(emails)
    for outbox_id, row in sent.items():
        attachments = emails[outbox_id]["attachments"]
        numbers = _numbers(env, row.invoice_ids)
        assert [a["filename"] for a in attachments] == [f"Invoice-{n}.pdf" for n in numbers]
        for attached, number in zip(attachments, numbers):
            assert attached["type"] == "application/pdf" and attached["disposition"] == "attachment"
            # the very PDF QuickBooks made of that invoice, byte for byte
            assert attached["content"].startswith(b"%PDF-") and f"Invoice {number} ".encode() in attached["content"]
    attached = sum(len(emails[i]["attachments"]) for i in sent)
    assert summary.pdfs_attached == attached
    # one call per invoice: a reminder and a fee notice naming the same invoice share its PDF
    named = {a["filename"] for i in sent for a in emails[i]["attachments"]}
    assert env.sb.log.count("intuit", "pdf:invoice") == len(named) == len(_named(env))
    assert summary.pdfs_missing == 0 and summary.ok and not summary.warnings
    with env.db.session() as s:
        lines = {a.outbox_id: a for a in s.scalars(select(models.Activity).where(models.Activity.kind == "email.sent"))}
    assert all(lines[i].data["attachments"] == [a["filename"] for a in emails[i]["attachments"]] for i in sent)
    # texts never ask QuickBooks for a PDF: a second run sends nothing new and downloads nothing
    calls = env.sb.log.count("intuit", "pdf:invoice")
    env.run(now=env.now_at(13))
    assert env.sb.log.count("intuit", "pdf:invoice") == calls


def test_without_the_setting_nothing_is_attached_and_no_pdf_is_asked_for(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    summary = env.run()
    assert _emails(env) and all(not m["attachments"] for m in _emails(env).values())
    assert env.sb.log.count("intuit", "pdf:invoice") == 0 and summary.pdfs_attached == 0


def test_french_customers_get_a_facture(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(FRENCH, company_settings={"attach_invoice_pdf": True})
    with env.db.session() as s:
        s.scalar(select(models.Company)).language = "fr"
    env.run()
    by_word: dict[str, set[str]] = {}
    for m in _emails(env).values():
        by_word.setdefault(m["text"].split()[0], set()).update(a["filename"].split("-")[0] for a in m["attachments"])
    assert by_word["Bonjour"] == {"Facture"}  # the file is named in the email's language
    assert by_word.get("Hello", {"Invoice"}) <= {"Invoice"}  # a customer abroad reads English: an Invoice


def test_a_statement_attaches_at_most_the_cap_and_lists_the_rest(make_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(dispatch_run, "PDF_ATTACH_MAX", 2)
    env = make_env(company_settings={"attach_invoice_pdf": True}, policy=ds.every_day_policy(group_by_customer=True))
    summary = env.run()
    emails = _emails(env)
    big = [r for r in env.rows(kind="reminder", channel="email") if r.status.value == "sent" and len(r.invoice_ids) > 2]
    assert big, "the sandbox book has a customer with more than two open invoices"
    for row in big:
        message = emails[row.id]
        numbers = _numbers(env, row.invoice_ids)
        assert [a["filename"] for a in message["attachments"]] == [f"Invoice-{n}.pdf" for n in numbers[:2]]
        assert all(n in message["text"] for n in numbers)  # the others are in the statement's list
    assert summary.pdfs_missing == 0  # a cap is a choice, not a failure


def test_a_pdf_quickbooks_cannot_make_leaves_the_email_going_without_it(make_env, caplog) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"attach_invoice_pdf": True}, policy=ds.every_day_policy(group_by_customer=True))
    plan = dispatch.plan_company(env.settings, env.db, env.realm, on=env.now_at(12).date())
    statements = [a for a in plan if a.kind == "reminder" and a.channel == "email" and len(a.invoice_ids) > 1]
    assert statements
    broken = statements[0].invoice_ids[0]
    env.sb.broken_pdfs.add(broken)
    with caplog.at_level(logging.WARNING, logger="qbo_collector.dispatch.run"):
        summary = env.run()
    row = next(r for r in env.rows(kind="reminder", channel="email") if broken in (r.invoice_ids or ()))
    assert row.status.value == "sent"  # the reminder went, its other PDFs with it
    message = _emails(env)[row.id]
    number = _numbers(env, [broken])[0]
    names = [a["filename"] for a in message["attachments"]]
    assert f"Invoice-{number}.pdf" not in names and len(names) == len(row.invoice_ids) - 1
    # two tries (not the sync's six), once a run, then the email goes: the person reads why on the timeline
    assert env.sb.log.count("intuit", "pdf:invoice") == len(_named(env)) - 1 + dispatch_run.PDF_ATTEMPTS
    told = [r for r in env.rows(kind="reminder", channel="email") if broken in (r.invoice_ids or ())]
    assert summary.pdfs_missing == len(told) and summary.ok and not summary.problems
    assert f"{len(told)} invoice PDF(s) could not be attached" in summary.warnings[0]
    with env.db.session() as s:
        said = list(s.scalars(select(models.Activity).where(models.Activity.kind == "email.pdf_missing")))
    assert sorted(a.outbox_id for a in said) == sorted(r.id for r in told)
    missing = next(a for a in said if a.outbox_id == row.id)
    assert missing.customer_qbo_id == row.customer_qbo_id
    assert missing.message.startswith(f"Sent without the PDF of invoice {number}: QuickBooks did not make the PDF")
    assert missing.data == {"missing": {number: missing.message.split(": ", 1)[1]}}
    french = translation.reader("fr", "fr_FR").sentence(missing.message_key, missing.message_args, missing.message)
    assert french == f"Envoyé sans le PDF de la facture {number}\u00a0: QuickBooks n’a pas produit le PDF (il a " \
                     "répondu par une erreur, ou pas du tout)."
    assert any(f"invoice={broken}" in r.getMessage() and "did not make the PDF" in r.getMessage() for r in caplog.records)


def test_two_reasons_in_one_email_are_two_timeline_lines_each_in_the_readers_language(make_env) -> None:  # type: ignore[no-untyped-def]
    """One invoice's PDF fails (500), another's is refused (400, QuickBooks' own words): the email
    goes with the rest, and the timeline says why for each, translated around QuickBooks' words."""
    env = make_env(company_settings={"attach_invoice_pdf": True}, policy=ds.every_day_policy(group_by_customer=True))
    plan = dispatch.plan_company(env.settings, env.db, env.realm, on=env.now_at(12).date())
    statement = next(a for a in plan if a.kind == "reminder" and a.channel == "email" and len(a.invoice_ids) > 2)
    broken, refused = statement.invoice_ids[:2]
    env.sb.broken_pdfs.add(broken)
    env.sb.refused_pdfs[refused] = "The custom form of this invoice no longer exists."
    summary = env.run()
    assert summary.ok and summary.pdfs_missing >= 2
    row = next(r for r in env.rows(kind="reminder", channel="email") if r.invoice_ids == list(statement.invoice_ids))
    assert row.status.value == "sent" and len(_emails(env)[row.id]["attachments"]) == len(row.invoice_ids) - 2
    # each asked for once in the run: the failure twice (two tries), the refusal once (not retried)
    assert env.sb.log.count("intuit", "pdf:invoice") == len(_named(env)) - 2 + dispatch_run.PDF_ATTEMPTS + 1
    with env.db.session() as s:
        said = {next(iter(a.data["missing"])): a for a in s.scalars(select(models.Activity).where(
            models.Activity.kind == "email.pdf_missing", models.Activity.outbox_id == row.id))}
    number_broken, number_refused = _numbers(env, [broken, refused])
    assert set(said) == {number_broken, number_refused}
    refusal = said[number_refused]
    words = ("A business validation error has occurred while processing your request Business Validation Error: "
             "The custom form of this invoice no longer exists.")  # QuickBooks' Message and Detail
    assert refusal.message == f"Sent without the PDF of invoice {number_refused}: QuickBooks refused the PDF: {words}"
    french = translation.reader("fr", "fr_FR")
    assert french.sentence(refusal.message_key, refusal.message_args, refusal.message) == (
        f"Envoyé sans le PDF de la facture {number_refused}\u00a0: QuickBooks a refusé le PDF\u00a0: {words}")
    failure = said[number_broken]
    assert french.sentence(failure.message_key, failure.message_args, failure.message).startswith(
        f"Envoyé sans le PDF de la facture {number_broken}\u00a0: QuickBooks n’a pas produit le PDF")


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_a_reminder_and_a_fee_notice_of_one_run_share_the_pdf_of_an_unchanged_invoice(make_env, mode) -> None:  # type: ignore[no-untyped-def]
    """Back-charged fees (``fees_from`` a year ago) make the first run post fees, and each fee's
    notice names the invoice a reminder of the same run named. A fee posted as its own invoice leaves
    the original as it was: one download serves both emails. A fee added as a line changes the
    invoice (a new SyncToken): the notice carries the new PDF, with the fee in its total."""
    env = make_env(company_settings={"attach_invoice_pdf": True, "fees_from": "2025-01-01", "late_fee_mode": mode})
    summary = env.run()
    assert summary.ok, summary.problems
    emails = _emails(env)
    rows = {r.id: r for r in env.rows(kind="reminder", channel="email") if r.id in emails}
    notices = [r for r in rows.values() if r.template_key == "late_fee_notice"]
    reminded = {i for r in rows.values() if r.template_key != "late_fee_notice" for i in r.invoice_ids}
    shared = [r for r in notices if set(r.invoice_ids) & reminded]
    assert shared, "the book has invoices reminded and charged a fee in the same run"
    downloads = env.sb.log.count("intuit", "pdf:invoice")
    if mode == "invoice":  # one per invoice named, however many emails name it
        assert downloads == len({i for r in rows.values() for i in r.invoice_ids}) < summary.pdfs_attached
    else:  # the notice's invoice was changed by its fee line: downloaded again, with the fee in it
        assert downloads == summary.pdfs_attached
        for notice in shared:
            [invoice_id] = notice.invoice_ids
            reminder = next(r for r in rows.values() if r.template_key != "late_fee_notice" and invoice_id in r.invoice_ids)
            number = _numbers(env, [invoice_id])[0]
            before, after = (next(a["content"] for a in emails[r.id]["attachments"] if a["filename"] == f"Invoice-{number}.pdf")
                             for r in (reminder, notice))
            total = env.sb.intuit.get(env.realm, "Invoice", invoice_id)["TotalAmt"]
            assert before != after and f" {total})".encode() in after


def test_a_dry_run_names_the_pdfs_and_asks_quickbooks_for_none(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"attach_invoice_pdf": True})
    env.run(dry_run=True)
    previews = [r.payload["preview"] for r in env.rows(kind="reminder", channel="email") if r.status.value == "sent"]
    assert previews and all(p["attachments"] and all(n.startswith("Invoice-") for n in p["attachments"])
                            for p in previews)
    assert env.sb.log.count("intuit", "pdf:invoice") == 0 and not env.sb.sendgrid.messages


def test_pdfs_past_the_size_limit_are_left_off_that_email_only(make_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The sandbox's PDFs are about 600 bytes: with a limit of one and a half, each email carries one."""
    env = make_env(company_settings={"attach_invoice_pdf": True}, policy=ds.every_day_policy(group_by_customer=True))
    plan = dispatch.plan_company(env.settings, env.db, env.realm, on=env.now_at(12).date())
    assert any(len(a.invoice_ids) > 1 for a in plan if a.kind == "reminder" and a.channel == "email")
    monkeypatch.setattr(dispatch_run, "PDF_ATTACH_BYTES", 900)
    summary = env.run()
    emails = _emails(env)
    statements = [r for r in env.rows(kind="reminder", channel="email") if r.status.value == "sent"
                  and len(r.invoice_ids) > 1]
    assert statements and all(len(emails[r.id]["attachments"]) == 1 for r in statements)
    assert summary.pdfs_missing == sum(len(r.invoice_ids) - 1 for r in statements)
    # QuickBooks was asked for every PDF once: a size limit is this email's, not the invoice's
    assert env.sb.log.count("intuit", "pdf:invoice") == len(_named(env))
    with env.db.session() as s:
        said = [a.data["missing"] for a in s.scalars(select(models.Activity).where(models.Activity.kind == "email.pdf_missing"))]
    assert said and all(set(m.values()) == {"The PDFs together are too large for one email."} for m in said)
