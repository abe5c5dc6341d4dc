"""SMS through Twilio's Messages API (the official ``twilio`` library), and the pure
helpers every text needs: E.164 numbers, segment counting, fitting a reminder with its
payment link into a budget of segments, quiet hours and STOP/START keywords.

Twilio has no idempotency key: a request that may have reached it is never repeated
here (see ``base.OutcomeUnknown``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phonenumbers_timezone
import requests
import urllib3.exceptions
from twilio.base import exceptions as twilio_exceptions
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from qbo_collector import errors
from qbo_collector.channels import base

# --------------------------------------------------------------------------- numbers


def to_e164(raw: str, default_region: str | None) -> str:
    """``raw`` as an E.164 number ("+33612345678"); ``default_region`` ("FR", "US") applies
    to numbers written without a country code. Raises InvalidInput with a sentence a person can act on."""
    if raw is None or not str(raw).strip():
        raise errors.InvalidInput("The phone number is empty.", field="phone")
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(str(raw), region)
    except phonenumbers.NumberParseException:
        hint = "" if region else " (write it with its country code, e.g. +33 6 12 34 56 78)"
        raise errors.InvalidInput(f"{raw!r} is not a phone number{hint}.", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise errors.InvalidInput(
            f"{raw!r} is not a valid phone number for {phonenumbers.region_code_for_number(number) or region or 'any country'}.",
            field="phone",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")


def sender_id(value: str) -> str:
    """A sender as compared: a messaging service SID with its hex in lower case, a number in E.164
    however it is spaced (``+1 415-555-0100``), anything else (an alphanumeric sender ID) as written."""
    value = value.strip()
    if MESSAGING_SERVICE.match(value):
        return "MG" + value[2:].lower()
    try:
        return phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return value


# --------------------------------------------------------------------------- segments

# GSM 03.38 basic character set (one septet each) and its extension table (escape + char: two).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("\f^{}\\[~]|€")


def is_gsm7(text: str) -> bool:
    return all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text)


def _units(text: str) -> tuple[list[int], int, int]:
    """Per-character cost, and the single / multi-part capacity, for the encoding ``text`` needs."""
    if is_gsm7(text):
        return [2 if c in _GSM_EXTENDED else 1 for c in text], 160, 153
    # UCS-2 (UTF-16 really): characters outside the BMP, most emoji, take two code units.
    return [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67


def segments(text: str) -> int:
    """How many SMS segments ``text`` is billed as: GSM-7 160 alone or 153 per part,
    UCS-2 (any character outside GSM-7, e.g. "ê", "ç" or an emoji) 70 alone or 67 per part.
    An escape pair or a surrogate pair is never split across parts. Empty text is one segment."""
    costs, single, part = _units(text)
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return count


def fit_sms(text: str, link: str, max_segments: int = 2) -> str:
    """``text`` followed by ``link``, with the text shortened (at a word, with an ellipsis)
    until the whole fits in ``max_segments``. The link is never cut; if it already sits in
    ``text`` it is moved to the end. Raises InvalidInput when the link alone does not fit."""
    link = link.strip()
    body = " ".join(text.replace(link, " ").split()) if link else " ".join(text.split())
    whole = f"{body} {link}".strip()
    if segments(whole) <= max_segments:
        return whole
    if segments(link) > max_segments:
        raise errors.InvalidInput(f"The payment link alone needs more than {max_segments} SMS segments.", field="link")
    # "…" is not GSM-7: adding it to a GSM-7 text would switch it to UCS-2 and halve the room.
    ellipsis = "..." if is_gsm7(body) else "…"
    lo, hi = 0, len(body)  # longest prefix that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if segments(_shortened(body, mid, ellipsis, link)) <= max_segments:
            lo = mid
        else:
            hi = mid - 1
    return _shortened(body, lo, ellipsis, link)


def _shortened(body: str, keep: int, ellipsis: str, link: str) -> str:
    if keep <= 0:
        return link
    cut = body[:keep]
    if keep < len(body) and not body[keep].isspace() and " " in cut:
        cut = cut[: cut.rfind(" ")]  # do not end on half a word
    cut = cut.rstrip(" ,;:.-")
    return f"{cut}{ellipsis} {link}" if cut else link


# --------------------------------------------------------------------------- quiet hours


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidInput(f"{tz!r} is not a time zone name such as 'America/New_York'.", field="time_zone") from None


def is_quiet_hours(local_dt: datetime, start: int = 8, end: int = 21) -> bool:
    """True when no text may go out: before ``start``:00 or from ``end``:00 on, recipient's local time
    (US TCPA practice: no texts before 8 am or after 9 pm)."""
    return not (start <= local_dt.hour < end)


def number_time_zones(e164: str) -> tuple[str, ...]:
    """The time zones ``e164`` belongs to, as phonenumbers knows them: its area code in North America
    ("+1 415…" → Los Angeles), its country elsewhere; () when unknown. A US number may sit in a
    zone other than the company's, and the 8:00–21:00 rule is the recipient's local time."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phonenumbers_timezone.time_zones_for_number(number) if z != "Etc/Unknown")


