"""Bad input and bad days: unreachable customers, invalid numbers, channels not configured, broken
templates, refusals by the providers, crashes, QuickBooks down, a user editing notes meanwhile.
"""

from __future__ import annotations

import collections

import pytest
from sqlalchemy import select

from qbo_collector import clock, dispatch, errors, templates
from qbo_collector.channels import qbo_notes
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds


def _customer_with_most_open(sb, realm):  # type: ignore[no-untyped-def]
    open_ = collections.Counter(i["CustomerRef"]["value"] for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 0)
    return open_.most_common(1)[0][0]


@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = []

    def make(prepare=None, **kwargs):  # type: ignore[no-untyped-def]
        sb = sandbox_factory(companies=[ds.SMALL])
        realm = next(iter(sb.intuit.companies))
        chosen = _customer_with_most_open(sb, realm)
        if prepare is not None:
            prepare(sb, realm, chosen)
        env = ds.build(sb, settings_factory, sqlite_db, **kwargs)
        env.chosen = chosen  # type: ignore[attr-defined]
        made.append(env)
        return env

    yield make
    ds.stop(made)


def test_a_customer_with_no_email_and_no_phone_gets_a_call_task_instead(make_env) -> None:  # type: ignore[no-untyped-def]
    def strip(sb, realm, chosen):  # type: ignore[no-untyped-def]
        sb.intuit.update(realm, "Customer", chosen, PrimaryEmailAddr=None, PrimaryPhone=None, Mobile=None)
    env = make_env(strip, policy=ds.text_and_email_policy())
    env.run()
    mine = [r for r in env.rows() if r.customer_qbo_id == env.chosen]
    assert mine and not [r for r in mine if r.channel in ("email", "sms")]
    tasks = [r for r in mine if r.kind == "task" and r.channel == "call_task" and r.dedupe_key.endswith(":unreachable")]
    assert tasks and all(r.status.value == "sent" and "call them" in r.reason for r in tasks)


def test_an_invalid_number_means_no_text_and_no_crash(make_env) -> None:  # type: ignore[no-untyped-def]
    def bad_phone(sb, realm, chosen):  # type: ignore[no-untyped-def]
        sb.intuit.update(realm, "Customer", chosen, Mobile={"FreeFormNumber": "12"}, PrimaryPhone={"FreeFormNumber": "call me"})
    env = make_env(bad_phone)
    summary = env.run()
    mine = [r for r in env.rows() if r.customer_qbo_id == env.chosen]
    assert mine and not [r for r in mine if r.channel == "sms"]
    assert [r for r in mine if r.channel == "email"]
    assert summary.statuses["sent"] > 0


def test_without_sendgrid_and_twilio_messages_are_skipped_with_a_reason_and_the_rest_works(make_env, caplog) -> None:  # type: ignore[no-untyped-def]
    env = make_env(email=False, sms=False, web=False)
    summary = env.run()
    rows = env.rows()
    email = [r for r in rows if r.channel in ("email", "owner_email")]
    sms = [r for r in rows if r.channel == "sms"]
    assert email and all(r.status.value == "cancelled" and "SENDGRID_API_KEY" in r.status_reason for r in email)
    assert sms and all(r.status.value == "cancelled" and "TWILIO_ACCOUNT_SID" in r.status_reason for r in sms)
    assert [r for r in rows if r.kind == "fee" and r.status.value == "sent"]
    assert [r for r in rows if r.kind == "note" and r.status.value == "sent"]
    assert summary.note_batches >= 1
    assert "not configured" in caplog.text


def test_template_syntax_errors_and_sandbox_escapes_are_refused_on_save() -> None:
    with pytest.raises(errors.InvalidInput) as bad:
        templates.validate("Hello {{ customer_name }}\n{% if invoice %}\nno end", part="text", key="reminder_overdue_gentle")
    assert bad.value.context.get("line") is not None
    for escape in ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ invoice.__init__.__globals__ }}",
                   "{{ config }}", "{{ lipsum.__globals__ }}"):
        with pytest.raises(errors.InvalidInput):
            templates.validate(escape, part="text", key="reminder_overdue_gentle")


