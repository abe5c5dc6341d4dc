"""POST /webhooks/sendgrid, /webhooks/twilio/status, /webhooks/twilio/inbound over real HTTP:
forged signatures (401), replays (ignored), malformed payloads (400, logged), STOP/START, replies.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select

from qbo_collector import clock
from qbo_collector.db import models
from qbo_collector.sandbox import twilio as twilio_standin
from tests.integration import test_dispatch_support as ds

NUMBER = "+14155550142"


@pytest.fixture
def env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    sb = sandbox_factory(companies=[ds.SMALL])
    realm = next(iter(sb.intuit.companies))
    customers = sb.intuit.entities(realm, "Customer")
    open_ = collections.Counter(i["CustomerRef"]["value"] for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 0)
    chosen = max(customers, key=lambda c: open_[c["Id"]])
    sb.intuit.update(realm, "Customer", chosen["Id"], Mobile={"FreeFormNumber": "(415) 555-0142"})
    e = ds.build(sb, settings_factory, sqlite_db)
    e.chosen = chosen["Id"]  # type: ignore[attr-defined]
    yield e
    e.web.stop()


def _activity(env, kind: str) -> int:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        return s.scalar(select(func.count()).select_from(models.Activity).where(models.Activity.kind == kind))


def _signed_sendgrid(env, body: bytes, timestamp: str | None = None) -> requests.Response:  # type: ignore[no-untyped-def]
    timestamp = timestamp or str(int(clock.now().timestamp()))
    return requests.post(f"{env.web.url}/webhooks/sendgrid", data=body, timeout=5, headers={
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": env.sb.sendgrid.sign(body, timestamp),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


def _signed_twilio(env, path: str, params: dict[str, str], *, token: str | None = None) -> requests.Response:  # type: ignore[no-untyped-def]
    url = f"{env.web.url}{path}"
    signature = twilio_standin.twilio_signature(token or env.sb.twilio.auth_token, url, params)
    return requests.post(url, data=urlencode(params), timeout=5, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="no signature headers"),
    pytest.param({"X-Twilio-Email-Event-Webhook-Signature": "MEUCIQDforged", "X-Twilio-Email-Event-Webhook-Timestamp": "1"},
                 id="garbage signature"),
])
def test_sendgrid_refuses_unsigned_or_forged_posts(env, headers, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    response = requests.post(f"{env.web.url}/webhooks/sendgrid", data=b'[{"event":"delivered"}]', headers=headers, timeout=5)
    assert response.status_code == 401
    assert "SendGrid webhook refused" in caplog.text


def test_sendgrid_refuses_a_body_signed_by_another_key(env) -> None:  # type: ignore[no-untyped-def]
    from qbo_collector.sandbox import common, sendgrid as sendgrid_standin

    other = sendgrid_standin.SendGridStandIn(common.Clock(), common.FaultKnobs(), common.RequestLog())
    body = b'[{"event":"delivered","email":"a@b.example","timestamp":1}]'
    ts = str(int(clock.now().timestamp()))
    response = requests.post(f"{env.web.url}/webhooks/sendgrid", data=body, timeout=5, headers={
        "X-Twilio-Email-Event-Webhook-Signature": other.sign(body, ts), "X-Twilio-Email-Event-Webhook-Timestamp": ts})
    assert response.status_code == 401


def test_sendgrid_reads_the_replay_window_on_the_program_s_clock(env) -> None:  # type: ignore[no-untyped-def]
    """The demo moves the program's clock and the sandbox's a day on together: the sandbox signs its
    events at its time, and they must still be inside the window (they were all refused before)."""
    body = b'[{"event":"delivered","email":"a@b.example","timestamp":1,"sg_event_id":"ev-clock"}]'
    clock.advance(dt.timedelta(days=1))
    try:
        assert _signed_sendgrid(env, body).status_code == 200
    finally:
        clock.reset()
    assert _signed_sendgrid(env, body, timestamp=str(int(clock.now().timestamp()) + 86400)).status_code == 401


def test_sendgrid_replayed_and_duplicated_events_are_ignored(env) -> None:  # type: ignore[no-untyped-def]
    env.sb.sendgrid.duplicate_deliveries = True  # SendGrid's retries post every batch twice
    env.run()
    env.flush()
    delivered = _activity(env, "email.delivered")
    assert delivered > 0
    # one line per row a delivered message told (the owner's alerts of a run are one email)
    told = collections.Counter(r.provider_id for r in env.rows() if r.channel in ("email", "owner_email"))
    assert delivered == sum(told[m["message_id"]] for m in env.sb.sendgrid.messages if "bounce" not in m["to"])
    assert delivered > len([m for m in env.sb.sendgrid.messages if "bounce" not in m["to"]])
    first = env.sb.sendgrid.courier.deliveries[0]
    again = requests.post(first.url, data=first.body, headers=first.headers, timeout=5)  # a replay within the window
    assert again.status_code == 200 and again.json()["accepted"] == 0 and again.json()["duplicates"] >= 1
    assert _activity(env, "email.delivered") == delivered


def test_sendgrid_refuses_a_stale_signed_delivery(env, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    body = b'[{"event":"delivered","email":"a@b.example","timestamp":1}]'
    response = _signed_sendgrid(env, body, timestamp=str(int(clock.now().timestamp()) - 3600))
    assert response.status_code == 401 and "replay window" in response.json()["error"]
    assert "replay window" in caplog.text


@pytest.mark.parametrize("body", [
    pytest.param(b"not json at all", id="not JSON"),
    pytest.param(b'{"event": "delivered"}', id="an object, not an array"),
    pytest.param(b'["delivered"]', id="an array of strings"),
])
def test_sendgrid_malformed_bodies_are_400_and_logged(env, body, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    response = _signed_sendgrid(env, body)
    assert response.status_code == 400
    assert "refused (400)" in caplog.text


def test_sendgrid_one_malformed_event_does_not_stop_the_others(env) -> None:  # type: ignore[no-untyped-def]
    env.run()
    env.flush()
    message = next(m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example")
    good = {"event": "open", "email": message["to"], "timestamp": int(clock.now().timestamp()), "sg_event_id": "ev-1",
            "sg_message_id": f"{message['message_id']}.filter.1", **message["custom_args"]}
    response = _signed_sendgrid(env, json.dumps([{"event": "open"}, good]).encode())
    assert response.status_code == 200 and response.json() == {"accepted": 1, "duplicates": 0, "skipped": 1}
    assert _activity(env, "email.open") == 1


def test_a_bounce_or_spam_report_stops_email_to_that_address(env) -> None:  # type: ignore[no-untyped-def]
    env.run()
    env.flush()
    message = next(m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example")
    env.sb.sendgrid.spamreport(message["message_id"])
    env.flush()
    with env.db.session() as s:
        block = s.scalars(select(models.ContactBlock).where(models.ContactBlock.channel == "email")).one()
        assert block.address == message["to"].lower() and block.reason == "spamreport"
        customer = s.scalar(select(models.Customer).where(models.Customer.email == message["to"]))
        assert customer.email_stopped == "spamreport"
    assert _activity(env, "email.spamreport") == 1


@pytest.mark.parametrize(("event", "fields", "stop"), [
    ("bounce", {"type": "bounce", "reason": "550 5.1.1 The email account does not exist.",
                "bounce_classification": "Invalid Address"}, "bounce"),
    ("bounce", {"type": "blocked", "reason": "554 5.7.1 Service unavailable; client host blocked using Spamhaus",
                "bounce_classification": "Reputation"}, None),
    ("dropped", {"reason": "Bounced Address"}, "bounce"),
    ("dropped", {"reason": "Unsubscribed Address"}, "unsubscribe"),
    ("dropped", {"reason": "Spam Reporting Address"}, "spamreport"),
    ("dropped", {"reason": "Invalid"}, "invalid"),
    ("dropped", {"reason": "Invalid SMTPAPI header"}, None),
], ids=[
    "a hard bounce stops email to the address",
    "a block (our sending ip refused) does not stop email to a good address",
    "a drop because the address bounced before stops it",
    "a drop because the address unsubscribed stops it",
    "a drop because the address reported spam stops it",
    "a drop because the address is invalid stops it",
    "a drop for a bad header of ours does not stop the address",
])
def test_which_bounces_and_drops_stop_email_to_the_address(env, event, fields, stop) -> None:  # type: ignore[no-untyped-def]
    env.run()
    env.flush()
    message = next(m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example")
    env.sb.sendgrid.emit(message["message_id"], event, email=message["to"], **fields)
    env.flush()
    assert _activity(env, f"email.{event}") >= 1
    with env.db.session() as s:
        blocks = s.scalars(select(models.ContactBlock).where(models.ContactBlock.channel == "email")).all()
        customer = s.scalar(select(models.Customer).where(models.Customer.email == message["to"]))
        if stop is None:
            assert blocks == [] and customer.email_stopped is None
        else:
            assert [(b.address, b.reason) for b in blocks] == [(message["to"].lower(), stop)]
            assert customer.email_stopped == stop


def test_twilio_status_forged_is_401_and_malformed_is_400(env) -> None:  # type: ignore[no-untyped-def]
    params = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered", "To": NUMBER}
    assert _signed_twilio(env, "/webhooks/twilio/status", params, token="not-the-token").status_code == 401
    unsigned = requests.post(f"{env.web.url}/webhooks/twilio/status", data=params, timeout=5)
    assert unsigned.status_code == 401
    assert _signed_twilio(env, "/webhooks/twilio/status", {"MessageStatus": "delivered"}).status_code == 400
    assert _signed_twilio(env, "/webhooks/twilio/status", {**params, "MessageStatus": "teleported"}).status_code == 400
    assert _signed_twilio(env, "/webhooks/twilio/status", params).status_code == 200


def test_twilio_status_callbacks_repeat_and_arrive_out_of_order_but_move_forward(env) -> None:  # type: ignore[no-untyped-def]
    env.sb.twilio.duplicate_callbacks = True
    env.sb.twilio.out_of_order = True
    env.run()
    env.flush()
    sms = [r for r in env.rows(channel="sms") if r.status.value == "sent"]
    assert sms and all(r.provider_status == "delivered" for r in sms)
    assert _activity(env, "sms.delivered") == len(sms)


@pytest.mark.parametrize(("code", "said"), [
    (30034, "it is not registered for A2P 10DLC (Twilio error 30034)"),
    (30032, "it is not verified (Twilio error 30032)"),
    (30007, "filtered a reminder text as spam (Twilio error 30007)"),
], ids=["an unregistered US long code", "an unverified toll-free number", "carrier filtering"])
def test_texts_refused_for_our_sender_alert_the_owner_once_a_week_and_stop_nobody(env, code, said) -> None:  # type: ignore[no-untyped-def]
    env.sb.twilio.sender_refused = code  # every text comes back undelivered with this code
    env.run()
    env.flush()
    texts = [r for r in env.rows(channel="sms") if r.status.value == "sent"]
    assert len(texts) >= 2 and all(r.provider_status == "undelivered" for r in texts)
    with env.db.session() as s:  # the numbers are fine: nobody is stopped
        assert s.scalar(select(func.count()).select_from(models.Customer)
                        .where(models.Customer.sms_stopped.is_not(None))) == 0
        assert not s.scalars(select(models.ContactBlock)).all()
    alerts = [r for r in env.rows(kind="alert") if ":alert:undeliverable:" in r.dedupe_key]
    assert len(alerts) == 1 and alerts[0].dedupe_key.startswith(f"{env.realm}:alert:undeliverable:{code}:")
    env.run(now=clock.now())
    env.flush()
    owner = [m for m in env.sb.sendgrid.messages if m["to"] == "owner@maple.example" and said in m["text"]]
    assert len(owner) == 1 and f"/companies/{env.realm}/channels" in owner[0]["text"]


def test_a_number_refused_for_its_own_reasons_alerts_nobody(env) -> None:  # type: ignore[no-untyped-def]
    env.sb.twilio.sender_refused = 30003  # unreachable handset: the customer's number, not our sender
    env.run()
    env.flush()
    assert [r for r in env.rows(channel="sms") if r.provider_status == "undelivered"]
    assert not [r for r in env.rows(kind="alert") if ":alert:undeliverable:" in r.dedupe_key]


def test_stop_is_honoured_at_send_time_and_start_lifts_it(env) -> None:  # type: ignore[no-untyped-def]
    env.sb.twilio.inbound(NUMBER, "Stop")
    env.flush()
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == env.chosen))
        assert customer.sms_stopped == "stop"
        assert s.scalars(select(models.ContactBlock).where(models.ContactBlock.address == NUMBER)).one().reason == "stop"
    env.run()
    texts_to_customer = [m for m in env.sb.twilio.messages if m["to"] == NUMBER]
    assert texts_to_customer == []
    env.sb.twilio.inbound(NUMBER, "START")
    env.flush()
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == env.chosen))
        assert customer.sms_stopped is None
        assert not s.scalars(select(models.ContactBlock).where(models.ContactBlock.address == NUMBER)).all()
    assert _activity(env, "sms.opt_out") == 1 and _activity(env, "sms.opt_in") == 1


def test_a_reply_is_logged_and_alerts_the_owner_once(env) -> None:  # type: ignore[no-untyped-def]
    sid = env.sb.twilio.inbound(NUMBER, "I'll pay on Friday, sorry for the delay")
    env.flush()
    first = _activity(env, "sms.reply")
    # the same delivery again (Twilio retries): ignored
    params = next(p for p in env.sb.twilio.inbound_messages if p["MessageSid"] == sid)
    assert _signed_twilio(env, "/webhooks/twilio/inbound", params).status_code == 200
    assert first == 1 and _activity(env, "sms.reply") == 1
    alerts = [r for r in env.rows(kind="alert") if "reply" in r.dedupe_key]
    assert len(alerts) == 1 and "pay on Friday" in alerts[0].reason
    env.run(now=clock.now())  # the alert is due from when the reply came: the next run on the clock sends it
    env.flush()
    owner = [m for m in env.sb.sendgrid.messages if m["to"] == "owner@maple.example" and "pay on Friday" in m["text"]]
    assert len(owner) == 1


def test_inbound_forged_is_401(env) -> None:  # type: ignore[no-untyped-def]
    params = {"MessageSid": "SM" + "1" * 32, "From": NUMBER, "Body": "STOP", "To": "+15017122661"}
    assert _signed_twilio(env, "/webhooks/twilio/inbound", params, token="forged").status_code == 401
    with env.db.session() as s:
        assert not s.scalars(select(models.ContactBlock)).all()
    ok = _signed_twilio(env, "/webhooks/twilio/inbound", params)
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/xml")


@pytest.fixture
def extension_env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    """The chosen customer's only number is stored with an extension, as QuickBooks users type it."""
    sb = sandbox_factory(companies=[ds.SMALL])
    realm = next(iter(sb.intuit.companies))
    chosen = sb.intuit.entities(realm, "Customer")[0]
    sb.intuit.update(realm, "Customer", chosen["Id"], Mobile={"FreeFormNumber": "(415) 555-0100 x12"},
                     PrimaryPhone={"FreeFormNumber": "(415) 555-0100 x12"})
    e = ds.build(sb, settings_factory, db)
    e.chosen = chosen["Id"]  # type: ignore[attr-defined]
    e.name = chosen["DisplayName"]  # type: ignore[attr-defined]
    yield e
    e.web.stop()


def test_a_reply_from_a_number_stored_with_an_extension_alerts_the_owner(extension_env) -> None:  # type: ignore[no-untyped-def]
    env = extension_env
    env.sb.twilio.inbound("+14155550100", "I paid yesterday")
    env.flush()
    alerts = [r for r in env.rows(kind="alert") if "reply" in r.dedupe_key]
    assert len(alerts) == 1 and alerts[0].customer_qbo_id == env.chosen
    assert env.name in alerts[0].reason and "I paid yesterday" in alerts[0].reason


def test_stop_from_a_number_stored_with_an_extension_is_shown_on_the_customer(extension_env) -> None:  # type: ignore[no-untyped-def]
    env = extension_env
    env.sb.twilio.inbound("+14155550100", "STOP")
    env.flush()
    with env.db.session() as s:
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == env.chosen))
        assert customer.phone == customer.mobile == "(415) 555-0100 x12"
        assert customer.sms_stopped == "stop"
