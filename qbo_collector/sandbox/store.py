"""The sandbox's QuickBooks companies: rows as QBO's JSON, and the bookkeeping QBO does.

One ``IntuitStore`` holds every realm. Rows are plain dicts shaped like QBO's JSON; nested
objects inside a stored row are never mutated in place (the generator shares them between
rows to save memory), they are replaced. Every change bumps ``SyncToken`` and
``MetaData.LastUpdatedTime`` from the sandbox clock and is reported to ``on_change``
(the webhook sender).

Errors are ``Fault``s carrying QBO's code, message and detail; the HTTP layer renders them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable
from zoneinfo import ZoneInfo

from qbo_collector.sandbox import common

LIST_ENTITIES = ("Customer", "Term", "Item", "Account", "TaxCode")
TXN_ENTITIES = ("Invoice", "Payment", "CreditMemo")
ENTITIES = {name.lower(): name for name in LIST_ENTITIES + TXN_ENTITIES}
CURRENCY_NAMES = {
    "USD": "United States Dollar", "CAD": "Canadian Dollar", "EUR": "Euro",
    "GBP": "British Pound Sterling", "JPY": "Japanese Yen", "CHF": "Swiss Franc",
}
ZERO_DECIMAL_CURRENCIES = {"JPY"}
TAX_RATE_WORDS = {"CA": "GST/HST", "AU": "GST"}  # what a sales line must carry; "VAT" elsewhere outside the US
READ_ONLY = {"Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "TotalAmt", "LinkedTxn",
             "UnappliedAmt", "BalanceWithJobs", "status", "HomeBalance", "HomeTotalAmt", "InvoiceLink",
             "FullyQualifiedName", "RemainingCredit"}
# python-quickbooks objects serialize unset fields as "" (dates, DocNumber…); QBO reads those as absent.
BLANK_MEANS_ABSENT = {"TxnDate", "DueDate", "ShipDate", "OpenBalanceDate", "DocNumber", "ServiceDate",
                      "TrackingNum", "PrintOnCheckName", "PreferredDeliveryMethod"}

ChangeListener = Callable[[str, str, str, str, str], None]   # realm, entity, id, operation, lastUpdated


class Fault(Exception):
    """A QBO fault: rendered as ``{"Fault": {"Error": [...], "type": ...}}`` with ``status``."""

    def __init__(self, code: str, message: str, detail: str = "", *, status: int = 400,
                 type: str = "ValidationFault", element: str = "") -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail = code, message, detail
        self.status, self.type, self.element = status, type, element

    def body(self) -> dict[str, Any]:
        return {"Error": [{"Message": self.message, "Detail": self.detail, "code": self.code,
                           "element": self.element}], "type": self.type}


def not_found(entity: str, id_: str) -> Fault:
    """QBO's 610, for an Id it does not know and for a reference to an inactive (list) row: a transaction
    naming an inactive customer or item. Intuit documents both under 610 "Object Not Found" with this
    detail (developer.intuit.com, "Handling common errors"); the "(Customer 58)" at its end is the sandbox's."""
    return Fault("610", "Object Not Found",
                 f"Object Not Found : Something you're trying to use has been made inactive. "
                 f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {id_})")


def stale(entity: str, id_: str) -> Fault:
    return Fault("5010", "Stale Object Error",
                 f"Stale Object Error : You and another user were working on the same thing. "
                 f"The other user finished before you did, so your work was not saved. ({entity} {id_})")


def required(name: str) -> Fault:
    return Fault("2020", "Required param missing, need to supply the required value for the API",
                 f"Required parameter {name} is missing in the request", element=name)


def missing_tax_rate(company: Company) -> Fault:
    """What QBO answers outside the US for a sales line without a (valid, active) ``TaxCodeRef``:
    the UK's words (intuit/quickbooks-online-mcp-server#94), GST/HST in Canada (quickbooks-ruby#351)."""
    rate = TAX_RATE_WORDS.get(company.country, "VAT")
    return Fault("6000", "A business validation error has occurred while processing your request",
                 f"Business Validation Error: Make sure all your transactions have a {rate} rate before you save.")


def invalid_reference(name: str, value: Any) -> Fault:
    return Fault("2500", "Invalid Reference Id", f"Invalid Reference Id : {name} {value} does not exist",
                 element=name)


