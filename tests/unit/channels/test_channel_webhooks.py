"""Pure webhook verification: SendGrid (ECDSA), Twilio (HMAC-SHA1), Intuit (HMAC-SHA256), status order."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from qbo_collector import errors
from qbo_collector.channels import webhooks

# ------------------------------------------------------------------ SendGrid

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_B64 = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
TS = str(int(NOW.timestamp()))
BODY = b'[{"email":"ada@example.com","timestamp":1795424400,"event":"delivered","sg_event_id":"e1","outbox_id":"ob-1"}]\r\n'


def sign(body: bytes, timestamp: str, key: ec.EllipticCurvePrivateKey = KEY) -> str:
    return base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def test_a_genuine_sendgrid_post_returns_its_events() -> None:
    events = webhooks.verify_sendgrid_event(PUBLIC_B64, BODY, sign(BODY, TS), TS, now=NOW)
    assert events == [json.loads(BODY)[0]]


def test_a_sendgrid_post_signed_a_little_in_the_future_is_accepted() -> None:
    ts = str(int((NOW + timedelta(seconds=30)).timestamp()))
    assert webhooks.verify_sendgrid_event(PUBLIC_B64, BODY, sign(BODY, ts), ts, now=NOW)


@pytest.mark.parametrize(("body", "signature", "timestamp", "says"), [
    (BODY, None, TS, "no signature"),
    (BODY, sign(BODY, TS), None, "no signature"),
    (BODY, "", TS, "no signature"),
    (BODY.replace(b"ob-1", b"ob-2"), sign(BODY, TS), TS, "signature does not match"),
    (BODY, sign(BODY, TS, OTHER_KEY), TS, "signature does not match"),
    (BODY, sign(BODY, TS), str(int(TS) + 1), "signature does not match"),
    (BODY, "not base64 at all!!", TS, "signature does not match"),
    (BODY, base64.b64encode(b"\x30\x02garbage").decode(), TS, "signature does not match"),
    (BODY.rstrip(), sign(BODY, TS), TS, "signature does not match"),
    (BODY, sign(BODY, "1795420000"), "1795420000", "replay window"),
    (b'{"not": "a list"}', sign(b'{"not": "a list"}', TS), TS, "not a JSON array"),
    (b"[1, 2]", sign(b"[1, 2]", TS), TS, "not a JSON array"),
    (b"[{]", sign(b"[{]", TS), TS, "not JSON"),
    (b"\xff\xfe", sign(b"\xff\xfe", TS), TS, "not UTF-8"),
    (BODY, sign(BODY, "soon"), "soon", "not a number"),
], ids=[
    "missing signature header",
    "missing timestamp header",
    "empty signature header",
    "body changed after signing",
    "signed with another key",
    "timestamp changed after signing",
    "signature that is not base64",
    "signature that is not a der ecdsa value",
    "receiver stripped the trailing crlf",
    "authentic but an hour old is a replay",
    "json object instead of an array",
    "array of numbers instead of events",
    "broken json",
    "body not utf-8",
    "timestamp that is not a number",
])
def test_a_bad_sendgrid_post_is_refused_with_a_distinct_reason(body: bytes, signature: str | None, timestamp: str | None, says: str) -> None:
    with pytest.raises(errors.InvalidInput, match=says):
        webhooks.verify_sendgrid_event(PUBLIC_B64, body, signature, timestamp, now=NOW)


RSA_PUBLIC_B64 = base64.b64encode(
    rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


@pytest.mark.parametrize("public_key", ["bm90IGEga2V5", "", RSA_PUBLIC_B64], ids=[
    "base64 of something that is not a key", "empty setting", "an rsa key instead of the ecdsa one"])
def test_an_unreadable_public_key_is_a_config_error(public_key: str) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        webhooks.verify_sendgrid_event(public_key, BODY, sign(BODY, TS), TS, now=NOW)
    assert caught.value.variable == "SENDGRID_WEBHOOK_PUBLIC_KEY"


# ------------------------------------------------------------------ Twilio

TOKEN = "12345678901234567890123456789012"
URL = "https://collector.example.com/webhooks/twilio/status?outbox_id=ob-1"
FORM = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "To": "+14155552671", "AccountSid": "AC" + "b" * 32}
GOOD = RequestValidator(TOKEN).compute_signature(URL, FORM)


def test_a_genuine_twilio_post_passes() -> None:
    webhooks.verify_twilio(TOKEN, URL, FORM, GOOD)


def test_a_genuine_twilio_post_passes_as_a_werkzeug_multidict() -> None:
    webhooks.verify_twilio(TOKEN, URL, MultiDict(FORM), GOOD)


def test_a_twilio_post_signed_with_sha256_shared_key_passes_with_its_settings_header() -> None:
    signature = RequestValidator(TOKEN).compute_signature(URL, FORM, "HMAC_SHA256")
    webhooks.verify_twilio(TOKEN, URL, FORM, signature, signature_settings="key=webhooks_sharedkey_1,algorithm=HMAC_SHA256")


@pytest.mark.parametrize(("url", "form", "signature", "token"), [
    (URL, FORM, None, TOKEN),
    (URL, FORM, "", TOKEN),
    (URL, {**FORM, "MessageStatus": "failed"}, GOOD, TOKEN),
    (URL.replace("ob-1", "ob-2"), FORM, GOOD, TOKEN),
    (URL.replace("https", "http"), FORM, GOOD, TOKEN),
    (URL, FORM, GOOD, "another-token-another-token-1234"),
    (URL, FORM, GOOD[:-2], TOKEN),
], ids=[
    "missing signature",
    "empty signature",
    "a field changed",
    "another url query",
    "the url seen behind a tls proxy",
    "another account's token",
    "truncated signature",
])
def test_a_bad_twilio_post_is_refused(url: str, form: dict, signature: str | None, token: str) -> None:
    with pytest.raises(errors.InvalidInput):
        webhooks.verify_twilio(token, url, form, signature)


@pytest.mark.parametrize(("form", "status", "error_code"), [
    ({"MessageSid": "SM1", "MessageStatus": "sent"}, "sent", None),
    ({"MessageSid": "SM1", "MessageStatus": "Delivered"}, "delivered", None),
    ({"SmsSid": "SM1", "SmsStatus": "undelivered", "ErrorCode": "30003"}, "undelivered", 30003),
    ({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30006"}, "failed", 30006),
    ({"MessageSid": "SM1", "MessageStatus": "queued", "ErrorCode": ""}, "queued", None),
], ids=[
    "sent",
    "status in another case",
    "legacy sms field names with an error code",
    "failed with a landline error code",
    "empty error code",
])
def test_parse_twilio_status(form: dict, status: str, error_code: int | None) -> None:
    parsed = webhooks.parse_twilio_status(form)
    assert (parsed.message_sid, parsed.status, parsed.error_code) == ("SM1", status, error_code)


@pytest.mark.parametrize("form", [
    {"MessageStatus": "sent"},
    {"MessageSid": "SM1"},
    {"MessageSid": "SM1", "MessageStatus": "exploded"},
    {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "thirty"},
], ids=["no message sid", "no status", "unknown status", "error code not a number"])
def test_parse_twilio_status_refuses_incomplete_forms(form: dict) -> None:
    with pytest.raises(errors.InvalidInput):
        webhooks.parse_twilio_status(form)


@pytest.mark.parametrize(("current", "new", "kept"), [
    (None, "queued", "queued"),
    ("queued", "sent", "sent"),
    ("sent", "delivered", "delivered"),
    ("delivered", "sent", "delivered"),
    ("delivered", "queued", "delivered"),
    ("sent", "sent", "sent"),
    ("queued", "undelivered", "undelivered"),
    ("delivered", "undelivered", "delivered"),
    ("failed", "delivered", "failed"),
    ("accepted", "queued", "queued"),
    ("sending", "sent", "sent"),
    ("sent", "mystery", "sent"),
    ("delivered", "read", "read"),
], ids=[
    "first status is taken",
    "queued moves to sent",
    "sent moves to delivered",
    "a late sent never undoes delivered",
    "a late queued never undoes delivered",
    "a repeated status changes nothing",
    "undelivered may skip sent",
    "the first final status wins over another final one",
    "failed is final too",
    "accepted by a messaging service moves to queued",
    "sending moves to sent",
    "an unknown status is ignored",
    "read comes after delivered",
])
def test_statuses_only_move_forward(current: str | None, new: str, kept: str) -> None:
    assert webhooks.advance(current, new) == kept


# ------------------------------------------------------------------ Intuit

VERIFIER = "a1b2c3d4-verifier-token"
INTUIT_BODY = b'{"eventNotifications":[{"realmId":"9341452","dataChangeEvent":{"entities":[]}}]}'
INTUIT_SIG = base64.b64encode(hmac.new(VERIFIER.encode(), INTUIT_BODY, hashlib.sha256).digest()).decode()


def test_a_genuine_intuit_post_passes() -> None:
    webhooks.verify_intuit(VERIFIER, INTUIT_BODY, INTUIT_SIG)


@pytest.mark.parametrize(("body", "signature"), [
    (INTUIT_BODY, None),
    (INTUIT_BODY, ""),
    (INTUIT_BODY + b" ", INTUIT_SIG),
    (INTUIT_BODY, INTUIT_SIG[:-4] + "AAA="),
    (INTUIT_BODY, "é-not-ascii"),
], ids=["missing signature", "empty signature", "body changed", "forged signature", "non ascii signature"])
def test_a_bad_intuit_post_is_refused(body: bytes, signature: str | None) -> None:
    with pytest.raises(errors.InvalidInput):
        webhooks.verify_intuit(VERIFIER, body, signature)


@pytest.mark.parametrize(("event", "message_id"), [
    ({"sg_message_id": "W1ZJfD1wS2K3N5lO9XhRzA.filter0001.16648.5515E0B88.0"}, "W1ZJfD1wS2K3N5lO9XhRzA"),
    ({"sg_message_id": "W1ZJfD1wS2K3N5lO9XhRzA"}, "W1ZJfD1wS2K3N5lO9XhRzA"),
    ({"sg_message_id": ""}, None),
    ({}, None),
    ({"sg_message_id": 12}, None),
], ids=["filter suffix is dropped", "bare id", "empty id", "no id", "id that is not text"])
def test_sendgrid_message_id_is_the_send_time_x_message_id(event: dict, message_id: str | None) -> None:
    assert webhooks.sendgrid_message_id(event) == message_id


def test_a_retried_sendgrid_event_has_the_same_keys() -> None:
    first = {"sg_event_id": "e1", "sg_message_id": "M.filter1", "email": "a@x.com", "event": "delivered", "timestamp": 1}
    retried_with_new_id = {**first, "sg_event_id": "e2", "sg_message_id": "M.filter2"}
    assert webhooks.sendgrid_event_keys(first)[1] == webhooks.sendgrid_event_keys(retried_with_new_id)[1]
    assert webhooks.sendgrid_event_keys(first)[0] != webhooks.sendgrid_event_keys(retried_with_new_id)[0]
