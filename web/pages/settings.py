"""Templates (per step and language, live preview for a real customer) and channels (sender, reply-to, SMS,
time zone, send hour and language, test-send)."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
import logging
import re
import uuid
import zoneinfo
from typing import Any

import email_validator
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select

from qbo_collector import errors, scheduler, snapshot, templates
from qbo_collector.channels import base as channel_base
from qbo_collector.channels import email as email_channel
from qbo_collector.channels import registry
from qbo_collector.channels import sms as sms_channel
from qbo_collector.db import models
from qbo_collector.dispatch import events, messages
from qbo_collector.dispatch import run as dispatch_run
from qbo_collector.money import Money
from web.pages import bp, company_session, message_of, services, today_for

log = logging.getLogger(__name__)

PREVIEW_CUSTOMERS = 50


# --- templates ---------------------------------------------------------------------------

def _chosen(company: models.Company) -> tuple[str, str]:
    key = request.values.get("key", "")
    language = request.values.get("language", "")
    return (key if key in templates.KEYS else templates.KEYS[0],
            language if language in templates.LANGUAGES else (company.language if company.language in templates.LANGUAGES else "en"))


@bp.get("/companies/<realm_id>/templates", endpoint="templates")
def templates_page(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (s, company, role):
        key, language = _chosen(company)
        current = messages.template_for(company, key, language)
        return _render(s, company, role, key, language, current, {})


@bp.post("/companies/<realm_id>/templates")
def templates_save(realm_id: str):  # type: ignore[no-untyped-def]
    do = request.form.get("do", "preview")
    with company_session(realm_id, write=True) as (s, company, role):
        key, language = _chosen(company)
        stored = dict((company.settings or {}).get("templates") or {})
        if do == "reset":
            per_language = dict(stored.get(language) or {})
            per_language.pop(key, None)
            stored[language] = per_language
            company.settings = {**(company.settings or {}), "templates": stored}
            flash(gettext("The shipped text is back for this template."))
            return redirect(url_for("pages.templates", realm_id=realm_id, key=key, language=language))
        edited = templates.TemplateSet(key=key, language=language,
                                       **{p: request.form.get(p, "").replace("\r\n", "\n") for p in templates.PARTS})
        problems = _validate(edited)
        if problems or do != "save":
            return _render(s, company, role, key, language, edited, problems, status=400 if problems else 200)
        per_language = dict(stored.get(language) or {})
        per_language[key] = {p: getattr(edited, p) for p in templates.PARTS}
        stored[language] = per_language
        company.settings = {**(company.settings or {}), "templates": stored}
        s.add(models.Activity(company_id=company.id, kind="template.saved",
                              message=f"Template {key} ({language}) saved.", data={"key": key, "language": language}))
    flash(gettext("The template is saved."))
    return redirect(url_for("pages.templates", realm_id=realm_id, key=key, language=language))


def _validate(edited: templates.TemplateSet) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not edited.subject.strip():
        problems["subject"] = gettext("A message needs a subject.")
    if not edited.text.strip():
        problems["text"] = gettext("A message needs a text.")
    for part in templates.PARTS:
        if part in problems:
            continue
        try:
            templates.validate(getattr(edited, part), part=part, key=edited.key)
        except errors.InvalidInput as exc:
            problems[part] = _with_line(exc)
    return problems


def _with_line(exc: errors.InvalidInput) -> str:
    line = exc.context.get("line")
    text = message_of(exc)
    if line and not text.startswith(("Line ", "Ligne ")):
        return gettext("Line %(line)s: %(message)s", line=line, message=text)
    return text


def _render(s, company: models.Company, role: str, key: str, language: str,  # type: ignore[no-untyped-def]
            current: templates.TemplateSet, problems: dict[str, str], status: int = 200):
    customers = _preview_customers(s, company)
    wanted = request.values.get("customer", "")
    customer = next((c for c in customers if c.qbo_id == wanted), customers[0] if customers else None)
    preview, preview_error, attachments = None, None, []
    if not problems:
        try:
            context = _context(s, company, customer, key, language)
            preview = templates.render(current, context)
            if (company.settings or {}).get("attach_invoice_pdf") and key != "owner_alert":
                # what the email would carry (Channels → attach the invoice PDF), as the dispatcher names it
                attachments = [dispatch_run.pdf_filename(language, line.number)
                               for line in context.invoices[:dispatch_run.PDF_ATTACH_MAX]]
        except errors.InvalidInput as exc:
            preview_error = _with_line(exc)
            problems = {exc.field or "text": preview_error} if exc.field in templates.PARTS else problems
    overrides = ((company.settings or {}).get("templates") or {})
    apart = {  # an edit without its list: the rows such a message would tell together go out one each
        "statement": gettext("This edited template does not use {{ invoices }}: the statements of a parent and the "
                             "jobs billed with it go out one message each, not as one."),
        "late_fee_notice": gettext("This edited template does not use {{ fees }}: the late fees of a run go out one "
                                   "email each, not as one."),
        "owner_alert": gettext("This edited template does not use {{ alerts }}: the alerts of a run go out one "
                               "message each, not as one."),
    }.get(key) if key in dispatch_run.told_apart(company) else None
    return render_template(
        "pages/templates.html", company=company, role=role, tab="templates", key=key, language=language,
        apart=apart,
        t=current, errors=problems, preview=preview, preview_error=preview_error, customers=customers,
        customer=customer, keys=templates.KEYS, languages=templates.LANGUAGES,
        edited={(lang, k) for lang, per in overrides.items() if isinstance(per, dict) for k in per},
        placeholders={k: gettext(v) for k, v in templates.PLACEHOLDERS.items()},
        filters={k: gettext(v) for k, v in templates.FILTERS.items()},
        sms_segments=templates.sms_segments(preview.sms) if preview and preview.sms else 0,
        attachments=attachments,
    ), status


def _preview_customers(s, company: models.Company) -> list[models.Customer]:  # type: ignore[no-untyped-def]
    owing = (select(models.Invoice.customer_qbo_id).where(
        models.Invoice.company_id == company.id, models.Invoice.status == models.InvoiceStatus.open,
        models.Invoice.deleted.is_(False), models.Invoice.balance > 0).distinct())
    return list(s.scalars(select(models.Customer).where(
        models.Customer.company_id == company.id, models.Customer.deleted.is_(False),
        models.Customer.qbo_id.in_(owing)).order_by(models.Customer.display_name).limit(PREVIEW_CUSTOMERS)))


def _context(s, company: models.Company, customer: models.Customer | None, key: str,  # type: ignore[no-untyped-def]
             language: str) -> templates.ReminderContext:
    """The message context the dispatcher would build for this customer today (sample parts where none exist)."""
    sample = templates.sample_context(language)
    if customer is None:
        return sample
    on = today_for(company)
    rows = list(s.scalars(select(models.Invoice).where(
        models.Invoice.company_id == company.id, models.Invoice.customer_qbo_id == customer.qbo_id,
        models.Invoice.status == models.InvoiceStatus.open, models.Invoice.deleted.is_(False),
        models.Invoice.balance > 0).order_by(models.Invoice.due_date).limit(10)))
    # a job billed with its parent: the message greets the parent and names the job on each invoice
    contact = snapshot.contact_rows(s, company.id, {customer.qbo_id: customer})[customer.qbo_id]
    job = customer.display_name if contact is not customer else None
    lines = [messages.invoice_line({}, r, on, job=job) for r in rows]
    currency = lines[0].balance.currency if lines else company.currency
    try:
        policy = snapshot.policy_for(company, customer)
    except errors.InvalidInput:
        policy = None
    fee_kind = key == "late_fee_notice"
    # as the run queues it: a late-fee notice is a reminder carrying the fee (so it tells the fee rule too)
    row = models.Outbox(kind="alert" if key == "owner_alert" else "reminder",
                        amount=sample.fee.amount if fee_kind and sample.fee else None,
                        currency=currency if fee_kind else None, payload={"tone": "friendly"})
    promise = None
    if key == "promise_broken":
        promise = templates.Promise(amount=lines[0].balance if lines else Money(sample.promise.amount, currency),  # type: ignore[union-attr]
                                    date=on - dt.timedelta(days=3))
    alert = None
    if key == "owner_alert":
        alert = gettext("Invoice %(n)s for %(name)s is now late.", n=lines[0].number if lines else "1042",
                        name=customer.display_name)
    context = messages.reminder_context(
        company=company, row=row, customer=contact, language=language,
        country=snapshot.country_code(contact.country) or snapshot.country_code(company.country), lines=lines,
        policy=policy, today=on, alert=alert,
        action_link=url_for("pages.customer", realm_id=company.realm_id, customer_id=customer.qbo_id, _external=True)
        if key == "owner_alert" else None)
    return context.replace(promise=promise) if promise else context


# --- channels ----------------------------------------------------------------------------

CHANNEL_FIELDS = ("sender_name", "reply_to", "company_phone", "owner_email", "owner_phone", "sms_from", "fee_tax_code")
# The company's own fields, kept by a reconnection once the owner changed them here
# (sync.auth.complete reads the ``*_set_by_user`` settings).
COMPANY_FIELDS = ("timezone", "send_hour", "language")
COMPANY_LANGUAGES = ("en", "fr")
_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """The zones of each country (ISO 3166 code), from tzdata's zone.tab."""
    try:
        table = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return {}
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            out.setdefault(parts[0], []).append(parts[2])
    return {code: tuple(sorted(zones)) for code, zones in out.items()}


