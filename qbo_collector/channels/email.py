"""Email through SendGrid's v3 Mail Send API (the official ``sendgrid`` library).

SendGrid has no idempotency key: a request that may have reached it is never repeated
here (see ``base.OutcomeUnknown``). The outbox id and realm ride along as
``custom_args`` and come back in every Event Webhook event, which is how an ``unknown``
row is reconciled.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator

import python_http_client.exceptions
import sendgrid
from sendgrid.helpers import mail

from qbo_collector import errors
from qbo_collector.channels import base

_MAX_RETRY_AFTER = 3600.0

# python_http_client logs every request's headers (the API key) and body (the customer's
# email) at DEBUG: keep it quiet unless someone chose a level for it on purpose.
if logging.getLogger("python_http_client").level == logging.NOTSET:
    logging.getLogger("python_http_client").setLevel(logging.INFO)
_PLAIN_ADDRESS = re.compile(r"^[^@\s,;<>()\"\[\]]+@[^@\s,;<>()\"\[\]]+$")


def _plain_address(value: str | None) -> bool:
    """True when ``value`` is one bare address that SendGrid's helper passes through unchanged.

    The helper runs ``email.utils.parseaddr``, which quietly turns "ada@exa mple.com" into
    "ada@example.com", keeps only the first of "a@x.com, b@y.com", and yields nothing for
    "ada@@x" (then crashes with KeyError): check before handing it an address."""
    return bool(value) and bool(_PLAIN_ADDRESS.match(value)) and mail.Email(value).email == value


_RECIPIENT_FIELD = re.compile(r"(?:^|; )personalizations\.\d+\.(?:to|cc|bcc)\.\d+\.email: ")


def _sendgrid_messages(exc: python_http_client.exceptions.HTTPError) -> str:
    """The human part of SendGrid's ``{"errors": [{"message", "field"}]}`` body."""
    try:
        payload = json.loads(exc.body or b"{}")
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in payload.get("errors", [])
        ]
    except (ValueError, AttributeError, TypeError):
        parts = []
    return "; ".join(parts) or f"HTTP {exc.status_code}"


def _retry_after(headers: object) -> float | None:
    try:
        reset = float(headers.get("X-RateLimit-Reset"))  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return None
    return min(max(reset - time.time(), 0.0), _MAX_RETRY_AFTER)


@contextlib.contextmanager
def map_sendgrid_errors() -> Iterator[None]:
    """Translate python_http_client / urllib errors into the project's tree, once.

    ==============================================  =======================================
    400 naming a recipient's address                PermanentFailure(code="invalid_address")
    400, 413 and other 4xx (payload)                PermanentFailure(code=HTTP status)
    403 naming the from address (not verified)      ConfigError(variable=SENDGRID_FROM_EMAIL)
    401, 403 (key rejected or lacks mail.send)      ConfigError(variable=SENDGRID_API_KEY)
    404, 405 (host/path is not SendGrid's API)      ConfigError(variable=SENDGRID_API_HOST)
    429                                             TransientFailure(retry_after from X-RateLimit-Reset)
    5xx                                             OutcomeUnknown
    connection refused / DNS failure                TransientFailure (nothing was sent)
    timeout, connection dropped mid-answer          OutcomeUnknown
    bad host URL                                    ConfigError(variable=SENDGRID_API_HOST)
    ==============================================  =======================================
    """
    try:
        yield
    except python_http_client.exceptions.HTTPError as exc:
        status = int(exc.status_code)
        detail = _sendgrid_messages(exc)
        if status == 403 and re.search(r"(?:^|; )from: ", detail):
            raise errors.ConfigError(
                f"SendGrid refuses the sender address (HTTP 403: {detail}); verify it as a Sender Identity in "
                "SendGrid, or set SENDGRID_FROM_EMAIL to an address that is.", variable="SENDGRID_FROM_EMAIL",
            ) from exc
        if status in (401, 403):
            raise errors.ConfigError(
                f"SendGrid refused the API key (HTTP {status}: {detail}); check SENDGRID_API_KEY and its mail.send permission.",
                variable="SENDGRID_API_KEY",
            ) from exc
        if status in (404, 405):
            raise errors.ConfigError(
                f"HTTP {status} from the SendGrid API host: it does not serve /v3/mail/send; check SENDGRID_API_HOST.",
                variable="SENDGRID_API_HOST",
            ) from exc
        if status == 429:
            raise errors.TransientFailure(
                "SendGrid is rate-limiting us (HTTP 429); nothing was sent, try again later.",
                retry_after=_retry_after(exc.headers),
            ) from exc
        if status >= 500:
            raise base.OutcomeUnknown(
                f"SendGrid answered HTTP {status}; the email may or may not have been accepted, so it is not resent.",
                status=status,
            ) from exc
        # Only a refused recipient says anything about the address; any other 400 (an empty subject, a
        # bad attachment) is about the message, and must never stop the customer's email.
        code: str | int = "invalid_address" if _RECIPIENT_FIELD.search(detail) else status
        raise errors.PermanentFailure(f"SendGrid refused the email (HTTP {status}: {detail}).", code=code) from exc
    except urllib.error.URLError as exc:
        # urllib wraps errors raised while connecting or writing the request.
        if isinstance(exc.reason, (ConnectionRefusedError, socket.gaierror)):
            raise errors.TransientFailure(f"Could not reach SendGrid ({exc.reason}); nothing was sent.") from exc
        if isinstance(exc.reason, TimeoutError):
            raise base.OutcomeUnknown(
                "SendGrid did not answer in time; the email may have been accepted, so it is not resent."
            ) from exc
        raise base.OutcomeUnknown(f"The connection to SendGrid failed ({exc.reason}); the email may have been accepted.") from exc
    except TimeoutError as exc:  # raised while waiting for the answer: the request was written
        raise base.OutcomeUnknown(
            "SendGrid did not answer in time; the email may have been accepted, so it is not resent."
        ) from exc
    except (http.client.HTTPException, ConnectionError) as exc:
        raise base.OutcomeUnknown(f"The connection to SendGrid broke before its answer ({exc!r}); the email may have been accepted.") from exc
    except ValueError as exc:  # urllib: "unknown url type" and friends, before anything is sent
        raise errors.ConfigError(f"The SendGrid API host is not a usable URL ({exc}).", variable="SENDGRID_API_HOST") from exc


