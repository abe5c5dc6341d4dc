"""Helpers of the sync tests (no tests here): connect a sandbox company, compare the mirror with the source.

The expectations are computed from the sandbox's own rows, field by field, independently of
``sync.streams`` (so a mapping bug shows up as a difference, not as agreement with itself).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from qbo_collector.db import models
from qbo_collector.sync import client as sync_client
from qbo_collector.sync import limiter
from tests.integration import oauth_helpers

FAST = sync_client.RetryPolicy(attempts=8, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05,
                               connect_timeout=2.0, read_timeout=1.0)
UNLIMITED = limiter.RateLimiter(windows=(limiter.Window(10_000, 1.0),))


def connect(settings_factory, db, vault, sb, realm: str):  # type: ignore[no-untyped-def]
    settings = oauth_helpers.sandbox_settings(settings_factory, sb)
    oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb)
    return settings


def amount(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _po(row: dict[str, Any]) -> str | None:
    for field in row.get("CustomField") or []:
        name = field.get("Name", "")
        if ("P.O." in name or "PO" in name or "commande" in name) and field.get("StringValue"):
            return field["StringValue"]
    return None


def expected_invoices(sb, realm: str) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    company = sb.intuit.companies[realm]
    terms = {t["Id"]: t.get("DueDays") for t in sb.intuit.entities(realm, "Term")}
    out = {}
    for row in sb.intuit.entities(realm, "Invoice"):
        txn = date.fromisoformat(row["TxnDate"])
        if row.get("DueDate"):
            due = date.fromisoformat(row["DueDate"])
        elif (row.get("SalesTermRef") or {}).get("value") in terms:
            due = txn + timedelta(days=terms[row["SalesTermRef"]["value"]])
        else:
            due = txn
        balance = amount(row["Balance"])
        # voided: QuickBooks Online zeroes the total and notes "Voided" (a note edited since says nothing)
        if balance == 0 and (str(row.get("PrivateNote") or "").startswith("Voided") or amount(row["TotalAmt"]) == 0):
            status = "voided"
        elif balance <= 0:
            status = "paid"
        else:
            status = "open"
        out[row["Id"]] = {
            "customer_qbo_id": row["CustomerRef"]["value"], "doc_number": row.get("DocNumber"),
            "txn_date": txn, "due_date": due, "total": amount(row["TotalAmt"]), "balance": balance,
            "currency": row["CurrencyRef"]["value"], "bill_email": (row.get("BillEmail") or {}).get("Address"),
            "po_number": _po(row), "status": status, "sync_token": row["SyncToken"],
            "invoice_link": sb.intuit.invoice_link(company, row),
            "is_late_fee": any(((l.get("SalesItemLineDetail") or {}).get("ItemRef") or {}).get("name") == "Late fee"
                               for l in row["Line"]),
        }
    return out


def expected_customers(sb, realm: str) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {row["Id"]: {
        "display_name": row["DisplayName"], "email": (row.get("PrimaryEmailAddr") or {}).get("Address"),
        "phone": (row.get("PrimaryPhone") or {}).get("FreeFormNumber"),
        "mobile": (row.get("Mobile") or {}).get("FreeFormNumber"),
        "currency": row["CurrencyRef"]["value"], "balance": amount(row["Balance"]), "active": row["Active"],
        "notes": row.get("Notes"), "term_qbo_id": (row.get("SalesTermRef") or {}).get("value"),
        "company_name": row.get("CompanyName"), "country": (row.get("BillAddr") or {}).get("Country"),
    } for row in sb.intuit.entities(realm, "Customer")}


def expected_payments(sb, realm: str, txn_type: str = "Invoice",  # type: ignore[no-untyped-def]
                      ) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str, Decimal]]]:
    """The payments, and their links to invoices (or, with ``txn_type="CreditMemo"``, to the credit memos they used)."""
    rows, links = {}, {}
    for row in sb.intuit.entities(realm, "Payment"):
        rows[row["Id"]] = {"customer_qbo_id": row["CustomerRef"]["value"], "total": amount(row["TotalAmt"]),
                           "unapplied": amount(row.get("UnappliedAmt", 0)), "currency": row["CurrencyRef"]["value"],
                           "txn_date": date.fromisoformat(row["TxnDate"])}
        for line in row["Line"]:
            for linked in line.get("LinkedTxn", []):
                if linked["TxnType"] == txn_type:
                    key = (row["Id"], linked["TxnId"])
                    links[key] = links.get(key, Decimal(0)) + amount(line["Amount"])
    return rows, {(p, i, a) for (p, i), a in links.items() if a != 0}


def expected_credit_memos(sb, realm: str) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {row["Id"]: {"customer_qbo_id": row["CustomerRef"]["value"], "total": amount(row["TotalAmt"]),
                        "balance": amount(row["Balance"]), "currency": row["CurrencyRef"]["value"]}
            for row in sb.intuit.entities(realm, "CreditMemo")}


def expected_terms(sb, realm: str) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    return {row["Id"]: {"name": row["Name"], "due_days": row.get("DueDays"), "active": row["Active"]}
            for row in sb.intuit.entities(realm, "Term")}


def mirror(db, realm: str, model, fields) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        company_id = s.scalar(select(models.Company.id).where(models.Company.realm_id == realm))
        rows = s.scalars(select(model).where(model.company_id == company_id, model.deleted.is_(False))).all()
        out = {}
        for r in rows:
            values = {f: getattr(r, f) for f in fields}
            if "status" in values and values["status"] is not None:
                values["status"] = values["status"].value
            out[r.qbo_id] = values
        return out


def mirror_links(db, realm: str, model=models.PaymentLink) -> set[tuple[str, str, Decimal]]:  # type: ignore[no-untyped-def]
    """(payment, invoice or credit memo, amount) of the mirror's payment_link or credit_memo_link rows."""
    other = "invoice_qbo_id" if model is models.PaymentLink else "credit_memo_qbo_id"
    with db.session() as s:
        company_id = s.scalar(select(models.Company.id).where(models.Company.realm_id == realm))
        return {(l.payment_qbo_id, getattr(l, other), l.amount) for l in s.scalars(
            select(model).where(model.company_id == company_id))}


