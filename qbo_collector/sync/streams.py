"""What the mirror reads from QuickBooks, declared as data, and how a QBO row becomes a mirror row.

Pure: no I/O, no SQLAlchemy sessions, no HTTP. ``build_query`` is unit-tested to the exact
string; each ``to_row`` takes the raw dict of ``qb.query()`` (amounts already ``Decimal``)
and returns the mirror's column values, or raises ``BadRecord`` with a reason that the
sync logs with the entity Id before skipping the row (one bad record never stops a sync).

    Stream(entity, table, where, include, to_row)
      Term         Active IN (true, false)   list entity: inactive rows only with that filter
      Customer     Active IN (true, false)
      Invoice      include=invoiceLink       pay link, PO number, late fee, derived due date
      Payment                                + LinkedTxn → payment_link rows
      CreditMemo
      CompanyInfo  (one row, full sync only; not in CDC)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from qbo_collector import money

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # QBO's maximum MAXRESULTS


class BadRecord(ValueError):
    """A QBO row the mirror cannot store; the message says why."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """What the mappers need besides the row: the company's home currency and its terms' due days."""

    home_currency: str = "USD"
    term_days: Mapping[str, int] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True, kw_only=True)
class Mapped:
    """One mirror row (column → value) and, for payments, its invoice links (invoice Id → amount)
    and the credit memos it used (credit memo Id → amount)."""

    values: dict[str, Any]
    links: dict[str, Decimal] | None = None
    memo_links: dict[str, Decimal] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Stream:
    entity: str                                   # QBO entity name, as in queries and CDC
    table: str | None                             # mirror table; None for CompanyInfo
    where: str = ""                               # fixed filter of the full-sync query
    include: str | None = None                    # QBO's ``include=`` parameter
    to_row: Callable[[dict[str, Any], Context], Mapped] | None = None
    cdc: bool = True                              # read incrementally through CDC

    def query(self, *, start: int = 1, max_results: int = PAGE_SIZE) -> str:
        return build_query(self.entity, where=self.where, start=start, max_results=max_results)


def build_query(entity: str, *, where: str = "", start: int = 1, max_results: int = PAGE_SIZE,
                order_by: str | None = "Id") -> str:
    """The QBO query of one page. Ordered by Id so that pages are stable while rows are added."""
    if start < 1 or not 1 <= max_results <= PAGE_SIZE:
        raise ValueError("STARTPOSITION is 1-based and MAXRESULTS at most 1000")
    parts = [f"SELECT * FROM {entity}"]
    if where:
        parts.append(f"WHERE {where}")
    if order_by:
        parts.append(f"ORDERBY {order_by}")
    parts.append(f"STARTPOSITION {start} MAXRESULTS {max_results}")
    return " ".join(parts)


def format_since(moment: datetime) -> str:
    """CDC's ``changedSince``: ISO 8601 *with* the offset (python-quickbooks' own helper drops it)."""
    if moment.tzinfo is None:
        raise ValueError("changedSince must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


# --- field helpers -------------------------------------------------------------------


def _ref(row: Mapping[str, Any], name: str) -> str | None:
    ref = row.get(name)
    if isinstance(ref, Mapping):
        value = ref.get("value")
        return str(value) if value not in (None, "") else None
    return None


def _text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    return text[:limit] if limit else text


def _nested(row: Mapping[str, Any], name: str, key: str) -> Any:
    inner = row.get(name)
    return inner.get(key) if isinstance(inner, Mapping) else None


def _amount(row: Mapping[str, Any], name: str, *, default: Decimal | None = Decimal(0)) -> Decimal | None:
    value = row.get(name)
    if value is None:
        return default
    try:
        return money.to_decimal(value)
    except ValueError:
        raise BadRecord(f"{name} is not an amount ({value!r})") from None


def _date(row: Mapping[str, Any], name: str) -> date | None:
    value = row.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadRecord(f"{name} is not a date ({value!r})") from None


def parse_time(value: Any) -> datetime | None:
    """QBO's ``2026-11-20T10:15:00-08:00`` as an aware UTC datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _common(row: Mapping[str, Any]) -> dict[str, Any]:
    meta = row.get("MetaData")
    return {
        "qbo_id": str(row["Id"]),
        "sync_token": _text(row.get("SyncToken"), 32),
        "qbo_updated_at": parse_time(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None,
        "deleted": False,
    }


def _currency(row: Mapping[str, Any], ctx: Context, warnings: list[str]) -> str:
    code = _ref(row, "CurrencyRef")
    if code is None:
        return ctx.home_currency
    code = code.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise BadRecord(f"currency {code!r} is not a currency code")
    if not _known_currency(code):
        warnings.append(f"unknown currency {code}, stored as-is")
    return code


@functools.lru_cache(maxsize=512)
def _known_currency(code: str) -> bool:
    return money.is_known_currency(code)


# --- mappers -------------------------------------------------------------------------


def term_row(row: dict[str, Any], ctx: Context) -> Mapped:
    name = _text(row.get("Name"), 255)
    if name is None:
        raise BadRecord("term without a Name")
    due_days = row.get("DueDays")
    discount_days = row.get("DiscountDays")
    return Mapped(values=_common(row) | {
        "name": name,
        "due_days": int(due_days) if due_days is not None else None,
        "discount_percent": _amount(row, "DiscountPercent", default=None),
        "discount_days": int(discount_days) if discount_days is not None else None,
        "active": bool(row.get("Active", True)),
    })


def customer_row(row: dict[str, Any], ctx: Context) -> Mapped:
    warnings: list[str] = []
    display = _text(row.get("DisplayName"), 500) or _text(row.get("CompanyName"), 500)
    if display is None:
        raise BadRecord("customer without a DisplayName")
    balance = _amount(row, "Balance")
    assert balance is not None
    if balance < 0:
        warnings.append(f"negative balance {balance}, stored as-is")
    return Mapped(values=_common(row) | {
        "display_name": display,
        "company_name": _text(row.get("CompanyName"), 500),
        "given_name": _text(row.get("GivenName"), 255),
        "email": _text(_nested(row, "PrimaryEmailAddr", "Address"), 320),
        "phone": _text(_nested(row, "PrimaryPhone", "FreeFormNumber"), 64),
        "mobile": _text(_nested(row, "Mobile", "FreeFormNumber"), 64),
        "country": _text(_nested(row, "BillAddr", "Country"), 64),
        "currency": _currency(row, ctx, warnings),
        "balance": balance,
        "active": bool(row.get("Active", True)),
        "notes": _text(row.get("Notes")),
        "term_qbo_id": _ref(row, "SalesTermRef"),
        "parent_qbo_id": _ref(row, "ParentRef"),
        # QuickBooks only honours it on a job or sub-customer (one with a ParentRef)
        "bill_with_parent": bool(row.get("BillWithParent")) and _ref(row, "ParentRef") is not None,
    }, warnings=tuple(warnings))


LATE_FEE_ITEM = "late fee"


def po_number(row: Mapping[str, Any]) -> str | None:
    """The PO number: the first custom field whose name says PO ("PO", "P.O. Number", "PO #")."""
    for custom in row.get("CustomField") or ():
        if not isinstance(custom, Mapping):
            continue
        name = str(custom.get("Name") or "").upper().replace(".", "").replace(" ", "")
        if name.startswith("PO") or "PONUMBER" in name or "PURCHASEORDER" in name or "COMMANDE" in name:
            value = _text(custom.get("StringValue"), 128)
            if value:
                return value
    return None


def delivery_date(row: Mapping[str, Any]) -> date | None:
    """The day QuickBooks emailed the invoice (``DeliveryInfo.DeliveryTime``, "2026-11-02T09:12:00-08:00"),
    in the offset QuickBooks wrote it in: the company's own day. None when it never did or says nothing
    readable."""
    info = row.get("DeliveryInfo")
    moment = info.get("DeliveryTime") if isinstance(info, Mapping) else None
    try:
        return date.fromisoformat(str(moment)[:10]) if moment else None
    except ValueError:
        return None


def _sales_lines(row: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], bool]]:
    """Each item line of an invoice (subtotal, discount and description lines left out), and whether
    it bills the "Late fee" item."""
    for line in row.get("Line") or ():
        detail = line.get("SalesItemLineDetail") if isinstance(line, Mapping) else None
        if isinstance(detail, Mapping):
            item = detail.get("ItemRef")
            yield line, isinstance(item, Mapping) and str(item.get("name") or "").strip().lower() == LATE_FEE_ITEM


