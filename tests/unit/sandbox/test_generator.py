"""The sandbox's company generator and store bookkeeping (no HTTP)."""

from __future__ import annotations

import collections
import dataclasses
import json
from datetime import date, datetime, timedelta, timezone

import pytest

from qbo_collector.sandbox import common, generator, store

NOW = datetime(2026, 11, 20, 18, 15, tzinfo=timezone.utc)
SPEC = generator.CompanySpec(customers=200, invoices=2000, payments=1200, seed=9)


def _dump(company: store.Company) -> str:
    return json.dumps([company.tables, company.tombstones, company.info, company.preferences], sort_keys=True)


def test_same_seed_same_company_different_seed_different():
    assert _dump(generator.generate(SPEC, now=NOW)) == _dump(generator.generate(SPEC, now=NOW))
    other = dataclasses.replace(SPEC, seed=10)
    assert _dump(generator.generate(other, now=NOW)) != _dump(generator.generate(SPEC, now=NOW))
    assert generator.realm_for(SPEC) == generator.generate(SPEC, now=NOW).realm


def test_open_invoices_spread_over_every_overdue_bucket():
    company = generator.generate(SPEC, now=NOW)
    today = company.today(NOW)
    open_ = [i for i in company.tables["Invoice"].values() if i["Balance"] > 0]
    buckets = collections.Counter(generator.overdue_bucket(i.get("DueDate"), today) for i in open_)
    assert set(buckets) == {"current", "1-30", "31-60", "61-90", "90+"}
    assert all(n >= len(open_) * 0.04 for n in buckets.values()), buckets


def test_generated_company_has_the_variety_the_rules_need():
    company = generator.generate(SPEC, now=NOW)
    invoices = list(company.tables["Invoice"].values())
    customers = list(company.tables["Customer"].values())
    payments = list(company.tables["Payment"].values())
    assert len(customers) == 200
    assert len(invoices) + len(company.tombstones["Invoice"]) == 2000 and company.tombstones["Invoice"]
    assert any(not c["Active"] for c in customers)
    assert any("PrimaryEmailAddr" not in c for c in customers) and any("PrimaryPhone" not in c for c in customers)
    assert {c["BillAddr"]["Country"] for c in customers} == {"US", "CA", "FR", "GB"}
    partial = [i for i in invoices if 0 < i["Balance"] < i["TotalAmt"]]
    paid = [i for i in invoices if i["Balance"] == 0 and i.get("PrivateNote") != "Voided"]
    assert partial and paid
    voided = [i for i in invoices if i.get("PrivateNote") == "Voided"]
    assert voided  # kept as QuickBooks Online keeps them: every amount and quantity zeroed, the items kept
    assert all(i["TotalAmt"] == i["Balance"] == 0 and not i["LinkedTxn"] for i in voided)
    assert all(l["Amount"] == 0 and l["SalesItemLineDetail"]["Qty"] == 0 and l["SalesItemLineDetail"]["ItemRef"]
               for i in voided for l in i["Line"] if l["DetailType"] == "SalesItemLineDetail")
    assert any("DueDate" not in i for i in invoices)
    assert any(i.get("CustomField") for i in invoices)
    assert sum(i["AllowOnlineCreditCardPayment"] for i in invoices) > len(invoices) * 0.7
    assert any(len(p["Line"]) == 2 and p["TotalAmt"] == 0 for p in payments)       # credit memo applied
    assert any(m["Balance"] < m["TotalAmt"] for m in company.tables["CreditMemo"].values())
    terms = {t["Name"]: t for t in company.tables["Term"].values()}
    assert terms["2% 10 Net 30"]["DiscountPercent"] == 2 and terms["2% 10 Net 30"]["DiscountDays"] == 10
    assert all(k.isdigit() for k in company.tables["Invoice"])
    # customer balance = open invoices less unused credit
    cust = max(customers, key=lambda c: c["Balance"])
    owed = sum(i["Balance"] for i in invoices if i["CustomerRef"]["value"] == cust["Id"])
    credit = sum(m["Balance"] for m in company.tables["CreditMemo"].values() if m["CustomerRef"]["value"] == cust["Id"])
    assert cust["Balance"] == pytest.approx(owed - credit)
    # payments reference real invoices, which point back at them
    pay = payments[0]
    inv = company.tables["Invoice"][pay["Line"][0]["LinkedTxn"][0]["TxnId"]]
    assert {"TxnId": pay["Id"], "TxnType": "Payment"} in inv["LinkedTxn"]


