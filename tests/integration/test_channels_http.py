"""The real SendGrid and Twilio libraries, through our adapters, against the sandbox
stand-ins over real HTTP on loopback; webhooks land on a listener app and are verified
with ``channels.webhooks``. Nothing is patched: only URLs and fault knobs change.

Starts its own tiny server with only the two channel blueprints, so it does not depend
on ``sandbox.server``.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import flask
import pytest
import requests
from werkzeug.serving import make_server

from qbo_collector import errors
from qbo_collector.channels import base, email, sms, webhooks
from qbo_collector.sandbox import common
from qbo_collector.sandbox import sendgrid as sendgrid_standin
from qbo_collector.sandbox import twilio as twilio_standin

CUSTOMER_PHONE = "+14155552671"


@dataclass
class Hook:
    path: str
    url: str
    body: bytes
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Listener:
    hooks: list[Hook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_next: int = 0  # answer 500 to the next N posts (then record them normally)

    def app(self) -> flask.Flask:
        app = flask.Flask("listener")

        @app.post("/hooks/<path:name>")
        def hook(name: str) -> tuple[str, int]:
            request = flask.request
            raw = request.get_data(cache=True)  # the raw bytes, before any form parsing
            with self.lock:
                if self.fail_next:
                    self.fail_next -= 1
                    return "down", 500
                self.hooks.append(Hook(name, request.url, raw, dict(request.headers), request.form.to_dict()))
            return "", 200

        return app

    def of(self, name: str) -> list[Hook]:
        with self.lock:
            return [h for h in self.hooks if h.path == name]


class Served:
    def __init__(self, app: flask.Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    clock: common.Clock
    log: common.RequestLog
    sg_faults: common.FaultKnobs
    tw_faults: common.FaultKnobs
    sg: sendgrid_standin.SendGridStandIn
    tw: twilio_standin.TwilioStandIn
    base: str
    listener: Listener
    listener_url: str


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    clock, log = common.Clock(), common.RequestLog()
    sg_faults, tw_faults = common.FaultKnobs(), common.FaultKnobs()
    sg = sendgrid_standin.SendGridStandIn(clock, sg_faults, log)
    tw = twilio_standin.TwilioStandIn(clock, tw_faults, log)
    app = flask.Flask("channels-sandbox")
    app.register_blueprint(sg.blueprint(), url_prefix="/sendgrid")
    app.register_blueprint(tw.blueprint(), url_prefix="/twilio")
    listener = Listener()
    sandbox, hooks = Served(app), Served(listener.app())
    try:
        yield World(clock, log, sg_faults, tw_faults, sg, tw, sandbox.url, listener, hooks.url)
    finally:
        sg.flush()
        tw.flush()
        sandbox.stop()
        hooks.stop()


@pytest.fixture
def w(world: World) -> Iterator[World]:
    world.sg.reset()
    world.tw.reset()
    world.sg_faults.reset()
    world.tw_faults.reset()
    world.sg_faults.timeout_seconds = world.tw_faults.timeout_seconds = 1.0
    world.clock.set_offset(timedelta(0))
    world.log.clear()
    world.sg.event_webhook_url = f"{world.listener_url}/hooks/sendgrid"
    world.tw.inbound_webhook_url = f"{world.listener_url}/hooks/twilio/inbound"
    with world.listener.lock:
        world.listener.hooks.clear()
        world.listener.fail_next = 0
    yield world
    world.sg.flush()
    world.tw.flush()


def mailer(w: World, *, key: str = sendgrid_standin.DEFAULT_API_KEY, timeout: float = 5.0) -> email.SendGridEmail:
    return email.SendGridEmail(key, "billing@acme.example", host=f"{w.base}/sendgrid", timeout=timeout)


def texter(w: World, *, token: str | None = None, timeout: float = 5.0, **kwargs: str) -> sms.TwilioSms:
    kwargs.setdefault("from_number", w.tw.phone_number)
    return sms.TwilioSms(w.tw.account_sid, token or w.tw.auth_token, api_base_url=f"{w.base}/twilio", timeout=timeout, **kwargs)


def an_email(to: str = "ada@example.com", outbox_id: str = "ob-1") -> base.OutboundMessage:
    return base.OutboundMessage(
        outbox_id=outbox_id, realm="9341452", to=to, subject="Invoice 1042 is 15 days late",
        text="Hello Ada, invoice 1042 (1,200.00 USD) is overdue. Pay: https://pay.example/1042",
        html="<p>Hello Ada, invoice 1042 is overdue. <a href='https://pay.example/1042'>Pay</a></p>",
        reply_to="ar@acme.example", from_name="Acme Ltd",
    )


def a_text(w: World, to: str = CUSTOMER_PHONE, outbox_id: str = "ob-7") -> base.OutboundMessage:
    return base.OutboundMessage(
        outbox_id=outbox_id, realm="9341452", to=to, text="Acme: invoice 1042 is overdue. Pay https://pay.example/1042",
        status_callback_url=f"{w.listener_url}/hooks/twilio/status?outbox_id={outbox_id}",
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def verified_events(w: World) -> list[dict]:
    assert w.sg.flush()
    events = []
    for hook in w.listener.of("sendgrid"):
        events += webhooks.verify_sendgrid_event(
            w.sg.public_key_base64, hook.body,
            hook.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
            hook.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
            now=w.clock.now(),
        )
    return events


# ------------------------------------------------------------------ SendGrid


def test_an_accepted_email_returns_sendgrids_message_id_and_keeps_everything_we_sent(w: World) -> None:
    receipt = mailer(w).send(an_email())

    (message,) = w.sg.messages
    assert receipt.provider_id == message["message_id"] and receipt.raw_status == "202"
    assert message["to"] == "ada@example.com" and message["from"] == "billing@acme.example"
    assert message["from_name"] == "Acme Ltd" and message["reply_to"] == "ar@acme.example"
    assert "invoice 1042" in message["text"] and message["html"].startswith("<p>")
    assert message["custom_args"] == {"outbox_id": "ob-1", "realm": "9341452"}
    assert message["tracking_settings"]["open_tracking"]["enable"] is True
    assert message["tracking_settings"]["click_tracking"]["enable"] is True
    assert w.log.count("sendgrid", "mail/send") == 1


def test_an_invalid_address_is_a_permanent_failure_and_nothing_is_sent(w: World) -> None:
    with pytest.raises(errors.PermanentFailure) as caught:
        mailer(w).send(an_email(to="ada@example"))
    assert caught.value.code == "invalid_address"  # SendGrid's 400 names the recipient: the address is bad
    assert "personalizations.0.to.0.email" in caught.value.message
    assert not isinstance(caught.value, errors.TransientFailure)
    assert w.sg.messages == []


def test_a_400_about_the_message_is_not_taken_for_a_bad_address(w: World) -> None:
    """Found in review: every SendGrid 400 was taken for an invalid address, so a template that
    rendered an empty subject stopped every customer's email, in every company."""
    with pytest.raises(errors.PermanentFailure) as caught:
        mailer(w).send(dataclasses.replace(an_email(), subject=""))
    assert caught.value.code == 400 and "subject" in caught.value.message
    assert w.sg.messages == []


