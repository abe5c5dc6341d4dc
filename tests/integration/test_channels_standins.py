"""The SendGrid and Twilio stand-ins answer in the vendors' own shapes (Flask test client)."""

from __future__ import annotations

import base64
import json

import flask
import pytest

from qbo_collector.sandbox import common
from qbo_collector.sandbox import sendgrid as sendgrid_standin
from qbo_collector.sandbox import twilio as twilio_standin

PHONE = "+14155552671"


@pytest.fixture
def sg() -> sendgrid_standin.SendGridStandIn:
    return sendgrid_standin.SendGridStandIn(common.Clock(), common.FaultKnobs(), common.RequestLog())


@pytest.fixture
def tw() -> twilio_standin.TwilioStandIn:
    return twilio_standin.TwilioStandIn(common.Clock(), common.FaultKnobs(), common.RequestLog())


def client_for(standin: object, prefix: str) -> flask.testing.FlaskClient:
    app = flask.Flask("standins")
    app.register_blueprint(standin.blueprint(), url_prefix=prefix)  # type: ignore[attr-defined]
    return app.test_client()


def good_mail(**overrides: object) -> dict:
    mail = {
        "from": {"email": "billing@acme.example"}, "subject": "Invoice 1042",
        "personalizations": [{"to": [{"email": "ada@example.com"}]}],
        "content": [{"type": "text/plain", "value": "Pay please"}],
        "custom_args": {"outbox_id": "ob-1", "realm": "r1"},
    }
    mail.update(overrides)
    return mail


def post_mail(sg: sendgrid_standin.SendGridStandIn, payload: object, key: str = sendgrid_standin.DEFAULT_API_KEY):
    return client_for(sg, "/sendgrid").post("/sendgrid/v3/mail/send", data=json.dumps(payload),
                                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})


def test_sendgrid_answers_202_with_an_empty_body_and_logs_the_realm(sg: sendgrid_standin.SendGridStandIn) -> None:
    response = post_mail(sg, good_mail())
    assert response.status_code == 202 and response.data == b"" and response.headers["X-Message-Id"]
    (entry,) = sg.log.entries()
    assert (entry.service, entry.endpoint, entry.status, entry.realm) == ("sendgrid", "mail/send", 202, "r1")


def test_sendgrid_401_has_sendgrids_error_shape(sg: sendgrid_standin.SendGridStandIn) -> None:
    response = post_mail(sg, good_mail(), key="SG.nope")
    assert response.status_code == 401
    assert response.get_json() == {"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked",
                                               "field": None, "help": None}]}


@pytest.mark.parametrize(("overrides", "field"), [
    ({"subject": None}, "subject"),
    ({"content": []}, "content"),
    ({"content": [{"type": "text/plain", "value": ""}]}, "content.0.value"),
    ({"from": {}}, "from.email"),
    ({"personalizations": []}, "personalizations"),
    ({"personalizations": [{"to": []}]}, "personalizations.0.to"),
    ({"personalizations": [{"to": [{"email": "ada@"}]}]}, "personalizations.0.to.0.email"),
    ({"reply_to": {"email": "nope"}}, "reply_to.email"),
    ({"custom_args": {"outbox_id": 7}}, "custom_args.outbox_id"),
], ids=[
    "missing subject", "no content block", "empty content value", "missing sender", "no personalization",
    "personalization without recipients", "invalid recipient", "invalid reply-to", "custom arg that is not a string",
])
def test_sendgrid_refuses_what_sendgrid_refuses(sg: sendgrid_standin.SendGridStandIn, overrides: dict, field: str) -> None:
    response = post_mail(sg, good_mail(**overrides))
    assert response.status_code == 400
    assert field in [e["field"] for e in response.get_json()["errors"]]
    assert sg.messages == []


def test_sendgrid_accepts_a_template_without_subject_or_content(sg: sendgrid_standin.SendGridStandIn) -> None:
    payload = good_mail(template_id="d-123", subject=None)
    del payload["content"]
    assert post_mail(sg, payload).status_code == 202


def test_sendgrid_public_key_is_the_base64_der_key_sendgrids_helper_reads(sg: sendgrid_standin.SendGridStandIn) -> None:
    from sendgrid.helpers.eventwebhook import EventWebhook

    key = EventWebhook().convert_public_key_to_ecdsa(sg.public_key_base64)
    assert key.curve.name == "secp256r1"
    assert EventWebhook(sg.public_key_base64).verify_signature("[]", sg.sign(b"[]", "1700000000"), "1700000000")


