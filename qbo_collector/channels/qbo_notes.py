"""QuickBooks write-back: the program's section of ``Customer.Notes``, and late-fee invoices.

The notes section (invariant 7)::

    <the user's own text, never changed>

    — Collections —
    2026-11-23 Reminder sent by email: invoice 1042 (1,234.50 USD)
    2026-11-16 Late fee 18.52 USD posted for invoice 1042 (invoice 1101)
    — end of Collections —

The program owns only the lines between its two markers: newest first, trimmed (oldest
lines dropped) so that the whole field stays within ``NOTES_LIMIT`` characters; the full
history stays in the local outbox. Text the user writes before or after the section is
kept as it is. A user text that alone fills the field leaves no room: the section is then
left out rather than cutting the user's words.

Writes are sparse updates posted as raw JSON (a fresh python-quickbooks ``Customer()``
would send blank defaults and clobber fields), at most 30 per batch request. A stale
``SyncToken`` (fault 5010) is answered by re-reading those customers (one query) and
trying again with the user's current text.

Late fees are a separate invoice with the "Late fee" service item (created with an income
account when missing), referencing the original invoice number in the line description
and the private note, posted with a deterministic ``requestid`` so that a retry or a crash
replays the first result instead of charging twice (a post QuickBooks refused for good —
fault 610, the customer made inactive — leaves nothing under its requestid, and the next attempt
of the same fee, once the customer is active again, takes a new one). Optional mode ``line`` adds the fee
as a line of the original invoice instead (idempotent: a line carrying the fee's key is
never added twice). Waiving a fee voids its invoice (or removes its line).

Outside the US, QuickBooks refuses an invoice line without a tax code (fault 6000, "Make sure
all your transactions have a VAT rate before you save"). A fee line there carries the
company's ``fee_tax_code`` setting (a TaxCode Id), else the first active code whose name reads
out of scope, then no VAT, then exempt (``FEE_TAX_CODE_NAMES``): late-payment interest and the
recovery indemnity compensate the creditor, they pay for no supply, so they are outside the
scope of VAT (France, the UK) and of GST/HST (Canada). The codes are read once per run. With
neither, ``fee_tax_code`` raises ``NO_TAX_CODE`` with a sentence telling the owner what to set; the
dispatcher asks before posting any fee and holds the run's fees until it is set (``dispatch.run``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from qbo_collector import errors
from qbo_collector.channels import base

log = logging.getLogger(__name__)
# (the invoice as read, its lines without the subtotal) → the new lines, or None when nothing is to change
LineEdit = Callable[[dict[str, Any], list[dict[str, Any]]], list[dict[str, Any]] | None]

NOTES_LIMIT = 1000
BATCH_LIMIT = 30
QUERY_LIMIT = 1000
START_MARK = "— Collections —"
END_MARK = "— end of Collections —"
FEE_ITEM_NAME = "Late fee"
# Looked for in this order in the names of the company's active tax codes (lower case, no accents).
FEE_TAX_CODE_NAMES = ("out of scope", "hors champ", "hors du champ", "no vat", "exempt", "exonere")
NO_TAX_CODE = "no_tax_code"  # the PermanentFailure code: a setting away from posting, not a refusal
# its ``cause`` (in the exception's context): the chosen code is not an active one, or none is chosen and none fits
CHOSEN_CODE_GONE, NO_FITTING_CODE = "chosen", "none"


# --------------------------------------------------------------------------- pure notes


def split_notes(notes: str | None) -> tuple[str, list[str], str]:
    """(text before our section, our lines, text after it). No section: (notes, [], "")."""
    text = notes or ""
    start = text.find(START_MARK)
    if start < 0:
        return text.rstrip(), [], ""  # trailing blank lines are not words: the section goes right after
    end = text.find(END_MARK, start)
    before = text[:start].rstrip()
    if end < 0:  # the end marker was deleted by hand: our section runs to the end
        body, after = text[start + len(START_MARK):], ""
    else:
        body, after = text[start + len(START_MARK):end], text[end + len(END_MARK):].strip()
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return before, lines, after


def merge_notes(notes: str | None, new_lines: Sequence[str], *, limit: int = NOTES_LIMIT) -> str:
    """``notes`` with ``new_lines`` (newest first) on top of our section, trimmed to ``limit``.

    Lines already in the section are not repeated (a retried write-back adds nothing)."""
    before, lines, after = split_notes(notes)
    fresh = [line for line in new_lines if line not in lines]
    lines = fresh + lines
    user_len = len(before) + (len(after) + 1 if after else 0)
    kept: list[str] = []
    for line in lines:
        candidate = _compose(before, kept + [line], after)
        if len(candidate) > limit:
            break
        kept.append(line)
    if not kept:
        return _compose(before, [], after) if user_len else ""
    return _compose(before, kept, after)


def _compose(before: str, lines: Sequence[str], after: str) -> str:
    parts = []
    if before:
        parts.append(before)
    if lines:
        section = "\n".join([START_MARK, *lines, END_MARK])
        parts.append(section)
    if after:
        parts.append(after)
    return "\n\n".join(parts)


def _plain(name: Any) -> str:
    """A tax code's name compared loosely: "Exonéré" reads "exonere", "Hors  champ" "hors champ"."""
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    return " ".join(text.lower().split())