def test_a_stored_template_that_cannot_render_fails_its_rows_only(make_env) -> None:  # type: ignore[no-untyped-def]
    broken = {"en": {"reminder_overdue_gentle": {"subject": "Hi", "text": "{{ customer.nope.deeper }}"}}}
    env = make_env(company_settings={"templates": broken})
    summary = env.run()
    failed = [r for r in env.rows() if r.status.value == "failed"]
    assert failed and all(r.template_key == "reminder_overdue_gentle" and "could not be written" in r.status_reason
                          for r in failed)
    assert summary.statuses["sent"] > 0


def test_a_stored_template_whose_subject_comes_out_empty_stops_nobodys_email(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: a subject in an ``{% if %}`` renders empty for a customer without a PO; SendGrid
    answers 400, which was taken for an invalid address — every customer reminded with it got
    ``email_stopped = "invalid"`` and an installation-wide block, in every company. Now such a row is
    not sent ("could not be written"), and nobody's address is touched. (The templates page refuses
    such a template on save; this one was stored before that check.)"""
    empty = {"en": {"reminder_overdue_gentle": {
        "subject": "{% if invoice and invoice.po_number %}PO {{ invoice.po_number }}{% endif %}",
        "text": "Hello {{ customer_name }}, invoice {{ invoice.number }} is late."}}}
    env = make_env(company_settings={"templates": empty})
    summary = env.run()
    failed = [r for r in env.rows(channel="email") if r.status.value == "failed"]
    assert failed and all("could not be written" in r.status_reason and "subject is empty" in r.status_reason
                          for r in failed)
    assert summary.statuses["sent"] > 0
    with env.db.session() as s:
        assert s.scalars(select(models.ContactBlock)).all() == []
        assert s.scalars(select(models.Customer).where(models.Customer.email_stopped.is_not(None))).all() == []
    assert not [m for m in env.sb.sendgrid.messages if not m.get("subject")]


def test_refusals_by_twilio_stop_that_number(make_env) -> None:  # type: ignore[no-untyped-def]
    def mobile(sb, realm, chosen):  # type: ignore[no-untyped-def]
        sb.intuit.update(realm, "Customer", chosen, Mobile={"FreeFormNumber": "(415) 555-0177"})
        sb.twilio.opted_out.add("+14155550177")  # opted out at Twilio: 21610
    env = make_env(mobile, policy=ds.text_and_email_policy())
    env.run()
    mine = [r for r in env.rows(channel="sms") if r.customer_qbo_id == env.chosen]
    assert mine and all(r.status.value in ("failed", "cancelled") for r in mine)
    assert any("Refused for good" in (r.status_reason or "") for r in mine)
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == env.chosen))
        assert customer.sms_stopped == "21610"
        assert s.scalars(select(models.ContactBlock).where(models.ContactBlock.address == "+14155550177")).one()


def test_a_landline_abroad_refused_at_once_stops_texts_to_it(make_env) -> None:  # type: ignore[no-untyped-def]
    """Found in review: outside the US, Canada and the UK Twilio refuses a landline at once with 21635,
    which the dispatcher did not know, so every text step to it was tried again and failed."""
    def landline(sb, realm, chosen):  # type: ignore[no-untyped-def]
        sb.intuit.update(realm, "Customer", chosen, Mobile={"FreeFormNumber": "+33 1 42 68 53 00"})
        sb.twilio.landlines.add("+33142685300")
    env = make_env(landline, policy=ds.text_and_email_policy())
    env.run(now=env.now_at(10))  # 19:00 in Paris, where the number is: daytime for a text
    mine = [r for r in env.rows(channel="sms") if r.customer_qbo_id == env.chosen]
    assert mine and any("21635" in (r.status_reason or "") or "landline" in (r.status_reason or "") for r in mine)
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == env.chosen))
        assert customer.sms_stopped == "landline"
        assert s.scalars(select(models.ContactBlock).where(models.ContactBlock.address == "+33142685300")).one()
    env.run(now=env.now_at(10, days=1))
    assert not [m for m in env.sb.twilio.messages if m["to"] == "+33142685300"]


def test_an_ambiguous_answer_is_unknown_never_resent_and_a_person_decides(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.sb.sendgrid_faults.force_500 = 1
    env.run()
    unknown = env.rows(status=models.OutboxStatus.unknown)
    assert len(unknown) == 1 and "not resent" in unknown[0].status_reason
    env.run(now=env.now_at(13))
    env.flush()
    ids = collections.Counter(m["custom_args"]["outbox_id"] for m in env.sb.sendgrid.messages)
    assert ids[str(unknown[0].id)] == 0 and env.rows(status=models.OutboxStatus.unknown)
    decided = dispatch.resolve_unknown(env.db, unknown[0].id, "resend", user_id=None)
    assert decided.status.value == "planned"
    env.run(now=max(env.now_at(14), clock.now()))  # due from when the person decided, on the wall clock
    env.flush()
    ids = collections.Counter(m["custom_args"]["outbox_id"] for m in env.sb.sendgrid.messages)
    assert ids[str(unknown[0].id)] == 1
    with pytest.raises(errors.InvalidInput):
        dispatch.resolve_unknown(env.db, unknown[0].id, "sent", user_id=None)


def test_rows_left_sending_by_a_crash_become_unknown_and_provider_events_settle_them(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.run()
    env.flush()
    email = next(r for r in env.rows(channel="email") if r.status.value == "sent")
    sms = next(r for r in env.rows(channel="sms") if r.status.value == "sent")
    fee = next(r for r in env.rows(kind="fee") if r.status.value == "sent")
    with env.db.session() as s:
        for r in (email, sms, fee):
            s.get(models.Outbox, r.id).status = models.OutboxStatus.sending
    assert dispatch.recover_sending(env.db) == 3
    assert {r.id: r.status.value for r in env.rows() if r.id in (email.id, sms.id, fee.id)} == {
        email.id: "unknown", sms.id: "unknown", fee.id: "planned"}
    assert dispatch.reconcile_unknown(env.db) == 2  # the delivered events were already stored
    settled = {r.id: r for r in env.rows() if r.id in (email.id, sms.id)}
    assert all(r.status.value == "sent" and "Reconciled" in r.status_reason for r in settled.values())
    fees_before = len(env.sb.intuit.entities(env.realm, "Invoice"))
    env.run(now=env.now_at(13))  # the fee is posted again with the same requestid: QuickBooks replays it
    assert len(env.sb.intuit.entities(env.realm, "Invoice")) == fees_before
    assert next(r for r in env.rows() if r.id == fee.id).status.value == "sent"


def test_when_quickbooks_cannot_be_read_nothing_naming_an_invoice_goes_out(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    env.sb.intuit_faults.error_rate = 1.0
    summary = env.run()
    assert summary.errors and summary.deferred > 0
    assert not [m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example"]
    assert not env.sb.twilio.messages
    env.sb.intuit_faults.reset()
    again = env.run(now=env.now_at(13))
    assert again.statuses["sent"] > 0


def test_a_stale_sync_token_rereads_the_customer_and_keeps_the_users_new_words(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    # the owner edits the notes in QuickBooks while the run works, after its read of the changes and right
    # before its notes reach QuickBooks: our SyncToken is stale (5010)
    sb, inner, edited = env.sb, env.sb.app.wsgi_app, []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/batch") and not edited:
            sb.intuit.update(env.realm, "Customer", env.chosen, Notes="Call Maria, not Bob.")
            edited.append(True)
        return inner(environ, start_response)

    sb.app.wsgi_app = app
    summary = env.run()
    assert edited
    notes = env.sb.intuit.get(env.realm, "Customer", env.chosen)["Notes"]
    assert notes.startswith("Call Maria, not Bob.") and qbo_notes.START_MARK in notes
    assert summary.note_batches >= 2  # the first batch met 5010, the retry went through


def test_a_customer_notes_section_stays_within_the_limit_over_many_runs(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(policy=ds.every_day_policy("firm", min_gap_days=0))
    for day in range(0, 60, 3):
        env.run(now=env.now_at(12, days=day))
    for customer in env.sb.intuit.entities(env.realm, "Customer"):
        assert len(customer.get("Notes") or "") <= qbo_notes.NOTES_LIMIT
    with env.db.session() as s:
        notes = s.scalars(select(models.Outbox).where(models.Outbox.kind == "note")).all()
        assert len(notes) > 20  # the full history stays local
