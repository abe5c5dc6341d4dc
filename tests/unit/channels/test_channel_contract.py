"""The channel contract, the registry, the email payload and both error-mapping tables."""

from __future__ import annotations

import http.client
import socket
import urllib.error
from email.message import Message

import pytest
import requests
import urllib3.exceptions
from python_http_client import exceptions as http_exceptions
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from qbo_collector import errors
from qbo_collector.channels import base, email, registry, sms

# ------------------------------------------------------------------ registry


def test_the_built_in_channels_are_registered_by_identifier() -> None:
    assert list(registry.CHANNELS) == ["email", "sms", "qbo_notes"]
    assert registry.get("email") is email.SendGridEmail and registry.get("sms") is sms.TwilioSms


def test_a_duplicate_identifier_fails_loudly() -> None:
    class OtherEmail:
        identifier = "email"
        settings_fields: list[base.Setting] = []

    fresh = registry.Registry()
    fresh.register(email.SendGridEmail)
    with pytest.raises(errors.ConfigError, match="Two channels claim the identifier 'email'"):
        fresh.register(OtherEmail)  # type: ignore[arg-type]


def test_a_channel_without_identifier_is_refused_and_an_unknown_one_is_named() -> None:
    with pytest.raises(errors.ConfigError, match="identifier"):
        registry.Registry().register(object)  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigError, match="known channels: email, qbo_notes, sms"):
        registry.get("pigeon")


@pytest.mark.parametrize("channel", [
    email.SendGridEmail("SG.key", "billing@acme.example"),
    sms.TwilioSms("AC" + "0" * 32, "token", from_number="+15017122661"),
], ids=["sendgrid email", "twilio sms"])
def test_built_ins_fill_the_contract_and_describe_their_settings(channel: object) -> None:
    assert isinstance(channel, base.Channel)
    names = [s.name for s in channel.settings_fields]  # type: ignore[attr-defined]
    assert len(names) == len(set(names)) and all(s.label and s.help for s in channel.settings_fields)  # type: ignore[attr-defined]
    assert any(s.secret for s in channel.settings_fields)  # type: ignore[attr-defined]


def test_outcome_unknown_is_transient_but_distinct() -> None:
    assert issubclass(base.OutcomeUnknown, errors.TransientFailure)
    assert "do not send it again" in base.OutcomeUnknown().message


# ------------------------------------------------------------------ email payload


def message(**overrides: object) -> base.OutboundMessage:
    values: dict = dict(outbox_id="ob-1", realm="9341452", to="ada@example.com", subject="Invoice 1042",
                        text="Pay please", html="<p>Pay please</p>", reply_to="ar@acme.example", from_name="Acme",
                        custom_args={"step": "2", "outbox_id": "spoofed"})
    values.update(overrides)
    return base.OutboundMessage(**values)


def test_the_email_payload_has_both_parts_reply_to_tracking_and_custom_args() -> None:
    payload = email.SendGridEmail("SG.key", "billing@acme.example").build(message()).get()
    assert payload["from"] == {"email": "billing@acme.example", "name": "Acme"}
    assert payload["reply_to"] == {"email": "ar@acme.example"}
    assert [c["type"] for c in payload["content"]] == ["text/plain", "text/html"]
    assert payload["tracking_settings"] == {"click_tracking": {"enable": True, "enable_text": True}, "open_tracking": {"enable": True}}
    assert payload["custom_args"] == {"outbox_id": "ob-1", "realm": "9341452", "step": "2"}


def test_the_client_timeout_is_set() -> None:
    adapter = email.SendGridEmail("SG.key", "billing@acme.example", timeout=3.5)
    assert adapter._client.client.timeout == 3.5


@pytest.mark.parametrize("to", ["ada@@example.com", "ada@exa mple.com", "ada@x.com, bob@@y.com", "Ada <ada@x.com>", "ada", ""], ids=[
    "double at sign crashes the helper",
    "space in the domain would be silently removed",
    "one bad address among several",
    "display name form is not a bare address",
    "no at sign",
    "empty address",
])
def test_addresses_the_sendgrid_helper_would_mangle_are_refused_before_sending(to: str) -> None:
    with pytest.raises(errors.PermanentFailure) as caught:
        email.SendGridEmail("SG.key", "billing@acme.example").build(message(to=to))
    assert caught.value.code == "invalid_address"


def test_several_addresses_as_quickbooks_holds_them_each_get_the_email() -> None:
    payload = email.SendGridEmail("SG.key", "billing@acme.example").build(message(to="ada@x.com, bob@y.com")).get()
    assert [r["email"] for p in payload["personalizations"] for r in p["to"]] == ["ada@x.com", "bob@y.com"]


def test_a_bad_sender_or_reply_to_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError):
        email.SendGridEmail("SG.key", "billing at acme")
    with pytest.raises(errors.ConfigError):
        email.SendGridEmail("SG.key", "billing@acme.example").build(message(reply_to="ar@@acme"))


# ------------------------------------------------------------------ SendGrid error table


def http_error(status: int, headers: dict[str, str] | None = None) -> http_exceptions.HTTPError:
    cls = http_exceptions.err_dict.get(status, http_exceptions.HTTPError)
    header_message = Message()
    for name, value in (headers or {}).items():
        header_message[name] = value
    return cls(status, "reason", b'{"errors":[{"message":"Does not contain a valid address.","field":"personalizations.0.to.0.email"}]}', header_message)


