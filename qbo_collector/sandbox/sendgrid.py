"""SendGrid stand-in: the v3 Mail Send endpoint and the signed Event Webhook.

Mounted at "/sendgrid", so the real client works unchanged:
``SendGridAPIClient(key, host=f"{base}/sendgrid")`` posts to ``/sendgrid/v3/mail/send``.
It answers like SendGrid (202 + ``X-Message-Id``, errors as ``{"errors": [...]}``), then
posts events back to ``event_webhook_url`` from a background thread, signed with an
ECDSA P-256 key made at start (``public_key_base64`` is what SendGrid's settings page
shows). Addresses containing "bounce" bounce; ``emit``/``open``/``click``/``spamreport``
produce more events; ``duplicate_deliveries`` posts every batch twice, as SendGrid's
retries do. Attachments are checked as SendGrid does (base64 content, a filename, a type without
``;`` or CRLF, a ``content_id`` for an inline one) and kept decoded on the message.

Like SendGrid, it keeps suppression lists: a bounce (not a block) puts the address on
``bounces``, a spam report on ``spam_reports``, an unsubscribe on ``unsubscribes``, and
``suppress`` puts one anywhere (``invalid_emails`` for a malformed mailbox). A later email
to a listed address is not delivered: it yields one "dropped" event naming the list
("Bounced Address", "Invalid", "Spam Reporting Address", "Unsubscribed Address"). The
Suppressions API reads and deletes entries (``GET``/``DELETE /v3/suppression/<list>/<email>``,
``GET /v3/suppression/<list>``). ``scopes`` restricts a key to some permissions ("mail.send",
"suppression.read", "suppression.delete"); a key not in it has them all; a missing one
answers 403 "access forbidden", as a restricted key does. ``GET /v3/scopes`` lists a key's.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import flask
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qbo_collector.sandbox import common

_log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"


def _decoded(content: str) -> bytes | None:
    """An attachment's bytes, or None when ``content`` is not base64 (SendGrid refuses the message)."""
    try:
        return base64.b64decode(content, validate=True)
    except ValueError:
        return None
DEFAULT_API_KEY = "SG.sandbox-key.sandbox-secret"
# A suppression list and the reason of the "dropped" event an email to one of its addresses gets.
SUPPRESSION_LISTS = {"bounces": "Bounced Address", "invalid_emails": "Invalid",
                     "spam_reports": "Spam Reporting Address", "unsubscribes": "Unsubscribed Address"}
# What a full-access key may do, as far as this stand-in serves it.
FULL_ACCESS = frozenset({"mail.send", "suppression.read", "suppression.delete", "suppression.create",
                         "suppression.update", "scopes.read"})
# The lists the Suppressions API lets a key read and delete entries of (global unsubscribes
# live under /v3/asm, which this stand-in does not serve).
_API_LISTS = ("bounces", "invalid_emails", "spam_reports")