def test_attachments_arrive_whole_in_the_order_given(w: World) -> None:
    pdfs = (base.Attachment("Invoice-1042.pdf", b"%PDF-1.4 first\n\x00\xff"), base.Attachment("Invoice-1043.pdf", b"%PDF-1.4 second"),
            base.Attachment("notes.txt", "é".encode(), "text/plain"))
    mailer(w).send(dataclasses.replace(an_email(), attachments=pdfs))
    (message,) = w.sg.messages
    assert [(a["filename"], a["type"], a["disposition"], a["content"]) for a in message["attachments"]] == [
        (a.filename, a.mime_type, "attachment", a.content) for a in pdfs]


@pytest.mark.parametrize(("attachment", "field", "said"), [
    ({"content": "not base64!", "filename": "a.pdf"}, "attachments.0.content", "must be base64 encoded"),
    ({"content": "", "filename": "a.pdf"}, "attachments.0.content", "content is required"),
    ({"content": "JVBERg=="}, "attachments.0.filename", "filename parameter is required"),
    ({"content": "JVBERg==", "filename": "a.pdf", "type": "application/pdf; x=1"}, "attachments.0.type", "cannot contain"),
    ({"content": "JVBERg==", "filename": "a.pdf", "disposition": "inline"}, "attachments.0.content_id", "content_id"),
])
def test_sendgrid_refuses_a_malformed_attachment_and_sends_nothing(w: World, attachment: dict, field: str, said: str) -> None:
    payload = mailer(w).build(an_email()).get()
    payload["attachments"] = [attachment]
    answer = requests.post(f"{w.base}/sendgrid/v3/mail/send", json=payload, timeout=5,
                           headers={"Authorization": f"Bearer {sendgrid_standin.DEFAULT_API_KEY}"})
    assert answer.status_code == 400
    assert any(e["field"] == field and said in e["message"] for e in answer.json()["errors"]), answer.json()
    assert w.sg.messages == []