def test_sendgrid_events_without_a_webhook_url_are_kept_not_posted(sg: sendgrid_standin.SendGridStandIn) -> None:
    message_id = post_mail(sg, good_mail()).headers["X-Message-Id"]
    sg.emit(message_id, "deferred", response="450 try later")
    assert [e["event"] for e in sg.events] == ["processed", "delivered", "deferred"]
    assert sg.courier.deliveries == []


# ------------------------------------------------------------------ Twilio


def post_text(tw: twilio_standin.TwilioStandIn, form: dict, token: str | None = None, sid: str | None = None):
    sid = sid or tw.account_sid
    auth = base64.b64encode(f"{sid}:{token or tw.auth_token}".encode()).decode()
    return client_for(tw, "/twilio").post(f"/twilio/2010-04-01/Accounts/{sid}/Messages.json", data=form,
                                          headers={"Authorization": f"Basic {auth}"})


def test_twilio_201_is_the_message_resource(tw: twilio_standin.TwilioStandIn) -> None:
    response = post_text(tw, {"To": PHONE, "From": tw.phone_number, "Body": "Hi", "ValidityPeriod": "600"})
    assert response.status_code == 201
    body = response.get_json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert (body["status"], body["to"], body["from"], body["body"]) == ("queued", PHONE, tw.phone_number, "Hi")
    assert (body["num_segments"], body["price"], body["error_code"], body["direction"]) == ("1", None, None, "outbound-api")
    assert body["date_created"].endswith("+0000")
    assert tw.messages[0]["validity_period"] == 600