def is_late_fee(row: Mapping[str, Any]) -> bool:
    """A fee invoice: every item line bills the "Late fee" item (the invoices ``late_fee_mode`` "invoice"
    posts, or one made by hand in QuickBooks). An invoice that bills work *and* carries fee lines (mode
    "line") is not one: it keeps bearing fees, on its balance without them (``fee_lines``)."""
    kinds = [fee for _line, fee in _sales_lines(row)]
    return bool(kinds) and all(kinds)


def fee_lines(row: Mapping[str, Any]) -> Decimal:
    """What the "Late fee" lines of an invoice that also bills something else add up to (0 for a fee
    invoice, which is all fees): the part of its total and balance no fee may be charged on."""
    lines = list(_sales_lines(row))
    if not lines or all(fee for _line, fee in lines):
        return Decimal(0)
    return sum(((_amount(line, "Amount") or Decimal(0)) for line, fee in lines if fee), Decimal(0))


def is_voided(row: Mapping[str, Any], total: Decimal, balance: Decimal) -> bool:
    """QBO keeps a voided invoice with Balance 0, "Voided" in PrivateNote and (online) TotalAmt 0."""
    if balance != 0:
        return False
    note = str(row.get("PrivateNote") or "").strip().lower()
    return note.startswith("voided") or total == 0