def test_a_rejected_api_key_is_a_config_error_naming_the_variable(w: World) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        mailer(w, key="SG.wrong").send(an_email())
    assert caught.value.variable == "SENDGRID_API_KEY"
    assert w.sg.messages == []


def test_an_unverified_sender_names_the_from_address_not_the_key(w: World) -> None:
    """Found in review: SendGrid's 403 for a from address that is not a verified Sender Identity was
    reported as a bad API key, sending the owner to the wrong setting."""
    w.sg.verified_senders = {"ar@acme.example"}
    try:
        with pytest.raises(errors.ConfigError) as caught:
            mailer(w).send(an_email())  # from billing@acme.example
        assert caught.value.variable == "SENDGRID_FROM_EMAIL" and "Sender Identity" in caught.value.message
        assert w.sg.messages == []
        w.sg.verified_senders = {"Billing@Acme.example"}
        assert mailer(w).send(an_email()).provider_id and len(w.sg.messages) == 1
    finally:
        w.sg.verified_senders = None


def test_a_429_is_transient_with_a_retry_delay_and_nothing_is_sent(w: World) -> None:
    w.sg_faults.force_429 = 1
    with pytest.raises(errors.TransientFailure) as caught:
        mailer(w).send(an_email())
    assert not isinstance(caught.value, base.OutcomeUnknown)
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 2
    assert w.sg.messages == []


def test_a_timeout_after_the_request_is_outcome_unknown_because_sendgrid_may_have_taken_it(w: World) -> None:
    w.sg_faults.force_timeout = 1
    with pytest.raises(base.OutcomeUnknown):
        mailer(w, timeout=0.3).send(an_email())
    assert len(w.sg.messages) == 1  # it did go out: resending would be a second email


def test_a_5xx_is_outcome_unknown(w: World) -> None:
    w.sg_faults.force_500 = 1
    with pytest.raises(base.OutcomeUnknown):
        mailer(w).send(an_email())


def test_a_refused_connection_is_a_plain_transient_failure(w: World) -> None:
    adapter = email.SendGridEmail(sendgrid_standin.DEFAULT_API_KEY, "billing@acme.example", host=closed_port_url())
    with pytest.raises(errors.TransientFailure) as caught:
        adapter.send(an_email())
    assert not isinstance(caught.value, base.OutcomeUnknown)


def test_signed_events_arrive_verify_and_carry_the_outbox_id_back(w: World) -> None:
    receipt = mailer(w).send(an_email(outbox_id="ob-42"))
    events = verified_events(w)

    assert [e["event"] for e in events] == ["processed", "delivered"]
    for event in events:
        assert event["outbox_id"] == "ob-42" and event["realm"] == "9341452"
        assert event["email"] == "ada@example.com"
        assert webhooks.sendgrid_message_id(event) == receipt.provider_id
        assert isinstance(event["timestamp"], int)
    assert len({e["sg_event_id"] for e in events}) == 2
    assert w.listener.of("sendgrid")[0].body.endswith(b"\r\n")


def test_an_address_containing_bounce_bounces(w: World) -> None:
    mailer(w).send(an_email(to="bounce@example.com"))
    events = verified_events(w)
    assert [e["event"] for e in events] == ["processed", "bounce"]
    assert events[1]["status"] == "5.1.1"


def suppressions(w: World, *, key: str = sendgrid_standin.DEFAULT_API_KEY) -> email.SendGridSuppressions:
    return email.SendGridSuppressions(key, host=f"{w.base}/sendgrid", timeout=5.0)


