"""The interest up to the day an invoice is paid (REFERENCE: ERPNext #58220, interest lost after the
principal is paid), end to end: a French company, an invoice paid in QuickBooks mid-period, a sync,
a run → one interest invoice for the days from the period's start to the payment day, and a notice
that thanks the customer. Real python-quickbooks and SendGrid clients over loopback, against the stand-ins."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from qbo_collector.rules import calendar
from qbo_collector.sandbox import server
from tests.integration import test_dispatch_support as ds

FRENCH = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                            language="fr", customers=4, invoices=6, payments=2, seed=12)


@pytest.fixture
def make_env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    made = []

    def make(mode: str) -> ds.Env:
        sb = sandbox_factory(companies=[FRENCH])
        since = (sb.clock.now() - dt.timedelta(days=90)).date().isoformat()  # fees for the invoice of 45 days ago
        env = ds.build(sb, settings_factory, db, web=False,
                       company_settings={"fees_from": since, "late_fee_mode": mode},
                       policy=ds.every_day_policy("france_b2b", min_gap_days=0, alert_owner_when_late=False))
        made.append(env)
        return env

    yield make
    ds.stop(made)


def _today(env: ds.Env) -> dt.date:
    return env.now_at(12).astimezone(zoneinfo.ZoneInfo("Europe/Paris")).date()


def _fees(env: ds.Env, invoice_id: str) -> list[Any]:
    return [r for r in env.rows(kind="fee") if list(r.invoice_ids or ()) == [invoice_id]]


def _late_invoice(env: ds.Env, days: int = 45) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer with an email address, and a new 10,000 € invoice of theirs due ``days`` ago."""
    customer = next(c for c in env.sb.intuit.entities(env.realm, "Customer") if c.get("PrimaryEmailAddr"))
    return customer, ds.invoice(env, customer["Id"], _today(env) - dt.timedelta(days=days), amount=10000.0)


