"""A 21610 that comes back after the company changed its sender: the opt-out holds for the sender the
text went out from (``payload["sent_as"]``), not for the company's new one, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from qbo_collector.channels import webhooks as channel_webhooks
from qbo_collector.db import models
from qbo_collector.dispatch import events
from tests.integration.test_storage import _company


def _sent(db, payload):  # type: ignore[no-untyped-def]
    with db.session() as s:
        company = _company(s, country="US")
        company.settings = {"sms_from": "+14155550200"}  # its sender since the text below went out
        s.add(models.Customer(company_id=company.id, qbo_id="7", display_name="Ann", mobile="+14155550142"))
        s.add(models.Outbox(company_id=company.id, dedupe_key="k1", kind="reminder", channel="sms",
                            customer_qbo_id="7", status=models.OutboxStatus.sent, provider_id="SM1",
                            due_at=datetime.now(timezone.utc), payload=payload))
    status = channel_webhooks.TwilioStatus(message_sid="SM1", status="undelivered", account_sid="AC1",
                                           to="+14155550142", from_="+14155550100", error_code=21610)
    events.record_twilio_status(db, status, None)
    with db.session() as s:
        return [(b.address, b.sender) for b in s.scalars(select(models.ContactBlock))]


def test_a_late_21610_blocks_the_sender_the_text_went_out_from(db):  # type: ignore[no-untyped-def]
    blocks = _sent(db, {"sent_from": "+14155550100", "sent_as": "+14155550100", "sent_to": "+14155550142"})
    assert blocks == [("+14155550142", "+14155550100")]


def test_a_text_from_the_shared_sender_blocks_the_shared_sender(db):  # type: ignore[no-untyped-def]
    blocks = _sent(db, {"sent_from": "+14155550999", "sent_as": models.SHARED_SENDER, "sent_to": "+14155550142"})
    assert blocks == [("+14155550142", models.SHARED_SENDER)]


def test_a_row_sent_before_senders_were_kept_blocks_the_company_sender(db):  # type: ignore[no-untyped-def]
    assert _sent(db, {}) == [("+14155550142", "+14155550200")]