@pytest.mark.parametrize(("raised", "expected"), [
    (http_error(400), errors.PermanentFailure),
    (http_error(413), errors.PermanentFailure),
    (http_error(401), errors.ConfigError),
    (http_error(403), errors.ConfigError),
    (http_error(404), errors.ConfigError),
    (http_error(429, {"X-RateLimit-Reset": "1"}), errors.TransientFailure),
    (http_error(500), base.OutcomeUnknown),
    (http_error(502), base.OutcomeUnknown),
    (http_error(503), base.OutcomeUnknown),
    (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), errors.TransientFailure),
    (urllib.error.URLError(socket.gaierror(-2, "Name or service not known")), errors.TransientFailure),
    (urllib.error.URLError(TimeoutError("timed out")), base.OutcomeUnknown),
    (urllib.error.URLError(ConnectionResetError(104, "reset")), base.OutcomeUnknown),
    (TimeoutError("timed out"), base.OutcomeUnknown),
    (http.client.RemoteDisconnected("Remote end closed connection"), base.OutcomeUnknown),
    (ConnectionResetError(104, "reset"), base.OutcomeUnknown),
    (ValueError("unknown url type: 'api.sendgrid.com/v3/mail/send'"), errors.ConfigError),
], ids=[
    "400 invalid address is permanent",
    "413 payload too large is permanent",
    "401 rejected key is configuration",
    "403 key without permission is configuration",
    "404 wrong api host is configuration",
    "429 is transient",
    "500 may have been accepted",
    "502 (not in the library's table) may have been accepted",
    "503 may have been accepted",
    "connection refused sent nothing",
    "dns failure sent nothing",
    "timeout while writing may have been accepted",
    "reset while writing may have been accepted",
    "timeout while waiting for the answer may have been accepted",
    "server hung up before answering",
    "reset while reading the answer",
    "host without scheme is configuration",
])
def test_map_sendgrid_errors(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        with email.map_sendgrid_errors():
            raise raised
    if expected is errors.TransientFailure:
        assert not isinstance(caught.value, base.OutcomeUnknown)
    assert caught.value.__cause__ is raised


def test_a_sendgrid_429_carries_a_bounded_retry_after_and_a_400_its_field() -> None:
    with pytest.raises(errors.TransientFailure) as throttled, email.map_sendgrid_errors():
        raise http_error(429, {"X-RateLimit-Reset": "99999999999"})
    assert throttled.value.retry_after == 3600.0
    with pytest.raises(errors.PermanentFailure) as refused, email.map_sendgrid_errors():
        raise http_error(400)
    assert "personalizations.0.to.0.email: Does not contain a valid address." in refused.value.message


# ------------------------------------------------------------------ Twilio error table

URI = "/2010-04-01/Accounts/AC1/Messages.json"


def rest(status: int, code: int, msg: str = "x") -> TwilioRestException:
    return TwilioRestException(status, URI, msg, code, "POST")


def refused_connection() -> requests.exceptions.ConnectionError:
    cause = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, URI, cause))  # type: ignore[arg-type]


def aborted_connection() -> requests.exceptions.ConnectionError:
    cause = urllib3.exceptions.ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))
    return requests.exceptions.ConnectionError(cause)


@pytest.mark.parametrize(("raised", "expected", "code"), [
    (rest(400, 21211), errors.PermanentFailure, 21211),
    (rest(400, 21610), errors.PermanentFailure, 21610),
    (rest(400, 21408), errors.PermanentFailure, 21408),
    (rest(400, 21614), errors.PermanentFailure, 21614),
    (rest(400, 21635), errors.PermanentFailure, 21635),
    (rest(429, 20429), errors.TransientFailure, None),
    (rest(400, 20429), errors.TransientFailure, None),
    (rest(401, 20003), errors.ConfigError, None),
    (rest(404, 20404), errors.ConfigError, None),
    (rest(500, 20500), base.OutcomeUnknown, None),
    (rest(503, 503), base.OutcomeUnknown, None),
    (TwilioServiceException(type_uri="https://www.twilio.com/docs/errors/21211", title="Invalid 'To'", status=400,
                            code=21211, detail="bad", method="POST", uri=URI), errors.PermanentFailure, 21211),
    (requests.exceptions.ConnectTimeout("connect timed out"), errors.TransientFailure, None),
    (requests.exceptions.ReadTimeout("read timed out"), base.OutcomeUnknown, None),
    (refused_connection(), errors.TransientFailure, None),
    (aborted_connection(), base.OutcomeUnknown, None),
    (requests.exceptions.JSONDecodeError("Expecting value", "{", 1), base.OutcomeUnknown, None),
    (requests.exceptions.InvalidURL("bad"), errors.ConfigError, None),
], ids=[
    "21211 invalid number is permanent with its code",
    "21610 opted out is permanent with its code",
    "21408 region not enabled is permanent",
    "21614 not a mobile is permanent",
    "21635 a landline is permanent",
    "http 429 is transient",
    "code 20429 is transient whatever the status",
    "20003 bad credentials is configuration",
    "404 unknown account is configuration",
    "500 may have been accepted",
    "503 may have been accepted",
    "rfc 9457 error format is mapped the same way",
    "connect timeout sent nothing",
    "read timeout may have been accepted",
    "connection refused sent nothing",
    "connection aborted mid-answer may have been accepted",
    "unreadable answer may have been accepted",
    "invalid base url is configuration",
])
def test_map_twilio_errors(raised: Exception, expected: type[Exception], code: int | None) -> None:
    with pytest.raises(expected) as caught:
        with sms.map_twilio_errors():
            raise raised
    if expected is errors.TransientFailure:
        assert not isinstance(caught.value, base.OutcomeUnknown)
    if code is not None:
        assert caught.value.code == code  # type: ignore[attr-defined]


def test_twilio_adapter_needs_a_sender_and_credentials() -> None:
    with pytest.raises(errors.ConfigError, match="sender"):
        sms.TwilioSms("AC" + "0" * 32, "token")
    with pytest.raises(errors.ConfigError):
        sms.TwilioSms("", "token", from_number="+15017122661")