def deleted_ids(db, realm: str, model) -> set[str]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        company_id = s.scalar(select(models.Company.id).where(models.Company.realm_id == realm))
        return set(s.scalars(select(model.qbo_id).where(model.company_id == company_id, model.deleted.is_(True))))


def _diff(name: str, expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(actual), key=int)
    extra = sorted(set(actual) - set(expected), key=int)
    if missing:
        problems.append(f"{name}: {len(missing)} missing, e.g. {missing[:5]}")
    if extra:
        problems.append(f"{name}: {len(extra)} not in the source, e.g. {extra[:5]}")
    for key in sorted(set(expected) & set(actual), key=int):
        for field, value in expected[key].items():
            if actual[key][field] != value:
                problems.append(f"{name} {key}.{field}: mirror {actual[key][field]!r} != source {value!r}")
                if len(problems) > 20:
                    return problems
    return problems


def assert_mirror_equals_source(db, sb, realm: str) -> None:  # type: ignore[no-untyped-def]
    problems: list[str] = []
    inv = expected_invoices(sb, realm)
    problems += _diff("Invoice", inv, mirror(db, realm, models.Invoice, next(iter(inv.values()), {}).keys()))
    cust = expected_customers(sb, realm)
    problems += _diff("Customer", cust, mirror(db, realm, models.Customer, next(iter(cust.values()), {}).keys()))
    pays, links = expected_payments(sb, realm)
    problems += _diff("Payment", pays, mirror(db, realm, models.Payment, next(iter(pays.values()), {}).keys()))
    cms = expected_credit_memos(sb, realm)
    problems += _diff("CreditMemo", cms, mirror(db, realm, models.CreditMemo, next(iter(cms.values()), {}).keys()))
    terms = expected_terms(sb, realm)
    problems += _diff("Term", terms, mirror(db, realm, models.Term, next(iter(terms.values()), {}).keys()))
    for name, model, want in (("PaymentLink", models.PaymentLink, links),
                              ("CreditMemoLink", models.CreditMemoLink, expected_payments(sb, realm, "CreditMemo")[1])):
        got_links = mirror_links(db, realm, model)
        if got_links != want:
            problems.append(f"{name}: missing {sorted(want - got_links)[:5]}, extra {sorted(got_links - want)[:5]}")
    for entity, model in (("Invoice", models.Invoice), ("Payment", models.Payment), ("CreditMemo", models.CreditMemo)):
        live = {r["Id"] for r in sb.intuit.entities(realm, entity)}
        wrongly = deleted_ids(db, realm, model) & live
        if wrongly:
            problems.append(f"{entity}: live rows marked deleted {sorted(wrongly)[:5]}")
    assert not problems, "\n".join(problems)
