"""qbo-collector report aging: open balances per currency and days past due, from the mirror."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from qbo_collector import errors, reports
from qbo_collector.sync import run
from tests.integration import test_sync_support as support

BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def expected(sb, realm: str, on: date) -> dict[str, dict[str, Decimal]]:  # type: ignore[no-untyped-def]
    out: dict[str, dict[str, Decimal]] = {}
    for inv in support.expected_invoices(sb, realm).values():
        if inv["status"] != "open" or inv["balance"] <= 0:
            continue
        late = (on - inv["due_date"]).days
        name = "current" if late <= 0 else "1-30" if late <= 30 else "31-60" if late <= 60 else \
            "61-90" if late <= 90 else "90+"
        per = out.setdefault(inv["currency"], {b: Decimal(0) for b in BUCKETS})
        per[name] += inv["balance"]
    return out


def expected_at(sb, realm: str, on: date) -> dict[str, dict[str, Decimal]]:  # type: ignore[no-untyped-def]
    """What QuickBooks' aging as of a past day shows: invoices dated by then, owing then what they owe now
    plus what payments dated later paid on them."""
    paid_later: dict[str, Decimal] = {}
    for payment in sb.intuit.entities(realm, "Payment"):
        if date.fromisoformat(payment["TxnDate"]) <= on:
            continue
        for line in payment.get("Line") or ():
            for linked in line.get("LinkedTxn") or ():
                if linked["TxnType"] == "Invoice":
                    paid_later[linked["TxnId"]] = paid_later.get(linked["TxnId"], Decimal(0)) + Decimal(str(line["Amount"]))
    out: dict[str, dict[str, Decimal]] = {}
    for qbo_id, inv in support.expected_invoices(sb, realm).items():
        owed = inv["balance"] + paid_later.get(qbo_id, Decimal(0))
        if inv["status"] == "voided" or inv["txn_date"] > on or owed <= 0:
            continue
        per = out.setdefault(inv["currency"], {b: Decimal(0) for b in BUCKETS})
        per[reports.aging_bucket(inv["due_date"], on)] += owed
    return out


def credits_at(sb, realm: str, on: date, used_since: bool = True) -> dict[str, Decimal]:  # type: ignore[no-untyped-def]
    """Unused credit, as of ``on``, of the credit memos and payments dated by then: what is left of
    them now, plus (``used_since``) what payments dated later used of a credit memo."""
    return {code: sum(ages.values(), Decimal(0)) for code, ages in credit_ages_at(sb, realm, on, used_since).items()}


def credit_ages_at(sb, realm: str, on: date, used_since: bool = True) -> dict[str, dict[str, Decimal]]:  # type: ignore[no-untyped-def]
    """``credits_at`` by the age of each credit memo or payment on ``on`` (from its own date)."""
    company = sb.intuit.companies[realm]
    used_later: dict[str, Decimal] = {}
    for payment in sb.intuit.entities(realm, "Payment"):
        if used_since and date.fromisoformat(payment["TxnDate"]) > on:
            for line in payment.get("Line") or ():
                for linked in line.get("LinkedTxn") or ():
                    if linked["TxnType"] == "CreditMemo":
                        used_later[linked["TxnId"]] = used_later.get(linked["TxnId"], Decimal(0)) + Decimal(str(line["Amount"]))
    credits: dict[str, dict[str, Decimal]] = {}
    for entity, field in (("CreditMemo", "Balance"), ("Payment", "UnappliedAmt")):
        for row in sb.intuit.entities(realm, entity):
            day = date.fromisoformat(row["TxnDate"])
            if day > on:
                continue
            code = row.get("CurrencyRef", {}).get("value") or company.currency
            left = Decimal(str(row.get(field) or 0)) + (used_later.get(row["Id"], Decimal(0)) if entity == "CreditMemo" else 0)
            ages = credits.setdefault(code, {b: Decimal(0) for b in BUCKETS})
            ages[reports.aging_bucket(day, on)] += left
    return credits


@pytest.mark.parametrize("language", ["en", "fr"])
def test_aging_matches_the_source_bucket_by_bucket(sandbox, sandbox_realms, settings_factory, db, vault, language):  # type: ignore[no-untyped-def]
    realm = sandbox_realms[language]
    settings = support.connect(settings_factory, db, vault, sandbox, realm)
    assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok
    on = sandbox.intuit.companies[realm].today(sandbox.clock.now())
    report = reports.aging(db, realm, on)
    assert json.loads(json.dumps(report)) == report              # plain JSON
    assert report["realm"] == realm and report["on"] == on.isoformat()
    want = expected(sandbox, realm, on)
    assert set(report["currencies"]) == set(want)
    for currency, per in want.items():
        got = report["currencies"][currency]
        assert list(got) == [*BUCKETS, "total", "credits", "net", *reports.CREDIT_AGES]
        for name in BUCKETS:
            assert Decimal(got[name]) == per[name], (currency, name)
            assert len(got[name].split(".")[1]) == 2                 # cents, as a decimal string
        assert Decimal(got["total"]) == sum(per.values())
        assert all(Decimal(got[b]) > 0 for b in BUCKETS)             # the generator fills every bucket
    # net of unused credit: what QuickBooks gives as the customers' balances, currency by currency
    company = sandbox.intuit.companies[realm]
    balances: dict[str, Decimal] = {}
    for customer in sandbox.intuit.entities(realm, "Customer"):
        code = customer.get("CurrencyRef", {}).get("value") or company.currency
        balances[code] = balances.get(code, Decimal(0)) + Decimal(str(customer.get("Balance") or 0))
    credits = credits_at(sandbox, realm, on)
    assert any(credits.values())                                     # the generator leaves unused credit
    ages = credit_ages_at(sandbox, realm, on)
    for currency, got in report["currencies"].items():
        assert Decimal(got["credits"]) == credits.get(currency, 0), currency
        # each credit in the column of its own date, as QuickBooks' A/R aging shows it
        assert {b: Decimal(got[f"credits_{b}"]) for b in BUCKETS} == ages.get(currency, dict.fromkeys(BUCKETS, 0))
        assert Decimal(got["net"]) == Decimal(got["total"]) - Decimal(got["credits"]) == balances[currency], currency
    for days in (30, 90):                                            # as of a past day: rebuilt, not today's
        past = on - timedelta(days=days)
        then = reports.aging(db, realm, past)["currencies"]
        want_then = expected_at(sandbox, realm, past)
        assert want_then != want
        for currency, per in want_then.items():
            assert {b: Decimal(then[currency][b]) for b in BUCKETS} == per, (days, currency)
        credits_then = credits_at(sandbox, realm, past)
        assert credits_then != credits                               # credit memos and payments came since
        ages_then = credit_ages_at(sandbox, realm, past)
        for currency, got in then.items():
            assert Decimal(got["credits"]) == credits_then.get(currency, 0), (days, currency)
            assert {b: Decimal(got[f"credits_{b}"]) for b in BUCKETS} == ages_then.get(
                currency, dict.fromkeys(BUCKETS, 0)), (days, currency)
    later = reports.aging(db, realm, on + timedelta(days=400))       # everything open is then 90+
    for currency, got in later["currencies"].items():
        assert got["90+"] == got["total"] and Decimal(got["current"]) == 0


def _sums(rows: list[dict], currency: str) -> dict[str, Decimal]:  # type: ignore[type-arg]
    return {k: sum((Decimal(r[k]) for r in rows if r["currency"] == currency), Decimal(0))
            for k in (*BUCKETS, "total", "credits", "net", *reports.CREDIT_AGES)}


def test_aging_by_customer_is_each_customers_quickbooks_balance_and_adds_up_to_the_aging(  # type: ignore[no-untyped-def]
        sandbox, sandbox_realms, settings_factory, db, vault):
    realm = sandbox_realms["fr"]
    settings = support.connect(settings_factory, db, vault, sandbox, realm)
    assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok
    on = sandbox.intuit.companies[realm].today(sandbox.clock.now())
    report = reports.aging_by_customer(db, realm, on)
    assert json.loads(json.dumps(report)) == report and report["on"] == on.isoformat()
    rows = report["customers"]
    source = {c["Id"]: c for c in sandbox.intuit.entities(realm, "Customer")}
    # customer by customer, net = what QuickBooks says the customer owes (its Balance)
    owing = {cid for cid, c in source.items() if Decimal(str(c.get("Balance") or 0))}
    assert owing and owing <= {r["customer_id"] for r in rows}
    for r in rows:
        assert Decimal(r["net"]) == Decimal(str(source[r["customer_id"]].get("Balance") or 0)), r
        assert r["name"] == source[r["customer_id"]]["DisplayName"]
        assert Decimal(r["total"]) == sum(Decimal(r[b]) for b in BUCKETS)
    assert [r["name"].casefold() for r in rows] == sorted(r["name"].casefold() for r in rows)
    assert any(Decimal(r["net"]) < 0 for r in rows) or any(Decimal(r["credits"]) for r in rows)
    # the rows add up to the company's aging, today and as of past days
    for day in (on, on - timedelta(days=30), on - timedelta(days=90)):
        by_customer = reports.aging_by_customer(db, realm, day)["customers"]
        for currency, got in reports.aging(db, realm, day)["currencies"].items():
            assert _sums(by_customer, currency) == {k: Decimal(v) for k, v in got.items()}, (day, currency)


def test_a_credit_memo_used_after_the_day_counts_as_credit_on_that_day(fresh_sandbox, settings_factory, db, vault):
    """A credit memo of 20 days ago, used 5 days ago on an invoice: 10 days ago, the invoice owed that
    much more and the customer had that much more credit. Both come back in the aging of that day."""
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    today = sb.intuit.companies[realm].today(sb.clock.now())
    invoice = next(i for i in sb.intuit.entities(realm, "Invoice")
                   if i["Balance"] > 100 and date.fromisoformat(i["TxnDate"]) < today - timedelta(days=30))
    customer = invoice["CustomerRef"]["value"]
    item = next(i for i in sb.intuit.entities(realm, "Item") if i["Name"] == "Services")
    memo = sb.intuit.create(realm, "CreditMemo", {
        "CustomerRef": {"value": customer}, "TxnDate": (today - timedelta(days=20)).isoformat(),
        "Line": [{"Amount": 100, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 100}}]})
    sb.intuit.create(realm, "Payment", {
        "CustomerRef": {"value": customer}, "TotalAmt": 0, "TxnDate": (today - timedelta(days=5)).isoformat(),
        "Line": [{"Amount": 60, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
                 {"Amount": 60, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}]})
    assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok
    support.assert_mirror_equals_source(db, sb, realm)                  # the memo's use is mirrored
    currency = invoice["CurrencyRef"]["value"]
    past = today - timedelta(days=10)
    then = reports.aging(db, realm, past)["currencies"][currency]
    now = reports.aging(db, realm, today)["currencies"][currency]
    assert Decimal(then["credits"]) == credits_at(sb, realm, past)[currency]
    assert Decimal(now["credits"]) == credits_at(sb, realm, today)[currency]
    # 10 days before today the 20-day-old memo was 10 days old: its 60 then are in 1–30
    assert {b: Decimal(then[f"credits_{b}"]) for b in BUCKETS} == credit_ages_at(sb, realm, past)[currency]
    assert Decimal(then["credits_1-30"]) >= 100
    # that day the memo was whole: the 60 used since are its credit then (no other memo of then was used later)
    assert credits_at(sb, realm, past)[currency] - credits_at(sb, realm, past, used_since=False)[currency] == 60
    assert {b: Decimal(then[b]) for b in BUCKETS} == expected_at(sb, realm, past)[currency]


def test_aging_of_an_unknown_realm_is_refused(sqlite_db):  # type: ignore[no-untyped-def]
    with pytest.raises(errors.InvalidInput):
        reports.aging(sqlite_db, "404", date(2026, 11, 23))


def test_after_the_upgrade_that_adds_them_the_next_sync_reads_the_credit_memos_used(
        fresh_sandbox, settings_factory, db, vault):
    """Migration 0007 adds the table; the payments mirrored before are read again in full by the next
    sync (the others keep their incremental cursor), so credit memos used before the upgrade are linked."""
    from alembic import command

    from qbo_collector.db import migrate, models

    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    assert run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED).ok
    used = support.expected_payments(sb, realm, "CreditMemo")[1]
    assert used                                                         # the generator uses credit memos
    with db.engine.begin() as connection:                               # back to the version before
        cfg = migrate.alembic_config(db.url)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0006")
    migrate.upgrade(db)
    assert support.mirror_links(db, realm, models.CreditMemoLink) == set()
    summary = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert summary.ok and summary.mode == "mixed"                       # payments in full, the rest by CDC
    assert support.mirror_links(db, realm, models.CreditMemoLink) == used
    support.assert_mirror_equals_source(db, sb, realm)