def request_id(key: str) -> str:
    """QBO's ``requestid`` for a dedupe key: deterministic, ≤ 50 characters."""
    return "qc-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


# --------------------------------------------------------------------------- QBO writer


@dataclass
class NoteUpdate:
    """One customer's write-back: the lines to add and what we believe QBO holds."""

    customer_id: str
    lines: list[str]
    notes: str | None
    sync_token: str | None


@dataclass
class NoteResult:
    written: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (notes, sync token)
    failed: dict[str, str] = field(default_factory=dict)                # id → reason
    batches: int = 0
    rereads: int = 0


def _decimal_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {value!r}")


def _fault_text(item: dict[str, Any]) -> tuple[str, str]:
    fault = item.get("Fault") or {}
    errs = fault.get("Error") or [{}]
    first = errs[0] if errs else {}
    return str(first.get("code", "")), f"{first.get('Message', '')}: {first.get('Detail', '')}".strip(": ")


class QboNotes:
    """Writes to one QuickBooks company through a ``sync.client.QboClient`` (retries, rate limit, 401)."""

    identifier = "qbo_notes"
    settings_fields: list[base.Setting] = []

    def __init__(self, client: Any, *, country: str | None = None, fee_tax_code: str | None = None) -> None:
        """``country``: the company's (ISO code; None or "US": fee lines carry no tax code);
        ``fee_tax_code``: the TaxCode Id the owner chose for late fees, if any."""
        self.client = client
        self.country = (country or "US").upper()
        self.chosen_tax_code = str(fee_tax_code).strip() if fee_tax_code not in (None, "") else None
        self._fee_item: dict[str, str] | None = None
        self._tax_codes: list[dict[str, Any]] | None = None

    # --- the Channel contract: one line for one customer ---------------------------

    def send(self, message: base.OutboundMessage) -> base.Receipt:
        """``message.to`` is the QBO customer Id, ``message.text`` one line; read, merge, sparse-update."""
        current = self.read_customers([message.to]).get(message.to)
        if current is None:
            raise errors.PermanentFailure(f"QuickBooks has no customer {message.to}.", code="610")
        result = self.write_notes([NoteUpdate(message.to, [message.text], current.get("Notes"), current.get("SyncToken"))])
        if message.to in result.failed:
            raise errors.PermanentFailure(result.failed[message.to])
        return base.Receipt(provider_id=message.to, accepted_at=None, raw_status="updated")

    # --- reads ------------------------------------------------------------------------

    def read_customers(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The customers named, inactive ones included (a list entity's query hides them otherwise)."""
        wanted = sorted(set(ids), key=lambda x: (len(x), x))
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), QUERY_LIMIT):
            part = wanted[start:start + QUERY_LIMIT]
            quoted = ", ".join("'" + i.replace("'", "") + "'" for i in part)
            page = self.client.query(f"SELECT * FROM Customer WHERE Id IN ({quoted}) AND Active IN (true, false) "
                                     f"MAXRESULTS {QUERY_LIMIT}")
            for row in page.get("Customer") or ():
                out[str(row["Id"])] = row
        return out

    # --- notes ------------------------------------------------------------------------

    def write_notes(self, updates: Sequence[NoteUpdate], *, max_rounds: int = 3) -> NoteResult:
        """Sparse-update Notes of every customer in ``updates``, ≤ 30 per batch; re-read and retry on 5010."""
        result = NoteResult()
        pending = {u.customer_id: u for u in updates}
        for round_ in range(max_rounds):
            if not pending:
                break
            stale: list[str] = []
            items = list(pending.values())
            for start in range(0, len(items), BATCH_LIMIT):
                chunk = items[start:start + BATCH_LIMIT]
                requests_ = []
                for n, u in enumerate(chunk):
                    body = {"Id": u.customer_id, "SyncToken": u.sync_token or "0", "sparse": True,
                            "Notes": merge_notes(u.notes, u.lines)}
                    requests_.append({"bId": str(n), "operation": "update", "Customer": body})
                answer = self.client.call("write customer notes", lambda qb, r=requests_: qb.batch_operation(
                    json.dumps({"BatchItemRequest": r}, default=_decimal_json)))
                result.batches += 1
                by_bid = {str(item.get("bId")): item for item in (answer or {}).get("BatchItemResponse") or ()}
                for n, u in enumerate(chunk):
                    item = by_bid.get(str(n))
                    if item is None:
                        result.failed[u.customer_id] = "QuickBooks did not answer for this customer in the batch."
                    elif "Customer" in item:
                        row = item["Customer"]
                        result.written[u.customer_id] = (row.get("Notes") or "", str(row.get("SyncToken")))
                    else:
                        code, text = _fault_text(item)
                        if code == "5010":
                            stale.append(u.customer_id)
                        else:
                            result.failed[u.customer_id] = f"QuickBooks refused the notes update ({code} {text})."
                    if u.customer_id not in stale:
                        pending.pop(u.customer_id, None)
            if stale:
                fresh = self.read_customers(stale)
                result.rereads += 1
                for cid in stale:
                    row = fresh.get(cid)
                    if row is None:
                        result.failed[cid] = "The customer is gone from QuickBooks."
                        pending.pop(cid, None)
                        continue
                    u = pending[cid]
                    pending[cid] = NoteUpdate(cid, u.lines, row.get("Notes"), str(row.get("SyncToken")))
            log.debug("notes round %s: %s written, %s stale", round_, len(result.written), len(stale))
        for cid in pending:
            result.failed.setdefault(cid, "QuickBooks kept answering 'stale object' (5010); will try again next run.")
        return result

    # --- late fees ----------------------------------------------------------------------

    def fee_item(self) -> dict[str, str]:
        """``{"value": Id, "name": "Late fee"}``: the service item, created when missing, made active
        again when someone made it inactive in QuickBooks (which refuses an inactive item on an invoice
        line, and refuses to create a second item of the same name: without this every fee would fail
        for good)."""
        if self._fee_item is not None:
            return self._fee_item
        row = self._find_fee_item()
        if row is None:
            accounts = self.client.query("SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 100").get("Account") or []
            if not accounts:
                raise errors.PermanentFailure("QuickBooks has no income account to book late fees on; create one "
                                              "(e.g. 'Late Fee Income') and try again.", code="no_income_account")
            account = next((a for a in accounts if "fee" in str(a.get("Name", "")).lower()), accounts[0])
            body = {"Name": FEE_ITEM_NAME, "Type": "Service", "IncomeAccountRef": {"value": str(account["Id"])},
                    "Description": "Late payment fee (qbo-collector)"}
            try:
                created = self.client.call("create the Late fee item", lambda qb: qb.create_object(
                    "Item", json.dumps(body), request_id=request_id("item:late-fee")))
                row = created.get("Item") or {}
            except errors.PermanentFailure as exc:
                row = self._find_fee_item() if str(exc.code) == "6240" else None  # made meanwhile, by hand or
                if row is None:                                                   # by another worker
                    raise
        if row.get("Active") is False:
            body = {"Id": str(row["Id"]), "SyncToken": str(row.get("SyncToken", "0")), "sparse": True, "Active": True}
            row = self.client.call("make the Late fee item active again", lambda qb: qb.update_object(
                "Item", json.dumps(body))).get("Item") or row
            log.warning("the Late fee item (Id %s) was inactive in QuickBooks; made active again to post fees", row["Id"])
        self._fee_item = {"value": str(row["Id"]), "name": row.get("Name", FEE_ITEM_NAME)}
        return self._fee_item

    def _find_fee_item(self) -> dict[str, Any] | None:
        """The "Late fee" item, active or not (a list query hides inactive rows unless asked)."""
        found = self.client.query(f"SELECT * FROM Item WHERE Name = '{FEE_ITEM_NAME}' AND Active IN (true, false) "
                                  "MAXRESULTS 10").get("Item") or []
        active = [r for r in found if r.get("Active") is not False]
        return (active or found or [None])[0]

    def fee_tax_code(self) -> dict[str, str] | None:
        """The ``TaxCodeRef`` of a fee line: None in a US company; else the owner's ``fee_tax_code``,
        or the first active code named out of scope / no VAT / exempt. Raises ``PermanentFailure``
        (code ``NO_TAX_CODE``) when the chosen code is gone or none fits."""
        if self.country == "US":
            return None
        if self._tax_codes is None:
            self._tax_codes = self.client.query(f"SELECT * FROM TaxCode MAXRESULTS {QUERY_LIMIT}").get("TaxCode") or []
        codes = [c for c in self._tax_codes if c.get("Active") is not False]
        if self.chosen_tax_code is not None:
            row = next((c for c in codes if str(c.get("Id")) == self.chosen_tax_code), None)
            if row is None:
                raise errors.PermanentFailure(
                    f"The tax code chosen for late fees (Id {self.chosen_tax_code}, setting fee_tax_code) is not an active "
                    "tax code of this QuickBooks company: choose another one, or clear the setting to let the "
                    "program pick an out-of-scope or exempt code. The fees wait, and the first run after that posts "
                    "them.", code=NO_TAX_CODE, cause=CHOSEN_CODE_GONE, tax_code=self.chosen_tax_code)
        else:
            row = next((c for name in FEE_TAX_CODE_NAMES for c in codes if name in _plain(c.get("Name"))), None)
            if row is None:
                raise errors.PermanentFailure(
                    "QuickBooks needs a tax code on every invoice line of this company, and none of its tax codes "
                    "reads out of scope, no VAT or exempt: set the tax code for late fees (company setting "
                    "fee_tax_code, the Id of a QuickBooks tax code). The fees wait, and the first run after that posts "
                    "them.", code=NO_TAX_CODE, cause=NO_FITTING_CODE, tax_code=None)
        return {"value": str(row["Id"]), "name": str(row.get("Name", ""))}

    def _fee_line(self, amount: Decimal, description: str) -> dict[str, Any]:
        detail: dict[str, Any] = {"ItemRef": self.fee_item(), "Qty": 1, "UnitPrice": amount}
        tax_code = self.fee_tax_code()
        if tax_code is not None:
            detail["TaxCodeRef"] = tax_code
        return {"Amount": amount, "DetailType": "SalesItemLineDetail", "Description": description,
                "SalesItemLineDetail": detail}

    def post_fee(self, *, key: str, customer_id: str, invoice_number: str, amount: Decimal, currency: str,
                 on: date, description: str, bill_email: str | None = None, attempt: int = 0) -> dict[str, Any]:
        """Create the fee invoice (idempotent through ``requestid``); returns QBO's Invoice.

        ``attempt``: how many earlier posts of ``key`` QuickBooks refused for good (``outbox.refusals``).
        QuickBooks answers a requestid it has seen with that first answer, a refusal too, so each such
        attempt gets a requestid of its own; retries of one attempt share it. Raises
        ``PermanentFailure`` with QuickBooks' code: 610 when the customer was made inactive."""
        line = self._fee_line(amount, description)
        body: dict[str, Any] = {
            "CustomerRef": {"value": customer_id},
            "CurrencyRef": {"value": currency},
            "TxnDate": on.isoformat(), "DueDate": on.isoformat(),
            "PrivateNote": f"Late fee for invoice {invoice_number} [{key}]"[:4000],
            "CustomerMemo": {"value": f"Late fee for invoice {invoice_number}"},
            "Line": [line],
        }
        if bill_email:
            body["BillEmail"] = {"Address": bill_email}
        answer = self.client.call("post a late fee", lambda qb: qb.create_object(
            "Invoice", json.dumps(body, default=_decimal_json),
            request_id=request_id(f"{key}#{attempt}" if attempt else key)))
        invoice = answer.get("Invoice") if isinstance(answer, dict) else None
        if not invoice:
            raise errors.PermanentFailure("QuickBooks answered the late-fee invoice without an Invoice.")
        return invoice

    def _edit_lines(self, invoice_id: str, action: str, edit: LineEdit, *, max_rounds: int,
                    gave_up: str) -> dict[str, Any]:
        """Read the invoice, let ``edit`` give its new Line array (None: nothing to do, the invoice
        is returned as read) and write it whole with the current SyncToken; re-read on 5010."""
        for _ in range(max_rounds):
            current = self.client.call("read an invoice", lambda qb: qb.get(
                f"{qb.api_url}/company/{qb.company_id}/invoice/{invoice_id}", params={"minorversion": qb.minorversion}))
            invoice = current.get("Invoice") or {}
            lines = edit(invoice, [l for l in invoice.get("Line") or [] if l.get("DetailType") != "SubTotalLineDetail"])
            if lines is None:
                return invoice
            body = {"Id": invoice_id, "SyncToken": invoice.get("SyncToken"), "sparse": True, "Line": lines}
            try:
                answer = self.client.call(action, lambda qb: qb.update_object(
                    "Invoice", json.dumps(body, default=_decimal_json)))
            except errors.PermanentFailure as exc:
                if str(exc.code) == "5010":
                    continue
                raise
            return answer.get("Invoice") or {}
        raise errors.TransientFailure(f"The invoice kept changing in QuickBooks (5010); {gave_up}")

    def add_fee_line(self, *, key: str, invoice_id: str, amount: Decimal, description: str,
                     max_rounds: int = 3) -> dict[str, Any]:
        """Mode ``line``: add the fee as a line of the original invoice (full Line array, current SyncToken)."""
        marker = f"[{key}]"
        line = self._fee_line(amount, f"{description} {marker}")

        def add(_invoice: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            if any(marker in str(l.get("Description", "")) for l in lines):
                return None  # already there: a retry after a crash adds nothing
            return [*lines, line]

        return self._edit_lines(invoice_id, "add a late-fee line", add, max_rounds=max_rounds,
                                gave_up="the fee line will be tried again.")

    def remove_fee_line(self, *, key: str, invoice_id: str, amount: Decimal, max_rounds: int = 3) -> dict[str, Any]:
        """Waive a fee posted in mode ``line``: take its line (marked ``[key]``) off the original
        invoice (full Line array, current SyncToken, re-read on 5010). Idempotent: an invoice
        without the line is returned as it is.

        Refused (``PermanentFailure``) when the invoice's open balance is smaller than the fee: the
        customer has already paid part of it, and taking the line off would leave a payment larger
        than the invoice; a credit memo in QuickBooks is the right tool then.
        """
        marker = f"[{key}]"

        def remove(invoice: dict[str, Any], lines: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            kept = [l for l in lines if marker not in str(l.get("Description", ""))]
            if len(kept) == len(lines):
                return None  # not there (already removed, or removed by hand in QuickBooks)
            if Decimal(str(invoice.get("Balance", 0))) < amount:
                raise errors.PermanentFailure(
                    f"Invoice {invoice.get('DocNumber') or invoice_id} has less left to pay than the fee: the customer "
                    "has paid part of it. Issue a credit memo for the fee in QuickBooks instead.", code="fee_paid")
            return kept

        return self._edit_lines(invoice_id, "remove a late-fee line", remove, max_rounds=max_rounds,
                                gave_up="try waiving the fee again.")

    def void_fee(self, fee_invoice_id: str) -> dict[str, Any]:
        """Waive a posted fee: void its invoice (re-read first for the current SyncToken)."""
        row = self.client.call("read a fee invoice", lambda qb: qb.get(
            f"{qb.api_url}/company/{qb.company_id}/invoice/{fee_invoice_id}", params={"minorversion": qb.minorversion}))
        invoice = row.get("Invoice") or {}
        body = {"Id": fee_invoice_id, "SyncToken": invoice.get("SyncToken", "0")}
        answer = self.client.call("void a late fee", lambda qb: qb.update_object(
            "Invoice", json.dumps(body), params={"operation": "void"}))
        return answer.get("Invoice") or {}