def duplicate_name(name: str) -> Fault:
    return Fault("6240", "Duplicate Name Exists Error",
                 f"The name supplied already exists. : Another customer, vendor or employee is already "
                 f"using this name ({name}). Please use a different name.")


def round_money(amount: Any, currency: str) -> float | int:
    places = Decimal(1) if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    value = Decimal(str(amount)).quantize(places, rounding=ROUND_HALF_UP)
    return int(value) if currency in ZERO_DECIMAL_CURRENCIES else float(value)


def currency_ref(code: str) -> dict[str, str]:
    return {"value": code, "name": CURRENCY_NAMES.get(code, code)}


@dataclass(eq=False)
class Company:
    """One QBO company (realm) with its rows."""

    realm: str
    name: str
    country: str
    currency: str
    timezone: str
    language: str = "en"
    email: str = ""
    online_payment: bool = True
    multicurrency: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    preferences: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in LIST_ENTITIES + TXN_ENTITIES})
    tombstones: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in LIST_ENTITIES + TXN_ENTITIES})
    counters: dict[str, int] = field(default_factory=dict)
    request_ids: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.timezone)

    def next_id(self, entity: str) -> str:
        # QBO numbers transactions from one sequence and each name list from its own.
        key = "txn" if entity in TXN_ENTITIES else entity
        self.counters[key] = self.counters.get(key, 0) + 1
        return str(self.counters[key])

    def next_doc_number(self) -> str:
        self.counters["doc"] = self.counters.get("doc", 1000) + 1
        return str(self.counters["doc"])

    def stamp(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).isoformat(timespec="seconds")

    def today(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


class IntuitStore:
    """Every sandbox company, and the operations the API and the tests perform on them."""

    def __init__(self, clock: common.Clock, *, base_url: Callable[[], str] = lambda: "") -> None:
        self.clock = clock
        self.companies: dict[str, Company] = {}
        self.lock = threading.RLock()
        self.listeners: list[ChangeListener] = []
        self._base_url = base_url

    # --- lookups -------------------------------------------------------------------

    def company(self, realm: str) -> Company:
        try:
            return self.companies[str(realm)]
        except KeyError:
            raise Fault("3100", "ApplicationAuthorizationFailed",
                        f"Company {realm} does not exist in this sandbox", status=403,
                        type="AuthorizationFault") from None

    def _table(self, realm: str, entity: str) -> dict[str, dict[str, Any]]:
        return self.company(realm).tables[canonical(entity)]

    def entities(self, realm: str, entity: str, *, include_inactive: bool = True) -> list[dict[str, Any]]:
        """A snapshot of the live (not deleted) rows of ``entity``."""
        with self.lock:
            rows = [r for r in self._table(realm, entity).values() if include_inactive or r.get("Active", True)]
            return _copy(rows)

    def get(self, realm: str, entity: str, id_: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._table(realm, entity).get(str(id_))
            return _copy(row) if row is not None else None

    def deleted(self, realm: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return _copy(list(self.company(realm).tombstones[canonical(entity)].values()))

    def _row(self, company: Company, entity: str, id_: Any) -> dict[str, Any]:
        row = company.tables[entity].get(str(id_))
        if row is None:
            raise not_found(entity, str(id_))
        return row

    # --- change plumbing -----------------------------------------------------------

    def _touch(self, company: Company, entity: str, row: dict[str, Any], operation: str, *, bump: bool = True) -> None:
        now = self.clock.now()
        stamp = company.stamp(now)
        if bump:
            row["SyncToken"] = str(int(row.get("SyncToken", "0")) + 1)
        created = row.get("MetaData", {}).get("CreateTime", stamp)
        row["MetaData"] = {"CreateTime": created, "LastUpdatedTime": stamp}
        self._emit(company.realm, entity, row["Id"], operation, stamp)

    def _emit(self, realm: str, entity: str, id_: str, operation: str, stamp: str) -> None:
        for listener in list(self.listeners):
            listener(realm, entity, id_, operation, stamp)

    def _adjust_customer_balance(self, company: Company, customer_id: Any, delta: float) -> None:
        customer = company.tables["Customer"].get(str(customer_id))
        if customer is None or not delta:
            return
        currency = (customer.get("CurrencyRef") or {}).get("value", company.currency)
        customer["Balance"] = round_money(customer.get("Balance", 0) + delta, currency)
        customer["BalanceWithJobs"] = customer["Balance"]

    # --- creation ------------------------------------------------------------------

    def create(self, realm: str, entity: str, body: dict[str, Any], *, api: bool = False) -> dict[str, Any]:
        """Create a row as the API would (validations, defaults, side effects). ``api``: the request
        came through the API, which refuses a sales line without a tax code outside the US; a test
        helper's row is a user's in the QuickBooks screens, which put the company's default code on it."""
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            given = {k: v for k, v in _copy(body).items() if v != ""}   # unset fields from python-quickbooks objects
            sales = {"api": api} if entity in ("Invoice", "CreditMemo") else {}
            row = getattr(self, f"_new_{entity.lower()}")(company, given, **sales)
            row["Id"] = company.next_id(entity)
            row["SyncToken"] = "0"
            row["domain"] = "QBO"
            row["sparse"] = False
            stamp = company.stamp(self.clock.now())
            row["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
            company.tables[entity][row["Id"]] = row
            self._after_create(company, entity, row)
            self._emit(company.realm, entity, row["Id"], "Create", stamp)
            return _copy(row)

    def _check_unique_name(self, company: Company, entity: str, name: str, exclude: str | None = None) -> None:
        lowered = name.strip().lower()
        for row in company.tables[entity].values():
            if row["Id"] != exclude and str(row.get("DisplayName" if entity == "Customer" else "Name", "")).strip().lower() == lowered:
                raise duplicate_name(name)

    def _new_customer(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        names = [body.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
        display = body.get("DisplayName") or " ".join(n for n in names if n) or body.get("CompanyName")
        if not display:
            raise Fault("6080", "No Name Provided",
                        "Title, GivenName, MiddleName, FamilyName, DisplayName, Suffix - one of these must be non-empty")
        self._check_unique_name(company, "Customer", display)
        self._check_ref(company, "Term", body.get("SalesTermRef"), "SalesTermRef")
        # a job or sub-customer: Job true and a ParentRef; BillWithParent is honoured only there
        parent = self._check_ref(company, "Customer", body.get("ParentRef"), "ParentRef")
        nested = {"Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": bool(body.get("BillWithParent")),
                  "Level": int(parent.get("Level") or 0) + 1,
                  "FullyQualifiedName": f"{parent.get('FullyQualifiedName') or parent['DisplayName']}:{display}"
                  } if parent is not None else {"Job": False, "BillWithParent": False, "FullyQualifiedName": display}
        return _clean(body) | {
            "DisplayName": display,
            "Active": body.get("Active", True), "Balance": 0, "BalanceWithJobs": 0,
            "CurrencyRef": currency_ref((body.get("CurrencyRef") or {}).get("value", company.currency)),
            "PreferredDeliveryMethod": body.get("PreferredDeliveryMethod", "Print"),
            "Taxable": body.get("Taxable", False),
            "PrintOnCheckName": body.get("PrintOnCheckName", display),
        } | nested

    def _new_term(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("Name"):
            raise required("Name")
        self._check_unique_name(company, "Term", body["Name"])
        return _clean(body) | {"Active": body.get("Active", True), "Type": body.get("Type", "STANDARD")}

    def _new_item(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("Name"):
            raise required("Name")
        self._check_unique_name(company, "Item", body["Name"])
        kind = body.get("Type", "Service")
        if kind in ("Service", "NonInventory") and not body.get("IncomeAccountRef"):
            raise Fault("6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: Select an income account for this item.")
        self._check_ref(company, "Account", body.get("IncomeAccountRef"), "IncomeAccountRef")
        return _clean(body) | {"Type": kind, "Active": body.get("Active", True),
                               "FullyQualifiedName": body["Name"], "Taxable": body.get("Taxable", False),
                               "UnitPrice": body.get("UnitPrice", 0)}

    def _new_account(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("Name"):
            raise required("Name")
        self._check_unique_name(company, "Account", body["Name"])
        return _clean(body) | {"Active": body.get("Active", True),
                               "AccountType": body.get("AccountType", "Income"),
                               "FullyQualifiedName": body["Name"], "CurrencyRef": currency_ref(company.currency)}

    def _new_taxcode(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        raise Fault("500", "Unsupported Operation",
                    "Operation Create is not supported for TaxCode: tax codes are made with the TaxService endpoint.")

    def _check_ref(self, company: Company, entity: str, ref: Any, element: str) -> dict[str, Any] | None:
        if not ref:
            return None
        value = ref.get("value") if isinstance(ref, dict) else ref
        row = company.tables[entity].get(str(value))
        if row is None:
            raise invalid_reference(element, value)
        return row

    def _active_customer(self, company: Company, ref: Any) -> dict[str, Any] | None:
        """The customer of a sales form: QBO refuses to save an invoice or credit memo naming an inactive
        (a "deleted") customer, with 610 as for an inactive item."""
        customer = self._check_ref(company, "Customer", ref, "CustomerRef")
        if customer is not None and customer.get("Active") is False:
            raise not_found("Customer", str(customer["Id"]))
        return customer

    def _tax_code(self, company: Company, detail: dict[str, Any], *, api: bool) -> dict[str, Any]:
        """``detail`` with a valid ``TaxCodeRef`` outside the US: refused through the API without one (or
        with one that is unknown or inactive); from a test helper, given the company's default code."""
        ref = detail.get("TaxCodeRef")
        value = str((ref.get("value") if isinstance(ref, dict) else ref) or "")
        if not value and not api:
            default = default_tax_code(company)
            return detail if default is None else dict(detail) | {"TaxCodeRef": {"value": default["Id"]}}
        row = company.tables["TaxCode"].get(value)
        if row is None or row.get("Active") is False:
            raise missing_tax_rate(company)
        return dict(detail) | {"TaxCodeRef": {"value": row["Id"]}}

    def _sales_lines(self, company: Company, body: dict[str, Any], currency: str, *,
                     api: bool = False) -> tuple[list[dict[str, Any]], float]:
        lines_in = body.get("Line")
        if not lines_in:
            raise required("Line")
        lines: list[dict[str, Any]] = []
        total = Decimal(0)
        for line in lines_in:
            if line.get("DetailType") == "SubTotalLineDetail":
                continue
            line = dict(line)
            detail = line.get("SalesItemLineDetail") or {}
            if "Amount" not in line:
                if "Qty" in detail and "UnitPrice" in detail:
                    line["Amount"] = detail["Qty"] * detail["UnitPrice"]
                else:
                    raise required("Line.Amount")
            if line.get("DetailType", "SalesItemLineDetail") == "SalesItemLineDetail":
                item = self._check_ref(company, "Item", detail.get("ItemRef"), "Line.SalesItemLineDetail.ItemRef")
                if item is not None:
                    if item.get("Active") is False:  # QBO refuses a transaction that uses an inactive item
                        raise not_found("Item", str(item["Id"]))
                    line["SalesItemLineDetail"] = detail = dict(detail) | {  # and answers the ref with the item's name
                        "ItemRef": {"value": str(item["Id"]), "name": item.get("Name", "")}}
                if company.country != "US":
                    line["SalesItemLineDetail"] = self._tax_code(company, detail, api=api)
            line["Amount"] = round_money(line["Amount"], currency)
            line.setdefault("DetailType", "SalesItemLineDetail")
            line["Id"] = str(len(lines) + 1)
            line["LineNum"] = len(lines) + 1
            total += Decimal(str(line["Amount"]))
            lines.append(line)
        amount = round_money(total, currency)
        lines.append({"Amount": amount, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return lines, amount

    def _sales_form(self, company: Company, body: dict[str, Any], *, api: bool) -> dict[str, Any]:
        customer = self._active_customer(company, body.get("CustomerRef"))
        if customer is None:
            raise required("CustomerRef")
        currency = (body.get("CurrencyRef") or customer.get("CurrencyRef") or {}).get("value", company.currency)
        lines, total = self._sales_lines(company, body, currency, api=api)
        today = company.today(self.clock.now()).isoformat()
        row = _clean(body) | {
            "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
            "CurrencyRef": currency_ref(currency), "Line": lines, "TotalAmt": total, "Balance": total,
            "TxnDate": body.get("TxnDate", today), "LinkedTxn": [],
        }
        if currency != company.currency:
            row.setdefault("ExchangeRate", body.get("ExchangeRate", 1))
        return row

    def _new_invoice(self, company: Company, body: dict[str, Any], *, api: bool = False) -> dict[str, Any]:
        row = self._sales_form(company, body, api=api)
        customer = company.tables["Customer"][row["CustomerRef"]["value"]]
        term_ref = body.get("SalesTermRef") or customer.get("SalesTermRef")
        term = self._check_ref(company, "Term", term_ref, "SalesTermRef")
        if term is not None:
            row["SalesTermRef"] = {"value": term["Id"], "name": term["Name"]}
        if "DueDate" not in body:
            days = int(term.get("DueDays", 0)) if term else 0
            row["DueDate"] = (date.fromisoformat(row["TxnDate"]) + timedelta(days=days)).isoformat()
        row.setdefault("DocNumber", company.next_doc_number())
        if "BillEmail" not in body and (customer.get("PrimaryEmailAddr") or {}).get("Address"):
            row["BillEmail"] = {"Address": customer["PrimaryEmailAddr"]["Address"]}
        row.setdefault("EmailStatus", "NotSet")
        row.setdefault("PrintStatus", "NotSet")
        row.setdefault("AllowOnlineCreditCardPayment", company.online_payment)
        row.setdefault("AllowOnlineACHPayment", company.online_payment)
        return row

    def _new_creditmemo(self, company: Company, body: dict[str, Any], *, api: bool = False) -> dict[str, Any]:
        row = self._sales_form(company, body, api=api)
        row.pop("LinkedTxn")
        row.setdefault("DocNumber", company.next_doc_number())
        row["RemainingCredit"] = row["Balance"]
        return row

    def _new_payment(self, company: Company, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._check_ref(company, "Customer", body.get("CustomerRef"), "CustomerRef")
        if customer is None:
            raise required("CustomerRef")
        if "TotalAmt" not in body:
            raise required("TotalAmt")
        currency = (customer.get("CurrencyRef") or {}).get("value", company.currency)
        total = round_money(body["TotalAmt"], currency)
        lines: list[dict[str, Any]] = []
        applied = Decimal(0)
        for line in body.get("Line") or []:
            amount = round_money(line.get("Amount", 0), currency)
            links = line.get("LinkedTxn") or []
            for link in links:
                kind = link.get("TxnType", "Invoice")
                target = company.tables.get(kind, {}).get(str(link.get("TxnId")))
                if target is None or kind not in ("Invoice", "CreditMemo"):
                    raise invalid_reference("Line.LinkedTxn.TxnId", link.get("TxnId"))
                if target["CustomerRef"]["value"] != customer["Id"]:
                    raise Fault("6000", "A business validation error has occurred while processing your request",
                                f"Business Validation Error: {kind} {target['Id']} belongs to another customer.")
                if amount > target["Balance"] + 1e-9:
                    raise Fault("6000", "A business validation error has occurred while processing your request",
                                f"Business Validation Error: the amount applied to {kind} {target['Id']} "
                                f"is more than its open balance.")
            if links:   # money put on invoices, or credit taken from credit memos
                applied += Decimal(str(amount)) * (1 if links[0].get("TxnType", "Invoice") == "Invoice" else -1)
            lines.append({"Amount": amount, "LinkedTxn": [{"TxnId": str(l["TxnId"]), "TxnType": l.get("TxnType", "Invoice")}
                                                           for l in links]})
        unapplied = round_money(Decimal(str(total)) - applied, currency)
        if unapplied < 0:
            raise Fault("6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: the amounts applied are more than the payment amount.")
        return _clean(body) | {
            "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
            "CurrencyRef": currency_ref(currency), "TotalAmt": total, "UnappliedAmt": unapplied, "Line": lines,
            "TxnDate": body.get("TxnDate", company.today(self.clock.now()).isoformat()),
            "ProcessPayment": False,
        }

    def _after_create(self, company: Company, entity: str, row: dict[str, Any]) -> None:
        if entity == "Invoice":
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], row["Balance"])
        elif entity == "CreditMemo":
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], -row["Balance"])
        elif entity == "Payment":
            self._apply_payment(company, row, sign=1)

    def _apply_payment(self, company: Company, payment: dict[str, Any], *, sign: int) -> None:
        """Apply (sign=1) or take back (sign=-1) a payment's lines on its invoices and credit memos."""
        for line in payment.get("Line", []):
            for link in line.get("LinkedTxn", []):
                kind = link["TxnType"]
                target = company.tables.get(kind, {}).get(link["TxnId"])
                if target is None:
                    continue
                currency = target["CurrencyRef"]["value"]
                target["Balance"] = round_money(target["Balance"] - sign * line["Amount"], currency)
                if kind == "CreditMemo":
                    target["RemainingCredit"] = target["Balance"]
                if kind == "Invoice":
                    others = [l for l in target.get("LinkedTxn", []) if l.get("TxnId") != payment["Id"]]
                    target["LinkedTxn"] = others + ([{"TxnId": payment["Id"], "TxnType": "Payment"}] if sign > 0 else [])
                self._touch(company, kind, target, "Update")
        self._adjust_customer_balance(company, payment["CustomerRef"]["value"], -sign * payment["TotalAmt"])

    # --- update --------------------------------------------------------------------

    def api_update(self, realm: str, entity: str, body: dict[str, Any], *, sparse: bool) -> dict[str, Any]:
        """QBO's update: ``SyncToken`` must be current; sparse merges, full replaces writable fields."""
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            if "Id" not in body:
                raise required("Id")
            if "SyncToken" not in body:
                raise required("SyncToken")
            if entity == "TaxCode":
                raise Fault("500", "Unsupported Operation", "Operation Update is not supported for TaxCode.")
            row = self._row(company, entity, body["Id"])
            if str(body["SyncToken"]) != row["SyncToken"]:
                raise stale(entity, row["Id"])
            return self._update(company, entity, row, _clean(_copy(body)), sparse=sparse, api=True)

    def update(self, realm: str, entity: str, id_: str, **fields: Any) -> dict[str, Any]:
        """Test helper: sparse-update ``fields`` on a row, as a QBO user editing it would."""
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            row = self._row(company, entity, id_)
            return self._update(company, entity, row, _copy(fields), sparse=True)

    def _update(self, company: Company, entity: str, row: dict[str, Any], changes: dict[str, Any], *,
                sparse: bool, api: bool = False) -> dict[str, Any]:
        if entity == "Customer" and "DisplayName" in changes:
            self._check_unique_name(company, "Customer", changes["DisplayName"], exclude=row["Id"])
        if entity in ("Term", "Item", "Account") and "Name" in changes:
            self._check_unique_name(company, entity, changes["Name"], exclude=row["Id"])
        if sparse:
            new = dict(row) | changes
        else:
            kept = {k: row[k] for k in READ_ONLY if k in row}
            new = kept | changes
            if entity == "Customer":
                new.setdefault("DisplayName", row["DisplayName"])
                new.setdefault("Active", True)
                new.setdefault("CurrencyRef", row.get("CurrencyRef"))
        if entity in ("Invoice", "CreditMemo") and api:  # saved through the API: its customer must be active
            self._active_customer(company, changes.get("CustomerRef") or row["CustomerRef"])
        if entity in ("Invoice", "CreditMemo") and ("Line" in changes or "CustomerRef" in changes):
            currency = row["CurrencyRef"]["value"]
            if "Line" in changes:
                lines, total = self._sales_lines(company, changes, currency, api=api)
            else:
                lines, total = row["Line"], row["TotalAmt"]
            settled = row["TotalAmt"] - row["Balance"]
            new["Line"], new["TotalAmt"] = lines, total
            new["Balance"] = round_money(max(total - settled, 0), currency)
            if "CustomerRef" in changes:
                customer = self._active_customer(company, changes["CustomerRef"])
                assert customer is not None
                new["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
            sign = 1 if entity == "Invoice" else -1
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], -sign * row["Balance"])
            self._adjust_customer_balance(company, new["CustomerRef"]["value"], sign * new["Balance"])
        if entity == "Customer" and new.get("DisplayName") != row.get("DisplayName"):
            new["FullyQualifiedName"] = new["DisplayName"]
            self._rename_refs(company, row["Id"], new["DisplayName"])
        row.clear()
        row.update(new)
        self._touch(company, entity, row, "Update")
        return _copy(row)

    def _rename_refs(self, company: Company, customer_id: str, name: str) -> None:
        for kind in TXN_ENTITIES:
            for txn in company.tables[kind].values():
                if txn["CustomerRef"]["value"] == customer_id:
                    txn["CustomerRef"] = {"value": customer_id, "name": name}

    # --- delete and void -----------------------------------------------------------

    def api_delete(self, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            if entity in LIST_ENTITIES:
                raise Fault("500", "Unsupported Operation",
                            f"Operation Delete is not supported for {entity}: make it inactive instead.")
            if "Id" not in body:
                raise required("Id")
            row = self._row(company, entity, body["Id"])
            if str(body.get("SyncToken")) != row["SyncToken"]:
                raise stale(entity, row["Id"])
            return self._delete(company, entity, row)

    def delete(self, realm: str, entity: str, id_: str) -> dict[str, Any]:
        """Test helper: delete a transaction, or make a list row (Customer, Term, Item) inactive."""
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            row = self._row(company, entity, id_)
            if entity in LIST_ENTITIES:
                return self._update(company, entity, row, {"Active": False}, sparse=True)
            return self._delete(company, entity, row)

    def _delete(self, company: Company, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        if entity == "Payment":
            self._apply_payment(company, row, sign=-1)
        elif entity == "Invoice":
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], -row["Balance"])
            self._unlink_payments(company, row)
        elif entity == "CreditMemo":
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], row["Balance"])
        del company.tables[entity][row["Id"]]
        now = self.clock.now()
        stamp = company.stamp(now)
        tomb = {"Id": row["Id"], "status": "Deleted", "domain": "QBO",
                "MetaData": {"CreateTime": row["MetaData"]["CreateTime"], "LastUpdatedTime": stamp}}
        company.tombstones[entity][row["Id"]] = tomb
        self._emit(company.realm, entity, row["Id"], "Delete", stamp)
        return {"status": "Deleted", "domain": "QBO", "Id": row["Id"]}

    def _unlink_payments(self, company: Company, invoice: dict[str, Any]) -> None:
        """Take a deleted or voided invoice off the payments applied to it: the money stays with the
        customer, unapplied (their balance goes down by it)."""
        for link in invoice.get("LinkedTxn", []):
            payment = company.tables["Payment"].get(link.get("TxnId", ""))
            if payment is None:
                continue
            kept = [l for l in payment["Line"] if all(t["TxnId"] != invoice["Id"] for t in l["LinkedTxn"])]
            freed = sum(l["Amount"] for l in payment["Line"]) - sum(l["Amount"] for l in kept)
            payment["Line"] = kept
            payment["UnappliedAmt"] = round_money(payment["UnappliedAmt"] + freed, payment["CurrencyRef"]["value"])
            self._adjust_customer_balance(company, invoice["CustomerRef"]["value"], -freed)
            self._touch(company, "Payment", payment, "Update")

    def api_void(self, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            company = self.company(realm)
            entity = canonical(entity)
            if entity not in ("Invoice", "Payment"):
                raise Fault("500", "Unsupported Operation", f"Operation Void is not supported for {entity}.")
            if "Id" not in body:
                raise required("Id")
            row = self._row(company, entity, body["Id"])
            if str(body.get("SyncToken")) != row["SyncToken"]:
                raise stale(entity, row["Id"])
            return self._void(company, entity, row)

    def void_invoice(self, realm: str, id_: str) -> dict[str, Any]:
        """Test helper: void an invoice as QuickBooks Online does (``voided``)."""
        with self.lock:
            company = self.company(realm)
            return self._void(company, "Invoice", self._row(company, "Invoice", id_))

    def _void(self, company: Company, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        if entity == "Invoice":
            self._adjust_customer_balance(company, row["CustomerRef"]["value"], -row["Balance"])
            self._unlink_payments(company, row)
            new = voided(row)
        else:
            self._apply_payment(company, row, sign=-1)
            new = dict(row, TotalAmt=0, UnappliedAmt=0, Line=[dict(l, Amount=0) for l in row["Line"]],
                       PrivateNote=_voided_note(row.get("PrivateNote")))
        row.clear()
        row.update(new)
        self._touch(company, entity, row, "Void")
        return _copy(row)

    # --- payments and email --------------------------------------------------------

    def pay_invoice(self, realm: str, invoice_id: str, amount: Any | None = None) -> dict[str, Any]:
        """Test helper: the customer pays ``amount`` (default: the whole balance) of an invoice."""
        with self.lock:
            company = self.company(realm)
            invoice = self._row(company, "Invoice", invoice_id)
            amount = invoice["Balance"] if amount is None else float(amount)
            return self.create(realm, "Payment", {
                "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                "TotalAmt": amount,
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
            })

    def send_invoice(self, realm: str, invoice_id: str, send_to: str | None = None) -> dict[str, Any]:
        with self.lock:
            company = self.company(realm)
            row = self._row(company, "Invoice", invoice_id)
            if send_to:
                row["BillEmail"] = {"Address": send_to}
            if not (row.get("BillEmail") or {}).get("Address"):
                raise Fault("6140", "Invalid Email Address", "Invoice has no BillEmail address to send to.")
            row["EmailStatus"] = "EmailSent"
            row["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": company.stamp(self.clock.now())}
            self._touch(company, "Invoice", row, "Emailed")
            return _copy(row)

    # --- invoice links -------------------------------------------------------------

    def invoice_link(self, company: Company, row: dict[str, Any]) -> str | None:
        """The pay link QBO adds for ``include=invoiceLink``: online payment on and a valid BillEmail."""
        email = (row.get("BillEmail") or {}).get("Address", "")
        online = row.get("AllowOnlineCreditCardPayment") or row.get("AllowOnlineACHPayment")
        if not (company.online_payment and online and _valid_email(email)):
            return None
        return f"{self._base_url()}/pay/{company.realm}/{row['Id']}"


def voided(invoice: dict[str, Any]) -> dict[str, Any]:
    """``invoice`` as QuickBooks Online keeps it once voided: not deleted, but every amount and quantity
    zeroed — TotalAmt, Balance, each line's Amount and Qty, the tax, the deposit — the payments taken
    off (``LinkedTxn`` empty) and "Voided" at the head of ``PrivateNote`` (Intuit's "Voiding invoice
    objects", 2016, and the void response in the Invoice reference). The lines keep their items."""
    def line(l: dict[str, Any]) -> dict[str, Any]:
        out = dict(l, Amount=0)
        detail = out.get("SalesItemLineDetail")
        if isinstance(detail, dict) and "Qty" in detail:
            out["SalesItemLineDetail"] = dict(detail, Qty=0)
        return out

    out = dict(invoice, TotalAmt=0, Balance=0, LinkedTxn=[], Line=[line(l) for l in invoice.get("Line") or []],
               PrivateNote=_voided_note(invoice.get("PrivateNote")))
    for key in ("HomeTotalAmt", "HomeBalance", "Deposit"):
        if key in out:
            out[key] = 0
    if isinstance(out.get("TxnTaxDetail"), dict):
        out["TxnTaxDetail"] = dict(out["TxnTaxDetail"], TotalTax=0)
    return out


def _voided_note(note: Any) -> str:
    """QBO puts "Voided" before the note the transaction had (the separator is the sandbox's guess)."""
    text = str(note or "").strip()
    return "Voided" if not text or text.lower().startswith("voided") else f"Voided - {text}"


def default_tax_code(company: Company) -> dict[str, Any] | None:
    """The code the QuickBooks screens put on a new line: the first active taxable one (the standard rate)."""
    codes = [r for r in company.tables["TaxCode"].values() if r.get("Active", True) and r.get("Taxable")]
    return min(codes, key=lambda r: int(r["Id"]), default=None)


def canonical(entity: str) -> str:
    try:
        return ENTITIES[entity.lower()]
    except KeyError:
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"Property Name:Can not instantiate {entity} specified is unsupported or invalid") from None


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in READ_ONLY and not (v == "" and k in BLANK_MEANS_ABSENT)}


def _valid_email(address: str) -> bool:
    local, _, domain = address.partition("@")
    return bool(local) and "." in domain and " " not in address