def test_a_bounced_address_is_dropped_until_it_is_taken_off_the_bounce_list(w: World) -> None:
    """SendGrid keeps bounced addresses on a list and drops later emails to them: only the
    Suppressions API (through the real library) takes one off."""
    mailer(w).send(an_email(to="Bounce.Back@example.com", outbox_id="ob-1"))
    mailer(w).send(an_email(to="bounce.back@example.com", outbox_id="ob-2"))
    events = verified_events(w)
    assert [(e["outbox_id"], e["event"]) for e in events] == [("ob-1", "processed"), ("ob-1", "bounce"),
                                                              ("ob-2", "dropped")]
    assert events[2]["reason"] == "Bounced Address"
    assert w.sg.suppressions["bounces"]["bounce.back@example.com"]["status"] == "5.1.1"
    suppressions(w).remove("bounces", "Bounce.Back@example.com")
    suppressions(w).remove("bounces", "bounce.back@example.com")  # not listed any more: 204 as well
    assert w.sg.suppressed("bounce.back@example.com") is None
    assert [(r.endpoint, r.method, r.status) for r in w.log.entries() if r.endpoint != "mail/send"] == [
        ("suppression/bounces", "DELETE", 204)] * 2


@pytest.mark.parametrize(("listed", "reason"), [
    ("invalid_emails", "Invalid"), ("spam_reports", "Spam Reporting Address"), ("unsubscribes", "Unsubscribed Address"),
], ids=["an invalid address", "a spam report", "an unsubscribe"])
def test_an_address_on_any_suppression_list_is_dropped_with_the_list_named(w: World, listed: str, reason: str) -> None:
    w.sg.suppress(listed, "ada@example.com", reason="Mail domain mentioned in email address is unknown")
    mailer(w).send(an_email())
    assert [(e["event"], e["reason"]) for e in verified_events(w)] == [("dropped", reason)]


def test_a_spam_report_puts_the_address_on_the_spam_list(w: World) -> None:
    receipt = mailer(w).send(an_email())
    w.sg.spamreport(receipt.provider_id)
    assert w.sg.suppressed("ada@example.com") == "spam_reports"


def test_taking_an_address_off_a_list_answers_each_failure_with_the_projects_errors(w: World) -> None:
    w.sg.suppress("invalid_emails", "a/b?c#d@example.com", reason="Invalid")
    suppressions(w).remove("invalid_emails", "a/b?c#d@example.com")  # one path segment, however written
    assert w.sg.suppressed("a/b?c#d@example.com") is None
    assert suppressions(w).can_lift()
    w.sg.scopes[sendgrid_standin.DEFAULT_API_KEY] = {"mail.send"}  # a key restricted to Mail Send
    assert not suppressions(w).can_lift()  # GET /v3/scopes says so before anyone tries
    with pytest.raises(errors.ConfigError, match="Suppressions permission") as refused:
        suppressions(w).remove("bounces", "ada@example.com")
    assert refused.value.context["code"] == "suppression_permission"
    mailer(w).send(an_email())  # the same key still sends
    w.sg.scopes.clear()
    with pytest.raises(errors.ConfigError, match="SENDGRID_API_KEY"):
        suppressions(w, key="SG.wrong.key").remove("bounces", "ada@example.com")
    with pytest.raises(errors.ConfigError, match="SENDGRID_API_KEY"):
        suppressions(w, key="SG.wrong.key").can_lift()
    w.sg_faults.force_500 = 1
    with pytest.raises(errors.TransientFailure, match="HTTP 500"):
        suppressions(w).remove("bounces", "ada@example.com")
    w.sg_faults.force_429 = 1
    with pytest.raises(errors.TransientFailure, match="HTTP 429") as throttled:
        suppressions(w).remove("bounces", "ada@example.com")
    assert throttled.value.retry_after is not None and 0 <= throttled.value.retry_after <= 2
    with pytest.raises(errors.PermanentFailure, match="HTTP 404"):
        email.SendGridSuppressions(sendgrid_standin.DEFAULT_API_KEY, host=f"{w.base}/twilio").remove("bounces", "a@x.io")
    with pytest.raises(errors.TransientFailure, match="Could not reach SendGrid"):
        email.SendGridSuppressions(sendgrid_standin.DEFAULT_API_KEY, host=closed_port_url(),
                                   timeout=2.0).remove("bounces", "a@x.io")
    with pytest.raises(ValueError, match="spam_reports"):
        suppressions(w).remove("spam_reports", "ada@example.com")  # a customer's wish is not ours to lift


