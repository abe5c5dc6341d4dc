"""The pure half of the sync: query strings and QBO row → mirror row."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from qbo_collector.sync import streams

CTX = streams.Context(home_currency="USD", term_days={"3": 30})


@pytest.mark.parametrize("stream, start, expected", [
    (streams.INVOICE, 1, "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"),
    (streams.INVOICE, 2001, "SELECT * FROM Invoice ORDERBY Id STARTPOSITION 2001 MAXRESULTS 1000"),
    # list entities hide inactive rows unless the query names Active
    (streams.CUSTOMER, 1, "SELECT * FROM Customer WHERE Active IN (true, false) ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"),
    (streams.TERM, 1, "SELECT * FROM Term WHERE Active IN (true, false) ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000"),
], ids=["first page", "third page", "customers active and inactive", "terms active and inactive"])
def test_query_builder(stream, start, expected):  # type: ignore[no-untyped-def]
    assert stream.query(start=start) == expected


def test_query_builder_refuses_pages_qbo_refuses():
    with pytest.raises(ValueError):
        streams.build_query("Invoice", max_results=1001)
    with pytest.raises(ValueError):
        streams.build_query("Invoice", start=0)


def test_invoices_ask_for_their_pay_link():
    assert streams.INVOICE.include == "invoiceLink"


def test_changed_since_keeps_the_offset():
    moment = datetime(2026, 11, 20, 18, 30, tzinfo=timezone.utc)
    assert streams.format_since(moment) == "2026-11-20T18:30:00+00:00"
    with pytest.raises(ValueError):
        streams.format_since(datetime(2026, 11, 20))


def invoice(**overrides):  # type: ignore[no-untyped-def]
    row = {"Id": "42", "SyncToken": "3", "MetaData": {"LastUpdatedTime": "2026-11-20T10:15:00-08:00"},
           "DocNumber": "1042", "CustomerRef": {"value": "7", "name": "Acme"}, "TxnDate": "2026-10-01",
           "DueDate": "2026-10-31", "TotalAmt": Decimal("150.00"), "Balance": Decimal("100.00"),
           "CurrencyRef": {"value": "USD"}, "SalesTermRef": {"value": "3"}, "BillEmail": {"Address": "a@b.example"},
           "EmailStatus": "EmailSent", "PrintStatus": "NeedToPrint", "InvoiceLink": "https://pay.example/42",
           "Line": [{"Amount": Decimal("150.00"), "DetailType": "SalesItemLineDetail",
                     "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}}}]}
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


def test_an_invoice_maps_every_field_the_product_uses():
    values = streams.invoice_row(invoice(CustomField=[{"Name": "P.O. Number", "StringValue": "PO-7"}],
                                         DeliveryInfo={"DeliveryType": "Email",
                                                       "DeliveryTime": "2026-10-01T23:30:00-08:00"}), CTX).values
    assert values == {
        "qbo_id": "42", "sync_token": "3", "deleted": False,
        "qbo_updated_at": datetime(2026, 11, 20, 18, 15, tzinfo=timezone.utc),
        "doc_number": "1042", "customer_qbo_id": "7", "txn_date": date(2026, 10, 1), "due_date": date(2026, 10, 31),
        "due_date_derived": None, "total": Decimal("150.00"), "balance": Decimal("100.00"), "currency": "USD",
        "term_qbo_id": "3", "bill_email": "a@b.example", "po_number": "PO-7",
        "invoice_link": "https://pay.example/42", "email_status": "EmailSent", "print_status": "NeedToPrint",
        "sent_on": date(2026, 10, 1), "status": "open", "is_late_fee": False, "fee_lines": Decimal(0),
    }


@pytest.mark.parametrize(("info", "day"), [
    ({"DeliveryType": "Email", "DeliveryTime": "2026-10-01T23:30:00-08:00"}, date(2026, 10, 1)),  # its own day, not UTC's
    ({"DeliveryType": "Email", "DeliveryTime": "yesterday"}, None), ({"DeliveryType": "Email"}, None), ("x", None), (None, None),
])
def test_the_day_quickbooks_emailed_an_invoice_is_read_in_its_own_offset(info, day):
    assert streams.invoice_row(invoice(DeliveryInfo=info), CTX).values["sent_on"] == day


@pytest.mark.parametrize(("email", "printed", "sent"), [
    ("EmailSent", "NotSet", True), ("NotSet", "PrintComplete", True), ("NeedToSend", "NeedToPrint", False),
    ("NotSet", "NotSet", False), ("NotSet", None, False), (None, None, True),  # QuickBooks says nothing: sent
])
def test_an_invoice_counts_as_sent_when_quickbooks_emailed_or_printed_it(email, printed, sent):
    from qbo_collector import snapshot

    values = streams.invoice_row(invoice(EmailStatus=email, PrintStatus=printed), CTX).values
    assert snapshot.was_sent(values["email_status"], values["print_status"]) is sent


@pytest.mark.parametrize("overrides, due, derived", [
    ({"DueDate": None}, date(2026, 10, 31), "term"),                                   # Net 30 from TxnDate
    ({"DueDate": None, "SalesTermRef": None}, date(2026, 10, 1), "txn_date"),          # no term: due on TxnDate
    ({"DueDate": None, "SalesTermRef": {"value": "99"}}, date(2026, 10, 1), "txn_date"),  # unknown term
], ids=["no DueDate: derived from the term", "no DueDate nor term: due on TxnDate", "no DueDate, unknown term"])
def test_a_missing_due_date_is_derived(overrides, due, derived):  # type: ignore[no-untyped-def]
    mapped = streams.invoice_row(invoice(**overrides), CTX)
    assert (mapped.values["due_date"], mapped.values["due_date_derived"]) == (due, derived)
    assert bool(mapped.warnings) == (derived == "txn_date")


@pytest.mark.parametrize("overrides, status", [
    ({}, "open"),
    ({"Balance": Decimal(0)}, "paid"),
    ({"Balance": Decimal(0), "PrivateNote": "Voided"}, "voided"),                        # the sandbox, QBO desktop style
    ({"Balance": Decimal(0), "TotalAmt": Decimal(0)}, "voided"),                         # QBO online zeroes the total
    ({"Balance": Decimal("-5")}, "paid"),                                                # negative: stored as-is, logged
], ids=["open", "paid", "voided with a note", "voided with zero total", "negative balance"])
def test_invoice_status(overrides, status):  # type: ignore[no-untyped-def]
    assert streams.invoice_row(invoice(**overrides), CTX).values["status"] == status


def test_a_negative_balance_is_stored_as_is_and_warned():
    mapped = streams.invoice_row(invoice(Balance=Decimal("-5")), CTX)
    assert mapped.values["balance"] == Decimal("-5") and any("negative" in w for w in mapped.warnings)


def test_a_late_fee_invoice_is_recognised_by_its_item():
    line = {"Amount": Decimal(25), "SalesItemLineDetail": {"ItemRef": {"value": "9", "name": "Late fee"}}}
    values = streams.invoice_row(invoice(Line=[line, {"Amount": Decimal(25), "DetailType": "SubTotalLineDetail",
                                                      "SubTotalLineDetail": {}}]), CTX).values
    assert (values["is_late_fee"], values["fee_lines"]) == (True, Decimal(0))


def test_fee_lines_on_an_invoice_that_bills_work_are_counted_and_do_not_make_it_a_fee_invoice():
    """``late_fee_mode`` "line": the fees are lines of the original invoice. Taking it for a fee
    invoice stopped its fees after the first period; its fee lines are what no fee is charged on."""
    work = {"Amount": Decimal("1000.00"), "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}}}
    fees = [{"Amount": Decimal(amount), "DetailType": "SalesItemLineDetail", "Description": f"Late fee [{n}]",
             "SalesItemLineDetail": {"ItemRef": {"value": "9", "name": " LATE FEE "}}}
            for n, amount in enumerate(("15.00", "15.25"))]
    values = streams.invoice_row(invoice(Line=[work, *fees, {"Amount": Decimal("1030.25"), "DetailType": "SubTotalLineDetail",
                                                             "SubTotalLineDetail": {}}]), CTX).values
    assert (values["is_late_fee"], values["fee_lines"]) == (False, Decimal("30.25"))
    assert streams.invoice_row(invoice(Line=[]), CTX).values["is_late_fee"] is False  # no line at all: not a fee


@pytest.mark.parametrize("name, found", [
    ("P.O. Number", True), ("PO", True), ("PO #", True), ("Purchase Order", True), ("N° de commande", True),
    ("Project", False), ("Reference", False),
])
def test_po_number_from_custom_fields(name, found):  # type: ignore[no-untyped-def]
    assert streams.po_number({"CustomField": [{"Name": name, "StringValue": "X-1"}]}) == ("X-1" if found else None)


def test_no_bill_email_and_no_pay_link_are_fine():
    mapped = streams.invoice_row(invoice(BillEmail=None, InvoiceLink=None), CTX)
    assert mapped.values["bill_email"] is None and mapped.values["invoice_link"] is None
    assert "no BillEmail" in mapped.warnings


def test_no_currency_means_the_home_currency_and_an_unknown_one_is_kept():
    assert streams.invoice_row(invoice(CurrencyRef=None), CTX).values["currency"] == "USD"
    mapped = streams.invoice_row(invoice(CurrencyRef={"value": "XQQ"}), CTX)
    assert mapped.values["currency"] == "XQQ" and any("unknown currency" in w for w in mapped.warnings)


@pytest.mark.parametrize("row", [
    {"Id": "1"},                                                            # no CustomerRef
    invoice(CurrencyRef={"value": "DOLLARS"}),                              # not a currency code
    invoice(TotalAmt="lots"),                                               # not an amount
    invoice(TxnDate="yesterday"),                                           # not a date
    {"DocNumber": "no id"},                                                 # no Id at all
    "not even an object",
], ids=["no customer", "bad currency", "bad amount", "bad date", "no Id", "not an object"])
def test_bad_records_are_refused_with_a_reason(row):  # type: ignore[no-untyped-def]
    with pytest.raises(streams.BadRecord):
        streams.map_row(streams.INVOICE, row, CTX)  # type: ignore[arg-type]


def test_payment_links_sum_lines_to_the_same_invoice_and_keep_the_credit_memos_used_apart():
    row = {"Id": "5", "CustomerRef": {"value": "7"}, "TotalAmt": Decimal(30), "UnappliedAmt": Decimal(0),
           "Line": [{"Amount": Decimal(10), "LinkedTxn": [{"TxnId": "42", "TxnType": "Invoice"}]},
                    {"Amount": Decimal(20), "LinkedTxn": [{"TxnId": "42", "TxnType": "Invoice"}]},
                    {"Amount": Decimal(5), "LinkedTxn": [{"TxnId": "8", "TxnType": "CreditMemo"}]}]}
    mapped = streams.payment_row(row, CTX)
    assert mapped.links == {"42": Decimal(30)}
    assert mapped.memo_links == {"8": Decimal(5)}
    assert mapped.values["total"] == Decimal(30)


def test_customer_fields():
    row = {"Id": "7", "DisplayName": "Acme", "CompanyName": "Acme Ltd", "GivenName": "Ann", "Active": False,
           "PrimaryEmailAddr": {"Address": "ann@acme.example"}, "PrimaryPhone": {"FreeFormNumber": "(415) 555-0100"},
           "Mobile": {"FreeFormNumber": "+33 6 12"}, "BillAddr": {"Country": "US"}, "Balance": Decimal("12.5"),
           "CurrencyRef": {"value": "EUR"}, "Notes": "VIP", "SalesTermRef": {"value": "3"}}
    values = streams.customer_row(row, CTX).values
    assert values["display_name"] == "Acme" and values["active"] is False and values["currency"] == "EUR"
    assert (values["email"], values["phone"], values["mobile"]) == ("ann@acme.example", "(415) 555-0100", "+33 6 12")
    assert values["balance"] == Decimal("12.5") and values["term_qbo_id"] == "3" and values["notes"] == "VIP"


def test_a_job_billed_with_its_parent_is_mapped_with_its_parent():
    base = {"Id": "9", "DisplayName": "Kitchen remodel", "Balance": Decimal(0)}
    job = streams.customer_row(base | {"Job": True, "ParentRef": {"value": "7"}, "BillWithParent": True}, CTX).values
    assert (job["parent_qbo_id"], job["bill_with_parent"]) == ("7", True)
    own = streams.customer_row(base | {"Job": True, "ParentRef": {"value": "7"}, "BillWithParent": False}, CTX).values
    assert (own["parent_qbo_id"], own["bill_with_parent"]) == ("7", False)
    # QuickBooks honours BillWithParent only on a job or sub-customer: without a parent it means nothing
    top = streams.customer_row(base | {"BillWithParent": True}, CTX).values
    assert (top["parent_qbo_id"], top["bill_with_parent"]) == (None, False)


def test_term_and_credit_memo():
    term = streams.term_row({"Id": "5", "Name": "2% 10 Net 30", "DueDays": 30, "DiscountPercent": Decimal(2),
                             "DiscountDays": 10, "Active": True}, CTX).values
    assert (term["due_days"], term["discount_percent"], term["discount_days"]) == (30, Decimal(2), 10)
    memo = streams.credit_memo_row({"Id": "8", "CustomerRef": {"value": "7"}, "TotalAmt": Decimal(50),
                                    "RemainingCredit": Decimal(20)}, CTX).values
    assert memo["balance"] == Decimal(20)
