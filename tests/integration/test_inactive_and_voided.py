"""Two things QuickBooks Online does that the program must live with, end to end through python-quickbooks
against the sandbox, on SQLite and PostgreSQL:

- A customer "deleted" in QuickBooks is made inactive, and QuickBooks then refuses a transaction naming
  them (400, fault 610). Such a customer is neither reminded nor charged; made active again, they are
  chased as if nothing had happened (no step skipped, no fee period lost).
- A voided invoice keeps its lines with every amount zeroed (TotalAmt 0, Balance 0, "Voided" in its
  private note). It is still known as voided, and a voided fee invoice still as a fee.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import reports
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser

env = pytest.fixture(ds.quiet_env, name="env")

EMAIL = "ap@lumen.example"


def _customer_owing(env, *due_in_days: int, amount: float = 500.0) -> tuple[str, list[dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """A new QuickBooks customer with one invoice of ``amount`` per ``due_in_days`` (negative: late)."""
    today = env.now_at(12).date()
    customer = env.sb.intuit.create(env.realm, "Customer", {"DisplayName": "Lumen Works", "PrimaryEmailAddr": {
        "Address": EMAIL}, "BillAddr": {"Country": "US"}})
    return customer["Id"], [ds.invoice(env, customer["Id"], today + dt.timedelta(days=d), amount) for d in due_in_days]


def _rows_of(env, customer_id: str) -> list[models.Outbox]:  # type: ignore[no-untyped-def]
    return [r for r in env.rows(customer_qbo_id=customer_id) if r.kind in ("reminder", "fee", "task")]


def _fee_invoices(env, customer_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [i for i in env.sb.intuit.entities(env.realm, "Invoice") if i["CustomerRef"]["value"] == customer_id
            and any((l.get("SalesItemLineDetail") or {}).get("ItemRef", {}).get("name") == "Late fee" for l in i["Line"])]


def _mirrored(env, model: Any, qbo_id: str) -> Any:  # type: ignore[no-untyped-def]
    with env.db.session() as s:
        row = s.scalar(select(model).where(model.qbo_id == qbo_id))
        s.expunge(row)
        return row


def _fee_posts(env, customer_id: str, *, invoice_id: str | None = None,  # type: ignore[no-untyped-def]
               inactive_at_first: bool = False) -> list[str]:
    """The invoice writes QuickBooks receives for the customer from now on — a fee invoice created (its
    requestid), or ``invoice_id`` updated (a fee line) —, as a list that grows. ``inactive_at_first``: the
    owner makes the customer inactive in QuickBooks while the run works, after it read the changes since
    the last sync, right before its first fee for them reaches QuickBooks."""
    sb, inner, seen = env.sb, env.sb.app.wsgi_app, []

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"].endswith("/invoice"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            sent = json.loads(body or b"{}")
            if ((sent.get("CustomerRef") or {}).get("value") == customer_id and "requestid" in query) \
                    or (invoice_id is not None and str(sent.get("Id")) == invoice_id):
                if inactive_at_first and not seen:
                    sb.intuit.delete(env.realm, "Customer", customer_id)
                seen.append(query.get("requestid", f"update {invoice_id}"))
        return inner(environ, start_response)

    sb.app.wsgi_app = app
    return seen


# --- a customer made inactive ---------------------------------------------------------------


def test_a_customer_made_inactive_since_the_last_sync_is_neither_reminded_nor_charged_until_active_again(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (late,) = _customer_owing(env, -6)  # its first fee is due today
    env.sync()
    env.run(now=env.now_at(8))  # before the send hour: the day's reminder and fee are planned, not yet due
    planned = _rows_of(env, customer_id)
    assert {r.kind for r in planned} == {"reminder", "fee"} and {r.status.value for r in planned} == {"planned"}
    fee_key = next(r.dedupe_key for r in planned if r.kind == "fee")

    sb.intuit.delete(realm, "Customer", customer_id)  # "deleting" a customer in QuickBooks: inactive; no sync since
    posts = _fee_posts(env, customer_id)
    summary = env.run()
    assert summary.ok and summary.credit_reads == 1 and not summary.problems, summary.problems
    rows = _rows_of(env, customer_id)
    assert {r.status.value for r in rows} == {"cancelled"}
    assert all(r.status_reason == "Cancelled: Lumen Works is inactive in QuickBooks, and nothing is sent or charged to "
               "an inactive customer. If the customer is made active again, the next run plans it again."
               and "#cancelled" in r.dedupe_key for r in rows)
    assert not [m for m in sb.sendgrid.messages if m["to"] == EMAIL]
    assert not posts and not _fee_invoices(env, customer_id)
    assert _mirrored(env, models.Customer, customer_id).active is False  # read with the payments, in the same call

    env.run(now=env.now_at(12, days=1))  # still inactive: nothing planned, nothing tried
    assert [r.id for r in _rows_of(env, customer_id)] == [r.id for r in rows]

    sb.intuit.update(realm, "Customer", customer_id, Active=True)  # back: chased as if nothing had happened
    env.sync()
    back = env.run(now=env.now_at(12, days=1))
    assert back.ok, back.problems
    sent = [r for r in _rows_of(env, customer_id) if r.status.value == "sent"]
    assert {r.kind for r in sent} == {"reminder", "fee"}
    assert [r.dedupe_key for r in sent if r.kind == "fee"] == [fee_key]  # the same period, not lost
    assert [m for m in sb.sendgrid.messages if m["to"] == EMAIL] and len(_fee_invoices(env, customer_id)) == 1


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_a_fee_refused_because_the_customer_was_just_made_inactive_is_cancelled_and_charged_once_back(env, mode) -> None:  # type: ignore[no-untyped-def]
    """The customer is made inactive after the run read the changes: QuickBooks refuses the fee invoice,
    or the fee line on their invoice (610). The row ends cancelled with the reason, the mirror learns the
    customer is inactive (no later run tries again), and the period is charged once the customer is
    active again — a fee invoice under a requestid of its own, as QuickBooks answers a requestid it has
    seen with its first answer, the refusal."""
    sb, realm = env.sb, env.realm
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        company.settings = {**company.settings, "late_fee_mode": mode}
    customer_id, (late,) = _customer_owing(env, -6)  # its first fee is due today
    env.sync()
    posts = _fee_posts(env, customer_id, invoice_id=late["Id"] if mode == "line" else None, inactive_at_first=True)
    summary = env.run()
    assert summary.ok and not summary.statuses["failed"] and not summary.problems, summary.problems
    [fee] = [r for r in _rows_of(env, customer_id) if r.kind == "fee"]
    assert fee.status.value == "cancelled" and "Lumen Works is inactive in QuickBooks" in fee.status_reason
    assert fee.dedupe_key.endswith("#refused") == (mode == "invoice") and "#cancelled" in fee.dedupe_key
    assert not _fee_invoices(env, customer_id)  # no fee invoice, and no fee line on the late one
    assert not [r for r in _rows_of(env, customer_id) if r.status.value not in ("sent", "cancelled")]
    assert _mirrored(env, models.Customer, customer_id).active is False
    with env.db.session() as s:
        told = s.scalars(select(models.Activity).where(models.Activity.outbox_id == fee.id)).all()
        assert [a.message_key for a in told] == ["cancel.customer_inactive"]

    assert len(posts) == 1
    env.run(now=env.now_at(13))  # not tried again while inactive
    env.run(now=env.now_at(12, days=1))
    assert len(posts) == 1 and len([r for r in _rows_of(env, customer_id) if r.kind == "fee"]) == 1

    sb.intuit.update(realm, "Customer", customer_id, Active=True)
    env.sync()
    back = env.run(now=env.now_at(13, days=1))
    assert back.ok, back.problems
    charged = [r for r in _rows_of(env, customer_id) if r.kind == "fee" and r.status.value == "sent"]
    assert [r.dedupe_key for r in charged] == [fee.dedupe_key.split("#cancelled")[0]]
    assert len(posts) == 2 and (posts[0] != posts[1] or mode == "line")  # a refused requestid replays the refusal
    [posted] = _fee_invoices(env, customer_id)
    assert str(charged[0].provider_id).removeprefix("line:") == posted["Id"] and posted["Balance"] > 0
    if mode == "line":
        assert posted["Id"] == late["Id"]


# --- voided invoices ----------------------------------------------------------------------------


def test_a_voided_invoice_has_its_reminder_cancelled_and_counts_for_nothing(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, (late, other) = _customer_owing(env, -10, -20, amount=300.0)
    env.sync()
    env.run(now=env.now_at(8))
    naming = [r for r in _rows_of(env, customer_id) if late["Id"] in (r.invoice_ids or ())]
    assert naming and {r.status.value for r in naming} == {"planned"}
    on = env.now_at(12).date()
    before = reports.aging(env.db, realm, on)["currencies"]["USD"]["total"]

    sb.intuit.void_invoice(realm, late["Id"])  # voided in QuickBooks: every amount zeroed
    assert sb.intuit.get(realm, "Invoice", late["Id"])["TotalAmt"] == 0
    env.run()
    for row in naming:
        row = next(r for r in env.rows() if r.id == row.id)
        assert row.status.value == "cancelled" and "was voided in QuickBooks" in row.status_reason
    mirrored = _mirrored(env, models.Invoice, late["Id"])
    assert mirrored.status == models.InvoiceStatus.voided and mirrored.total == mirrored.balance == 0
    assert not mirrored.is_late_fee and mirrored.fee_lines == 0
    after = reports.aging(env.db, realm, on)["currencies"]["USD"]["total"]
    assert Decimal(str(before)) - Decimal(str(after)) == Decimal("300.00")  # the other invoice still counts


def test_a_fee_invoice_voided_in_quickbooks_is_still_a_fee_and_is_not_offered_for_voiding_again(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    customer_id, _invoices = _customer_owing(env, -6, -6)
    env.sync()
    env.run()
    fees = [r for r in _rows_of(env, customer_id) if r.kind == "fee" and r.status.value == "sent"]
    assert len(fees) >= 2
    voided, kept = fees[0], fees[1]
    sb.intuit.void_invoice(realm, voided.provider_id)  # the owner voids one fee in QuickBooks
    env.sync()
    row = _mirrored(env, models.Invoice, voided.provider_id)
    assert row.is_late_fee and row.status == models.InvoiceStatus.voided and row.total == 0  # recognised by its item
    page = browser(env.web.app, env.db, "owner@maple.example", realm=realm).get(
        f"/companies/{realm}/customers/{customer_id}").get_data(as_text=True)
    assert f'value="fee:{kept.id}"' in page and f'value="fee:{voided.id}"' not in page


def test_a_customer_made_active_again_after_months_is_not_charged_the_months_it_was_inactive(env) -> None:  # type: ignore[no-untyped-def]
    """Inactive counts as excluded: made active again in QuickBooks, the customer bears fees from the day
    the sync saw it (``customer.fees_from``), as one taken back from an exclusion — not every month since."""
    from qbo_collector import clock

    sb, realm = env.sb, env.realm
    customer_id, _ = _customer_owing(env, -6)  # us_net30-like policy of the env: 1.5 % a month from today
    sb.intuit.delete(realm, "Customer", customer_id)  # inactive before the program ever charged it
    env.sync()
    assert _mirrored(env, models.Customer, customer_id).active is False
    try:
        clock.advance(dt.timedelta(days=65))  # two fee periods pass while inactive
        sb.intuit.update(realm, "Customer", customer_id, Active=True)
        env.sync()
        back = _mirrored(env, models.Customer, customer_id)
        assert back.active is True and back.fees_from == env.now_at(12, days=65).date()
        env.run(now=env.now_at(12, days=65))
    finally:
        clock.reset()
    assert not [r for r in _rows_of(env, customer_id) if r.kind == "fee"]  # the next period is charged, not these