def next_allowed_send(now_utc: datetime, tz: str | tzinfo | Sequence[str | tzinfo], start: int = 8,
                      end: int = 21) -> datetime:
    """The earliest moment, in UTC, at or after ``now_utc`` when a text may go to someone in ``tz``,
    or, given several zones (a number whose area spans two), when it is daytime in all of them.
    Raises InvalidInput when the zones share no daytime (a number that could be anywhere)."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware")
    if isinstance(tz, (str, tzinfo)):
        return _next_allowed_in(now_utc, tz, start, end)
    zones = [_zone(z) for z in tz]
    if not zones:
        raise errors.InvalidInput("No time zone to send the text in.", field="time_zone")
    at = now_utc.astimezone(timezone.utc)
    for _ in range(2 * len(zones) + 2):  # each pass moves to an opening; with a common window it settles
        later = max(_next_allowed_in(at, zone, start, end) for zone in zones)
        if later == at:
            return at
        at = later
    raise errors.InvalidInput(f"The time zones {', '.join(map(str, zones))} have no daytime hours in common.",
                              field="time_zone")


def _next_allowed_in(now_utc: datetime, tz: str | tzinfo, start: int, end: int) -> datetime:
    zone = _zone(tz)
    local = now_utc.astimezone(zone)
    if not is_quiet_hours(local, start, end):
        return now_utc.astimezone(timezone.utc)
    day: date = local.date() if local.hour < start else local.date() + timedelta(days=1)
    # Wall-clock 8:00 exists on every DST transition day (clocks jump at night).
    opening = datetime.combine(day, time(start), tzinfo=zone)
    return opening.astimezone(timezone.utc)


# --------------------------------------------------------------------------- keywords

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})


def parse_keyword(body: str | None) -> Literal["stop", "start", "help"] | None:
    """The opt-out keyword a whole message is, if any ("Stop " → "stop"; "please stop" → None).

    Case and surrounding whitespace do not matter; trailing "." or "!" are ignored too:
    a person who writes "Stop." wants out, and honouring that costs less than ignoring it."""
    if not body:
        return None
    word = body.strip().rstrip(".!").strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


# --------------------------------------------------------------------------- adapter


def rebase_url(url: str, base_url: str | None) -> str:
    """``url`` with the scheme and host of any Twilio domain replaced by ``base_url`` (whose
    path becomes a prefix); other URLs and ``base_url=None`` leave it untouched."""
    if not base_url:
        return url
    parts, base = urlsplit(url), urlsplit(base_url.rstrip("/"))
    host = parts.hostname or ""
    if host != "twilio.com" and not host.endswith(".twilio.com"):
        return url
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))


class _RebasedHttpClient(TwilioHttpClient):
    """Sends every Twilio URL (api.twilio.com, messaging.twilio.com, ...) to ``base_url`` instead,
    keeping the path: how the sandbox (or a proxy) plugs in without touching the library."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False):  # type: ignore[no-untyped-def, override]
        return super().request(method, rebase_url(url, self.base_url), params=params, data=data, headers=headers,
                               auth=auth, timeout=timeout, allow_redirects=allow_redirects)


