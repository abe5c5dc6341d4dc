"""The Intuit stand-in, driven by the unmodified intuit-oauth and python-quickbooks clients over HTTP."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks, exceptions
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment

from tests.integration.conftest_sandbox import REDIRECT_URI, connect


def _redirect_params(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


# --- OAuth -------------------------------------------------------------------------


def test_consent_page_lists_companies_and_approve_connects_the_chosen_one(sandbox_factory):
    sb = sandbox_factory(auto_approve=False)
    fr_realm = list(sb.intuit.companies)[1]
    auth = AuthClient(sb.client_id, sb.client_secret, REDIRECT_URI, sb.discovery_url)
    page = requests.get(auth.get_authorization_url([Scopes.ACCOUNTING], "csrf-42"), timeout=10)
    assert page.status_code == 200 and "Boulangerie Martin" in page.text and "Sandbox Company US" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    answer = requests.post(action, data={"ticket": ticket, "realm": fr_realm, "decision": "approve"},
                           allow_redirects=False, timeout=10)
    params = _redirect_params(answer)
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    assert params["state"] == "csrf-42" and params["realmId"] == fr_realm
    auth.get_bearer_token(params["code"], realm_id=params["realmId"])
    assert auth.access_token and auth.refresh_token and auth.expires_in == 3600
    assert auth.x_refresh_token_expires_in == 100 * 24 * 3600
    # the consent ticket is single-use
    again = requests.post(action, data={"ticket": ticket, "realm": fr_realm, "decision": "approve"},
                          allow_redirects=False, timeout=10)
    assert again.status_code == 400


def test_consent_page_deny_redirects_with_access_denied(sandbox_factory):
    sb = sandbox_factory(auto_approve=False)
    auth = AuthClient(sb.client_id, sb.client_secret, REDIRECT_URI, sb.discovery_url)
    page = requests.get(auth.get_authorization_url([Scopes.ACCOUNTING], "s-1"), timeout=10)
    ticket = re.search(r'name="ticket" value="([^"]+)"', page.text).group(1)
    answer = requests.post(f"{sb.url}/connect/oauth2/decision", data={"ticket": ticket, "decision": "deny"},
                           allow_redirects=False, timeout=10)
    assert _redirect_params(answer) == {"error": "access_denied", "state": "s-1"}


def test_authorize_refuses_unknown_client_and_foreign_redirect(sandbox):
    bad_client = AuthClient("someone-else", "x", REDIRECT_URI, sandbox.discovery_url)
    assert requests.get(bad_client.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False,
                        timeout=10).status_code == 400
    foreign = AuthClient(sandbox.client_id, sandbox.client_secret, "https://evil.example/cb", sandbox.discovery_url)
    assert requests.get(foreign.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False,
                        timeout=10).status_code == 400


def test_auto_approve_picks_next_realm_then_unconnected_companies(sandbox_factory):
    sb = sandbox_factory()
    en, fr = list(sb.intuit.companies)
    assert connect(sb).realm == en
    assert connect(sb).realm == fr          # first company not yet connected
    assert connect(sb, en).realm == en      # sb.next_realm


def test_code_is_single_use_and_bound_to_redirect_uri(sandbox):
    auth = AuthClient(sandbox.client_id, sandbox.client_secret, REDIRECT_URI, sandbox.discovery_url)
    params = _redirect_params(requests.get(auth.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False,
                                           timeout=10))
    other = AuthClient(sandbox.client_id, sandbox.client_secret, "http://127.0.0.1:9/other", sandbox.discovery_url)
    with pytest.raises(AuthClientError) as wrong_uri:
        other.get_bearer_token(params["code"])
    assert wrong_uri.value.status_code == 400 and json.loads(wrong_uri.value.content)["error"] == "invalid_grant"
    auth.get_bearer_token(params["code"])
    with pytest.raises(AuthClientError) as reused:
        auth.get_bearer_token(params["code"])
    assert json.loads(reused.value.content) == {"error": "invalid_grant"}


def test_token_endpoint_refuses_wrong_client_secret(sandbox):
    auth = AuthClient(sandbox.client_id, "wrong", REDIRECT_URI, sandbox.discovery_url)
    with pytest.raises(AuthClientError) as err:
        auth.refresh(refresh_token="whatever")
    assert err.value.status_code == 401 and json.loads(err.value.content) == {"error": "invalid_client"}


def test_hard_expiry_only_when_asked(sandbox):
    conn = connect(sandbox)
    plain = requests.post(conn.auth_client.token_endpoint, auth=(sandbox.client_id, sandbox.client_secret),
                          data={"grant_type": "refresh_token", "refresh_token": conn.auth_client.refresh_token},
                          timeout=10).json()
    assert "x_refresh_token_hard_expires_in" not in plain
    hard = requests.post(conn.auth_client.token_endpoint, auth=(sandbox.client_id, sandbox.client_secret),
                         headers={"x-include-refresh-token-hard-expires-in": "true"},
                         data={"grant_type": "refresh_token", "refresh_token": plain["refresh_token"]},
                         timeout=10).json()
    assert 5 * 365 * 24 * 3600 - 60 < hard["x_refresh_token_hard_expires_in"] <= 5 * 365 * 24 * 3600
    assert hard["refresh_token"] != plain["refresh_token"]


def test_revoke_ends_the_grant(fresh_sandbox):
    conn = connect(fresh_sandbox)
    assert conn.auth_client.revoke() is True
    with pytest.raises(exceptions.AuthorizationException):
        conn.qb.query("SELECT * FROM Term")
    with pytest.raises(AuthClientError):
        conn.auth_client.refresh()


# --- the full client story -----------------------------------------------------------


def test_paging_read_sparse_update_stale_token_expiry_and_rotation(fresh_sandbox):
    sb = fresh_sandbox
    conn = connect(sb)
    qb, auth = conn.qb, conn.auth_client
    total = len(sb.intuit.entities(conn.realm, "Invoice"))

    seen: list[str] = []
    start = 1
    while True:
        page = qb.query(f"SELECT * FROM Invoice STARTPOSITION {start} MAXRESULTS 25")["QueryResponse"]
        rows = page.get("Invoice", [])
        if not rows:
            break
        assert page["startPosition"] == start and page["maxResults"] == len(rows)
        seen += [r["Id"] for r in rows]
        start += len(rows)
    assert len(seen) == len(set(seen)) == total
    assert Invoice.count(qb=qb) == total

    customer = Customer.get(1, qb=qb)
    assert customer.Id == "1" and customer.DisplayName
    updated = qb.update_object("Customer", json.dumps(
        {"Id": customer.Id, "SyncToken": customer.SyncToken, "sparse": True, "Notes": "Promised to pay Friday"}))
    assert updated["Customer"]["Notes"] == "Promised to pay Friday"
    assert updated["Customer"]["DisplayName"] == customer.DisplayName          # sparse: the rest untouched
    assert int(updated["Customer"]["SyncToken"]) == int(customer.SyncToken) + 1

    with pytest.raises(exceptions.QuickbooksException) as stale:
        qb.update_object("Customer", json.dumps(
            {"Id": customer.Id, "SyncToken": customer.SyncToken, "sparse": True, "Notes": "lost"}))
    assert stale.value.error_code == 5010 and "Stale Object Error" in stale.value.message
    assert sb.intuit.get(conn.realm, "Customer", "1")["Notes"] == "Promised to pay Friday"

    sb.clock.advance(timedelta(seconds=3601))
    with pytest.raises(exceptions.AuthorizationException) as expired:
        qb.query("SELECT * FROM Term")
    assert expired.value.error_code == 401
    body = json.loads(expired.value.detail)
    assert body["fault"]["type"] == "AUTHENTICATION" and body["fault"]["error"][0]["code"] == "3200"

    old_refresh = auth.refresh_token
    auth.refresh()
    assert auth.refresh_token != old_refresh
    qb.session.access_token = auth.access_token
    assert "Term" in qb.query("SELECT * FROM Term")["QueryResponse"]

    # the previous refresh token still works within the grace period, then no more
    sb.clock.advance(timedelta(seconds=sb.refresh_grace_seconds + 1))
    with pytest.raises(AuthClientError) as gone:
        AuthClient(sb.client_id, sb.client_secret, REDIRECT_URI, sb.discovery_url).refresh(refresh_token=old_refresh)
    assert gone.value.status_code == 400 and json.loads(gone.value.content) == {"error": "invalid_grant"}
    auth.refresh()
    qb.session.access_token = auth.access_token
    assert Customer.get(1, qb=qb).Notes == "Promised to pay Friday"


def test_old_refresh_token_works_within_grace(fresh_sandbox):
    conn = connect(fresh_sandbox)
    old = conn.auth_client.refresh_token
    conn.auth_client.refresh()
    fresh_sandbox.clock.advance(timedelta(seconds=60))
    other = AuthClient(fresh_sandbox.client_id, fresh_sandbox.client_secret, REDIRECT_URI, fresh_sandbox.discovery_url)
    other.refresh(refresh_token=old)
    assert other.access_token


def test_quickbooks_constructor_refresh_rotates_the_token(sandbox):
    conn = connect(sandbox)
    auth = AuthClient(sandbox.client_id, sandbox.client_secret, REDIRECT_URI, sandbox.discovery_url)
    qb = QuickBooks(auth_client=auth, refresh_token=conn.auth_client.refresh_token, company_id=conn.realm,
                    minorversion=75)
    qb.api_url_v3 = sandbox.api_base_url
    assert qb.refresh_token != conn.auth_client.refresh_token
    assert qb.query("SELECT COUNT(*) FROM Customer")["QueryResponse"]["totalCount"] > 0


def test_token_for_one_realm_is_refused_on_another(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["en"])
    conn.qb.company_id = sandbox_realms["fr"]
    with pytest.raises(exceptions.QuickbooksException) as err:
        conn.qb.query("SELECT * FROM Term")
    assert err.value.error_code == 3100


# --- create, requestid, batch, void, delete --------------------------------------------


def test_create_with_the_same_requestid_twice_makes_one_invoice(fresh_sandbox):
    conn = connect(fresh_sandbox)
    before = len(fresh_sandbox.intuit.entities(conn.realm, "Invoice"))
    body = json.dumps({"CustomerRef": {"value": "2"}, "Line": [
        {"Amount": 25, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]})
    first = conn.qb.create_object("Invoice", body, request_id="late-fee-inv-7-2026-11")
    second = conn.qb.create_object("Invoice", body, request_id="late-fee-inv-7-2026-11")
    assert first["Invoice"]["Id"] == second["Invoice"]["Id"]
    assert first["Invoice"]["TotalAmt"] == 25 and first["Invoice"]["Balance"] == 25
    assert len(fresh_sandbox.intuit.entities(conn.realm, "Invoice")) == before + 1
    third = conn.qb.create_object("Invoice", body, request_id="another")
    assert third["Invoice"]["Id"] != first["Invoice"]["Id"]


def test_create_validates_references_and_duplicate_names(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["en"])
    with pytest.raises(exceptions.ValidationException) as bad_ref:
        conn.qb.create_object("Invoice", json.dumps({"CustomerRef": {"value": "999999"}, "Line": [{"Amount": 1}]}))
    assert bad_ref.value.error_code == 2500
    name = sandbox.intuit.get(conn.realm, "Customer", "1")["DisplayName"]
    with pytest.raises(exceptions.QuickbooksException) as dup:
        conn.qb.create_object("Customer", json.dumps({"DisplayName": name}))
    assert dup.value.error_code == 6240


def test_batch_of_30_is_answered_and_31_refused(fresh_sandbox):
    conn = connect(fresh_sandbox)
    customers = []
    for n in range(30):
        c = Customer()
        c.DisplayName = f"Batch customer {n}"
        customers.append(c)
    result = batch_create(customers, qb=conn.qb)
    assert len(result.successes) == 30 and not result.faults
    items = [{"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"Too many {n}"}} for n in range(31)]
    with pytest.raises(exceptions.ValidationException):
        conn.qb.batch_operation(json.dumps({"BatchItemRequest": items}))
    mixed = conn.qb.batch_operation(json.dumps({"BatchItemRequest": [
        {"bId": "q", "Query": "SELECT * FROM Term WHERE Name = 'Net 30'"},
        {"bId": "dup", "operation": "create", "Customer": {"DisplayName": "Batch customer 0"}},
    ]}))
    answers = {a["bId"]: a for a in mixed["BatchItemResponse"]}
    assert answers["q"]["QueryResponse"]["Term"][0]["DueDays"] == 30
    assert answers["dup"]["Fault"]["Error"][0]["code"] == "6240"


def test_void_and_delete_invoice_through_the_api(fresh_sandbox):
    conn = connect(fresh_sandbox)
    open_inv = next(i for i in fresh_sandbox.intuit.entities(conn.realm, "Invoice")
                    if i["Balance"] > 0 and not i["LinkedTxn"])
    inv = Invoice.get(open_inv["Id"], qb=conn.qb)
    voided = inv.void(qb=conn.qb)["Invoice"]
    # QuickBooks Online keeps a voided invoice with every amount zeroed and "Voided" in its private note
    assert voided["Balance"] == voided["TotalAmt"] == 0 and voided["PrivateNote"] == "Voided"
    items = [l for l in voided["Line"] if l["DetailType"] == "SalesItemLineDetail"]
    assert items and all(l["Amount"] == 0 and l["SalesItemLineDetail"]["ItemRef"]["value"] for l in items)
    assert [l["Amount"] for l in voided["Line"] if l["DetailType"] == "SubTotalLineDetail"] == [0]
    target = Invoice.get(voided["Id"], qb=conn.qb)
    target.delete(qb=conn.qb)
    with pytest.raises(exceptions.ObjectNotFoundException):
        Invoice.get(voided["Id"], qb=conn.qb)
    with pytest.raises(exceptions.UnsupportedException):
        conn.qb.delete_object("Customer", json.dumps({"Id": "1", "SyncToken": "0"}))


def test_voiding_a_partly_paid_invoice_leaves_the_payment_unapplied_and_keeps_the_note(fresh_sandbox):
    sb = fresh_sandbox
    conn = connect(sb)
    inv = next(i for i in sb.intuit.entities(conn.realm, "Invoice") if i["Balance"] > 50 and not i["LinkedTxn"])
    customer_id = inv["CustomerRef"]["value"]
    sb.intuit.update(conn.realm, "Invoice", inv["Id"], PrivateNote="Job 12, phase 2")
    payment = sb.intuit.pay_invoice(conn.realm, inv["Id"], 50)
    before = sb.intuit.get(conn.realm, "Customer", customer_id)["Balance"]
    voided = Invoice.get(inv["Id"], qb=conn.qb).void(qb=conn.qb)["Invoice"]
    assert voided["TotalAmt"] == voided["Balance"] == 0 and voided["LinkedTxn"] == []
    assert voided["PrivateNote"] == "Voided - Job 12, phase 2"
    left = sb.intuit.get(conn.realm, "Payment", payment["Id"])
    assert left["UnappliedAmt"] == 50 and left["Line"] == []  # the money stays with the customer, as a credit
    # the invoice's open part goes, and the payment now counts as unused credit
    assert sb.intuit.get(conn.realm, "Customer", customer_id)["Balance"] == pytest.approx(before - (inv["Balance"] - 50) - 50)


def test_an_invoice_for_an_inactive_customer_is_refused_with_610(fresh_sandbox):
    """A customer "deleted" in QuickBooks is made inactive; QuickBooks then refuses to save a transaction
    naming it (400, ValidationFault 610, as for an inactive item), whether created or updated."""
    sb = fresh_sandbox
    conn = connect(sb)
    inv = next(i for i in sb.intuit.entities(conn.realm, "Invoice") if i["Balance"] > 0)
    customer_id = inv["CustomerRef"]["value"]
    body = {"CustomerRef": {"value": customer_id}, "Line": [
        {"Amount": 25, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]}
    sb.intuit.delete(conn.realm, "Customer", customer_id)  # what "delete" does to a customer in QuickBooks
    with pytest.raises(exceptions.ObjectNotFoundException) as created:
        conn.qb.create_object("Invoice", json.dumps(body), request_id="fee-for-an-inactive-customer")
    assert created.value.error_code == 610 and created.value.message == "Object Not Found"
    assert "made inactive" in created.value.detail and f"Customer {customer_id}" in created.value.detail
    current = sb.intuit.get(conn.realm, "Invoice", inv["Id"])
    with pytest.raises(exceptions.ObjectNotFoundException):
        conn.qb.update_object("Invoice", json.dumps({"Id": inv["Id"], "SyncToken": current["SyncToken"], "sparse": True,
                                                     "Line": body["Line"]}))
    assert sb.intuit.get(conn.realm, "Invoice", inv["Id"])["SyncToken"] == current["SyncToken"]
    sb.intuit.update(conn.realm, "Customer", customer_id, Active=True)  # made active again: taken as before
    assert conn.qb.create_object("Invoice", json.dumps(body))["Invoice"]["TotalAmt"] == 25


def test_payment_lowers_invoice_and_customer_balances(fresh_sandbox):
    sb = fresh_sandbox
    realm = list(sb.intuit.companies)[0]
    inv = next(i for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 10)
    customer_before = sb.intuit.get(realm, "Customer", inv["CustomerRef"]["value"])["Balance"]
    payment = sb.intuit.pay_invoice(realm, inv["Id"], 10)
    after = sb.intuit.get(realm, "Invoice", inv["Id"])
    assert after["Balance"] == pytest.approx(inv["Balance"] - 10)
    assert {"TxnId": payment["Id"], "TxnType": "Payment"} in after["LinkedTxn"]
    assert int(after["SyncToken"]) == int(inv["SyncToken"]) + 1
    assert sb.intuit.get(realm, "Customer", inv["CustomerRef"]["value"])["Balance"] == pytest.approx(customer_before - 10)
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": inv["Id"], "TxnType": "Invoice"}]


# --- query ------------------------------------------------------------------------------


def test_query_filters_order_and_limits(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["en"])
    qb = conn.qb
    rows = qb.query("SELECT * FROM Invoice WHERE Balance > '0' ORDERBY DueDate DESC MAXRESULTS 50")["QueryResponse"]["Invoice"]
    assert all(r["Balance"] > 0 for r in rows)
    dues = [r["DueDate"] for r in rows if "DueDate" in r]
    assert dues == sorted(dues, reverse=True)
    ids = qb.query("SELECT * FROM Invoice WHERE Id IN ('1', '5', '99999')")["QueryResponse"]
    assert {r["Id"] for r in ids.get("Invoice", [])} <= {"1", "5"}
    all_customers = sandbox.intuit.entities(conn.realm, "Customer")
    active = [c for c in all_customers if c["Active"]]
    assert Customer.count(qb=qb) == len(active)
    assert Customer.count("Active IN (true, false)", qb=qb) == len(all_customers)
    with pytest.raises(exceptions.ValidationException) as too_many:
        qb.query("SELECT * FROM Invoice MAXRESULTS 1001")
    assert too_many.value.error_code == 4001
    with pytest.raises(exceptions.ValidationException):
        qb.query("SELEKT * FROM Invoice")
    empty = qb.query("SELECT * FROM Invoice WHERE Id = '0'")
    assert empty["QueryResponse"] == {} and "time" in empty
    by_get = requests.get(f"{sandbox.api_base_url}/company/{conn.realm}/query",
                          params={"query": "SELECT COUNT(*) FROM Term", "minorversion": 75},
                          headers={"Authorization": f"Bearer {conn.auth_client.access_token}",
                                   "Accept": "application/json"}, timeout=10)
    assert by_get.json()["QueryResponse"]["totalCount"] == 5


def test_query_by_last_updated_time(fresh_sandbox):
    conn = connect(fresh_sandbox)
    mark = fresh_sandbox.clock.now()
    fresh_sandbox.clock.advance(timedelta(seconds=5))
    fresh_sandbox.intuit.update(conn.realm, "Invoice", "30", PrivateNote="touched")
    since = mark.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    rows = conn.qb.query(f"SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '{since}'")["QueryResponse"]
    assert [r["Id"] for r in rows["Invoice"]] == ["30"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", rows["Invoice"][0]["MetaData"]["LastUpdatedTime"])


def test_old_minorversion_is_refused(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["en"], minorversion=74)
    with pytest.raises(exceptions.ValidationException):
        conn.qb.query("SELECT * FROM Term")


def test_companyinfo_and_preferences(sandbox, sandbox_realms):
    conn = connect(sandbox, sandbox_realms["fr"])
    info = conn.qb.get(f"{sandbox.api_base_url}/company/{conn.realm}/companyinfo/{conn.realm}")["CompanyInfo"]
    assert info["CompanyName"] == "Boulangerie Martin" and info["Country"] == "FR"
    assert {"Name": "TimeZone", "Value": "Europe/Paris"} in info["NameValue"]
    queried = conn.qb.query("SELECT * FROM CompanyInfo")["QueryResponse"]["CompanyInfo"][0]
    assert queried["CompanyName"] == "Boulangerie Martin"
    prefs = conn.qb.get(f"{sandbox.api_base_url}/company/{conn.realm}/preferences")["Preferences"]
    assert prefs["CurrencyPrefs"]["HomeCurrency"]["value"] == "EUR"
    assert prefs["CurrencyPrefs"]["MultiCurrencyEnabled"] is False


# --- invoice links ------------------------------------------------------------------------


def test_invoice_link_only_when_online_payment_and_valid_bill_email(sandbox_factory):
    from qbo_collector.sandbox import server
    sb = sandbox_factory(companies=[
        server.CompanySpec(name="Online Co", customers=10, invoices=40, payments=5, seed=3),
        server.CompanySpec(name="Offline Co", customers=10, invoices=40, payments=5, seed=4, online_payment=False),
    ])
    online, offline = list(sb.intuit.companies)
    conn = connect(sb, online)
    invoices = sb.intuit.entities(online, "Invoice")
    payable = next(i for i in invoices if "@" in i.get("BillEmail", {}).get("Address", "")
                   and i["AllowOnlineCreditCardPayment"])
    read = conn.qb.get_single_object("Invoice", payable["Id"], params={"include": "invoiceLink"})["Invoice"]
    assert read["InvoiceLink"] == f"{sb.url}/pay/{online}/{payable['Id']}"
    assert "InvoiceLink" not in conn.qb.get_single_object("Invoice", payable["Id"])["Invoice"]
    queried = conn.qb.query(f"SELECT * FROM Invoice WHERE Id = '{payable['Id']}'",
                            params={"include": "invoiceLink"})["QueryResponse"]["Invoice"][0]
    assert queried["InvoiceLink"] == read["InvoiceLink"]
    no_email = sb.intuit.update(online, "Invoice", payable["Id"], BillEmail={"Address": "not-an-email"})
    assert "InvoiceLink" not in conn.qb.get_single_object("Invoice", no_email["Id"],
                                                          params={"include": "invoiceLink"})["Invoice"]
    off = connect(sb, offline)
    inv = next(i for i in sb.intuit.entities(offline, "Invoice") if i.get("BillEmail"))
    assert "InvoiceLink" not in off.qb.get_single_object("Invoice", inv["Id"], params={"include": "invoiceLink"})["Invoice"]
    # the link is a page the customer can pay on
    assert requests.get(read["InvoiceLink"], timeout=10).status_code == 200


# --- change data capture --------------------------------------------------------------------


def test_cdc_sees_creates_updates_deletes_and_voids_oldest_first(fresh_sandbox):
    sb = fresh_sandbox
    conn = connect(sb)
    realm = conn.realm
    since = sb.clock.now()
    sb.clock.advance(timedelta(seconds=2))
    untouched = [i for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 0 and not i["LinkedTxn"]]
    created = sb.intuit.create(realm, "Invoice", {"CustomerRef": {"value": "3"}, "Line": [{"Amount": 40}]})
    sb.clock.advance(timedelta(seconds=2))
    sb.intuit.update(realm, "Invoice", untouched[0]["Id"], PrivateNote="called")
    sb.clock.advance(timedelta(seconds=2))
    sb.intuit.void_invoice(realm, untouched[1]["Id"])
    sb.clock.advance(timedelta(seconds=2))
    sb.intuit.delete(realm, "Invoice", untouched[2]["Id"])
    sb.clock.advance(timedelta(seconds=2))
    payment = sb.intuit.pay_invoice(realm, untouched[3]["Id"])

    # python-quickbooks formats a naive datetime without offset: the sandbox reads it as UTC
    naive_utc = since.astimezone(timezone.utc).replace(tzinfo=None)
    response = change_data_capture([Invoice, Payment], naive_utc, qb=conn.qb)
    invoices = list(response.Invoice)
    ids = [i.Id for i in invoices]
    # oldest first, deletions after the live rows (as Intuit documents)
    assert ids == [created["Id"], untouched[0]["Id"], untouched[1]["Id"], untouched[3]["Id"], untouched[2]["Id"]]
    deleted = invoices[4]
    assert deleted.status == "Deleted" and deleted.Id == untouched[2]["Id"]
    assert invoices[2].Balance == 0 and invoices[2].PrivateNote == "Voided"
    assert [p.Id for p in response.Payment] == [payment["Id"]]

    raw = conn.qb.change_data_capture("Invoice,Customer", since.astimezone(timezone.utc).isoformat())
    query_responses = raw["CDCResponse"][0]["QueryResponse"]
    assert query_responses[0]["totalCount"] == 5 and query_responses[1] == {}


def test_cdc_caps_at_1000_per_entity_and_refuses_more_than_30_days(sandbox_factory):
    from qbo_collector.sandbox import server
    sb = sandbox_factory(companies=[server.CompanySpec(customers=20, invoices=1200, payments=10, seed=5)])
    conn = connect(sb)
    since = sb.clock.now()
    sb.clock.advance(timedelta(seconds=1))
    for row in sb.intuit.entities(conn.realm, "Invoice")[:1100]:
        sb.intuit.update(conn.realm, "Invoice", row["Id"], PrivateNote="bulk")
    raw = conn.qb.change_data_capture("Invoice", since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    page = raw["CDCResponse"][0]["QueryResponse"][0]
    assert len(page["Invoice"]) == 1000
    times = [datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) for r in page["Invoice"]]
    assert times == sorted(times)
    too_old = (sb.clock.now() - timedelta(days=31)).astimezone(timezone.utc).replace(tzinfo=None)
    with pytest.raises(exceptions.ValidationException):
        change_data_capture([Invoice], too_old, qb=conn.qb)


# --- request log ----------------------------------------------------------------------------


def test_request_log_names_endpoints(fresh_sandbox):
    sb = fresh_sandbox
    conn = connect(sb)
    sb.log.clear()
    conn.qb.query("SELECT * FROM Term")
    Customer.get(1, qb=conn.qb)
    conn.qb.create_object("Customer", json.dumps({"DisplayName": "Logged Customer"}))
    counts = sb.log.counts()
    assert counts == {"intuit:create:customer": 1, "intuit:query": 1, "intuit:read:customer": 1}
    assert sb.log.count("intuit", realm=conn.realm) == 3


def test_cdc_cap_can_apply_to_the_whole_response(sandbox_factory):
    from qbo_collector.sandbox import server
    sb = sandbox_factory(companies=[server.CompanySpec(customers=20, invoices=1100, payments=10, seed=5)])
    sb.cdc_cap_per = "response"
    conn = connect(sb)
    since = sb.clock.now()
    sb.clock.advance(timedelta(seconds=1))
    changed = set()
    for row in sb.intuit.entities(conn.realm, "Invoice")[:900]:
        sb.intuit.update(conn.realm, "Invoice", row["Id"], PrivateNote="bulk")
        changed.add(row["Id"])
    for row in sb.intuit.entities(conn.realm, "Customer")[:15]:
        sb.intuit.update(conn.realm, "Customer", row["Id"], Notes="bulk")
    for invoice in [i for i in sb.intuit.entities(conn.realm, "Invoice") if i["Balance"] > 0][-150:]:
        sb.intuit.pay_invoice(conn.realm, invoice["Id"])
        changed.add(invoice["Id"])
    assert len(changed) > 985
    raw = conn.qb.change_data_capture("Customer,Invoice,Payment", since.astimezone(timezone.utc).isoformat())
    pages = raw["CDCResponse"][0]["QueryResponse"]
    sizes = [len(p.get(name, [])) for p, name in zip(pages, ["Customer", "Invoice", "Payment"])]
    assert sum(sizes) == 1000 and sizes[0] == 15 and sizes[1] == 985 and sizes[2] == 0