def test_open_click_and_spam_report_helpers_post_signed_events(w: World) -> None:
    receipt = mailer(w).send(an_email())
    w.sg.open(receipt.provider_id)
    w.sg.click(receipt.provider_id, url="https://pay.example/1042")
    w.sg.spamreport(receipt.provider_id)
    events = verified_events(w)
    assert [e["event"] for e in events] == ["processed", "delivered", "open", "click", "spamreport"]
    assert events[3]["url"] == "https://pay.example/1042" and events[3]["outbox_id"] == "ob-1"


def test_duplicate_deliveries_repeat_the_same_event_ids(w: World) -> None:
    w.sg.duplicate_deliveries = True
    mailer(w).send(an_email())
    events = verified_events(w)
    assert len(events) == 4 and len({e["sg_event_id"] for e in events}) == 2
    assert len({webhooks.sendgrid_event_keys(e)[1] for e in events}) == 2


def test_an_event_post_our_side_failed_is_retried_until_it_lands(w: World) -> None:
    w.listener.fail_next = 2
    mailer(w).send(an_email())
    events = verified_events(w)
    assert [e["event"] for e in events] == ["processed", "delivered"]
    assert w.sg.courier.deliveries[0].attempts == 3


def test_a_tampered_or_replayed_event_post_is_refused(w: World) -> None:
    mailer(w).send(an_email())
    assert w.sg.flush()
    hook = w.listener.of("sendgrid")[0]
    signature = hook.headers["X-Twilio-Email-Event-Webhook-Signature"]
    timestamp = hook.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    forged = hook.body.replace(b"ob-1", b"ob-2")
    with pytest.raises(errors.InvalidInput, match="signature"):
        webhooks.verify_sendgrid_event(w.sg.public_key_base64, forged, signature, timestamp, now=w.clock.now())
    with pytest.raises(errors.InvalidInput, match="replay window"):
        webhooks.verify_sendgrid_event(w.sg.public_key_base64, hook.body, signature, timestamp,
                                       now=w.clock.now() + timedelta(minutes=10))


# ------------------------------------------------------------------ Twilio


def test_a_text_is_created_queued_with_validity_period_and_status_callback(w: World) -> None:
    receipt = texter(w).send(a_text(w))

    (message,) = w.tw.messages
    assert receipt.provider_id == message["sid"] and receipt.provider_id.startswith("SM")
    assert receipt.raw_status == "queued" and receipt.accepted_at is not None and receipt.accepted_at.tzinfo is not None
    assert message["validity_period"] == 3600
    assert message["status_callback"].endswith("/hooks/twilio/status?outbox_id=ob-7")
    assert w.log.count("twilio", "messages") == 1


def test_a_messaging_service_sender_is_accepted_first(w: World) -> None:
    receipt = texter(w, from_number=None, messaging_service_sid="MG" + "0" * 32).send(a_text(w))
    assert receipt.raw_status == "accepted"


def test_an_invalid_number_is_a_permanent_failure_21211(w: World) -> None:
    with pytest.raises(errors.PermanentFailure) as caught:
        texter(w).send(a_text(w, to="+1555"))
    assert caught.value.code == 21211 and "+1555" in caught.value.message


def test_bad_credentials_are_a_config_error(w: World) -> None:
    with pytest.raises(errors.ConfigError):
        texter(w, token="not-the-token").send(a_text(w))
    assert w.tw.messages == []


def test_a_429_is_transient_and_nothing_is_sent(w: World) -> None:
    w.tw_faults.force_429 = 1
    with pytest.raises(errors.TransientFailure) as caught:
        texter(w).send(a_text(w))
    assert not isinstance(caught.value, base.OutcomeUnknown)
    assert w.tw.messages == []


@pytest.mark.parametrize("fault", ["timeout", "500", "malformed"], ids=[
    "a read timeout may hide an accepted text",
    "a 5xx may hide an accepted text",
    "an unreadable 201 hides an accepted text",
])
def test_ambiguous_twilio_answers_are_outcome_unknown(w: World, fault: str) -> None:
    setattr(w.tw_faults, f"force_{fault}", 1)
    with pytest.raises(base.OutcomeUnknown):
        texter(w, timeout=0.3).send(a_text(w))


