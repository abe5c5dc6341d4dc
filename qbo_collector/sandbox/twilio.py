"""Twilio stand-in: the Messages API, signed status callbacks and inbound messages.

Mounted at "/twilio": a ``twilio.rest.Client`` whose HTTP client rewrites
``https://api.twilio.com`` to ``{base}/twilio`` posts to
``/twilio/2010-04-01/Accounts/<sid>/Messages.json`` (form-encoded, Basic auth) and gets
Twilio's JSON back. Status callbacks (sent, then delivered — or undelivered/failed for
numbers given to ``designate``) and inbound messages (``inbound``) are form posts signed
with ``X-Twilio-Signature`` the way Twilio signs them. STOP-family replies opt the number
out of the sender they were sent to (error 21610 for that sender's texts afterwards, the
others' still go), START-family replies opt it back in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import flask

from qbo_collector.sandbox import common
from qbo_collector.sandbox.sendgrid import WebhookCourier

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "5a4d" * 8
DEFAULT_AUTH_TOKEN = "sandbox" + "0" * 25
DEFAULT_NUMBER = "+15017122661"

# Twilio's default Advanced Opt-Out keywords (whole message, case-insensitive).
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_GSM_SAFE = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _num_segments(body: str) -> int:
    gsm = all(c in _GSM_SAFE for c in body)
    single, part = (160, 153) if gsm else (70, 67)
    n = len(body) if gsm else len(body.encode("utf-16-le")) // 2
    return 1 if n <= single else -(-n // part)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """HMAC-SHA1 over the URL followed by every parameter name and value, names sorted; base64."""
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()).decode("ascii")


# Where Twilio tries a landline anyway (the carrier then refuses it: undelivered, 30006); elsewhere the
# API refuses it at once with 21635 (https://www.twilio.com/docs/api/errors/21635).
LANDLINES_TRIED = ("+1", "+44")

class _Refusal(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.code, self.message = status, code, message


class TwilioStandIn:
    """Speaks Twilio's Messages API and webhooks; see the module docstring."""

    def __init__(
        self,
        clock: common.Clock,
        faults: common.FaultKnobs,
        log: common.RequestLog,
        *,
        accounts: dict[str, str] | None = None,
    ) -> None:
        self.clock, self.faults, self.log = clock, faults, log
        self.accounts = dict(accounts) if accounts is not None else {DEFAULT_ACCOUNT_SID: DEFAULT_AUTH_TOKEN}
        self.phone_number = DEFAULT_NUMBER          # our number: inbound messages are sent to it
        self.owned_numbers: set[str] | None = None  # if set, other From numbers get 21606
        self.messages: list[dict[str, Any]] = []
        self.inbound_messages: list[dict[str, str]] = []
        self.opted_out: set[str] = set()            # numbers refused from every sender (21610)
        # sender (the number texted, or its messaging service) → the numbers that replied STOP to it
        self.opted_out_of: dict[str, set[str]] = {}
        # landlines: 21635 "cannot be a landline" at once, except in the US, Canada and the UK, where
        # Twilio accepts the text and the carrier refuses it (undelivered, 30006)
        self.landlines: set[str] = set()
        self.blocked_prefixes: set[str] = set()     # 21408 "region not enabled", e.g. {"+7"}
        self.failing: dict[str, tuple[str, int]] = {}  # number -> (final status, error code)
        # every text ends undelivered with this code: the carriers refuse our sender (30034 unregistered…)
        self.sender_refused: int | None = None
        self.inbound_webhook_url: str | None = None
        self.out_of_order = False                   # deliver status callbacks last-first
        self.duplicate_callbacks = False            # deliver every status callback twice
        self.courier = WebhookCourier("twilio")
        self._lock = threading.Lock()

    @property
    def account_sid(self) -> str:
        return next(iter(self.accounts))

    @property
    def auth_token(self) -> str:
        return self.accounts[self.account_sid]

    def designate(self, number: str, status: str = "undelivered", error_code: int = 30003) -> None:
        """Texts to ``number`` will end ``status`` with ``error_code`` (30003 unreachable, 30006 landline, ...)."""
        self.failing[number] = (status, error_code)

    # ------------------------------------------------------------------ HTTP

    def blueprint(self) -> flask.Blueprint:
        bp = flask.Blueprint("twilio", __name__)
        bp.add_url_rule(f"/{API_VERSION}/Accounts/<account_sid>/Messages.json", "create_message",
                        self._create_message, methods=["POST"])
        bp.add_url_rule(f"/{API_VERSION}/Accounts/<account_sid>/Messages/<message_sid>.json", "fetch_message",
                        self._fetch_message, methods=["GET"])
        return bp

    def _answer(self, status: int, body: Any, *, endpoint: str = "messages") -> flask.Response:
        self.log.record(common.LoggedRequest(
            service="twilio", endpoint=endpoint, method=flask.request.method, path=flask.request.path,
            status=status, realm=None, at=self.clock.now(),
        ))
        data = body if isinstance(body, bytes) else json.dumps(body)
        return flask.Response(data, status=status, content_type="application/json")

    @staticmethod
    def _error(status: int, code: int, message: str) -> dict[str, Any]:
        return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}

    def _authenticate(self, account_sid: str) -> None:
        auth = flask.request.authorization
        if (auth is None or auth.username not in self.accounts or not hmac.compare_digest(
                self.accounts[auth.username], auth.password or "") or auth.username != account_sid):
            raise _Refusal(401, 20003, "Authenticate")

    def _create_message(self, account_sid: str) -> flask.Response:
        form = flask.request.form
        try:
            self._authenticate(account_sid)
            fate = self.faults.draw()
            if fate == "429":
                raise _Refusal(429, 20429, "Too Many Requests")
            if fate == "500":
                raise _Refusal(500, 20500, "An internal server error has occurred")
            self._validate(form)
        except _Refusal as refusal:
            return self._answer(refusal.status, self._error(refusal.status, refusal.code, refusal.message))
        message = self._accept(account_sid, form)
        resource = self._resource(message)  # as created; callbacks move the stored status on
        if fate == "timeout":
            time.sleep(self.faults.timeout_seconds)  # accepted; only the answer is late
        self._schedule_callbacks(message)
        if fate == "malformed":
            return self._answer(201, json.dumps(resource).encode()[:40])
        return self._answer(201, resource)

    def _fetch_message(self, account_sid: str, message_sid: str) -> flask.Response:
        try:
            self._authenticate(account_sid)
        except _Refusal as refusal:
            return self._answer(refusal.status, self._error(refusal.status, refusal.code, refusal.message), endpoint="fetch:message")
        for message in self.messages:
            if message["sid"] == message_sid and message["account_sid"] == account_sid:
                return self._answer(200, self._resource(message), endpoint="fetch:message")
        return self._answer(404, self._error(404, 20404, f"The requested resource /{API_VERSION}/Accounts/"
                                             f"{account_sid}/Messages/{message_sid}.json was not found"), endpoint="fetch:message")

    def _validate(self, form: Any) -> None:
        to, sender, service, body = form.get("To"), form.get("From"), form.get("MessagingServiceSid"), form.get("Body")
        if not to:
            raise _Refusal(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            raise _Refusal(400, 21603, "A 'From' phone number is required.")
        if service and not re.fullmatch(r"MG[0-9a-f]{32}", service):
            raise _Refusal(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender and not _E164.match(sender) and not re.fullmatch(r"[A-Za-z0-9 ]{1,11}", sender):
            raise _Refusal(400, 21212, f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID.")
        if sender and self.owned_numbers is not None and sender not in self.owned_numbers:
            raise _Refusal(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound phone "
                                       "number or short code for your account.")
        if not body and not form.get("MediaUrl"):
            raise _Refusal(400, 21602, "Message body is required.")
        if not _E164.match(to):
            raise _Refusal(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if any(to.startswith(prefix) for prefix in self.blocked_prefixes):
            raise _Refusal(400, 21408, f"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.")
        if to in self.landlines and not to.startswith(LANDLINES_TRIED):
            raise _Refusal(400, 21635, f"'To' number {to} cannot be a landline.")
        if to in self.opted_out or to in self.opted_out_of.get(service or sender or "", ()):
            raise _Refusal(400, 21610, "Attempt to send to unsubscribed recipient")
        if body and len(body) > 1600:
            raise _Refusal(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        callback = form.get("StatusCallback")
        if callback and not re.match(r"^https?://[^\s_/]+", callback):
            raise _Refusal(400, 21609, f"Invalid StatusCallback url: {callback}")
        validity = form.get("ValidityPeriod")
        if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
            raise _Refusal(400, 21624, "ValidityPeriod must be an integer between 1 and 36000 seconds.")

    def _accept(self, account_sid: str, form: Any) -> dict[str, Any]:
        now = format_datetime(self.clock.now().replace(microsecond=0))
        service = form.get("MessagingServiceSid")
        sid = _sid("SM")
        body = form.get("Body") or ""
        message = {
            "account_sid": account_sid,
            "sid": sid,
            "to": form["To"],
            "from": None if service else form.get("From"),
            "messaging_service_sid": service,
            "body": body,
            # With a messaging service Twilio first answers "accepted", then picks a sender.
            "status": "accepted" if service else "queued",
            "num_segments": str(_num_segments(body)),
            "date_created": now,
            "date_updated": now,
            "validity_period": int(form["ValidityPeriod"]) if form.get("ValidityPeriod") else None,
            "status_callback": form.get("StatusCallback"),
            "callbacks": [],
        }
        with self._lock:
            self.messages.append(message)
        return message

    @staticmethod
    def _resource(m: dict[str, Any]) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{m['account_sid']}/Messages/{m['sid']}"
        return {
            "account_sid": m["account_sid"], "api_version": API_VERSION, "body": m["body"],
            "date_created": m["date_created"], "date_sent": None, "date_updated": m["date_updated"],
            "direction": "outbound-api", "error_code": None, "error_message": None, "from": m["from"],
            "messaging_service_sid": m["messaging_service_sid"], "num_media": "0", "num_segments": m["num_segments"],
            "price": None, "price_unit": "USD", "sid": m["sid"], "status": m["status"],
            "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
            "to": m["to"], "uri": f"{base}.json",
        }

    # ------------------------------------------------------------------ webhooks

    def _schedule_callbacks(self, message: dict[str, Any]) -> None:
        failing = self.failing.get(message["to"]) or (
            ("undelivered", 30006) if message["to"] in self.landlines else None) or (
            ("undelivered", self.sender_refused) if self.sender_refused else None)
        if failing and failing[0] == "failed":
            steps = [("failed", failing[1])]
        elif failing:
            steps = [("sent", None), (failing[0], failing[1])]
        else:
            steps = [("sent", None), ("delivered", None)]
        message["status"] = steps[-1][0]   # Twilio's own view moves on regardless of our callbacks
        url = message["status_callback"]
        if not url:
            return
        if self.out_of_order:
            steps.reverse()
        token = self.accounts[message["account_sid"]]
        for status, code in steps:
            params = {
                "AccountSid": message["account_sid"], "ApiVersion": API_VERSION,
                "From": message["from"] or self.phone_number, "MessageSid": message["sid"],
                "MessageStatus": status, "SmsSid": message["sid"], "SmsStatus": status, "To": message["to"],
            }
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if code is not None:
                params["ErrorCode"] = str(code)
            message["callbacks"].append(params)
            for _ in range(2 if self.duplicate_callbacks else 1):
                self._post_form(url, params, token)

    def _post_form(self, url: str, params: dict[str, str], token: str) -> None:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": twilio_signature(token, url, params),
        }
        self.courier.post(url, urlencode(params).encode("utf-8"), headers)

    def inbound(self, from_number: str, body: str, *, to: str | None = None, service: str | None = None) -> str:
        """A customer texts ``body`` to our number (``to``, else ``phone_number``; in messaging service
        ``service``, if given): apply opt-out keywords, then post the signed webhook. Returns the MessageSid."""
        sid = _sid("SM")
        word = body.strip().upper()
        params = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "", "FromZip": "",
            "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "", "Body": body, "FromCountry": "",
            "To": to or self.phone_number, "ToZip": "", "NumSegments": str(_num_segments(body)), "MessageSid": sid,
            "AccountSid": self.account_sid, "From": from_number, "ApiVersion": API_VERSION,
        }
        if service:
            params["MessagingServiceSid"] = service
        # Twilio keeps an opt-out per sender: the number texted, or the messaging service it is in
        sender = service or params["To"]
        if word in STOP_KEYWORDS:
            self.opted_out_of.setdefault(sender, set()).add(from_number)
            params["OptOutType"] = "STOP"
        elif word in START_KEYWORDS:
            self.opted_out_of.get(sender, set()).discard(from_number)
            params["OptOutType"] = "START"
        elif word in HELP_KEYWORDS:
            params["OptOutType"] = "HELP"
        with self._lock:
            self.inbound_messages.append(params)
        if self.inbound_webhook_url:
            self._post_form(self.inbound_webhook_url, params, self.auth_token)
        return sid

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for every pending webhook; False if ``timeout`` ran out first."""
        return self.courier.flush(timeout)

    def stop(self) -> None:
        """Deliver pending webhooks and end the delivery thread (``Sandbox.stop`` calls this)."""
        self.courier.stop()

    def reset(self) -> None:
        self.flush()
        with self._lock:
            self.messages.clear()
            self.inbound_messages.clear()
        self.opted_out.clear()
        self.opted_out_of.clear()
        self.failing.clear()
        self.sender_refused = None
        self.landlines.clear()
        self.blocked_prefixes.clear()
        self.out_of_order = self.duplicate_callbacks = False
        self.courier.deliveries.clear()