def test_multicurrency_and_zero_decimal_companies():
    ca = generator.generate(generator.CompanySpec(name="Maple", country="CA", currency="CAD", timezone="America/Toronto",
                                                  customers=100, invoices=300, payments=100, seed=2), now=NOW)
    assert {c["CurrencyRef"]["value"] for c in ca.tables["Customer"].values()} == {"CAD", "USD"}
    assert ca.preferences["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
    usd = next(i for i in ca.tables["Invoice"].values() if i["CurrencyRef"]["value"] == "USD")
    assert usd["ExchangeRate"] == 1.36
    jp = generator.generate(generator.CompanySpec(name="Sakura", country="JP", currency="JPY", timezone="Asia/Tokyo",
                                                  customers=10, invoices=50, payments=20, seed=2), now=NOW)
    assert all(isinstance(i["TotalAmt"], int) for i in jp.tables["Invoice"].values())


def test_metadata_times_are_intuit_formatted_and_never_in_the_future():
    company = generator.generate(generator.CompanySpec(customers=20, invoices=200, payments=100,
                                                       timezone="Europe/Paris", seed=4), now=NOW)
    for row in list(company.tables["Invoice"].values()) + list(company.tables["Payment"].values()):
        moment = datetime.fromisoformat(row["MetaData"]["LastUpdatedTime"])
        assert moment.utcoffset() is not None and moment <= NOW
        assert row["MetaData"]["CreateTime"] <= row["MetaData"]["LastUpdatedTime"]


@pytest.fixture
def intuit() -> store.IntuitStore:
    clock = common.Clock()
    s = store.IntuitStore(clock)
    company = generator.generate(generator.CompanySpec(customers=10, invoices=40, payments=0, seed=1), now=clock.now())
    s.companies[company.realm] = company
    return s


def test_store_helpers_keep_balances_and_sync_tokens(intuit):
    realm = next(iter(intuit.companies))
    events: list[tuple[str, str, str, str]] = []
    intuit.listeners.append(lambda r, e, i, op, t: events.append((r, e, i, op)))
    inv = next(i for i in intuit.entities(realm, "Invoice") if i["Balance"] > 20 and not i["LinkedTxn"])
    cust_id = inv["CustomerRef"]["value"]
    before = intuit.get(realm, "Customer", cust_id)["Balance"]
    pay = intuit.pay_invoice(realm, inv["Id"], 20)
    assert intuit.get(realm, "Invoice", inv["Id"])["Balance"] == pytest.approx(inv["Balance"] - 20)
    intuit.delete(realm, "Payment", pay["Id"])
    restored = intuit.get(realm, "Invoice", inv["Id"])
    assert restored["Balance"] == pytest.approx(inv["Balance"]) and restored["LinkedTxn"] == []
    assert intuit.get(realm, "Customer", cust_id)["Balance"] == pytest.approx(before)
    voided = intuit.void_invoice(realm, inv["Id"])
    assert voided["Balance"] == voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    assert int(voided["SyncToken"]) == int(inv["SyncToken"]) + 3
    assert intuit.get(realm, "Customer", cust_id)["Balance"] == pytest.approx(before - inv["Balance"])
    assert [op for *_, op in events] == ["Update", "Create", "Update", "Delete", "Void"]
    intuit.delete(realm, "Customer", cust_id)
    assert intuit.get(realm, "Customer", cust_id)["Active"] is False
    with pytest.raises(store.Fault) as stale:
        intuit.api_update(realm, "Invoice", {"Id": inv["Id"], "SyncToken": inv["SyncToken"], "sparse": True}, sparse=True)
    assert stale.value.code == "5010"


def test_full_update_clears_omitted_fields_and_recomputes_totals(intuit):
    realm = next(iter(intuit.companies))
    cust = next(c for c in intuit.entities(realm, "Customer") if c.get("PrimaryPhone"))
    full = intuit.api_update(realm, "Customer", {"Id": cust["Id"], "SyncToken": cust["SyncToken"],
                                                 "DisplayName": cust["DisplayName"]}, sparse=False)
    assert "PrimaryPhone" not in full and full["Balance"] == cust["Balance"]
    inv = next(i for i in intuit.entities(realm, "Invoice") if i["Balance"] == i["TotalAmt"] > 0)
    lines = [l for l in inv["Line"] if l["DetailType"] == "SalesItemLineDetail"] + [
        {"Amount": 15, "DetailType": "SalesItemLineDetail", "Description": "Late fee",
         "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    updated = intuit.api_update(realm, "Invoice", {"Id": inv["Id"], "SyncToken": inv["SyncToken"], "sparse": True,
                                                   "Line": lines}, sparse=True)
    assert updated["TotalAmt"] == pytest.approx(inv["TotalAmt"] + 15)
    assert updated["Balance"] == pytest.approx(inv["Balance"] + 15)
    assert updated["Line"][-1]["DetailType"] == "SubTotalLineDetail"


def test_overdue_bucket_edges():
    today = date(2026, 11, 20)
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    assert [generator.overdue_bucket(day(n), today) for n in (-5, 0, 1, 30, 31, 60, 61, 90, 91, 500)] == [
        "current", "current", "1-30", "1-30", "31-60", "31-60", "61-90", "61-90", "90+", "90+"]
    assert generator.overdue_bucket(None, today) == "current"


def test_applying_a_credit_memo_through_a_zero_payment(intuit):
    realm = next(iter(intuit.companies))
    inv = next(i for i in intuit.entities(realm, "Invoice") if i["Balance"] > 30 and not i["LinkedTxn"])
    cust = inv["CustomerRef"]["value"]
    before = intuit.get(realm, "Customer", cust)["Balance"]
    memo = intuit.create(realm, "CreditMemo", {"CustomerRef": {"value": cust}, "Line": [{"Amount": 30}]})
    assert memo["Balance"] == 30
    assert intuit.get(realm, "Customer", cust)["Balance"] == pytest.approx(before - 30)
    pay = intuit.create(realm, "Payment", {"CustomerRef": {"value": cust}, "TotalAmt": 0, "Line": [
        {"Amount": 30, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]},
        {"Amount": 30, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}]})
    assert pay["UnappliedAmt"] == 0
    assert intuit.get(realm, "CreditMemo", memo["Id"])["Balance"] == 0
    assert intuit.get(realm, "Invoice", inv["Id"])["Balance"] == pytest.approx(inv["Balance"] - 30)
    assert intuit.get(realm, "Customer", cust)["Balance"] == pytest.approx(before - 30)
    unapplied = intuit.create(realm, "Payment", {"CustomerRef": {"value": cust}, "TotalAmt": 5})
    assert unapplied["UnappliedAmt"] == 5