def _pay(env: ds.Env, customer: dict[str, Any], invoice: dict[str, Any], on: dt.date) -> dict[str, Any]:
    """The whole invoice paid in QuickBooks on ``on``."""
    return env.sb.intuit.create(env.realm, "Payment", {
        "CustomerRef": {"value": customer["Id"]}, "TotalAmt": 10000.0, "TxnDate": on.isoformat(),
        "Line": [{"Amount": 10000.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_an_invoice_paid_mid_period_is_billed_its_interest_up_to_the_payment_day_once(make_env, mode) -> None:  # type: ignore[no-untyped-def]
    env = make_env(mode)
    today = _today(env)
    due = today - dt.timedelta(days=45)
    customer, invoice = _late_invoice(env)
    env.sync()
    assert env.run().ok
    first = _fees(env, invoice["Id"])
    assert sorted((r.payload["fee_kind"], r.status.value) for r in first) == [("indemnity", "sent"), ("interest", "sent")]

    paid_on = today - dt.timedelta(days=1)  # paid yesterday, recorded today
    _pay(env, customer, invoice, paid_on)
    env.sync()
    assert env.run(now=env.now_at(13)).ok
    [final] = [r for r in _fees(env, invoice["Id"]) if r not in first and r.id not in {f.id for f in first}]
    begin = calendar.add_months(due + dt.timedelta(days=1), 1)  # the second monthly period
    days = (paid_on - begin).days + 1  # the payment day counts
    amount = (Decimal(10000) * Decimal("12.15") * days / 36500).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert (final.status.value, final.payload["period"], final.payload["days"], final.payload["paid_on"],
            Decimal(final.amount)) == ("sent", begin.isoformat(), days, paid_on.isoformat(), amount)
    # its own invoice, even in line mode: the paid invoice is not reopened
    posted = env.sb.intuit.get(env.realm, "Invoice", final.provider_id)
    assert posted is not None and Decimal(str(posted["TotalAmt"])) == amount
    assert posted["CustomerRef"]["value"] == customer["Id"]
    assert Decimal(str(env.sb.intuit.get(env.realm, "Invoice", invoice["Id"])["Balance"])) == sum(
        (Decimal(f.amount) for f in first), Decimal(0)) * (mode == "line")
    # the notice (French: the company's language) thanks the customer for paying; in line mode the invoice
    # still owes its fee lines, which the notice says
    env.flush()
    [notice] = [m for m in env.sb.sendgrid.messages if m["to"] == customer["PrimaryEmailAddr"]["Address"]
                and f"{str(amount).replace('.', ',')}\u00a0€" in m["text"]]
    said = "Nous vous remercions du règlement de la facture" if mode == "invoice" else "présente encore un solde"
    assert invoice["DocNumber"] in notice["text"] and said in notice["text"], notice["text"]

    # nothing more: the next runs, and the day the period would have ended
    assert env.run(now=env.now_at(14)).ok
    assert env.run(now=env.now_at(12, days=40)).ok
    assert [r.id for r in _fees(env, invoice["Id"])] == [r.id for r in first] + [final.id]


def test_a_payment_undone_before_the_interest_is_posted_cancels_it_and_it_is_never_billed_twice(make_env) -> None:  # type: ignore[no-untyped-def]
    """The payment is deleted in QuickBooks after the plan and before the posting: the fee is cancelled
    (the balance changed), planned again as the usual period, and that period is charged once."""
    env = make_env("invoice")
    today = _today(env)
    customer, invoice = _late_invoice(env)
    env.sync()
    assert env.run().ok
    payment = _pay(env, customer, invoice, today)
    env.sync()
    # planned for a send hour still to come (a run before it only plans), then the payment is deleted
    assert env.run(now=env.now_at(6)).ok
    [planned] = [r for r in _fees(env, invoice["Id"]) if (r.payload or {}).get("paid_on")]
    assert planned.status.value == "planned"
    env.sb.intuit.delete(env.realm, "Payment", payment["Id"])
    assert env.run(now=env.now_at(13)).ok
    [cancelled] = [r for r in _fees(env, invoice["Id"]) if r.id == planned.id]
    assert cancelled.status.value == "cancelled" and "#cancelled" in cancelled.dedupe_key
    env.sync()
    assert env.run(now=env.now_at(12, days=40)).ok  # the period ends, and the next one
    charged = [r.dedupe_key for r in _fees(env, invoice["Id"]) if r.status.value == "sent"]
    assert len(charged) == len(set(charged))


def test_interest_on_hold_when_the_invoice_is_paid_is_billed_up_to_the_payment_day(make_env) -> None:  # type: ignore[no-untyped-def]
    """Interest held for want of a tax code, then the invoice paid: the held row is cancelled as paid and
    gives its key up, so the run after the code is set bills every day up to the payment — the period
    that ended while held and the one the payment fell in — not only the last."""
    from tests.integration.test_fee_tax_codes import _code, _only_rates, _set

    env = make_env("invoice")
    _only_rates(env)
    customer, invoice = _late_invoice(env)
    env.sync()
    env.run()
    held = _fees(env, invoice["Id"])
    assert {r.status.value for r in held} == {"planned"} and any(r.payload["fee_kind"] == "interest" for r in held)
    _pay(env, customer, invoice, _today(env))
    env.sync()
    _set(env, fee_tax_code=_code(env, "TVA 0 %"))
    env.run(now=env.now_at(13))
    env.sync()
    env.run(now=env.now_at(12, days=1))
    sent = [r for r in _fees(env, invoice["Id"]) if r.status.value == "sent" and r.payload["fee_kind"] == "interest"]
    assert sum(r.payload["days"] for r in sent) == 45  # from the day after the due date to the payment day
    assert len({r.dedupe_key for r in sent}) == len(sent) == 2


@pytest.mark.parametrize("parent", ["fees waived", "friendly policy"])
def test_a_job_billed_with_its_parent_is_charged_by_its_own_settings_not_the_parents(make_env, parent) -> None:  # type: ignore[no-untyped-def]
    """The message about a job's invoice goes to its parent, but its fees answer to the job's own waiver,
    exclusion and policy: the parent's fees waived, or a parent on a policy without fees, cancels none."""
    from sqlalchemy import select

    from qbo_collector.db import models

    env = make_env("invoice")
    sb, realm = env.sb, env.realm
    boss = sb.intuit.create(realm, "Customer", {"DisplayName": "Hartley", "BillAddr": {"Country": "FR"},
                                                "PrimaryEmailAddr": {"Address": "ap@hartley.example"}})
    job = sb.intuit.create(realm, "Customer", {"DisplayName": "Kitchen", "Job": True, "ParentRef": {"value": boss["Id"]},
                                               "BillWithParent": True, "BillAddr": {"Country": "FR"}})
    invoice = ds.invoice(env, job["Id"], _today(env) - dt.timedelta(days=45), amount=10000.0)
    env.sync()
    with env.db.session() as s:
        row = s.scalar(select(models.Customer).where(models.Customer.qbo_id == boss["Id"]))
        if parent == "fees waived":
            row.fees_waived = True
        else:
            row.policy_name = "friendly"
    assert env.run().ok
    fees = _fees(env, invoice["Id"])
    assert fees and {r.status.value for r in fees} == {"sent"}, [(r.status.value, r.status_reason) for r in fees]
