"""Late fees outside the US carry a tax code: QuickBooks refuses an invoice line without one there
(fault 6000, "Make sure all your transactions have a VAT rate before you save"), so every fee of a
French, British or Canadian company failed. Real python-quickbooks over loopback, against the stand-in."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from quickbooks import exceptions
from sqlalchemy import select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from tests.integration import test_dispatch_support as ds
from tests.integration.conftest_sandbox import connect

FRENCH = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                            language="fr", customers=10, invoices=35, payments=10, seed=12)


@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = []

    def make(spec=FRENCH, company_settings=(), **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("policy", ds.every_day_policy("france_b2b"))
        sb = sandbox_factory(companies=[spec])
        # fees from 40 days back (not only from the day of connection): the €40 of recent invoices is due
        since = (sb.clock.now() - dt.timedelta(days=40)).date().isoformat()
        env = ds.build(sb, settings_factory, sqlite_db, web=False,
                       company_settings={"fees_from": since, **dict(company_settings)}, **kwargs)
        made.append(env)
        return env

    yield make
    ds.stop(made)


def _code(env: ds.Env, name: str) -> str:
    return next(c["Id"] for c in env.sb.intuit.entities(env.realm, "TaxCode") if c["Name"] == name)


def _fee_lines(env: ds.Env, fee: models.Outbox) -> list[dict]:
    """The QuickBooks line(s) of a posted fee: its invoice's, or the line marked with its key."""
    if fee.provider_id.startswith("line:"):
        invoice = env.sb.intuit.get(env.realm, "Invoice", fee.invoice_ids[0])
        return [l for l in invoice["Line"] if fee.dedupe_key in str(l.get("Description", ""))]
    invoice = env.sb.intuit.get(env.realm, "Invoice", fee.provider_id)
    return [l for l in invoice["Line"] if l["DetailType"] == "SalesItemLineDetail"]


def _set(env: ds.Env, **settings: str) -> None:
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        company.settings = {**company.settings, **settings}


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_french_fees_carry_the_out_of_scope_code_and_are_posted(make_env, mode) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"late_fee_mode": mode})
    env.run()
    # (in line mode a second fee on an invoice the first one changed is planned again next run)
    fees = [r for r in env.rows(kind="fee") if r.status.value != "cancelled"]
    assert fees and {r.status.value for r in fees} == {"sent"}, {(r.status.value, r.status_reason) for r in fees}
    assert {(r.payload or {}).get("fee_kind") for r in fees} >= {"indemnity"}  # the €40 (and the interest)
    out_of_scope = _code(env, "Hors champ")
    for fee in fees:
        lines = _fee_lines(env, fee)
        assert len(lines) == 1 and lines[0]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == out_of_scope


def test_the_owners_fee_tax_code_wins(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    exempt = _code(env, "Exonéré")
    _set(env, fee_tax_code=exempt)
    env.run()
    fees = env.rows(kind="fee")
    assert fees and {r.status.value for r in fees} == {"sent"}
    assert {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for f in fees for l in _fee_lines(env, f)} == {exempt}


def test_with_no_fitting_code_the_fee_fails_with_what_to_set_and_is_posted_once_it_is_set(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    for name in ("Hors champ", "Exonéré"):  # the owner's list holds only rates
        env.sb.intuit.update(env.realm, "TaxCode", _code(env, name), Active=False)
    summary = env.run()
    failed = env.rows(kind="fee")
    assert failed and {r.status.value for r in failed} == {"failed"}
    assert all("fee_tax_code" in r.status_reason for r in failed), failed[0].status_reason
    assert any("fee_tax_code" in p for p in summary.problems), summary.problems
    assert not [i for i in env.sb.intuit.entities(env.realm, "Invoice") if "Late fee" in str(i.get("PrivateNote"))]
    zero = _code(env, "TVA 0 %")
    _set(env, fee_tax_code=zero)
    env.run(now=env.now_at(13))
    posted = [r for r in env.rows(kind="fee") if r.status.value == "sent"]
    # each period is charged once the code is set: the failed rows gave their dedupe keys up
    assert all("#cancelled" in r.dedupe_key for r in failed)
    assert sorted(r.dedupe_key for r in posted) == sorted(r.dedupe_key.split("#cancelled")[0] for r in failed)
    assert {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for f in posted for l in _fee_lines(env, f)} == {zero}


def test_a_us_companys_fees_carry_no_tax_code(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(ds.SMALL, policy=ds.every_day_policy())
    env.run()
    fees = env.rows(kind="fee")
    assert fees and {r.status.value for r in fees} == {"sent"}
    assert all("TaxCodeRef" not in l["SalesItemLineDetail"] for f in fees for l in _fee_lines(env, f))
    assert not env.sb.intuit.entities(env.realm, "TaxCode")


def test_the_stand_in_refuses_a_vat_less_line_outside_the_us(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(companies=[FRENCH, ds.SMALL])
    fr_realm, us_realm = list(sb.intuit.companies)
    conn = connect(sb, fr_realm)
    codes = {c["Name"]: c for c in conn.qb.query("SELECT * FROM TaxCode")["QueryResponse"]["TaxCode"]}
    assert {"TVA 20 %", "TVA 5,5 %", "TVA 0 %", "Exonéré", "Hors champ"} <= set(codes)
    assert {k for k in codes["Hors champ"]} >= {"Id", "Name", "Description", "Active", "Taxable"}
    line = {"Amount": 40, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}
    body = {"CustomerRef": {"value": "1"}, "Line": [line]}
    for detail in ({}, {"TaxCodeRef": {"value": "999"}}):
        refused = dict(body, Line=[dict(line, SalesItemLineDetail={"ItemRef": {"value": "1"}, **detail})])
        with pytest.raises(exceptions.QuickbooksException) as err:
            conn.qb.create_object("Invoice", json.dumps(refused))
        assert err.value.error_code == 6000
        assert "Make sure all your transactions have a VAT rate before you save." in err.value.detail
    made = conn.qb.create_object("Invoice", json.dumps(dict(body, Line=[dict(line, SalesItemLineDetail={
        "ItemRef": {"value": "1"}, "TaxCodeRef": {"value": codes["Hors champ"]["Id"]}})])))["Invoice"]
    assert made["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == codes["Hors champ"]["Id"]
    # an update through the API is held to the same rule
    with pytest.raises(exceptions.QuickbooksException) as err:
        conn.qb.update_object("Invoice", json.dumps({"Id": made["Id"], "SyncToken": made["SyncToken"], "sparse": True,
                                                     "Line": [line]}))
    assert err.value.error_code == 6000
    # the US has no per-line codes
    us = connect(sb, us_realm)
    assert us.qb.create_object("Invoice", json.dumps(body))["Invoice"]["TotalAmt"] == 40