def test_a_refused_connection_to_twilio_is_a_plain_transient_failure(w: World) -> None:
    adapter = sms.TwilioSms(w.tw.account_sid, w.tw.auth_token, from_number=w.tw.phone_number, api_base_url=closed_port_url())
    with pytest.raises(errors.TransientFailure) as caught:
        adapter.send(a_text(w))
    assert not isinstance(caught.value, base.OutcomeUnknown)


def status_trail(w: World, outbox_id: str) -> list[webhooks.TwilioStatus]:
    assert w.tw.flush()
    trail = []
    for hook in w.listener.of("twilio/status"):
        if hook.form and f"outbox_id={outbox_id}" in hook.url:
            # Production passes the URL it gave Twilio; on loopback request.url is that URL.
            webhooks.verify_twilio(w.tw.auth_token, hook.url, hook.form, hook.headers.get("X-Twilio-Signature"))
            trail.append(webhooks.parse_twilio_status(hook.form))
    return trail


def test_status_callbacks_are_signed_and_end_delivered(w: World) -> None:
    receipt = texter(w).send(a_text(w))
    trail = status_trail(w, "ob-7")
    assert [s.status for s in trail] == ["sent", "delivered"]
    assert {s.message_sid for s in trail} == {receipt.provider_id}


def test_out_of_order_and_repeated_callbacks_still_end_delivered(w: World) -> None:
    w.tw.out_of_order = w.tw.duplicate_callbacks = True
    receipt = texter(w).send(a_text(w))
    trail = status_trail(w, "ob-7")
    assert [s.status for s in trail] == ["delivered", "delivered", "sent", "sent"]
    current = receipt.raw_status
    for status in trail:
        current = webhooks.advance(current, status.status)
    assert current == "delivered"


def test_a_designated_number_ends_undelivered_with_its_error_code(w: World) -> None:
    w.tw.designate(CUSTOMER_PHONE, "undelivered", 30003)
    texter(w).send(a_text(w))
    final = status_trail(w, "ob-7")[-1]
    assert (final.status, final.error_code, final.is_final) == ("undelivered", 30003, True)


def test_a_forged_status_callback_is_refused(w: World) -> None:
    texter(w).send(a_text(w))
    assert w.tw.flush()
    hook = w.listener.of("twilio/status")[0]
    with pytest.raises(errors.InvalidInput):
        webhooks.verify_twilio(w.tw.auth_token, hook.url, {**hook.form, "MessageStatus": "failed"},
                               hook.headers["X-Twilio-Signature"])


def test_stop_then_start_by_text_blocks_then_reallows_sending(w: World) -> None:
    w.tw.inbound(CUSTOMER_PHONE, " Stop ")
    assert w.tw.flush()
    (hook,) = w.listener.of("twilio/inbound")
    webhooks.verify_twilio(w.tw.auth_token, hook.url, hook.form, hook.headers.get("X-Twilio-Signature"))
    assert sms.parse_keyword(hook.form["Body"]) == "stop"
    assert hook.form["From"] == CUSTOMER_PHONE and hook.form["To"] == w.tw.phone_number

    with pytest.raises(errors.PermanentFailure) as caught:
        texter(w).send(a_text(w))
    assert caught.value.code == 21610

    w.tw.inbound(CUSTOMER_PHONE, "START")
    assert w.tw.flush()
    assert sms.parse_keyword(w.listener.of("twilio/inbound")[-1].form["Body"]) == "start"
    assert texter(w).send(a_text(w)).raw_status == "queued"


def test_the_whole_suite_of_webhooks_is_delivered_quickly(w: World) -> None:
    started = time.monotonic()
    for i in range(10):
        texter(w).send(a_text(w, outbox_id=f"ob-{i}"))
        mailer(w).send(an_email(outbox_id=f"ob-{i}"))
    assert w.tw.flush() and w.sg.flush()
    assert len(w.listener.of("twilio/status")) == 20 and len(w.listener.of("sendgrid")) == 20
    assert time.monotonic() - started < 15
