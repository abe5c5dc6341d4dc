"""Signed webhooks from SendGrid and Twilio: POST /webhooks/sendgrid, /twilio/status, /twilio/inbound.

Each view checks the signature (ECDSA with a 5-minute replay window for SendGrid,
X-Twilio-Signature over the public URL for Twilio) and hands the parsed data to
``dispatch.events``. Answers: 401 for a missing or forged signature (or when the webhook's
key is not configured), 400 for a malformed body, 200 otherwise — duplicates and replays
of events already stored are accepted and ignored, so that the provider stops retrying.
Every refusal is logged with its reason.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from qbo_collector import clock, errors
from qbo_collector.channels import webhooks
from qbo_collector.dispatch import events

log = logging.getLogger(__name__)
bp = Blueprint("provider_webhooks", __name__, url_prefix="/webhooks")
REPLAY_WINDOW_SECONDS = 300


def _services():  # type: ignore[no-untyped-def]
    return current_app.config["QBO"]


def _public_url() -> str:
    """The URL the provider called, as configured there: the public base, this path and query."""
    query = request.query_string.decode("utf-8", "replace")
    return f"{_services().settings.public_url}{request.path}" + (f"?{query}" if query else "")


@bp.post("/sendgrid")
def sendgrid():  # type: ignore[no-untyped-def]
    services = _services()
    key = services.settings.sendgrid_webhook_public_key
    body = request.get_data(cache=False)
    if not key:
        log.error("SendGrid webhook refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return {"error": "webhook verification is not configured"}, 401
    try:
        parsed = webhooks.verify_sendgrid_event(
            key, body, request.headers.get(webhooks.SENDGRID_SIGNATURE_HEADER),
            request.headers.get(webhooks.SENDGRID_TIMESTAMP_HEADER), now=clock.now(),
            window_seconds=REPLAY_WINDOW_SECONDS)
    except errors.ConfigError as exc:
        log.error("SendGrid webhook refused: %s", exc.message)
        return {"error": "webhook verification is misconfigured"}, 401
    except errors.InvalidInput as exc:
        status = 400 if exc.field == "body" else 401
        log.warning("SendGrid webhook refused (%s) from %s, %d bytes: %s", status, request.remote_addr, len(body),
                    exc.message)
        return {"error": exc.message}, status
    result = events.record_sendgrid_events(services.db, parsed)
    return result.as_dict(), 200


def _verified_twilio_form():  # type: ignore[no-untyped-def]
    services = _services()
    token = services.settings.twilio_auth_token
    if not token:
        log.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not set")
        return None, ({"error": "webhook verification is not configured"}, 401)
    form = request.form
    try:
        webhooks.verify_twilio(token, _public_url(), form, request.headers.get(webhooks.TWILIO_SIGNATURE_HEADER),
                               signature_settings=request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
    except errors.InvalidInput as exc:
        log.warning("Twilio webhook %s refused from %s: %s", request.path, request.remote_addr, exc.message)
        return None, ({"error": exc.message}, 401)
    return form, None


@bp.post("/twilio/status")
def twilio_status():  # type: ignore[no-untyped-def]
    form, refusal = _verified_twilio_form()
    if refusal is not None:
        return refusal
    try:
        status = webhooks.parse_twilio_status(form)
    except errors.InvalidInput as exc:
        log.warning("Twilio status callback ignored (400): %s", exc.message)
        return {"error": exc.message}, 400
    new = events.record_twilio_status(_services().db, status, request.args.get("outbox_id"))
    return {"recorded": new}, 200


@bp.post("/twilio/inbound")
def twilio_inbound():  # type: ignore[no-untyped-def]
    form, refusal = _verified_twilio_form()
    if refusal is not None:
        return refusal
    try:
        events.record_twilio_inbound(_services().settings, _services().db, form)
    except errors.InvalidInput as exc:
        log.warning("Twilio inbound message ignored (400): %s", exc.message)
        return {"error": exc.message}, 400
    return Response(events.TWIML_EMPTY, status=200, mimetype="text/xml")
