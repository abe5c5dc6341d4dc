"""The sandbox server itself: mounting, loopback only, the token shortcut for benchmarks."""

from __future__ import annotations

import json

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.batch import batch_delete
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment

from qbo_collector.sandbox import server
from tests.integration.conftest_sandbox import REDIRECT_URI, connect, insecure_loopback_transport


def test_sendgrid_and_twilio_stand_ins_are_mounted(sandbox):
    rules = {r.rule for r in sandbox.app.url_map.iter_rules()}
    assert any(r.startswith("/sendgrid/") for r in rules) and any(r.startswith("/twilio/") for r in rules)
    assert sandbox.sendgrid_host == f"{sandbox.url}/sendgrid" and sandbox.twilio_base_url == f"{sandbox.url}/twilio"


def test_binds_to_loopback_only():
    with pytest.raises(ValueError):
        server.Sandbox().start(host="0.0.0.0")


def test_connect_shortcut_gives_working_tokens(sandbox, sandbox_realms):
    insecure_loopback_transport()
    tokens = sandbox.connect(sandbox_realms["fr"])
    auth = AuthClient(sandbox.client_id, sandbox.client_secret, REDIRECT_URI, sandbox.discovery_url,
                      access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    qb = QuickBooks(auth_client=auth, refresh_token=tokens["refresh_token"], company_id=sandbox_realms["fr"],
                    minorversion=75)
    qb.api_url_v3 = sandbox.api_base_url
    assert qb.query("SELECT * FROM CompanyInfo")["QueryResponse"]["CompanyInfo"][0]["Country"] == "FR"


def test_payment_void_restores_the_invoice_balance(fresh_sandbox):
    conn = connect(fresh_sandbox)
    inv = next(i for i in fresh_sandbox.intuit.entities(conn.realm, "Invoice") if i["Balance"] > 0)
    paid = fresh_sandbox.intuit.pay_invoice(conn.realm, inv["Id"])
    assert fresh_sandbox.intuit.get(conn.realm, "Invoice", inv["Id"])["Balance"] == 0
    voided = Payment.get(paid["Id"], qb=conn.qb).void(qb=conn.qb)["Payment"]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"] == "Voided"
    assert fresh_sandbox.intuit.get(conn.realm, "Invoice", inv["Id"])["Balance"] == pytest.approx(inv["Balance"])


def test_batch_update_and_delete(fresh_sandbox):
    conn = connect(fresh_sandbox)
    rows = [i for i in fresh_sandbox.intuit.entities(conn.realm, "Invoice") if not i["LinkedTxn"]][:3]
    answer = conn.qb.batch_operation(json.dumps({"BatchItemRequest": [
        {"bId": "u", "operation": "update", "Invoice": {"Id": rows[0]["Id"], "SyncToken": rows[0]["SyncToken"],
                                                        "sparse": True, "PrivateNote": "batched"}},
        {"bId": "stale", "operation": "update", "Invoice": {"Id": rows[1]["Id"], "SyncToken": "999",
                                                            "sparse": True, "PrivateNote": "no"}},
    ]}))["BatchItemResponse"]
    assert answer[0]["Invoice"]["PrivateNote"] == "batched"
    assert answer[1]["Fault"]["Error"][0]["code"] == "5010"
    result = batch_delete([Invoice.get(rows[2]["Id"], qb=conn.qb)], qb=conn.qb)
    assert not result.faults
    assert fresh_sandbox.intuit.get(conn.realm, "Invoice", rows[2]["Id"]) is None


def test_python_quickbooks_objects_save_as_they_do_against_qbo(fresh_sandbox):
    from quickbooks.objects.base import Ref
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail

    conn = connect(fresh_sandbox)
    customer = Customer()
    customer.GivenName, customer.FamilyName = "Ada", "Lovelace"
    saved = customer.save(qb=conn.qb)
    assert saved.DisplayName == "Ada Lovelace" and saved.Id and saved.SyncToken == "0"

    invoice = Invoice()
    line = SalesItemLine()
    line.Amount = 80
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Ref()
    line.SalesItemLineDetail.ItemRef.value = "1"
    invoice.Line.append(line)
    invoice.CustomerRef = saved.to_ref()
    created = invoice.save(qb=conn.qb)
    assert created.TotalAmt == 80 and created.Balance == 80 and created.DueDate and created.DocNumber
    assert created.CustomerRef.name == "Ada Lovelace"

    # a full update of an object read back: everything the client sends round-trips
    again = Customer.get(saved.Id, qb=conn.qb)
    again.Notes = "Prefers email"
    updated = again.save(qb=conn.qb)
    assert updated.Notes == "Prefers email" and updated.Balance == 80


def test_concurrent_clients_keep_the_books_consistent(fresh_sandbox):
    import threading

    sb = fresh_sandbox
    conn = connect(sb)
    realm = conn.realm
    open_invoices = [i for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] >= 8][:8]
    sb.intuit_faults.latency_seconds = 0.05
    errors: list[BaseException] = []

    def worker(inv):
        try:
            for _ in range(4):
                conn.qb.query("SELECT * FROM Invoice MAXRESULTS 50")
                sb.intuit.pay_invoice(realm, inv["Id"], 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(inv,)) for inv in open_invoices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    for inv in open_invoices:
        assert sb.intuit.get(realm, "Invoice", inv["Id"])["Balance"] == pytest.approx(inv["Balance"] - 4)
    assert sb.log.count("intuit", "query") == 4 * len(open_invoices)


def test_invoice_pdf_download(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["en"])
    inv = sandbox.intuit.entities(conn.realm, "Invoice")[0]
    pdf = Invoice.get(inv["Id"], qb=conn.qb).download_pdf(qb=conn.qb)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert sandbox.log.count("intuit", "pdf:invoice") >= 1
