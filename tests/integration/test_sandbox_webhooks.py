"""Signed Intuit webhooks, received by a tiny local listener."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import flask
import pytest
from werkzeug.serving import make_server

from tests.integration.conftest_sandbox import connect

VERIFIER = "verifier-token-123"


@dataclass
class Listener:
    url: str
    received: list[tuple[bytes, str]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def listener() -> Iterator[Listener]:
    app = flask.Flask("webhook-listener")
    state = Listener(url="")

    @app.post("/webhooks/intuit")
    def receive() -> flask.Response:
        state.received.append((flask.request.get_data(), flask.request.headers.get("intuit-signature", "")))
        return flask.Response("", status=state.status)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/webhooks/intuit"
    yield state
    server.shutdown()
    server.server_close()


def _verified(body: bytes, signature: str) -> bool:
    expected = base64.b64encode(hmac.new(VERIFIER.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature)


def test_legacy_notifications_are_signed_and_batched(fresh_sandbox, listener):
    sb = fresh_sandbox
    sb.webhook_url, sb.webhook_verifier_token, sb.webhook_format = listener.url, VERIFIER, "legacy"
    realm = list(sb.intuit.companies)[0]
    inv = next(i for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 0 and not i["LinkedTxn"])
    sb.intuit.update(realm, "Customer", "1", Notes="hello")
    sb.intuit.void_invoice(realm, inv["Id"])
    assert sb.flush_webhooks()
    assert len(listener.received) == 1                     # debounced into one POST
    body, signature = listener.received[0]
    assert _verified(body, signature)
    assert not _verified(body + b" ", signature)
    note = json.loads(body)["eventNotifications"][0]
    assert note["realmId"] == realm
    entities = note["dataChangeEvent"]["entities"]
    assert {"name": "Customer", "id": "1", "operation": "Update"} == {k: entities[0][k] for k in ("name", "id", "operation")}
    assert entities[1]["name"] == "Invoice" and entities[1]["operation"] == "Void"
    assert entities[1]["lastUpdated"] == sb.intuit.get(realm, "Invoice", inv["Id"])["MetaData"]["LastUpdatedTime"]


def test_cloudevents_notifications_from_api_changes(fresh_sandbox, listener):
    from quickbooks import QuickBooks
    sb = fresh_sandbox
    sb.webhook_url, sb.webhook_verifier_token, sb.webhook_format = listener.url, VERIFIER, "cloudevents"
    conn = connect(sb)
    created = conn.qb.create_object("Customer", json.dumps({"DisplayName": "Webhook Watcher"}))["Customer"]
    assert sb.flush_webhooks()
    body, signature = listener.received[-1]
    assert _verified(body, signature)
    assert QuickBooks.validate_webhook_signature(conn.qb, body.decode(), signature, VERIFIER)
    events = json.loads(body)
    assert isinstance(events, list) and len(events) == 1
    event = events[0]
    assert event["specversion"] == "1.0" and event["source"] == "intuit.com"
    assert event["type"] == "qbo.customer.created.v1"
    assert event["intuitaccountid"] == conn.realm and event["intuitentityid"] == created["Id"]
    assert event["datacontenttype"] == "application/json" and event["id"] and event["time"]


def test_failed_delivery_is_retried_and_nothing_is_sent_without_a_url(fresh_sandbox, listener):
    sb = fresh_sandbox
    realm = list(sb.intuit.companies)[0]
    sb.intuit.update(realm, "Customer", "2", Notes="no url yet")
    assert sb.flush_webhooks() and not listener.received
    sb.webhook_url, sb.webhook_verifier_token = listener.url, VERIFIER
    listener.status = 500
    sb.intuit.update(realm, "Customer", "2", Notes="receiver down")
    assert sb.flush_webhooks()
    assert len(listener.received) == 3                   # first try and two retries
    assert [d.status for d in sb.webhooks.deliveries] == [500, 500, 500]