def _is_before_request(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never established (refused, DNS): nothing reached Twilio."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


@contextlib.contextmanager
def map_twilio_errors() -> Iterator[None]:
    """Translate twilio / requests errors into the project's tree, once.

    ==================================================  ======================================
    HTTP 429 / code 20429 (too many requests)           TransientFailure
    HTTP 401, 403 / code 20003 (credentials refused)    ConfigError(variable=TWILIO_AUTH_TOKEN)
    HTTP 404 (no such account or wrong base URL)        ConfigError(variable=TWILIO_ACCOUNT_SID)
    other 4xx: 21211 invalid To, 21610 opted out,       PermanentFailure(code=Twilio code)
      21408 region not enabled, 21614 not a mobile, 21635 a landline,
      21617 body too long, ...
    5xx                                                 OutcomeUnknown
    connect timeout, connection refused, DNS failure    TransientFailure (nothing was sent)
    read timeout, connection dropped, unreadable JSON   OutcomeUnknown
    ==================================================  ======================================
    """
    try:
        yield
    except (twilio_exceptions.TwilioRestException, twilio_exceptions.TwilioServiceException) as exc:
        status = int(exc.status or 0)
        code = exc.code
        text = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", None) or str(exc)
        if status == 429 or code == 20429:
            raise errors.TransientFailure(f"Twilio is rate-limiting us (code {code}); nothing was sent, try again later.") from exc
        if status in (401, 403) or code == 20003:
            raise errors.ConfigError(
                f"Twilio refused the credentials (code {code}); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
                variable="TWILIO_AUTH_TOKEN",
            ) from exc
        if status == 404:
            raise errors.ConfigError(
                f"Twilio does not know this account or URL ({text}); check TWILIO_ACCOUNT_SID and TWILIO_API_BASE_URL.",
                variable="TWILIO_ACCOUNT_SID",
            ) from exc
        if status >= 500:
            raise base.OutcomeUnknown(
                f"Twilio answered HTTP {status}; the text may or may not have been accepted, so it is not resent.", status=status
            ) from exc
        raise errors.PermanentFailure(f"Twilio refused the text: {text}", code=code) from exc
    except requests.exceptions.ConnectTimeout as exc:  # before ConnectionError: it is one too
        raise errors.TransientFailure(f"Could not connect to Twilio in time; nothing was sent ({exc}).") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise base.OutcomeUnknown("Twilio did not answer in time; the text may have been accepted, so it is not resent.") from exc
    except requests.exceptions.ConnectionError as exc:
        if _is_before_request(exc):
            raise errors.TransientFailure(f"Could not reach Twilio; nothing was sent ({exc}).") from exc
        raise base.OutcomeUnknown(f"The connection to Twilio broke before its answer ({exc}); the text may have been accepted.") from exc
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema) as exc:
        raise errors.ConfigError(f"The Twilio API URL is not usable ({exc}).", variable="TWILIO_API_BASE_URL") from exc
    except (json.JSONDecodeError, requests.exceptions.RequestException) as exc:
        raise base.OutcomeUnknown(f"Twilio's answer could not be read ({exc}); the text may have been accepted.") from exc


class TwilioSms:
    """Sends one text per outbox row through Twilio's Messages API.

    ``message.to`` must already be E.164 (``to_e164``) and ``message.text`` fitted
    (``fit_sms``); quiet hours and opt-outs are checked by the caller before it gets
    here (``next_allowed_send``, ``parse_keyword`` on inbound replies) — Twilio's own
    21610 is the last line of defence, not the first. Twilio has no custom arguments:
    put the outbox id in ``message.status_callback_url`` (e.g. ``...?outbox_id=42``) and
    it comes back with every status callback.
    """

    identifier = "sms"
    settings_fields = [
        base.Setting("account_sid", "Account SID", "Starts with AC; on the Twilio console's front page.", required=True),
        base.Setting("auth_token", "Auth token", "Also used to verify Twilio's webhooks.", secret=True, required=True),
        base.Setting("from_number", "Sender number", "E.164, e.g. +14155550100. Or use a messaging service."),
        base.Setting("messaging_service_sid", "Messaging service SID", "Starts with MG; takes precedence over the sender number."),
        base.Setting("api_base_url", "API base URL", "Leave empty for Twilio itself (the sandbox sets its own)."),
    ]

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        api_base_url: str | None = None,
        timeout: float = 10.0,
        *,
        validity_period: int = 3600,
    ) -> None:
        if not account_sid or not auth_token:
            raise errors.ConfigError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are both required.", variable="TWILIO_ACCOUNT_SID")
        if not (from_number or messaging_service_sid):
            raise errors.ConfigError(
                "Set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID: Twilio needs a sender.", variable="TWILIO_FROM_NUMBER"
            )
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        # A reminder stuck in Twilio's queue for hours could land in quiet hours or after
        # the invoice was paid: let Twilio drop it instead (1..36000 s).
        self.validity_period = validity_period
        self._client = Client(account_sid, auth_token, http_client=_RebasedHttpClient(api_base_url, timeout))

    def send(self, message: base.OutboundMessage) -> base.Receipt:
        """One POST .../Messages.json; see ``base.Channel.send`` for the errors."""
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid} if self.messaging_service_sid else {"from_": self.from_number or ""}
        )
        with map_twilio_errors():
            created = self._client.messages.create(
                to=message.to,
                body=message.text,
                status_callback=message.status_callback_url or None,
                validity_period=self.validity_period,
                **sender,
            )
        return base.Receipt(provider_id=created.sid or "", accepted_at=_as_datetime(created.date_created), raw_status=str(created.status))


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return None


__all__ = [
    "TwilioSms", "map_twilio_errors", "rebase_url", "to_e164", "sender_id", "segments", "is_gsm7", "fit_sms",
    "is_quiet_hours", "next_allowed_send", "number_time_zones", "parse_keyword", "STOP_WORDS", "START_WORDS",
]