@dataclasses.dataclass
class Delivery:
    """One webhook POST the stand-in made (or tried to)."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None
    attempts: int = 0


class WebhookCourier:
    """Posts webhooks from one background thread, in the order they were queued.

    A delivery that fails (no answer or not 2xx) is tried up to ``max_attempts`` times,
    ``retry_delay`` apart, doubling: SendGrid retries, Twilio status callbacks do not."""

    def __init__(self, name: str, timeout: float = 5.0, *, max_attempts: int = 1, retry_delay: float = 0.1) -> None:
        self.name = name
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.deliveries: list[Delivery] = []
        self._queue: queue.Queue[tuple[Delivery, float] | None] = queue.Queue()
        self._session = requests.Session()
        self._session.trust_env = False   # never route loopback webhooks through a proxy
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, delay: float = 0.0) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=f"{self.name}-webhooks", daemon=True)
                self._thread.start()
        self._queue.put((Delivery(url, body, dict(headers)), delay))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued webhook was posted; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is pending (up to ``timeout``), then end the thread."""
        self.flush(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            self._queue.put(None)  # type: ignore[arg-type]
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            delivery, delay = item
            try:
                if delay:
                    time.sleep(delay)
                self._attempt(delivery)
            finally:
                self.deliveries.append(delivery)
                self._queue.task_done()

    def _attempt(self, delivery: Delivery) -> None:
        pause = self.retry_delay
        while True:
            delivery.attempts += 1
            try:
                response = self._session.post(delivery.url, data=delivery.body, headers=delivery.headers, timeout=self.timeout)
                delivery.status, delivery.error = response.status_code, None
                if 200 <= response.status_code < 300:
                    return
            except Exception as exc:  # a dead listener must not kill the courier
                delivery.error = repr(exc)
            if delivery.attempts >= self.max_attempts:
                _log.warning("%s webhook to %s failed after %d attempt(s): %s", self.name, delivery.url,
                             delivery.attempts, delivery.error or delivery.status)
                return
            time.sleep(pause)
            pause *= 2


def _errors(*items: tuple[str, str | None, str | None]) -> dict[str, Any]:
    return {"errors": [{"message": m, "field": f, "help": h} for m, f, h in items]}


class SendGridStandIn:
    """Speaks SendGrid's Mail Send API and Event Webhook; see the module docstring."""

    def __init__(
        self,
        clock: common.Clock,
        faults: common.FaultKnobs,
        log: common.RequestLog,
        *,
        api_keys: set[str] | None = None,
    ) -> None:
        self.clock, self.faults, self.log = clock, faults, log
        self.api_keys = set(api_keys) if api_keys is not None else {DEFAULT_API_KEY}
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.event_webhook_url: str | None = None
        self.duplicate_deliveries = False
        # the next email to one of these addresses is taken and delivered (its events follow), but the answer
        # is lost on the way back: the client reads a 500, the ambiguous case. Consumed by that email.
        self.lost_answers: set[str] = set()
        # the next email to one of these addresses gets a 500 and is not taken (nothing goes out, no event):
        # the client cannot tell it from a lost answer. Consumed by that email.
        self.failing: set[str] = set()
        self.scopes: dict[str, set[str]] = {}
        # when set, a from address outside it is refused with 403, as SendGrid refuses a sender that is
        # not a verified Sender Identity (https://www.twilio.com/docs/sendgrid/for-developers/sending-email/sender-identity)
        self.verified_senders: set[str] | None = None
        self.suppressions: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SUPPRESSION_LISTS}
        self.courier = WebhookCourier("sendgrid", max_attempts=3)  # SendGrid retries failed posts
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key_base64 = base64.b64encode(der).decode("ascii")
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ HTTP

    def blueprint(self) -> flask.Blueprint:
        bp = flask.Blueprint("sendgrid", __name__)
        bp.add_url_rule("/v3/mail/send", "mail_send", self._mail_send, methods=["POST"])
        bp.add_url_rule("/v3/scopes", "scopes", self._scopes, methods=["GET"])
        bp.add_url_rule("/v3/suppression/<name>", "suppression_list", self._suppression_list, methods=["GET"])
        bp.add_url_rule("/v3/suppression/<name>/<path:email>", "suppression_entry", self._suppression_entry,
                        methods=["GET", "DELETE"])
        return bp

    def _answer(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None, *, realm: str | None = None,
                endpoint: str = "mail/send") -> flask.Response:
        self.log.record(common.LoggedRequest(
            service="sendgrid", endpoint=endpoint, method=flask.request.method, path=flask.request.path,
            status=status, realm=realm, at=self.clock.now(),
        ))
        if body is None:
            response = flask.Response(b"", status=status)
        elif isinstance(body, (bytes, str)):
            response = flask.Response(body, status=status, content_type="application/json")
        else:
            response = flask.Response(json.dumps(body), status=status, content_type="application/json")
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _refused(self, scope: str, endpoint: str) -> flask.Response | None:
        """401 for a key SendGrid does not know, 403 for one without ``scope``; None when allowed."""
        auth = flask.request.headers.get("Authorization", "")
        key = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else None
        if key not in self.api_keys:
            return self._answer(401, _errors(("The provided authorization grant is invalid, expired, or revoked", None, None)),
                                endpoint=endpoint)
        if scope and key in self.scopes and scope not in self.scopes[key]:
            return self._answer(403, _errors(("access forbidden", None, None)), endpoint=endpoint)
        return None

    def _mail_send(self) -> flask.Response:
        refused = self._refused("mail.send", "mail/send")
        if refused is not None:
            return refused
        fate = self.faults.draw()
        if fate == "429":
            # X-RateLimit-Reset is wall-clock epoch seconds: rate windows are real time.
            return self._answer(429, _errors(("too many requests", None, None)), {
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 1),
            })
        if fate == "500":
            return self._answer(500, _errors(("internal error", None, None)))
        if fate == "malformed":
            return self._answer(502, b'{"errors":[{"message":"bad gate')
        try:
            payload = json.loads(flask.request.get_data(as_text=True) or "null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return self._answer(400, _errors(("Bad Request", None, None)))
        problems = self._validate(payload)
        if problems:
            return self._answer(400, {"errors": problems})
        sender = str((payload.get("from") or {}).get("email") or "").lower()
        if self.verified_senders is not None and sender not in {s.lower() for s in self.verified_senders}:
            return self._answer(403, _errors((
                "The from address does not match a verified Sender Identity. Mail cannot be sent until this error "
                "is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see "
                "the Sender Identity requirements", "from", None)))
        message = self._accept(payload)
        with self._lock:
            lost = [r for r in message["recipients"] if r in self.lost_answers]
            self.lost_answers.difference_update(lost)
            failed = [r for r in message["recipients"] if r in self.failing]
            self.failing.difference_update(failed)
            if failed:
                self.messages.remove(message)
        if failed:
            return self._answer(500, _errors(("internal error", None, None)), realm=message["custom_args"].get("realm"))
        if lost:
            self._after_send(message)
            return self._answer(500, _errors(("internal error", None, None)), realm=message["custom_args"].get("realm"))
        if fate == "timeout":
            # The message was taken; only the answer is late. Exactly the ambiguous case.
            time.sleep(self.faults.timeout_seconds)
        self._after_send(message)
        return self._answer(202, None, {"X-Message-Id": message["message_id"]}, realm=message["custom_args"].get("realm"))

    @staticmethod
    def _validate(p: dict[str, Any]) -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []

        def add(message: str, field: str | None, anchor: str) -> None:
            problems.append({"message": message, "field": field, "help": f"{_HELP}#{anchor}"})

        sender = p.get("from")
        if not isinstance(sender, dict) or not sender.get("email"):
            add("The from object must be provided for every email send. It is an object that requires the email "
                "parameter, but may also contain a name parameter.  e.g. {\"email\" : \"example@example.com\"}  or "
                "{\"email\" : \"example@example.com\", \"name\" : \"Example Recipient\"}.", "from.email", "message.from")
        elif not _EMAIL.match(str(sender["email"])):
            add("The from email does not contain a valid address.", "from.email", "message.from")
        reply_to = p.get("reply_to")
        if isinstance(reply_to, dict) and not _EMAIL.match(str(reply_to.get("email", ""))):
            add("The reply_to email does not contain a valid address.", "reply_to.email", "message.reply_to")
        personalizations = p.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            add("The personalizations field is required and must have at least one personalization.",
                "personalizations", "-Personalizations-Errors")
            personalizations = []
        for i, pers in enumerate(personalizations):
            to = pers.get("to") if isinstance(pers, dict) else None
            if not isinstance(to, list) or not to:
                add("The to array is required for all personalization objects, and must have at least one email "
                    "object with a valid email address.", f"personalizations.{i}.to", "message.personalizations.to")
                continue
            for j, rcpt in enumerate(to):
                if not isinstance(rcpt, dict) or not _EMAIL.match(str(rcpt.get("email", ""))):
                    add("Does not contain a valid address.", f"personalizations.{i}.to.{j}.email", "message.personalizations.to")
        has_template = bool(p.get("template_id"))
        if not has_template and not p.get("subject") and not (
            personalizations and all(isinstance(x, dict) and x.get("subject") for x in personalizations)
        ):
            add("The subject is required. You can get around this requirement if you use a template with a subject "
                "defined or if every personalization has a subject defined.", "subject", "message.subject")
        content = p.get("content")
        if not has_template:
            if not isinstance(content, list) or not content:
                add("Unless a valid template_id is provided, the content parameter is required. There must be at least "
                    "one defined content block. We typically suggest both text/plain and text/html blocks are included, "
                    "but only one block is required.", "content", "message.content")
            else:
                for i, block in enumerate(content):
                    if not isinstance(block, dict) or not isinstance(block.get("value"), str) or not block["value"]:
                        add("The content value must be a string at least one character in length.",
                            f"content.{i}.value", "message.content.value")
        attachments = p.get("attachments")
        for i, item in enumerate(attachments if isinstance(attachments, list) else []):
            item = item if isinstance(item, dict) else {}
            content = item.get("content")
            if not isinstance(content, str) or not content:
                add("The attachment content is required.", f"attachments.{i}.content", "message.attachments.content")
            elif _decoded(content) is None:
                add("The attachment content must be base64 encoded.", f"attachments.{i}.content",
                    "message.attachments.content")
            if not isinstance(item.get("filename"), str) or not item["filename"]:
                add("The attachment filename parameter is required.", f"attachments.{i}.filename",
                    "message.attachments.filename")
            kind = item.get("type")
            if kind is not None and (not isinstance(kind, str) or any(ch in kind for ch in ";\r\n")):
                add("The attachment type cannot contain ';', or CRLF characters.", f"attachments.{i}.type",
                    "message.attachments.type")
            disposition = item.get("disposition", "attachment")
            if disposition not in ("attachment", "inline"):
                add("The disposition of your attachment can be either \"inline\" or \"attachment\".",
                    f"attachments.{i}.disposition", "message.attachments.disposition")
            elif disposition == "inline" and not item.get("content_id"):
                add("The content_id parameter is required if your attachment has a disposition of \"inline\".",
                    f"attachments.{i}.content_id", "message.attachments.content_id")
        if attachments is not None and not isinstance(attachments, list):
            add("Invalid type. Expected: array, given: object.", "attachments", "message.attachments")
        for where, args in [("custom_args", p.get("custom_args"))] + [
            (f"personalizations.{i}.custom_args", x.get("custom_args"))
            for i, x in enumerate(personalizations) if isinstance(x, dict)
        ]:
            for name, value in (args or {}).items():
                if not isinstance(value, str):
                    add(f"Invalid type. Expected: string, given: {type(value).__name__}.", f"{where}.{name}", "message.custom_args")
        return problems

    def _accept(self, p: dict[str, Any]) -> dict[str, Any]:
        content = {block.get("type"): block.get("value") for block in p.get("content") or []}
        recipients, custom_args = [], dict(p.get("custom_args") or {})
        for pers in p["personalizations"]:
            for rcpt in pers["to"]:
                recipients.append(rcpt["email"])
            custom_args.update(pers.get("custom_args") or {})  # per-personalization wins (one recipient here)
        message = {
            "message_id": secrets.token_urlsafe(16)[:22],
            "to": recipients[0],
            "recipients": recipients,
            "from": p["from"]["email"],
            "from_name": p["from"].get("name"),
            "reply_to": (p.get("reply_to") or {}).get("email"),
            "subject": p.get("subject") or p["personalizations"][0].get("subject"),
            "text": content.get("text/plain"),
            "html": content.get("text/html"),
            "template_id": p.get("template_id"),
            "custom_args": custom_args,
            "tracking_settings": p.get("tracking_settings") or {},
            # decoded, as the recipient's mail program shows them
            "attachments": [{"filename": a["filename"], "type": a.get("type") or "application/octet-stream",
                             "disposition": a.get("disposition", "attachment"), "content": _decoded(a["content"])}
                            for a in p.get("attachments") or ()],
            "at": self.clock.now(),
        }
        with self._lock:
            self.messages.append(message)
        return message

    # ------------------------------------------------------------------ suppressions

    def _scopes(self) -> flask.Response:
        """GET /v3/scopes: the permissions of the calling key (any key may ask)."""
        refused = self._refused("", "scopes")
        if refused is not None:
            return refused
        auth = flask.request.headers.get("Authorization", "")
        key = auth[len("Bearer "):].strip()
        return self._answer(200, {"scopes": sorted(self.scopes.get(key, FULL_ACCESS))}, endpoint="scopes")

    def _suppression_list(self, name: str) -> flask.Response:
        endpoint = f"suppression/{name}"
        refused = self._refused("suppression.read", endpoint)
        if refused is not None:
            return refused
        if name not in _API_LISTS:
            return self._answer(404, _errors(("resource not found", None, None)), endpoint=endpoint)
        with self._lock:
            entries = sorted(self.suppressions[name].values(), key=lambda e: (-e["created"], e["email"]))
        return self._answer(200, entries, endpoint=endpoint)

    def _suppression_entry(self, name: str, email: str) -> flask.Response:
        endpoint = f"suppression/{name}"
        refused = self._refused("suppression.read" if flask.request.method == "GET" else "suppression.delete", endpoint)
        if refused is not None:
            return refused
        if name not in _API_LISTS:
            return self._answer(404, _errors(("resource not found", None, None)), endpoint=endpoint)
        fate = self.faults.draw()
        if fate == "500":
            return self._answer(500, _errors(("internal error", None, None)), endpoint=endpoint)
        if fate == "429":
            return self._answer(429, _errors(("too many requests", None, None)), {
                "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 1),
            }, endpoint=endpoint)
        address = email.strip().lower()
        with self._lock:
            if flask.request.method == "GET":
                entry = self.suppressions[name].get(address)
                return self._answer(200, [entry] if entry else [], endpoint=endpoint)
            # Deleting an address that is not listed answers 204 too: the list ends up the same.
            self.suppressions[name].pop(address, None)
        if fate == "timeout":  # done, but the answer comes late
            time.sleep(self.faults.timeout_seconds)
        return self._answer(204, endpoint=endpoint)

    def suppress(self, name: str, email: str, reason: str = "", status: str = "") -> dict[str, Any]:
        """Put ``email`` on suppression list ``name`` (one of ``SUPPRESSION_LISTS``), as SendGrid would."""
        if name not in SUPPRESSION_LISTS:
            raise KeyError(f"no SendGrid suppression list {name!r}")
        entry: dict[str, Any] = {"created": int(self.clock.now().timestamp()), "email": email.strip().lower()}
        if name in ("bounces", "invalid_emails"):
            entry["reason"] = reason
        if name == "bounces":
            entry["status"] = status
        if name == "spam_reports":
            entry["ip"] = "192.0.2.10"
        with self._lock:
            self.suppressions[name].setdefault(entry["email"], entry)
        return entry

    def suppressed(self, email: str) -> str | None:
        """The list ``email`` is on (the first in ``SUPPRESSION_LISTS`` order), if any."""
        address = email.strip().lower()
        with self._lock:
            return next((name for name in SUPPRESSION_LISTS if address in self.suppressions[name]), None)

    # ------------------------------------------------------------------ events

    def _after_send(self, message: dict[str, Any]) -> None:
        for email in message["recipients"]:
            listed = self.suppressed(email)
            if listed:  # SendGrid drops it before any delivery attempt
                self.emit(message["message_id"], "dropped", email=email, reason=SUPPRESSION_LISTS[listed])
                continue
            self.emit(message["message_id"], "processed", email=email)
            if "bounce" in email.lower():
                self.emit(message["message_id"], "bounce", email=email, _delay=1, reason="550 5.1.1 The email account that "
                          "you tried to reach does not exist.", status="5.1.1", type="bounce", bounce_classification="Invalid Address")
            else:
                self.emit(message["message_id"], "delivered", email=email, _delay=1, response="250 2.0.0 OK", tls=1)

    def find(self, message_id: str) -> dict[str, Any]:
        with self._lock:
            for message in self.messages:
                if message["message_id"] == message_id:
                    return message
        raise KeyError(f"no SendGrid message {message_id!r}")

    def emit(self, message_id: str, event: str, **extra: Any) -> list[dict[str, Any]]:
        """Produce ``event`` for every recipient of ``message_id`` (or only ``email=``) and post it.

        ``extra`` adds fields (``url=`` for a click...). Returns the events as sent.
        """
        message = self.find(message_id)
        delay_seconds = int(extra.pop("_delay", 0))
        at = int((self.clock.now() + timedelta(seconds=delay_seconds)).timestamp())
        only = extra.pop("email", None)
        batch = []
        for email in [only] if only else message["recipients"]:
            n = next(self._serial)
            item: dict[str, Any] = dict(message["custom_args"])  # custom args are top-level keys, as SendGrid sends them
            item.update({
                "email": email,
                "timestamp": at,
                "event": event,
                "sg_event_id": secrets.token_urlsafe(16)[:22],
                "sg_message_id": f"{message_id}.filter0001.{n}.{secrets.token_hex(4).upper()}.0",
                "smtp-id": f"<{message_id}@sandbox.sendgrid.net>",
            })
            item.update(extra)
            batch.append(item)
        with self._lock:
            self.events.extend(batch)
        for item in batch:
            self._note_suppression(item)
        self._deliver(batch)
        return batch

    def _note_suppression(self, event: Mapping[str, Any]) -> None:
        """The list an event puts its address on, as SendGrid maintains them."""
        name = event.get("event")
        if name == "bounce" and str(event.get("type", "bounce")) != "blocked":
            self.suppress("bounces", event["email"], str(event.get("reason", "")), str(event.get("status", "")))
        elif name == "spamreport":
            self.suppress("spam_reports", event["email"])
        elif name in ("unsubscribe", "group_unsubscribe"):
            self.suppress("unsubscribes", event["email"])

    def open(self, message_id: str, **extra: Any) -> list[dict[str, Any]]:
        return self.emit(message_id, "open", useragent="Mozilla/5.0 (sandbox)", ip="192.0.2.10", sg_machine_open=False, **extra)

    def click(self, message_id: str, url: str = "https://example.com/pay", **extra: Any) -> list[dict[str, Any]]:
        return self.emit(message_id, "click", url=url, url_offset={"index": 0, "type": "html"},
                         useragent="Mozilla/5.0 (sandbox)", ip="192.0.2.10", **extra)

    def spamreport(self, message_id: str, **extra: Any) -> list[dict[str, Any]]:
        return self.emit(message_id, "spamreport", **extra)

    def sign(self, body: bytes, timestamp: str) -> str:
        """Base64 DER ECDSA(P-256, SHA-256) signature over ``timestamp + body``, as SendGrid signs."""
        signature = self._private_key.sign(timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode("ascii")

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        if not self.event_webhook_url:
            return
        # SendGrid's body ends with CRLF: a receiver that re-serialises or strips it breaks the signature.
        body = (json.dumps(batch, separators=(",", ":")) + "\r\n").encode("utf-8")
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": self.sign(body, timestamp),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }
        for _ in range(2 if self.duplicate_deliveries else 1):
            self.courier.post(self.event_webhook_url, body, headers)

    @property
    def api_key(self) -> str:
        """A key this stand-in accepts (for SENDGRID_API_KEY in the demo)."""
        return min(self.api_keys)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for every pending event delivery; False if ``timeout`` ran out first."""
        return self.courier.flush(timeout)

    def stop(self) -> None:
        """Deliver pending events and end the delivery thread (``Sandbox.stop`` calls this)."""
        self.courier.stop()

    def reset(self) -> None:
        self.flush()
        with self._lock:
            self.messages.clear()
            self.events.clear()
            for entries in self.suppressions.values():
                entries.clear()
        self.courier.deliveries.clear()
        self.duplicate_deliveries = False
        self.scopes.clear()
        self.verified_senders = None