def invoice_row(row: dict[str, Any], ctx: Context) -> Mapped:
    warnings: list[str] = []
    customer = _ref(row, "CustomerRef")
    if customer is None:
        raise BadRecord("invoice without a CustomerRef")
    total = _amount(row, "TotalAmt")
    balance = _amount(row, "Balance")
    assert total is not None and balance is not None
    txn_date = _date(row, "TxnDate")
    due_date = _date(row, "DueDate")
    term = _ref(row, "SalesTermRef")
    derived = None
    if due_date is None:
        if term is not None and term in ctx.term_days and txn_date is not None:
            due_date, derived = txn_date + timedelta(days=ctx.term_days[term]), "term"
        elif txn_date is not None:
            due_date, derived = txn_date, "txn_date"
            warnings.append("no DueDate and no usable term: treated as due on its TxnDate")
        else:
            warnings.append("no DueDate and no TxnDate: no due date")
    if balance < 0:
        warnings.append(f"negative balance {balance}, stored as-is")
    email = _text(_nested(row, "BillEmail", "Address"), 320)
    if email is None and balance > 0:
        warnings.append("no BillEmail")
    if is_voided(row, total, balance):
        status = "voided"
    elif balance <= 0:
        status = "paid"
    else:
        status = "open"
    return Mapped(values=_common(row) | {
        "doc_number": _text(row.get("DocNumber"), 64),
        "customer_qbo_id": customer,
        "txn_date": txn_date,
        "due_date": due_date,
        "due_date_derived": derived,
        "total": total,
        "balance": balance,
        "currency": _currency(row, ctx, warnings),
        "term_qbo_id": term,
        "bill_email": email,
        "po_number": po_number(row),
        "invoice_link": _text(row.get("InvoiceLink")),
        "email_status": _text(row.get("EmailStatus"), 32),
        "print_status": _text(row.get("PrintStatus"), 32),
        "sent_on": delivery_date(row),
        "status": status,
        "is_late_fee": is_late_fee(row),
        "fee_lines": fee_lines(row),
    }, warnings=tuple(warnings))