class SendGridEmail:
    """Sends one email per outbox row through SendGrid, HTML + text, open and click tracking on."""

    identifier = "email"
    settings_fields = [
        base.Setting("api_key", "SendGrid API key", "A key with the Mail Send permission.", secret=True, required=True),
        base.Setting("from_email", "Sender address", "A verified sender or an address on an authenticated domain.", required=True),
        base.Setting("host", "API host", "Leave empty for https://api.sendgrid.com (the sandbox sets its own)."),
    ]

    def __init__(self, api_key: str, from_email: str, host: str | None = None, timeout: float = 10.0) -> None:
        if not api_key:
            raise errors.ConfigError("SENDGRID_API_KEY is empty.", variable="SENDGRID_API_KEY")
        if not from_email:
            raise errors.ConfigError("SENDGRID_FROM_EMAIL is empty.", variable="SENDGRID_FROM_EMAIL")
        if not _plain_address(from_email):
            raise errors.ConfigError(f"SENDGRID_FROM_EMAIL {from_email!r} is not one plain email address.", variable="SENDGRID_FROM_EMAIL")
        self.from_email = from_email
        self._client = sendgrid.SendGridAPIClient(api_key, host=host) if host else sendgrid.SendGridAPIClient(api_key)
        # python_http_client has no timeout by default; a hung socket would hold the outbox row forever.
        self._client.client.timeout = timeout

    def build(self, message: base.OutboundMessage) -> mail.Mail:
        """The SendGrid Mail object for ``message`` (public so tests can read the payload).

        Raises PermanentFailure (code "invalid_address") for a recipient SendGrid's helper
        would mangle, and ConfigError for a malformed reply-to (a company setting)."""
        recipients = [a.strip() for a in message.to.split(",")]
        if not all(_plain_address(a) for a in recipients):
            raise errors.PermanentFailure(f"{message.to!r} is not one plain email address; nothing was sent.", code="invalid_address")
        if message.reply_to and not _plain_address(message.reply_to):
            raise errors.ConfigError(f"The reply-to address {message.reply_to!r} is not one plain email address.", variable="reply_to")
        built = mail.Mail(
            from_email=mail.From(self.from_email, message.from_name),
            to_emails=[mail.To(a) for a in recipients],  # several: one message, as QuickBooks sends its own
            subject=message.subject or "",
            plain_text_content=message.text,
            html_content=message.html,
        )
        if message.reply_to:
            built.reply_to = mail.ReplyTo(message.reply_to)
        built.tracking_settings = mail.TrackingSettings(
            click_tracking=mail.ClickTracking(True, True),
            open_tracking=mail.OpenTracking(True),
        )
        args = {str(k): str(v) for k, v in message.custom_args.items()}
        args.update(outbox_id=str(message.outbox_id), realm=str(message.realm))
        built.custom_arg = [mail.CustomArg(k, v) for k, v in sorted(args.items())]
        for attached in reversed(message.attachments):  # the helper inserts each one first: keep the invoices' order
            built.add_attachment(mail.Attachment(
                mail.FileContent(base64.b64encode(attached.content).decode("ascii")), mail.FileName(attached.filename),
                mail.FileType(attached.mime_type), mail.Disposition("attachment")))
        return built

    def send(self, message: base.OutboundMessage) -> base.Receipt:
        """One POST /v3/mail/send; see ``base.Channel.send`` for the errors."""
        payload = self.build(message).get()
        with map_sendgrid_errors():
            response = self._client.send(payload)
        # A 202 without X-Message-Id still means "accepted": events carry outbox_id back.
        message_id = response.headers.get("X-Message-Id") if response.headers is not None else None
        return base.Receipt(provider_id=message_id or "", accepted_at=None, raw_status=str(response.status_code))


