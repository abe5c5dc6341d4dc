"""POST /webhooks/intuit: signatures (legacy and CloudEvents), unknown realms, and a webhook-triggered sync over real HTTP."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from werkzeug.serving import make_server

from qbo_collector.db import models
from qbo_collector.sandbox import webhooks as sandbox_webhooks
from qbo_collector.sync import run
from tests.integration import oauth_helpers
from tests.integration import test_sync_support as support
from web import create_app

TOKEN = "verifier-token-for-tests"


class Recorder:
    def __init__(self) -> None:
        self.realms: list[str] = []

    def request(self, realm_id: str) -> None:
        self.realms.append(realm_id)


def _legacy(realm: str, n: int = 1) -> bytes:
    return json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": str(i), "operation": "Update", "lastUpdated": "2026-11-20T10:00:00-08:00"}
        for i in range(n)]}}]}).encode()


def _cloudevents(realm: str) -> bytes:
    return json.dumps([{"specversion": "1.0", "id": "e1", "source": "intuit.com", "type": "qbo.invoice.updated.v1",
                        "time": "2026-11-20T18:00:00Z", "intuitaccountid": realm, "intuitentityid": "7",
                        "data": {}}]).encode()


@pytest.fixture
def app_with_company(settings_factory, sqlite_db, vault):  # type: ignore[no-untyped-def]
    settings = settings_factory(intuit_webhook_verifier_token=TOKEN)
    with sqlite_db.session() as s:
        s.add(models.Company(realm_id="123145", name="Known Co", settings={}))
    app = create_app(settings, db=sqlite_db, test_config={"TESTING": True})
    recorder = Recorder()
    app.config["QBO"].sync_requests = recorder
    return app, recorder


@pytest.mark.parametrize("body", [_legacy("123145"), _cloudevents("123145")], ids=["legacy", "cloudevents"])
def test_a_signed_notification_schedules_a_sync_of_its_realm(app_with_company, body):  # type: ignore[no-untyped-def]
    app, recorder = app_with_company
    started = time.monotonic()
    answer = app.test_client().post("/webhooks/intuit", data=body,
                                    headers={"intuit-signature": sandbox_webhooks.sign(TOKEN, body),
                                             "Content-Type": "application/json"})
    assert answer.status_code == 200 and time.monotonic() - started < 3
    assert recorder.realms == ["123145"]


@pytest.mark.parametrize("signature", [None, "", "not base64!", sandbox_webhooks.sign("wrong-token", _legacy("123145"))],
                         ids=["missing", "empty", "garbage", "wrong key"])
def test_an_invalid_signature_is_401_and_logged(app_with_company, caplog, signature):  # type: ignore[no-untyped-def]
    app, recorder = app_with_company
    headers = {"intuit-signature": signature} if signature is not None else {}
    with caplog.at_level(logging.WARNING):
        answer = app.test_client().post("/webhooks/intuit", data=_legacy("123145"), headers=headers)
    assert answer.status_code == 401
    assert recorder.realms == []
    assert "invalid intuit-signature" in caplog.text


def test_a_body_changed_after_signing_is_refused(app_with_company):  # type: ignore[no-untyped-def]
    app, recorder = app_with_company
    signature = sandbox_webhooks.sign(TOKEN, _legacy("123145"))
    answer = app.test_client().post("/webhooks/intuit", data=_legacy("999999"), headers={"intuit-signature": signature})
    assert answer.status_code == 401 and recorder.realms == []


def test_unknown_realms_are_ignored_and_logged(app_with_company, caplog):  # type: ignore[no-untyped-def]
    app, recorder = app_with_company
    body = json.dumps({"eventNotifications": [
        {"realmId": "999999", "dataChangeEvent": {"entities": []}},
        {"realmId": "123145", "dataChangeEvent": {"entities": []}}]}).encode()
    with caplog.at_level(logging.WARNING):
        answer = app.test_client().post("/webhooks/intuit", data=body,
                                        headers={"intuit-signature": sandbox_webhooks.sign(TOKEN, body)})
    assert answer.status_code == 200
    assert recorder.realms == ["123145"]
    assert "999999" in caplog.text


def test_a_signed_body_that_is_not_a_notification_is_400(app_with_company):  # type: ignore[no-untyped-def]
    app, recorder = app_with_company
    body = b'{"hello": "world"}'
    answer = app.test_client().post("/webhooks/intuit", data=body,
                                    headers={"intuit-signature": sandbox_webhooks.sign(TOKEN, body)})
    assert answer.status_code == 400 and recorder.realms == []


@pytest.mark.parametrize("fmt", ["legacy", "cloudevents"])
def test_changes_in_quickbooks_reach_the_mirror_through_the_webhook(fresh_sandbox, settings_factory, db, vault, fmt):  # type: ignore[no-untyped-def]
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = oauth_helpers.sandbox_settings(settings_factory, sb)
    oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb)
    assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok

    app = create_app(settings, db=db)
    syncs: list[run.SyncSummary] = []

    def sync(realm_id: str) -> None:
        syncs.append(run.sync_company(settings, db, vault, realm_id, policy=support.FAST, limiter=support.UNLIMITED))

    requests_ = run.SyncRequests(settings, db, vault, delay=0.3, sync=sync)
    app.config["QBO"].sync_requests = requests_
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        sb.webhook_url = f"http://127.0.0.1:{http.server_port}/webhooks/intuit"
        sb.webhook_format = fmt
        ids = [r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0]
        for invoice_id in ids[:5]:
            sb.intuit.pay_invoice(realm, invoice_id)       # 10 change events: one sync
        sb.intuit.void_invoice(realm, ids[5])
        assert sb.flush_webhooks()
        assert all(d.status == 200 for d in sb.webhooks.deliveries)
        assert requests_.wait_idle(timeout=20)
        assert len(syncs) == 1 and syncs[0].mode == "incremental" and syncs[0].api_calls == 1
        support.assert_mirror_equals_source(db, sb, realm)
    finally:
        sb.webhook_url = None
        http.shutdown()
        requests_.stop()