@pytest.mark.parametrize(("setup", "form", "status", "code"), [
    (None, {"From": "+15017122661", "Body": "Hi"}, 400, 21604),
    (None, {"To": PHONE, "Body": "Hi"}, 400, 21603),
    (None, {"To": PHONE, "From": "+15017122661"}, 400, 21602),
    (None, {"To": PHONE, "From": "+1-501-712", "Body": "Hi"}, 400, 21212),
    (None, {"To": "+1555", "From": "+15017122661", "Body": "Hi"}, 400, 21211),
    ("blocked", {"To": "+79161234567", "From": "+15017122661", "Body": "Hi"}, 400, 21408),
    ("landline", {"To": "+33142685300", "From": "+15017122661", "Body": "Hi"}, 400, 21635),
    ("opted_out", {"To": PHONE, "From": "+15017122661", "Body": "Hi"}, 400, 21610),
    (None, {"To": PHONE, "From": "+15017122661", "Body": "x" * 1601}, 400, 21617),
    (None, {"To": PHONE, "From": "+15017122661", "Body": "Hi", "ValidityPeriod": "0"}, 400, 21624),
], ids=[
    "no recipient", "no sender", "no body", "invalid sender", "invalid number", "region not enabled", "landline",
    "recipient opted out", "body over 1600 characters", "validity period out of range",
])
def test_twilio_refusals_have_twilios_error_shape(tw: twilio_standin.TwilioStandIn, setup: str | None, form: dict, status: int, code: int) -> None:
    if setup == "blocked":
        tw.blocked_prefixes.add("+7")
    elif setup == "landline":
        tw.landlines.add("+33142685300")  # a Paris landline: refused at once outside the US, Canada and the UK
    elif setup == "opted_out":
        tw.inbound(PHONE, "stop")
    response = post_text(tw, form)
    body = response.get_json()
    assert response.status_code == status
    assert body == {"code": code, "message": body["message"], "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    assert tw.messages == []


def test_a_landline_in_the_us_canada_or_the_uk_is_tried_and_ends_undelivered_30006(tw: twilio_standin.TwilioStandIn) -> None:
    """As Twilio does: there it accepts the text and the carrier refuses it; elsewhere 21635 at once."""
    tw.landlines.add(PHONE)
    tw.inbound_webhook_url = None
    response = post_text(tw, {"To": PHONE, "From": "+15017122661", "Body": "Hi",
                              "StatusCallback": "http://127.0.0.1:9/status"})
    assert response.status_code == 201
    assert [(c["MessageStatus"], c.get("ErrorCode")) for c in tw.messages[0]["callbacks"]] == [
        ("sent", None), ("undelivered", "30006")]


def test_twilio_bad_credentials_are_20003(tw: twilio_standin.TwilioStandIn) -> None:
    response = post_text(tw, {"To": PHONE, "From": tw.phone_number, "Body": "Hi"}, token="wrong")
    assert (response.status_code, response.get_json()["code"]) == (401, 20003)


def test_twilio_throttle_is_20429_with_http_429(tw: twilio_standin.TwilioStandIn) -> None:
    tw.faults.force_429 = 1
    response = post_text(tw, {"To": PHONE, "From": tw.phone_number, "Body": "Hi"})
    assert (response.status_code, response.get_json()["code"]) == (429, 20429)


def test_twilio_fetch_shows_where_the_message_ended(tw: twilio_standin.TwilioStandIn) -> None:
    tw.designate(PHONE, "failed", 30006)
    sid = post_text(tw, {"To": PHONE, "From": tw.phone_number, "Body": "Hi"}).get_json()["sid"]
    auth = base64.b64encode(f"{tw.account_sid}:{tw.auth_token}".encode()).decode()
    fetched = client_for(tw, "/twilio").get(f"/twilio/2010-04-01/Accounts/{tw.account_sid}/Messages/{sid}.json",
                                            headers={"Authorization": f"Basic {auth}"})
    assert fetched.get_json()["status"] == "failed"
    assert tw.log.count("twilio", "messages") == 1 and tw.log.count("twilio", "fetch:message") == 1


@pytest.mark.parametrize(("body", "opted_out", "opt_out_type"), [
    ("STOP", True, "STOP"), ("unsubscribe", True, "STOP"), ("  quit ", True, "STOP"),
    ("HELP", False, "HELP"), ("please stop", False, None), ("START", False, "START"),
], ids=["stop", "unsubscribe", "quit with spaces", "help does not opt out", "a sentence is not a keyword", "start"])
def test_inbound_keywords_drive_the_opt_out_set(tw: twilio_standin.TwilioStandIn, body: str, opted_out: bool, opt_out_type: str | None) -> None:
    tw.inbound(PHONE, body)
    assert (PHONE in tw.opted_out_of.get(tw.phone_number, set())) is opted_out
    assert tw.inbound_messages[-1].get("OptOutType") == opt_out_type


def test_a_stop_opts_out_of_the_sender_it_was_sent_to_only(tw: twilio_standin.TwilioStandIn) -> None:
    """As Twilio does: the opt-out is kept per sender (number, or messaging service); START lifts it."""
    service = "MG" + "b" * 32
    tw.inbound(PHONE, "STOP", to="+14155550001")
    tw.inbound(PHONE, "STOP", to="+14155550009", service=service)
    assert tw.inbound_messages[-1]["MessagingServiceSid"] == service
    refused = [post_text(tw, {"To": PHONE, "From": "+14155550001", "Body": "Hi"}),
               post_text(tw, {"To": PHONE, "MessagingServiceSid": service, "Body": "Hi"})]
    assert [r.get_json()["code"] for r in refused] == [21610, 21610]
    assert post_text(tw, {"To": PHONE, "From": "+14155550002", "Body": "Hi"}).status_code == 201
    tw.inbound(PHONE, "START", to="+14155550001")
    assert post_text(tw, {"To": PHONE, "From": "+14155550001", "Body": "Hi"}).status_code == 201


def test_the_signature_the_stand_in_makes_is_the_one_twilios_validator_accepts() -> None:
    from twilio.request_validator import RequestValidator

    params = {"Body": "STOP", "From": PHONE, "To": "+15017122661", "MessageSid": "SM1"}
    url = "https://collector.example.com/hooks/twilio/inbound?realm=1"
    assert RequestValidator("tok").validate(url, params, twilio_standin.twilio_signature("tok", url, params))


def test_stop_delivers_what_is_pending_then_ends_the_thread_and_a_later_post_restarts_it(sg: sendgrid_standin.SendGridStandIn) -> None:
    sg.event_webhook_url = "http://127.0.0.1:9/nobody-listens"
    message_id = post_mail(sg, good_mail()).headers["X-Message-Id"]
    sg.stop()
    assert len(sg.courier.deliveries) == 2 and all(d.error and d.attempts == 3 for d in sg.courier.deliveries)
    sg.spamreport(message_id)
    assert sg.flush() and len(sg.courier.deliveries) == 3
    sg.stop()