def payment_links(row: Mapping[str, Any], txn_type: str = "Invoice") -> dict[str, Decimal]:
    """Invoice Id → amount this payment applied to it (lines to one invoice are summed); with
    ``txn_type="CreditMemo"``, credit memo Id → amount of it the payment used."""
    links: dict[str, Decimal] = {}
    for line in row.get("Line") or ():
        if not isinstance(line, Mapping):
            continue
        for linked in line.get("LinkedTxn") or ():
            if isinstance(linked, Mapping) and linked.get("TxnType") == txn_type and linked.get("TxnId"):
                amount = _amount(line, "Amount")
                assert amount is not None
                key = str(linked["TxnId"])
                links[key] = links.get(key, Decimal(0)) + amount
    return links


def payment_row(row: dict[str, Any], ctx: Context) -> Mapped:
    warnings: list[str] = []
    return Mapped(values=_common(row) | {
        "customer_qbo_id": _ref(row, "CustomerRef"),
        "txn_date": _date(row, "TxnDate"),
        "total": _amount(row, "TotalAmt"),
        "unapplied": _amount(row, "UnappliedAmt"),
        "currency": _currency(row, ctx, warnings),
    }, links=payment_links(row), memo_links=payment_links(row, "CreditMemo"), warnings=tuple(warnings))


def credit_memo_row(row: dict[str, Any], ctx: Context) -> Mapped:
    warnings: list[str] = []
    balance = _amount(row, "Balance", default=None)
    if balance is None:
        balance = _amount(row, "RemainingCredit")
    return Mapped(values=_common(row) | {
        "customer_qbo_id": _ref(row, "CustomerRef"),
        "doc_number": _text(row.get("DocNumber"), 64),
        "txn_date": _date(row, "TxnDate"),
        "total": _amount(row, "TotalAmt"),
        "balance": balance,
        "currency": _currency(row, ctx, warnings),
    }, warnings=tuple(warnings))


def company_info(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Company columns CompanyInfo refreshes (the name; the rest is set at connect and by the owner)."""
    name = _text(row.get("CompanyName"), 255) or _text(row.get("LegalName"), 255)
    return {"name": name} if name else {}


TERM = Stream(entity="Term", table="term", where="Active IN (true, false)", to_row=term_row)
CUSTOMER = Stream(entity="Customer", table="customer", where="Active IN (true, false)", to_row=customer_row)
INVOICE = Stream(entity="Invoice", table="invoice", include="invoiceLink", to_row=invoice_row)
PAYMENT = Stream(entity="Payment", table="payment", to_row=payment_row)
CREDIT_MEMO = Stream(entity="CreditMemo", table="credit_memo", to_row=credit_memo_row)
COMPANY_INFO = Stream(entity="CompanyInfo", table=None, cdc=False)

# Terms first: invoices derive a missing due date from them.
STREAMS: tuple[Stream, ...] = (TERM, CUSTOMER, INVOICE, PAYMENT, CREDIT_MEMO, COMPANY_INFO)
BY_ENTITY = {s.entity: s for s in STREAMS}


def map_row(stream: Stream, row: dict[str, Any], ctx: Context) -> Mapped:
    """``stream.to_row`` with every malformed-field error turned into ``BadRecord``."""
    assert stream.to_row is not None
    if not isinstance(row, dict) or not row.get("Id"):
        raise BadRecord("row without an Id")
    try:
        return stream.to_row(row, ctx)
    except BadRecord:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise BadRecord(f"malformed {stream.entity}: {type(exc).__name__}: {exc}") from None
