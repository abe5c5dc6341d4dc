"""Pure verification of what providers post back: SendGrid events, Twilio status and
inbound messages, Intuit change notifications. No Flask here: the web layer hands over
the raw body, the headers' values and the URL it was called at, and gets back parsed,
authenticated data or ``errors.InvalidInput`` (answer 403/400, log the reason).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator, get_signature_algorithm

from qbo_collector import errors

# --------------------------------------------------------------------------- SendGrid

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def verify_sendgrid_event(
    public_key_b64: str,
    raw_body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: datetime,
    window_seconds: int = 300,
) -> list[dict]:
    """Authenticate a signed Event Webhook POST and return its events.

    The signature (ECDSA P-256 / SHA-256 over ``timestamp + raw body``) is checked first,
    so that "replayed" only ever describes an authentic but stale delivery. SendGrid's own
    library has no replay window; ``window_seconds`` adds one around ``now``.
    Raises InvalidInput (missing or bad signature, stale timestamp, malformed JSON) and
    ConfigError when the configured public key cannot be read.
    """
    if not signature or not timestamp:
        raise errors.InvalidInput("The SendGrid event has no signature or timestamp header; refused.", field="signature")
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(public_key_b64.strip())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise TypeError("not an elliptic-curve key")
    except (ValueError, TypeError, AttributeError) as exc:
        raise errors.ConfigError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not the base64 public key SendGrid shows in its Event Webhook settings.",
            variable="SENDGRID_WEBHOOK_PUBLIC_KEY",
        ) from exc
    try:
        payload = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput("The SendGrid event body is not UTF-8; refused.", field="body") from None
    try:
        valid = EventWebhook().verify_signature(payload, signature, timestamp, public_key=key)
    except (binascii.Error, ValueError, InvalidSignature):
        valid = False
    if not valid:
        raise errors.InvalidInput("The SendGrid event signature does not match; refused.", field="signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise errors.InvalidInput(f"The SendGrid event timestamp {timestamp!r} is not a number; refused.", field="timestamp") from None
    age = now.timestamp() - sent_at
    if abs(age) > window_seconds:
        raise errors.InvalidInput(
            f"The SendGrid event is signed {int(age)} s away from now, outside the {window_seconds} s replay window; refused.",
            field="timestamp",
        )
    try:
        events = json.loads(payload)
    except ValueError:
        raise errors.InvalidInput("The SendGrid event body is not JSON; refused.", field="body") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise errors.InvalidInput("The SendGrid event body is not a JSON array of events; refused.", field="body")
    return events


def sendgrid_message_id(event: Mapping[str, object]) -> str | None:
    """The ``X-Message-Id`` SendGrid returned at send time, from an event's ``sg_message_id``
    ("<X-Message-Id>.filter…"): what ``Receipt.provider_id`` holds for that email."""
    value = event.get("sg_message_id")
    if not isinstance(value, str) or not value:
        return None
    return value.split(".", 1)[0] or None


def sendgrid_event_keys(event: Mapping[str, object]) -> tuple[str | None, tuple[str | None, str, str, str]]:
    """Two keys to drop duplicate deliveries: ``sg_event_id``, and (message, recipient, event,
    timestamp) for the retries that come back under a new ``sg_event_id``."""
    return (
        str(event["sg_event_id"]) if event.get("sg_event_id") else None,
        (sendgrid_message_id(event), str(event.get("email", "")), str(event.get("event", "")), str(event.get("timestamp", ""))),
    )


# --------------------------------------------------------------------------- Twilio

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"


def verify_twilio(
    auth_token: str, url: str, form: Mapping[str, str], signature: str | None, *, signature_settings: str | None = None
) -> None:
    """Authenticate a Twilio webhook (status callback or inbound message).

    ``url`` must be the exact URL Twilio called, as configured (scheme, host, path and
    query) — behind a proxy that is the public URL, not ``request.url``. ``form`` is the
    POSTed form (a Werkzeug MultiDict works). ``signature_settings`` is the optional
    X-Twilio-Webhooks-Signature-Settings header (SHA-256 shared-key signing).
    Raises InvalidInput when the signature is missing or does not match.
    """
    if not signature:
        raise errors.InvalidInput("The Twilio webhook has no X-Twilio-Signature header; refused.", field="signature")
    algorithm = get_signature_algorithm(signature_settings)
    if not RequestValidator(auth_token).validate(url, dict(form) if not hasattr(form, "getlist") else form, signature, algorithm):
        raise errors.InvalidInput(
            "The Twilio webhook signature does not match (check that the URL is exactly the one given to Twilio); refused.",
            field="signature",
        )


# Statuses only move forward: a late "sent" never overwrites "delivered". The three
# final statuses share a rank, so the first final one reported wins.
STATUS_ORDER: dict[str, int] = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "canceled": 4, "read": 5,
}
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})


def advance(current: str | None, new: str) -> str:
    """The status to keep when ``new`` is reported while the message is at ``current``."""
    if current is None or current not in STATUS_ORDER:
        return new
    if new not in STATUS_ORDER:
        return current
    return new if STATUS_ORDER[new] > STATUS_ORDER[current] else current


@dataclass(frozen=True, kw_only=True)
class TwilioStatus:
    message_sid: str
    status: str
    account_sid: str | None
    to: str | None
    from_: str | None
    error_code: int | None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def parse_twilio_status(form: Mapping[str, str]) -> TwilioStatus:
    """Read a (verified) status callback form. Raises InvalidInput for missing or unknown fields."""
    sid = form.get("MessageSid") or form.get("SmsSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid:
        raise errors.InvalidInput("The Twilio status callback has no MessageSid.", field="MessageSid")
    if status not in STATUS_ORDER:
        raise errors.InvalidInput(f"The Twilio status callback has an unknown MessageStatus {status!r}.", field="MessageStatus")
    raw_code = (form.get("ErrorCode") or "").strip()
    try:
        error_code = int(raw_code) if raw_code else None
    except ValueError:
        raise errors.InvalidInput(f"The Twilio status callback has a non-numeric ErrorCode {raw_code!r}.", field="ErrorCode") from None
    return TwilioStatus(
        message_sid=sid, status=status, account_sid=form.get("AccountSid"), to=form.get("To"),
        from_=form.get("From"), error_code=error_code, raw={k: form[k] for k in form},
    )


# --------------------------------------------------------------------------- Intuit


def verify_intuit(verifier_token: str, raw_body: bytes, signature_b64: str | None) -> None:
    """Authenticate an Intuit webhook: ``intuit-signature`` is base64(HMAC-SHA256(verifier token, raw body)).
    Compared in constant time (python-quickbooks' helper uses ``==``). Raises InvalidInput."""
    if not signature_b64:
        raise errors.InvalidInput("The Intuit webhook has no intuit-signature header; refused.", field="signature")
    expected = base64.b64encode(hmac.new(verifier_token.encode("utf-8"), raw_body, hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature_b64.strip().encode("utf-8", "replace")):
        raise errors.InvalidInput("The Intuit webhook signature does not match; refused.", field="signature")
