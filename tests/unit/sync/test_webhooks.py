"""Intuit webhook signature and payloads (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from qbo_collector import errors
from qbo_collector.sync import webhooks


def sign(token: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


@pytest.mark.parametrize("signature, ok", [
    (sign("tok", b"{}"), True),
    (sign("other", b"{}"), False),
    (sign("tok", b"{ }"), False),
    ("", False), (None, False), ("%%%", False),
], ids=["right", "wrong key", "other body", "empty", "missing", "not base64"])
def test_verify(signature, ok):  # type: ignore[no-untyped-def]
    assert webhooks.verify(b"{}", signature, "tok") is ok


def test_no_verifier_token_verifies_nothing():
    assert webhooks.verify(b"{}", sign("", b"{}"), "") is False


def test_legacy_payload():
    body = json.dumps({"eventNotifications": [
        {"realmId": "1", "dataChangeEvent": {"entities": [{"name": "Invoice", "id": "9", "operation": "Void"}]}},
        {"realmId": "2"}]}).encode()
    found = webhooks.parse(body)
    assert found[0] == webhooks.Notification(realm_id="1", entity="Invoice", entity_id="9", operation="Void")
    assert webhooks.realms(found) == ["1", "2"]


def test_cloudevents_payload():
    body = json.dumps([{"specversion": "1.0", "type": "qbo.payment.created.v1", "intuitaccountid": "3",
                        "intuitentityid": "77"},
                       {"specversion": "1.0", "type": "qbo.invoice.deleted.v1", "intuitaccountid": "3",
                        "intuitentityid": "78"}]).encode()
    found = webhooks.parse(body)
    assert found[0] == webhooks.Notification(realm_id="3", entity="payment", entity_id="77", operation="created")
    assert webhooks.realms(found) == ["3"]


@pytest.mark.parametrize("body", [b"not json", b'{"x": 1}', b'"text"'], ids=["not json", "other object", "a string"])
def test_other_bodies_are_invalid_input(body):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.InvalidInput):
        webhooks.parse(body)