class SendGridSuppressions:
    """Takes an address off one of SendGrid's suppression lists (``DELETE /v3/suppression/<list>/<email>``).

    SendGrid drops every later email to an address on its bounce or invalid list, so lifting a
    stop here without lifting it there would change nothing. The call is idempotent (an
    address not listed answers 204 too), so a person may simply try again after a failure.

    ==============================================  =======================================
    401                                             ConfigError(variable=SENDGRID_API_KEY)
    403 (a key restricted to Mail Send)             ConfigError(code="suppression_permission")
    429, 5xx, no answer, connection failures        TransientFailure (nothing changed there)
    other 4xx                                       PermanentFailure(code=HTTP status)
    ==============================================  =======================================
    """

    LISTS = ("bounces", "invalid_emails")

    def __init__(self, api_key: str, host: str | None = None, timeout: float = 10.0) -> None:
        if not api_key:
            raise errors.ConfigError("SENDGRID_API_KEY is empty.", variable="SENDGRID_API_KEY")
        self._client = sendgrid.SendGridAPIClient(api_key, host=host) if host else sendgrid.SendGridAPIClient(api_key)
        self._client.client.timeout = timeout

    def can_lift(self) -> bool:
        """Whether the key may delete suppressions (``GET /v3/scopes`` lists "suppression.delete").

        Raises the same errors as ``remove`` when SendGrid cannot be asked."""
        with _suppression_errors():
            response = self._client.client.scopes.get()
        try:
            scopes = json.loads(response.body or b"{}").get("scopes") or []
        except (ValueError, AttributeError) as exc:
            raise errors.TransientFailure("SendGrid's list of the key's permissions could not be read.") from exc
        return "suppression.delete" in scopes

    def remove(self, list_name: str, address: str) -> None:
        """Take ``address`` off ``list_name`` ("bounces" or "invalid_emails")."""
        if list_name not in self.LISTS:
            raise ValueError(f"not a suppression list this program lifts: {list_name!r}")
        # The address is one path segment: "/", "?" and "#" are characters of a local part.
        segment = urllib.parse.quote(address.strip().lower(), safe="@+")
        with _suppression_errors():
            getattr(self._client.client.suppression, list_name)._(segment).delete()


@contextlib.contextmanager
def _suppression_errors() -> Iterator[None]:
    """The Suppressions API's errors in the project's tree (the table of ``SendGridSuppressions``)."""
    try:
        yield
    except python_http_client.exceptions.HTTPError as exc:
        status, detail = int(exc.status_code), _sendgrid_messages(exc)
        if status == 401:
            raise errors.ConfigError(f"SendGrid refused the API key (HTTP 401: {detail}); check SENDGRID_API_KEY.",
                                     variable="SENDGRID_API_KEY") from exc
        if status == 403:
            raise errors.ConfigError(
                f"The SendGrid API key may not change suppressions (HTTP 403: {detail}): give it the "
                "Suppressions permission, or lift the bounce on SendGrid's Suppressions page.",
                variable="SENDGRID_API_KEY", code="suppression_permission") from exc
        if status == 429 or status >= 500:
            raise errors.TransientFailure(f"SendGrid did not take the change (HTTP {status}: {detail}).",
                                          retry_after=_retry_after(exc.headers) if status == 429 else None) from exc
        raise errors.PermanentFailure(f"SendGrid refused the change (HTTP {status}: {detail}).", code=status) from exc
    except (urllib.error.URLError, TimeoutError, http.client.HTTPException, ConnectionError) as exc:
        raise errors.TransientFailure(f"Could not reach SendGrid ({exc!r}).") from exc
    except ValueError as exc:  # urllib: "unknown url type", before anything is sent
        raise errors.ConfigError(f"The SendGrid API host is not a usable URL ({exc}).",
                                 variable="SENDGRID_API_HOST") from exc