def zone_choices(country: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The time zones the page offers: the company's country's first, then every other one."""
    first = tuple(z for z in _country_zones().get(snapshot.country_code(country) or "", ()) if z in _zones())
    return first, tuple(sorted(_zones() - set(first)))


def clean_company(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The time zone, send hour and language from the form, or the messages by field. A field the
    form does not carry is left as it is."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    if "timezone" in form:
        zone = (form.get("timezone") or "").strip()
        if zone in _zones():
            values["timezone"] = zone
        else:
            problems["timezone"] = gettext("Choose a time zone from the list, such as Europe/Paris or America/Chicago.")
    if "send_hour" in form:
        hour = (form.get("send_hour") or "").strip()
        if hour.isdigit() and 0 <= int(hour) <= 23:
            values["send_hour"] = int(hour)
        else:
            problems["send_hour"] = gettext("Enter a whole hour from 0 to 23, such as 9 for 9:00.")
    if "language" in form:
        language = (form.get("language") or "").strip()
        if language in COMPANY_LANGUAGES:
            values["language"] = language
        else:
            problems["language"] = gettext("Choose English or French.")
    return values, problems


def clean_channels(form: Any, country: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The channel settings from the form, or the messages by field."""
    values = {f: (form.get(f) or "").strip() for f in CHANNEL_FIELDS}
    problems: dict[str, str] = {}
    if len(values["sender_name"]) > 100 or any(ch in values["sender_name"] for ch in "\r\n<>\""):
        problems["sender_name"] = gettext("Use a plain name of at most 100 characters.")
    for field in ("reply_to", "owner_email"):
        if values[field]:
            try:
                values[field] = email_validator.validate_email(values[field], check_deliverability=False).normalized
            except email_validator.EmailNotValidError:
                problems[field] = gettext("This is not an email address.")
    region = snapshot.country_code(country)
    for field in ("owner_phone", "company_phone"):
        if values[field]:
            try:
                e164 = sms_channel.to_e164(values[field], region)
                values[field] = e164 if field == "owner_phone" else values[field]
            except errors.InvalidInput:
                problems[field] = gettext("This is not a phone number; write it with its country code, such as +33 6 12 34 56 78.")
    if values["sms_from"] and not _MESSAGING_SERVICE.match(values["sms_from"]):
        try:
            values["sms_from"] = sms_channel.to_e164(values["sms_from"], region)
        except errors.InvalidInput:
            problems["sms_from"] = gettext("Enter a phone number in international format (+14155550100) or a messaging service SID (MG followed by 32 characters).")
    if values["fee_tax_code"] and not (values["fee_tax_code"].isdigit() and len(values["fee_tax_code"]) <= 32):
        problems["fee_tax_code"] = gettext("A QuickBooks tax code Id is a number, such as 7.")
    values["dry_run"] = form.get("dry_run") == "1"
    values["attach_invoice_pdf"] = form.get("attach_invoice_pdf") == "1"
    return values, problems


@bp.get("/companies/<realm_id>/channels")
def channels(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (_s, company, role):
        return _render_channels(company, role, {**(company.settings or {}), "timezone": company.timezone,
                                                "send_hour": str(scheduler.send_hour(company)),
                                                "language": company.language}, {})


@bp.post("/companies/<realm_id>/channels")
def channels_save(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id, write=True) as (s, company, role):
        values, problems = clean_channels(request.form, company.country)
        sms_from = values["sms_from"]
        if sms_from and "sms_from" not in problems and sms_channel.sender_id(sms_from) != sms_channel.sender_id(
                str((company.settings or {}).get("sms_from") or "")):
            taken = events.sender_taken(s, services().settings, sms_from, company_id=company.id)
            if taken == "server":
                problems["sms_from"] = gettext("This is the server's own sender, shared by the companies without "
                                               "one of their own: leave the field empty to text from it.")
            elif taken == "company":
                problems["sms_from"] = gettext("Another company on this server already texts from this sender: "
                                               "enter a number or messaging service of your own that no other "
                                               "company uses.")
        own, own_problems = clean_company(request.form)
        problems.update(own_problems)
        if problems:
            return _render_channels(company, role, {**request.form.to_dict(), "dry_run": values["dry_run"],
                                                    "attach_invoice_pdf": values["attach_invoice_pdf"]}, problems), 400
        settings = dict(company.settings or {})
        before = bool(settings.get("dry_run"))
        changed = {k: v for k, v in own.items()
                   if v != (scheduler.send_hour(company) if k == "send_hour" else getattr(company, k))}
        # a zone or language the owner chose is kept by a reconnection; one QuickBooks gave follows QuickBooks
        for field in ("timezone", "language"):
            if field in changed:
                setattr(company, field, changed[field])
                settings[f"{field}_set_by_user"] = True
        if "send_hour" in own:
            settings["send_hour"] = own["send_hour"]
        company.settings = {**settings, **values}
        data: dict[str, Any] = {"dry_run": values["dry_run"]} if values["dry_run"] != before else {}
        s.add(models.Activity(company_id=company.id, kind="channels.saved", message="Channel settings saved.",
                              data={**data, **changed}))
    flash(gettext("The channel settings are saved."))
    return redirect(url_for("pages.channels", realm_id=realm_id))


TEST_SUBJECT = lazy_gettext("Test message from qbo-collector")
TEST_TEXT = lazy_gettext("This is a test sent from the settings page of %(company)s. If you can read it, reminders can reach you too.")


@bp.post("/companies/<realm_id>/channels/test")
def channels_test(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id, write=True) as (s, company, role):
        settings = dict(company.settings or {})
        sent, failed = send_test(company, settings)
        s.add(models.Activity(company_id=company.id, kind="channels.test",
                              message=f"Test message sent to {', '.join(sent) or 'nobody'}"
                                      + (f"; failed: {'; '.join(failed)}" if failed else "."),
                              data={"sent": sent, "failed": failed}))
    for target in sent:
        flash(gettext("A test message was sent to %(to)s.", to=target))
    for problem in failed:
        flash(problem, "error")
    return redirect(url_for("pages.channels", realm_id=realm_id))


def send_test(company: models.Company, settings: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Send one test email (and one text) to the owner's own address and phone; returns (sent to, problems)."""
    config = services().settings
    text = str(TEST_TEXT) % {"company": company.name}
    sent: list[str] = []
    failed: list[str] = []
    email, phone = settings.get("owner_email"), settings.get("owner_phone")
    if not email and not phone:
        return [], [gettext("Enter your own email address or phone number first, then save.")]
    common = dict(outbox_id=f"test-{uuid.uuid4().hex[:12]}", realm=company.realm_id, text=text,
                  language=(company.language or "en"))
    if email:
        if not (config.sendgrid_api_key and config.sendgrid_from_email):
            failed.append(gettext("Email is not configured on this server (SENDGRID_API_KEY, SENDGRID_FROM_EMAIL)."))
        else:
            try:
                channel = registry.get("email")(api_key=config.sendgrid_api_key,  # type: ignore[call-arg]
                                                from_email=config.sendgrid_from_email, host=config.sendgrid_api_host)
                channel.send(channel_base.OutboundMessage(
                    to=email, subject=str(TEST_SUBJECT), reply_to=settings.get("reply_to") or None,
                    from_name=settings.get("sender_name") or company.name, **common))  # type: ignore[arg-type]
                sent.append(email)
            except errors.QboCollectorError as exc:
                failed.append(gettext("The test email failed: %(reason)s", reason=exc.message))
            else:
                failed += _lift_permission(config)
    if phone:
        sender = settings.get("sms_from") or ""
        service_sid = sender if _MESSAGING_SERVICE.match(sender) else config.twilio_messaging_service_sid
        from_number = sender if sender and not _MESSAGING_SERVICE.match(sender) else config.twilio_from_number
        if not (config.twilio_account_sid and config.twilio_auth_token and (from_number or service_sid)):
            failed.append(gettext("Text messages are not configured on this server (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and a sender)."))
        else:
            try:
                channel = registry.get("sms")(account_sid=config.twilio_account_sid,  # type: ignore[call-arg]
                                              auth_token=config.twilio_auth_token, from_number=from_number,
                                              messaging_service_sid=service_sid, api_base_url=config.twilio_api_base_url)
                channel.send(channel_base.OutboundMessage(to=phone, **common))  # type: ignore[arg-type]
                sent.append(phone)
            except errors.QboCollectorError as exc:
                failed.append(gettext("The test text message failed: %(reason)s", reason=exc.message))
    return sent, failed


def _lift_permission(config: Any) -> list[str]:
    """The problem, if any, with lifting bounces from the customer page: the key needs SendGrid's
    Suppressions permission (checked with ``GET /v3/scopes``)."""
    try:
        if email_channel.SendGridSuppressions(config.sendgrid_api_key, host=config.sendgrid_api_host).can_lift():
            return []
    except errors.QboCollectorError as exc:
        log.info("channels test: the SendGrid key's permissions could not be read: %s", exc.message)
        return []  # the email went out; this check is a courtesy
    return [gettext("The email works, but this SendGrid key may not take an address off its bounce list: give it "
                    "the Suppressions permission, or the customer page cannot resume email after a bounce.")]


def _render_channels(company: models.Company, role: str, values: dict[str, Any], problems: dict[str, str]):  # type: ignore[no-untyped-def]
    config = services().settings
    country_zones, other_zones = zone_choices(company.country)
    return render_template("pages/channels.html", company=company, role=role, tab="channels", v=values,
                           errors=problems, email_ready=bool(config.sendgrid_api_key and config.sendgrid_from_email),
                           sms_ready=bool(config.twilio_account_sid and config.twilio_auth_token),
                           from_email=config.sendgrid_from_email, pdf_max=dispatch_run.PDF_ATTACH_MAX,
                           country_zones=country_zones, other_zones=other_zones, languages=COMPANY_LANGUAGES)
