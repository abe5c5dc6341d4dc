"""The aging by customer as CSV: what a spreadsheet opens (pure, no database)."""

from __future__ import annotations

import csv
import io

from qbo_collector import reports

BUCKETS = reports.AGING_BUCKETS


def test_the_aging_csv_opens_in_a_spreadsheet_as_figures_and_never_as_formulas():  # type: ignore[no-untyped-def]
    figures = {"realm": "1", "on": "2026-11-23", "customers": [
        {"customer_id": "7", "name": "=HYPERLINK(\"http://evil.example\",\"pay\")", "currency": "EUR",
         "current": "10.00", "1-30": "0.00", "31-60": "0.00", "61-90": "0.00", "90+": "0.00", "total": "10.00",
         "credits": "25.50", "net": "-15.50"},
        {"customer_id": "8", "name": "Café « Zola », 3 rue; Paris", "currency": "JPY",
         "current": "0", "1-30": "1200", "31-60": "0", "61-90": "0", "90+": "0", "total": "1200",
         "credits": "0", "net": "1200"},
        {"customer_id": "9", "name": "@risk +co -ltd", "currency": "USD", **{k: "1.00" for k in BUCKETS},
         "total": "5.00", "credits": "0.00", "net": "5.00"},
    ]}
    text = reports.aging_csv(figures)
    assert text.startswith("\ufeffcustomer_id,customer,currency,current,1-30,31-60,61-90,90+,total,credits,net\r\n")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[1] == ["7", "'=HYPERLINK(\"http://evil.example\",\"pay\")", "EUR", "10.00", "0.00", "0.00", "0.00",
                       "0.00", "10.00", "25.50", "-15.50"]  # a negative amount stays a number
    assert rows[2][1] == "Café « Zola », 3 rue; Paris" and rows[2][4] == "1200"
    assert rows[3][1] == "'@risk +co -ltd"
    assert reports.aging_csv({**figures, "customers": []}).count("\r\n") == 1
